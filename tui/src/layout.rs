//! Where each pane goes for a terminal size: usable at 80×24, roomier when larger.

use ratatui::layout::{Constraint, Layout, Rect};

use crate::app::View;

/// The rectangles of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    /// The top line: model, version, daemon.
    pub header: Rect,
    /// The bottom line: progress, messages, key hints.
    pub status: Rect,
    /// The layer tree.
    pub layers: Rect,
    /// The image strip.
    pub images: Rect,
    /// The current view (unit grid, overlay, filters, map).
    pub main: Rect,
    /// The unit inspector, when open in the units view.
    pub inspector: Option<Rect>,
}

/// Cells of one unit or filter tile: a heat map of `width × height` cells (two pixels a
/// cell, stacked) above one line for its number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileSize {
    /// Heat-map columns.
    pub width: u16,
    /// Heat-map rows (each two pixels high).
    pub height: u16,
}

impl TileSize {
    /// Columns from one tile to the next (one blank between).
    pub fn pitch_x(self) -> u16 {
        self.width + 1
    }

    /// Rows from one tile to the next (the number line included).
    pub fn pitch_y(self) -> u16 {
        self.height + 1
    }
}

/// Whether the terminal is roomy (bigger tiles, pictures beside text).
pub fn is_large(size: Rect) -> bool {
    size.width >= 140 && size.height >= 40
}

/// The tiles for a terminal size.
pub fn tile_size(size: Rect) -> TileSize {
    if is_large(size) {
        TileSize {
            width: 8,
            height: 4,
        }
    } else {
        TileSize {
            width: 6,
            height: 3,
        }
    }
}

/// Splits a frame of `size`.
pub fn areas(size: Rect, view: View, inspector_open: bool) -> Areas {
    let [header, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(size);
    let left_width = match size.width {
        0..=99 => 30,
        100..=139 => 34,
        _ => 40,
    };
    let [left, main] =
        Layout::horizontal([Constraint::Length(left_width), Constraint::Min(0)]).areas(body);
    let images_height = match size.height {
        0..=29 => 9,
        30..=39 => 12,
        _ => 20,
    };
    let [layers, images] =
        Layout::vertical([Constraint::Min(5), Constraint::Length(images_height)]).areas(left);
    let (main, inspector) = if view == View::Units && inspector_open {
        if main.width >= 100 {
            let width = (main.width * 2 / 5).max(44);
            let [grid, inspector] =
                Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(main);
            (grid, Some(inspector))
        } else {
            let height = main.height * 11 / 20;
            let [grid, inspector] =
                Layout::vertical([Constraint::Min(0), Constraint::Length(height)]).areas(main);
            (grid, Some(inspector))
        }
    } else {
        (main, None)
    };
    Areas {
        header,
        status,
        layers,
        images,
        main,
        inspector,
    }
}

/// The inside of a bordered pane.
pub fn inner(area: Rect) -> Rect {
    Rect {
        x: area.x.saturating_add(1),
        y: area.y.saturating_add(1),
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    }
}

/// The widest tile, in cells, that the grid grows its tiles to.
const MAX_TILE_WIDTH: u16 = 32;

/// The tiles for `n` units in `grid` (a frame of `size`): the largest square-pixel tiles (a
/// cell is two pixels high, so half as many rows as columns) that show all `n` at once, from the
/// terminal's smallest ([`tile_size`]) up to [`MAX_TILE_WIDTH`]; the smallest when they do not
/// all fit, and the grid scrolls.
pub fn tile_for(grid: Rect, n: usize, size: Rect) -> TileSize {
    let mut best = tile_size(size);
    let mut width = best.width + 2;
    while width <= MAX_TILE_WIDTH {
        let tile = TileSize {
            width,
            height: width / 2,
        };
        let cols = usize::from(grid.width / tile.pitch_x());
        let fits =
            cols > 0 && n.div_ceil(cols) * usize::from(tile.pitch_y()) <= usize::from(grid.height);
        if !fits {
            break;
        }
        best = tile;
        width += 2;
    }
    best
}

/// The area of the unit grid (or the filters view) in a frame of `size`: the main pane's inside
/// below its one-line caption.
pub fn grid_area(size: Rect, view: View, inspector_open: bool) -> Rect {
    let main = inner(areas(size, view, inspector_open).main);
    Rect::new(
        main.x,
        main.y.saturating_add(1),
        main.width,
        main.height.saturating_sub(1),
    )
}

/// Tiles per row and rows shown of a grid of `n` tiles (the unit grid or the filters view) in
/// a frame of `size`.
pub fn grid_shape(size: Rect, view: View, inspector_open: bool, n: usize) -> (usize, usize) {
    let grid = grid_area(size, view, inspector_open);
    let tile = tile_for(grid, n, size);
    (
        usize::from((grid.width / tile.pitch_x()).max(1)),
        usize::from((grid.height / tile.pitch_y()).max(1)),
    )
}

/// The first tile row to draw so that `row` is shown (the cursor's row kept in view, as near
/// the middle as the rows allow; pure, so drawing and key handling agree).
pub fn scroll_for(row: usize, visible: usize, total: usize) -> usize {
    if total <= visible {
        return 0;
    }
    row.saturating_sub(visible / 2).min(total - visible)
}
