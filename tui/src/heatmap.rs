//! Small heat maps and pixel tiles drawn straight into the buffer, two pixels a cell with the
//! upper half block (`▀`: foreground the upper pixel, background the lower).
//!
//! Hand-written rather than through ratatui-image: the unit grid draws hundreds of tiles of a
//! few dozen pixels each frame, and a graphics-protocol image per tile would mean an encode
//! and an escape sequence per tile; colouring cells directly is what its half-block mode does
//! anyway, and it works in every terminal.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Color;

/// The colour of `t` in [0, 1] on viridis.
pub fn viridis(t: f32) -> Color {
    let c = colorous::VIRIDIS.eval_continuous(f64::from(t.clamp(0.0, 1.0)));
    Color::Rgb(c.r, c.g, c.b)
}

/// Draws the `height × width` map `values` (row-major) over `area`, resampled by averaging to
/// `area.width × 2·area.height` pixels, coloured on viridis with `scale` as the top (values at
/// or below zero are the darkest).
pub fn paint_map(
    buf: &mut Buffer,
    area: Rect,
    values: &[f32],
    height: usize,
    width: usize,
    scale: f32,
) {
    if values.len() < height * width || height == 0 || width == 0 {
        return;
    }
    let scale = if scale > 0.0 { scale } else { 1.0 };
    let (tw, th) = (usize::from(area.width), usize::from(area.height) * 2);
    let sample = |tx: usize, ty: usize| -> Color {
        let (x0, x1) = span(tx, tw, width);
        let (y0, y1) = span(ty, th, height);
        let mut sum = 0.0;
        for y in y0..y1 {
            for x in x0..x1 {
                sum += values[y * width + x];
            }
        }
        let mean = sum / ((x1 - x0) * (y1 - y0)) as f32;
        viridis(mean / scale)
    };
    paint(buf, area, sample);
}

/// Draws the `width × height` RGB `pixels` over `area` (nearest pixel).
pub fn paint_pixels(buf: &mut Buffer, area: Rect, pixels: &[[u8; 3]], width: usize, height: usize) {
    if pixels.len() < width * height || width == 0 || height == 0 {
        return;
    }
    let (tw, th) = (usize::from(area.width), usize::from(area.height) * 2);
    let sample = |tx: usize, ty: usize| -> Color {
        let [r, g, b] = pixels[(ty * height / th) * width + tx * width / tw];
        Color::Rgb(r, g, b)
    };
    paint(buf, area, sample);
}

/// The source range `[start, end)` that target pixel `t` of `targets` covers in `sources`
/// (never empty).
fn span(t: usize, targets: usize, sources: usize) -> (usize, usize) {
    let start = (t * sources / targets).min(sources - 1);
    let end = ((t + 1) * sources)
        .div_ceil(targets)
        .clamp(start + 1, sources);
    (start, end)
}

fn paint(buf: &mut Buffer, area: Rect, sample: impl Fn(usize, usize) -> Color) {
    let area = area.intersection(buf.area);
    for row in 0..area.height {
        for col in 0..area.width {
            let (x, y) = (usize::from(col), usize::from(row) * 2);
            if let Some(cell) = buf.cell_mut((area.x + col, area.y + row)) {
                cell.set_symbol("▀")
                    .set_fg(sample(x, y))
                    .set_bg(sample(x, y + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_source() {
        assert_eq!(span(0, 2, 4), (0, 2));
        assert_eq!(span(1, 2, 4), (2, 4));
        assert_eq!(span(3, 8, 2), (0, 1));
        assert_eq!(span(7, 8, 2), (1, 2));
    }

    #[test]
    fn a_map_becomes_half_blocks_with_its_colours() {
        let mut buf = Buffer::empty(Rect::new(0, 0, 1, 1));
        paint_map(&mut buf, Rect::new(0, 0, 1, 1), &[0.0, 2.0], 2, 1, 2.0);
        let cell = &buf[(0, 0)];
        assert_eq!(cell.symbol(), "▀");
        assert_eq!(cell.fg, viridis(0.0));
        assert_eq!(cell.bg, viridis(1.0));
    }
}
