//! One checkpoint's picture made into a frame: enlarged to a legible size and captioned with the
//! checkpoint's name, all frames of a run the same size.

use image::{imageops, Rgb, RgbImage};

/// Frames smaller than this on their longer side are enlarged by a whole factor (nearest
/// neighbour, so kernel cells and map cells stay sharp).
pub const MIN_FRAME_SIDE: u32 = 160;

pub use crate::render::figure::{captioned, CAPTION_HEIGHT};

/// The dark background of padding.
const BACKGROUND: Rgb<u8> = Rgb([24, 24, 24]);

/// `picture` enlarged by the smallest whole factor that makes its longer side at least
/// [`MIN_FRAME_SIDE`] (unchanged when it already is).
pub fn enlarge(picture: &RgbImage) -> RgbImage {
    let side = picture.width().max(picture.height()).max(1);
    let factor = MIN_FRAME_SIDE.div_ceil(side).max(1);
    if factor == 1 {
        return picture.clone();
    }
    imageops::resize(
        picture,
        picture.width() * factor,
        picture.height() * factor,
        imageops::FilterType::Nearest,
    )
}

/// Every frame padded (bottom and right, with the background) to the largest width and height
/// among them, so that a strip lines up and a GIF's frames cover one canvas.
pub fn same_size(frames: Vec<RgbImage>) -> Vec<RgbImage> {
    let w = frames.iter().map(RgbImage::width).max().unwrap_or(1);
    let h = frames.iter().map(RgbImage::height).max().unwrap_or(1);
    frames
        .into_iter()
        .map(|f| {
            if f.dimensions() == (w, h) {
                return f;
            }
            let mut out = RgbImage::from_pixel(w, h, BACKGROUND);
            imageops::overlay(&mut out, &f, 0, 0);
            out
        })
        .collect()
}
