//! The key list, drawn over everything (`?`).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Widget};

use super::{pane, title};
use crate::keys::HELP;

/// Sections in the left column; the rest go right.
const LEFT_SECTIONS: usize = 2;

/// Draws the help over `area` (the whole screen).
pub fn draw(buf: &mut Buffer, area: Rect) {
    let width = area.width.min(84);
    let height = area.height.saturating_sub(2).min(24);
    let popup = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    );
    Clear.render(popup, buf);
    let inner = pane(buf, popup, title("Keys", "any key closes".into()), true);
    let half = inner.width / 2;
    let columns = [
        Rect::new(inner.x + 1, inner.y, half.saturating_sub(1), inner.height),
        Rect::new(
            inner.x + half + 1,
            inner.y,
            (inner.width - half).saturating_sub(1),
            inner.height,
        ),
    ];
    for (column, sections) in columns
        .iter()
        .zip([&HELP[..LEFT_SECTIONS], &HELP[LEFT_SECTIONS..]])
    {
        let key_width = 12.min(usize::from(column.width) / 2);
        let mut lines = Vec::new();
        for (i, (name, keys)) in sections.iter().enumerate() {
            if i > 0 {
                lines.push(Line::default());
            }
            lines.push(Line::from(Span::styled(
                *name,
                Style::default()
                    .fg(Color::Yellow)
                    .add_modifier(Modifier::BOLD),
            )));
            for (key, what) in keys.iter() {
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("{key:<key_width$}"),
                        Style::default().fg(Color::Cyan),
                    ),
                    Span::raw(*what),
                ]));
            }
        }
        for (row, line) in lines
            .into_iter()
            .enumerate()
            .take(usize::from(column.height))
        {
            let y = column.y + row as u16;
            line.render(Rect::new(column.x, y, column.width, 1), buf);
        }
    }
}
