//! The unit grid: every channel of the selected layer for the current image as a small heat
//! map over its max activation, the cursor on one of them.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{compact, pane, title, unless_ready, ACCENT};
use crate::app::{App, Pane, View};
use crate::heatmap::paint_map;
use crate::layout::{scroll_for, tile_for, TileSize};

/// Draws the grid pane.
pub fn draw(buf: &mut Buffer, area: Rect, app: &App, screen: Rect) {
    let layer = app.selected_layer();
    let details = match layer {
        Some(l) => {
            let dims: Vec<String> = l
                .output_shape
                .iter()
                .skip(1)
                .map(|d| d.to_string())
                .collect();
            format!("{} · {}", l.path, dims.join("×"))
        }
        None => String::new(),
    };
    let focused =
        app.focus == Pane::Main || (app.focus == Pane::Inspector && app.view == View::Units);
    let inner = pane(buf, area, title("Units", details), focused);
    if layer.is_none() {
        return;
    }
    let Some(acts) = unless_ready(
        buf,
        inner,
        &app.units.activations.state,
        "activations",
        "",
        app.tick,
    ) else {
        return;
    };
    let channels = acts.channels();
    let Some(stats) = acts.stats.get(app.units.cursor) else {
        super::message(buf, inner, "this layer has no channels", Style::default());
        return;
    };
    let caption = Line::from(vec![
        Span::styled(
            // Units are numbered from 0, as `--unit` and the protocol take them.
            format!(
                "unit {} of 0–{}",
                app.units.cursor,
                channels.saturating_sub(1)
            ),
            Style::default().fg(ACCENT).add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!(
                " · max {} · mean {} · active {:.0}%",
                compact(stats.max, 7),
                compact(stats.mean, 7),
                stats.frac_active * 100.0
            ),
            Style::default().fg(Color::Gray),
        ),
    ]);
    caption.render(Rect::new(inner.x, inner.y, inner.width, 1), buf);
    let grid = Rect::new(
        inner.x,
        inner.y + 1,
        inner.width,
        inner.height.saturating_sub(1),
    );
    let tile = tile_for(grid, channels, screen);
    draw_tiles(
        buf,
        grid,
        tile,
        channels,
        Some(app.units.cursor),
        |buf, i, heat| {
            paint_map(
                buf,
                heat,
                acts.map(i),
                acts.height,
                acts.width,
                acts.scale(),
            );
            compact(acts.stats[i].max, usize::from(tile.width))
        },
    );
}

/// Lays out `n` tiles of `tile` size over `area`, scrolled to show `cursor` (from the top
/// when there is none); `paint` draws tile `i`'s picture into the rectangle it gets and returns
/// its label.
pub fn draw_tiles(
    buf: &mut Buffer,
    area: Rect,
    tile: TileSize,
    n: usize,
    cursor: Option<usize>,
    mut paint: impl FnMut(&mut Buffer, usize, Rect) -> String,
) {
    let cols = usize::from((area.width / tile.pitch_x()).max(1));
    let rows = usize::from((area.height / tile.pitch_y()).max(1));
    let total_rows = n.div_ceil(cols);
    let first = cursor.map_or(0, |c| scroll_for(c / cols, rows, total_rows));
    for i in (first * cols)..n.min((first + rows) * cols) {
        let (r, c) = ((i / cols - first) as u16, (i % cols) as u16);
        let x = area.x + c * tile.pitch_x();
        let y = area.y + r * tile.pitch_y();
        if y + tile.pitch_y() > area.y + area.height || x + tile.width > area.x + area.width {
            continue;
        }
        let heat = Rect::new(x, y, tile.width, tile.height);
        let mut label = paint(buf, i, heat);
        let at_cursor = cursor == Some(i);
        if at_cursor && label.chars().count() + 2 <= usize::from(tile.width) {
            label = format!("[{label}]");
        }
        let style = if at_cursor {
            Style::default().fg(Color::Black).bg(ACCENT)
        } else {
            Style::default().fg(Color::Gray)
        };
        let width = usize::from(tile.width);
        buf.set_stringn(x, y + tile.height, format!("{label:^width$}"), width, style);
    }
    if total_rows > rows {
        let shown = format!(
            " rows {}–{} of {} ",
            first + 1,
            (first + rows).min(total_rows),
            total_rows
        );
        let x = area.x + area.width.saturating_sub(shown.chars().count() as u16);
        buf.set_string(
            x,
            area.y + area.height,
            shown,
            Style::default().fg(Color::DarkGray),
        );
    }
}
