//! A run's frames as one picture: a horizontal strip (PNG) or an animated GIF.

use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, Rgb, RgbImage};

use crate::{Error, Result};

/// Pixels between frames in a strip.
pub const STRIP_GAP: u32 = 4;

/// The GIF encoder's colour quantization speed, 1 (best, slowest) to 30: 10 is the NeuQuant
/// default quality at a fraction of the time of 1.
const GIF_SPEED: i32 = 10;

/// The frames side by side, in order, on a dark background with [`STRIP_GAP`] between them.
pub fn strip(frames: &[RgbImage]) -> RgbImage {
    let width = frames.iter().map(|f| f.width() + STRIP_GAP).sum::<u32>() + STRIP_GAP;
    let height = frames.iter().map(RgbImage::height).max().unwrap_or(1) + 2 * STRIP_GAP;
    let mut out = RgbImage::from_pixel(width.max(1), height, Rgb([24, 24, 24]));
    let mut x = STRIP_GAP;
    for f in frames {
        image::imageops::overlay(&mut out, f, i64::from(x), i64::from(STRIP_GAP));
        x += f.width() + STRIP_GAP;
    }
    out
}

/// The frames as an animated GIF that loops forever, each shown `delay_ms` milliseconds
/// (the image crate's encoder; each frame gets its own 256-colour palette).
pub fn encode_gif(frames: &[RgbImage], delay_ms: u32) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, GIF_SPEED);
        encoder.set_repeat(Repeat::Infinite).map_err(gif_error)?;
        let delay = Delay::from_numer_denom_ms(delay_ms.max(10), 1);
        let frames = frames.iter().map(|f| {
            Frame::from_parts(
                image::DynamicImage::ImageRgb8(f.clone()).into_rgba8(),
                0,
                0,
                delay,
            )
        });
        encoder.encode_frames(frames).map_err(gif_error)?;
    }
    Ok(bytes)
}

fn gif_error(e: image::ImageError) -> Error {
    Error::InvalidArgument(format!("cannot encode the GIF: {e}"))
}
