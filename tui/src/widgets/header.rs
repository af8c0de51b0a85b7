//! The top line: the model, its checkpoint version, the folder, the daemon and the graphics.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{count, file_name, ACCENT};
use crate::app::{App, Link};

/// Draws the header.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, graphics: &str) {
    let dim = Style::default().fg(Color::Gray);
    let mut spans = vec![Span::styled(
        " convlens ",
        Style::default().fg(Color::Black).bg(ACCENT),
    )];
    match app.model_view() {
        Some(m) => {
            spans.push(Span::styled(
                format!(" {} ", m.arch),
                Style::default().add_modifier(Modifier::BOLD),
            ));
            // An earlier version pinned on the timeline: `v3/7` (shown / live).
            let version = match app.timeline.pinned {
                Some(v) => format!("v{v}/{}", app.version),
                None => format!("v{}", m.version),
            };
            spans.push(Span::styled(
                format!(
                    "{} · {version} · {} params",
                    file_name(std::path::Path::new(&m.source)),
                    count(m.total_params)
                ),
                dim,
            ));
        }
        None => spans.push(Span::styled(format!(" {}", app.model_spec), dim)),
    }
    spans.push(Span::styled(
        format!(" │ {} images", app.image_list().len()),
        dim,
    ));
    let link = match &app.link {
        Link::Connecting => Span::styled(" │ connecting…", Style::default().fg(Color::Yellow)),
        Link::Connected { device } => Span::styled(format!(" │ daemon: {device}"), dim),
        Link::Lost(_) => Span::styled(" │ daemon lost", Style::default().fg(Color::Red)),
    };
    spans.push(link);
    spans.push(Span::styled(format!(" │ {graphics}"), dim));
    Line::from(spans).render(area, buf);
}
