//! The layer tree: modules folded and unfolded, output shapes and parameter counts, the cursor
//! and the search's matches.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{count, fit, pane, title, unless_ready, ACCENT};
use crate::app::{App, Link, Pane};
use crate::layout::scroll_for;
use crate::tree::visible;

/// Draws the tree pane.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App) {
    let matches = app.tree.matches(app.layers());
    let details = match (&app.tree.search, app.model_view()) {
        (Some(s), _) if !s.query.is_empty() => format!("/{} · {} found", s.query, matches.len()),
        (_, Some(m)) => format!("{} modules", m.layers.len()),
        _ => String::new(),
    };
    let inner = pane(
        buf,
        area,
        title("Layers", details),
        app.focus == Pane::Layers,
    );
    if let (Link::Lost(why), None) = (&app.link, app.model_view()) {
        let text = format!("no daemon: {why}");
        super::message(buf, inner, &text, Style::default().fg(Color::Red));
        return;
    }
    let Some(model) = unless_ready(buf, inner, &app.model.state, "model", "", app.tick) else {
        return;
    };
    let layers = &model.layers;
    let rows = visible(layers, &app.tree.expanded);
    let cursor = app.tree.cursor_row(layers, &rows);
    let height = usize::from(inner.height);
    let first = scroll_for(cursor, height, rows.len());
    let width = usize::from(inner.width);
    let show_params = width >= 36;
    for (row, &i) in rows.iter().enumerate().skip(first).take(height) {
        let layer = &layers[i];
        let marker = if layer.is_leaf {
            "  "
        } else if app.tree.expanded.contains(&layer.path) {
            "▾ "
        } else {
            "▸ "
        };
        let shape = layer
            .output_shape
            .iter()
            .skip(1)
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("×");
        let right = if show_params {
            format!(" {shape:>10} {:>6}", count(layer.params))
        } else {
            format!(" {shape:>10}")
        };
        let indent = "  ".repeat(layer.depth.min(6));
        let name_width = width.saturating_sub(right.chars().count() + indent.len() + 2);
        let name = fit(layer.short_name(), name_width);
        let selected = row == cursor;
        let mut name_style = if layer.is_leaf {
            Style::default()
        } else {
            Style::default().fg(Color::LightBlue)
        };
        if matches.contains(&i) {
            name_style = name_style.fg(Color::Yellow);
        }
        let pad = name_width.saturating_sub(name.chars().count());
        let mut line = Line::from(vec![
            Span::raw(indent),
            Span::styled(marker, Style::default().fg(Color::DarkGray)),
            Span::styled(name, name_style),
            Span::raw(" ".repeat(pad)),
            Span::styled(right, Style::default().fg(Color::DarkGray)),
        ]);
        if selected {
            line = line.style(
                Style::default()
                    .bg(Color::Rgb(40, 50, 60))
                    .add_modifier(Modifier::BOLD),
            );
            if app.focus == Pane::Layers {
                line = line.patch_style(Style::default().fg(ACCENT));
            }
        }
        let y = inner.y + (row - first) as u16;
        line.render(Rect::new(inner.x, y, inner.width, 1), buf);
    }
}
