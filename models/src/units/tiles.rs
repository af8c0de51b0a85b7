//! Small value grids drawn as enlarged tiles and laid out with `render::grid`: the arithmetic
//! shared by the filter and activation grids, exposed so a test can find each tile's pixels.

use image::{Rgb, RgbImage};

/// Pixels of dark border between tiles.
pub const TILE_GAP: u32 = 2;

/// The smallest side a tile is enlarged to, in pixels (a 3×3 kernel becomes 36×36).
const MIN_TILE_PIXELS: usize = 32;

/// The whole-number factor that enlarges an `h`×`w` grid to at least [`MIN_TILE_PIXELS`] on its
/// longer side (1 when it is already that large).
pub fn upscale_factor(h: usize, w: usize) -> u32 {
    let side = h.max(w).max(1);
    side.max(MIN_TILE_PIXELS).div_ceil(side) as u32
}

/// The top-left pixel of tile `index` in a `render::grid` of `columns` tiles of `tile_w`×`tile_h`
/// with `gap` pixels between them.
pub fn tile_origin(index: usize, columns: usize, tile_w: u32, tile_h: u32, gap: u32) -> (u32, u32) {
    let columns = columns.max(1);
    (
        gap + (index % columns) as u32 * (tile_w + gap),
        gap + (index / columns) as u32 * (tile_h + gap),
    )
}

/// An `h`×`w` grid drawn with each cell a `factor`×`factor` block of the colour `color(y, x)`.
pub fn enlarged_tile(
    h: usize,
    w: usize,
    factor: u32,
    color: impl Fn(usize, usize) -> [u8; 3],
) -> RgbImage {
    let mut tile = RgbImage::new(w as u32 * factor, h as u32 * factor);
    for (x, y, p) in tile.enumerate_pixels_mut() {
        *p = Rgb(color((y / factor) as usize, (x / factor) as usize));
    }
    tile
}

/// A value in [0, 1] as an 8-bit channel.
pub fn to_byte(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// About square: the number of columns for `n` tiles.
pub fn square_columns(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).max(1)
}
