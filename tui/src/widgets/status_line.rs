//! The bottom line: the search being typed, what is being computed, the last checkpoint news
//! or error, and the key hints.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::spinner;
use crate::app::{App, Pane};
use crate::remote::Remote;

/// Draws the status line.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App) {
    let hints = format!(" {} · ? keys · q quit ", pane_name(app.focus));
    let left_width = area.width.saturating_sub(hints.chars().count() as u16);
    let left = Rect::new(area.x, area.y, left_width, 1);
    let right = Rect::new(area.x + left_width, area.y, area.width - left_width, 1);
    Line::from(Span::styled(hints, Style::default().fg(Color::DarkGray))).render(right, buf);

    if let Some(search) = app.tree.search.as_ref().filter(|s| s.editing) {
        let found = app.tree.matches(app.layers()).len();
        Line::from(vec![
            Span::styled(
                format!(" /{}", search.query),
                Style::default().fg(Color::Yellow),
            ),
            Span::styled("█", Style::default().fg(Color::Yellow)),
            Span::styled(
                format!("  {found} matches · Enter keeps · Esc drops"),
                Style::default().fg(Color::Gray),
            ),
        ])
        .render(left, buf);
        return;
    }
    let mut spans = Vec::new();
    // Which checkpoint version the views show, once there is more than one.
    if let Some(v) = app.timeline.pinned {
        spans.push(Span::styled(
            format!(" showing v{v} of v{} ·", app.version),
            Style::default().fg(Color::Yellow),
        ));
    } else if app.version_list().len() > 1 {
        spans.push(Span::styled(
            format!(" v{} live ·", app.version),
            Style::default().fg(Color::Gray),
        ));
    }
    if let Some(busy) = busy_with(app) {
        spans.push(Span::styled(
            format!(" {} {busy}", spinner(app.tick)),
            Style::default().fg(Color::Gray),
        ));
    }
    if let Some(m) = &app.message {
        spans.push(Span::styled(
            format!(" {m}"),
            Style::default().fg(Color::Red),
        ));
    } else if let Some(c) = &app.checkpoint {
        let color = if c.contains("failed") {
            Color::Red
        } else {
            Color::Green
        };
        spans.push(Span::styled(format!(" {c}"), Style::default().fg(color)));
    }
    Line::from(spans).render(left, buf);
}

fn pane_name(pane: Pane) -> &'static str {
    match pane {
        Pane::Layers => "layers",
        Pane::Images => "images",
        Pane::Main => "view",
        Pane::Inspector => "inspector",
    }
}

/// What is being computed, with its percentage when known (the longest-running kinds first).
fn busy_with(app: &App) -> Option<String> {
    fn pct<T>(r: &Remote<T>, what: &str) -> Option<String> {
        match r {
            Remote::Loading(p) => Some(match p.percentage {
                Some(pct) => format!("{what} {pct}%"),
                None => format!("{what}…"),
            }),
            _ => None,
        }
    }
    pct(&app.inspector.maximize.state, "maximization")
        .or_else(|| pct(&app.map.folder_map.state, "t-SNE map"))
        .or_else(|| pct(&app.overlay.scores.state, "scoring"))
        .or_else(|| pct(&app.overlay.explanation.state, app.method_name()))
        .or_else(|| pct(&app.overlay.all.fetch.state, "all methods"))
        .or_else(|| pct(&app.inspector.folder_top.state, "folder pass"))
        .or_else(|| pct(&app.inspector.top_crop.state, "top image"))
        .or_else(|| pct(&app.inspector.deconv.state, "deconvnet"))
        .or_else(|| pct(&app.units.activations.state, "activations"))
        .or_else(|| pct(&app.filters.bank.state, "filters"))
        .or_else(|| pct(&app.strip.prediction.state, "top-5"))
        .or_else(|| pct(&app.timeline.frozen.state, "earlier checkpoint"))
        .or_else(|| pct(&app.timeline.versions.state, "versions"))
        .or_else(|| pct(&app.model.state, "model"))
        .or_else(|| pct(&app.strip.images.state, "images"))
}
