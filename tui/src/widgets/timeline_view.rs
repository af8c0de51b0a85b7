//! The timeline view: every version of the open checkpoint (when the daemon loaded it, the
//! training step, loss and accuracy from the metrics beside it), the one shown marked, and the
//! accuracy over versions as a braille line where there is room.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::canvas::{Canvas, Line as CanvasLine, Points};
use ratatui::widgets::Widget;

use super::{compact, pane, title, unless_ready, ACCENT};
use crate::app::{App, Pane};
use crate::layout::scroll_for;
use crate::remote::Remote;
use crate::timeline::{time_of_day, Version};

/// Rows the accuracy plot needs (caption included) to be drawn.
const PLOT_ROWS: u16 = 7;

/// Draws the timeline pane.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App) {
    let shown = app.shown_version();
    let list = app.version_list();
    let details = if list.is_empty() {
        "checkpoint versions".to_string()
    } else {
        let which = if app.timeline.pinned.is_some() {
            "pinned"
        } else {
            "live"
        };
        let count = match list.len() {
            1 => "1 version".to_string(),
            n => format!("{n} versions"),
        };
        format!("{count} · showing v{shown} ({which})")
    };
    let inner = pane(
        buf,
        area,
        title("Timeline", details),
        app.focus == Pane::Main,
    );
    let Some(versions) = unless_ready(
        buf,
        inner,
        &app.timeline.versions.state,
        "versions",
        "",
        app.tick,
    ) else {
        return;
    };
    if versions.is_empty() {
        super::message(
            buf,
            inner,
            "the daemon lists no version",
            Style::default().fg(Color::DarkGray),
        );
        return;
    }
    let accuracies: Vec<(f64, f64)> = versions
        .iter()
        .filter_map(|v| Some((v.version as f64, v.accuracy?)))
        .collect();
    let rows_room = inner.height.saturating_sub(1);
    let rows_needed = u16::try_from(versions.len())
        .unwrap_or(u16::MAX)
        .saturating_add(PLOT_ROWS);
    let plot = accuracies.len() >= 2 && rows_room > rows_needed;
    let table_rows = if plot {
        usize::from(rows_room - PLOT_ROWS)
    } else {
        usize::from(rows_room)
    };
    let line = |i: usize| Rect::new(inner.x, inner.y + i as u16, inner.width, 1);
    Line::from(Span::styled(
        format!(
            "  {:<6}{:<10}{:>7}{:>7}{:>7}",
            "ver", "UTC", "step", "loss", "acc"
        ),
        Style::default().fg(Color::DarkGray),
    ))
    .render(line(0), buf);
    let at = versions
        .iter()
        .position(|v| v.version == shown)
        .unwrap_or(0);
    let first = scroll_for(at, table_rows, versions.len());
    for (row, v) in versions.iter().enumerate().skip(first).take(table_rows) {
        row_line(v, v.version == shown, app).render(line(1 + row - first), buf);
    }
    let drawn = versions.len().min(table_rows);
    if versions.len() == 1 && drawn + 2 < usize::from(inner.height) {
        super::message(
            buf,
            Rect::new(
                inner.x,
                inner.y + 2 + drawn as u16,
                inner.width,
                inner.height.saturating_sub(2 + drawn as u16),
            ),
            "one version so far: each rewrite of the checkpoint file adds one \
             (< > step through them from any view)",
            Style::default().fg(Color::DarkGray),
        );
    }
    if plot {
        let top = inner.y + inner.height - PLOT_ROWS;
        let area = Rect::new(inner.x, top + 1, inner.width, PLOT_ROWS - 1);
        Line::from(Span::styled(
            "accuracy by version",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ))
        .render(Rect::new(inner.x, top, inner.width, 1), buf);
        accuracy_plot(buf, area, &accuracies, shown as f64);
    }
}

/// One version's row: marker, version, time, step, loss, accuracy, and a note.
fn row_line(v: &Version, is_shown: bool, app: &App) -> Line<'static> {
    let dash = || "—".to_string();
    let text = format!(
        "{:<6}{:<10}{:>7}{:>7}{:>7}",
        format!("v{}", v.version),
        time_of_day(v.loaded_at)
            .trim_end_matches(" UTC")
            .to_string(),
        v.step.map_or_else(dash, |s| s.to_string()),
        v.loss.map_or_else(dash, |l| compact(l as f32, 6)),
        v.accuracy
            .map_or_else(dash, |a| format!("{:.1}%", a * 100.0)),
    );
    let note = if v.version == app.version {
        Span::styled("  live", Style::default().fg(Color::Green))
    } else if !v.kept {
        Span::styled("  dropped", Style::default().fg(Color::DarkGray))
    } else if is_shown && app.timeline.frozen.state.is_loading() {
        Span::styled("  loading…", Style::default().fg(Color::Gray))
    } else if is_shown {
        match &app.timeline.frozen.state {
            Remote::Failed(_) => Span::styled("  failed", Style::default().fg(Color::Red)),
            _ => Span::raw(""),
        }
    } else {
        Span::raw("")
    };
    let (mark, style) = if is_shown {
        (
            "▶ ",
            Style::default().fg(ACCENT).add_modifier(Modifier::BOLD),
        )
    } else if v.kept {
        ("  ", Style::default())
    } else {
        ("  ", Style::default().fg(Color::DarkGray))
    };
    Line::from(vec![Span::styled(format!("{mark}{text}"), style), note])
}

/// Accuracy (y) over version (x) as a braille line, the shown version marked.
fn accuracy_plot(buf: &mut Buffer, area: Rect, points: &[(f64, f64)], shown: f64) {
    let (mut lo, mut hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    if hi - lo < 1e-6 {
        (lo, hi) = (lo - 0.01, hi + 0.01);
    }
    let label = format!("{:.1}–{:.1}% ", lo * 100.0, hi * 100.0);
    let label_width = label.chars().count() as u16;
    Line::from(Span::styled(label, Style::default().fg(Color::DarkGray))).render(
        Rect::new(area.x, area.y, label_width.min(area.width), 1),
        buf,
    );
    let plot = Rect::new(
        area.x + label_width.min(area.width),
        area.y,
        area.width.saturating_sub(label_width),
        area.height,
    );
    let x0 = points.first().map_or(0.0, |p| p.0);
    let x1 = points.last().map_or(1.0, |p| p.0).max(x0 + 1.0);
    let mark: Vec<(f64, f64)> = points.iter().filter(|p| p.0 == shown).copied().collect();
    Canvas::default()
        .marker(Marker::Braille)
        .x_bounds([x0, x1])
        .y_bounds([lo, hi])
        .paint(|ctx| {
            for pair in points.windows(2) {
                ctx.draw(&CanvasLine {
                    x1: pair[0].0,
                    y1: pair[0].1,
                    x2: pair[1].0,
                    y2: pair[1].1,
                    color: Color::Green,
                });
            }
            ctx.layer();
            ctx.draw(&Points {
                coords: &mark,
                color: ACCENT,
            });
        })
        .render(plot, buf);
}
