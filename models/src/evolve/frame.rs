//! One checkpoint's picture made into a frame: enlarged to a legible size and captioned with the
//! checkpoint's name, all frames of a run the same size.

use image::{imageops, Rgb, RgbImage};

use crate::represent::map_render::draw_text;

/// Frames smaller than this on their longer side are enlarged by a whole factor (nearest
/// neighbour, so kernel cells and map cells stay sharp).
pub const MIN_FRAME_SIDE: u32 = 160;

/// Height of the caption bar above each frame.
pub const CAPTION_HEIGHT: u32 = 12;

/// The dark background of caption bars and padding.
const BACKGROUND: Rgb<u8> = Rgb([24, 24, 24]);

/// The caption text colour.
const TEXT: [u8; 3] = [235, 235, 235];

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

/// `picture` below a bar holding `caption` in the 8×8 font, cut to the characters that fit.
pub fn captioned(picture: &RgbImage, caption: &str) -> RgbImage {
    let mut out = RgbImage::from_pixel(
        picture.width(),
        picture.height() + CAPTION_HEIGHT,
        BACKGROUND,
    );
    imageops::overlay(&mut out, picture, 0, i64::from(CAPTION_HEIGHT));
    let fits = ((picture.width().saturating_sub(4)) / 8) as usize;
    let text: String = caption.chars().take(fits).collect();
    draw_text(&mut out, 2, 2, &text, TEXT, 1);
    out
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
