//! A sprite: every image of a folder as a square thumbnail in one picture, row by row in the
//! folder's order — what TensorBoard's embedding projector shows beside each point.

use std::path::Path;

use image::{imageops, Rgb, RgbImage};

use crate::progress::Progress;
use crate::Result;

/// The largest side TensorBoard's projector takes for a sprite, in pixels.
pub const MAX_SPRITE_SIDE: u32 = 8192;
/// The largest thumbnail, in pixels.
pub const MAX_TILE: u32 = 64;
/// A file that cannot be read shows as this grey.
const UNREADABLE: Rgb<u8> = Rgb([128, 128, 128]);

/// Thumbnails per row (and at most rows) for `n` images: the ceiling of √n.
pub fn sprite_columns(n: usize) -> u32 {
    (n as f64).sqrt().ceil().max(1.0) as u32
}

/// The thumbnail side for `n` images: as large as [`MAX_TILE`] while the sprite stays within
/// [`MAX_SPRITE_SIDE`] (at least one pixel).
pub fn sprite_tile(n: usize) -> u32 {
    (MAX_SPRITE_SIDE / sprite_columns(n)).clamp(1, MAX_TILE)
}

/// The sprite of `paths`: each image cropped to its centre square and scaled to `tile`
/// pixels, in order, [`sprite_columns`] to a row; unreadable files grey.
pub fn render_sprite(
    paths: &[impl AsRef<Path>],
    tile: u32,
    progress: &dyn Progress,
) -> Result<RgbImage> {
    let columns = sprite_columns(paths.len());
    let rows = (paths.len() as u32).div_ceil(columns).max(1);
    let mut sprite = RgbImage::from_pixel(columns * tile, rows * tile, Rgb([0, 0, 0]));
    for (i, path) in paths.iter().enumerate() {
        let thumb = match image::open(path.as_ref()) {
            Ok(img) => img
                .resize_to_fill(tile, tile, imageops::FilterType::Triangle)
                .to_rgb8(),
            Err(_) => RgbImage::from_pixel(tile, tile, UNREADABLE),
        };
        let (col, row) = (i as u32 % columns, i as u32 / columns);
        imageops::overlay(
            &mut sprite,
            &thumb,
            i64::from(col * tile),
            i64::from(row * tile),
        );
        if (i + 1) % 256 == 0 {
            progress.step(i + 1, paths.len(), "drawing the sprite")?;
        }
    }
    progress.step(paths.len(), paths.len(), "drawing the sprite")?;
    Ok(sprite)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Silent;

    #[test]
    fn the_sprite_fits_tensorboards_limit() {
        assert_eq!(sprite_tile(10), MAX_TILE);
        assert_eq!(sprite_columns(10), 4);
        // A million images: 1000 to a row of 8-pixel thumbnails.
        assert_eq!(sprite_columns(1_000_000), 1000);
        assert_eq!(sprite_tile(1_000_000), 8);
        assert!(sprite_columns(1_000_000) * sprite_tile(1_000_000) <= MAX_SPRITE_SIDE);
    }

    #[test]
    fn thumbnails_go_row_by_row_and_unreadable_files_are_grey() {
        let dir = std::env::temp_dir().join(format!("convlens-sprite-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let red = dir.join("red.png");
        RgbImage::from_pixel(30, 20, Rgb([255, 0, 0]))
            .save(&red)
            .unwrap();
        let paths = [red.clone(), dir.join("missing.png"), red];
        let sprite = render_sprite(&paths, 4, &Silent).unwrap();
        assert_eq!(sprite.dimensions(), (8, 8));
        assert_eq!(sprite.get_pixel(1, 1), &Rgb([255, 0, 0]));
        assert_eq!(sprite.get_pixel(5, 1), &UNREADABLE);
        assert_eq!(sprite.get_pixel(1, 5), &Rgb([255, 0, 0]));
        assert_eq!(sprite.get_pixel(5, 5), &Rgb([0, 0, 0]));
        std::fs::remove_dir_all(&dir).ok();
    }
}
