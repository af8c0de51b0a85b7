//! The filters view: a convolution's kernels as small pictures.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::unit_grid::draw_tiles;
use super::{pane, title, unless_ready, ACCENT};
use crate::app::{App, Pane};
use crate::heatmap::paint_pixels;
use crate::layout::tile_for;

/// Draws the filters pane.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, screen: Rect) {
    let layer = app.selected_layer();
    let details = layer.map_or(String::new(), |l| l.path.clone());
    let inner = pane(
        buf,
        area,
        title("Filters", details),
        app.focus == Pane::Main,
    );
    let Some(layer) = layer else {
        return;
    };
    if !layer.is_conv() {
        let text = format!(
            "{} is a {}: filters exist for convolutions only (Conv2d); pick one in the layer tree",
            layer.path, layer.class_name
        );
        super::message(buf, inner, &text, Style::default().fg(Color::DarkGray));
        return;
    }
    let Some(bank) = unless_ready(buf, inner, &app.filters.bank.state, "filters", "", app.tick)
    else {
        return;
    };
    let Some(current) = bank.tiles.get(app.filters.cursor) else {
        super::message(buf, inner, "no filters", Style::default());
        return;
    };
    Line::from(vec![
        Span::styled(
            // Filters are numbered from 0, as the output channels they make.
            format!(
                "filter {} of 0–{}",
                app.filters.cursor,
                bank.tiles.len().saturating_sub(1)
            ),
            Style::default().fg(ACCENT).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(" · {}×{} · {}", current.width, current.height, bank.note),
            Style::default().fg(Color::Gray),
        ),
    ])
    .render(Rect::new(inner.x, inner.y, inner.width, 1), buf);
    let grid = Rect::new(
        inner.x,
        inner.y + 1,
        inner.width,
        inner.height.saturating_sub(1),
    );
    draw_tiles(
        buf,
        grid,
        tile_for(grid, bank.tiles.len(), screen),
        bank.tiles.len(),
        Some(app.filters.cursor),
        |buf, i, rect| {
            let t = &bank.tiles[i];
            paint_pixels(buf, rect, &t.pixels, t.width, t.height);
            i.to_string()
        },
    );
}
