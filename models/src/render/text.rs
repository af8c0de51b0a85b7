//! Text in pictures: the 8×8 bitmap font of the `font8x8` crate (no font files, no system
//! fonts), for captions, legends and labels.

use image::{Rgb, RgbImage};

/// Draws `text` with its top-left corner at (`x`, `y`), each font pixel `scale`×`scale`.
pub fn draw_text(img: &mut RgbImage, x: i64, y: i64, text: &str, color: [u8; 3], scale: u32) {
    let s = i64::from(scale.max(1));
    for (i, ch) in text.chars().enumerate() {
        let code = ch as usize;
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(code)
            .copied()
            .unwrap_or(font8x8::legacy::BASIC_LEGACY[b'?' as usize]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) == 0 {
                    continue;
                }
                for dy in 0..s {
                    for dx in 0..s {
                        let px = x + (i as i64 * 8 + col) * s + dx;
                        let py = y + row as i64 * s + dy;
                        if px >= 0
                            && py >= 0
                            && px < i64::from(img.width())
                            && py < i64::from(img.height())
                        {
                            img.put_pixel(px as u32, py as u32, Rgb(color));
                        }
                    }
                }
            }
        }
    }
}
