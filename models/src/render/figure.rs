//! A picture made to be read on its own: enlarged to a legible size, with caption lines above it
//! (what it shows: model, method, class, layer, version) and, for a heat map, a colour bar with
//! the scale's ends named below it. Text is the 8×8 bitmap font of [`super::text`].

use image::{imageops, Rgb, RgbImage};

use super::text::draw_text;
use super::{color, Colormap};

/// The dark background of the caption and the colour bar.
const BACKGROUND: Rgb<u8> = Rgb([24, 24, 24]);

/// The text colour.
const TEXT: [u8; 3] = [235, 235, 235];

/// Pixels around the text and the bar.
const MARGIN: u32 = 4;

/// Height of one line of text (the 8-pixel font and a gap).
const LINE: u32 = 11;

/// Height of the colour bar's gradient.
const BAR: u32 = 10;

/// Height of the caption bar of [`captioned`].
pub const CAPTION_HEIGHT: u32 = 12;

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

/// The colour bar under a heat map: its colormap and what its two ends mean.
#[derive(Clone, Debug)]
pub struct ColorBar {
    /// The colormap of the heat map.
    pub cmap: Colormap,
    /// What the left end stands for (`0`).
    pub low: String,
    /// What the right end stands for (`max |attribution|`).
    pub high: String,
}

/// `picture` enlarged (Catmull–Rom) until its longer side is at least `min_side`, under
/// `lines` of caption (each cut to what fits) and above `bar` when there is one.
pub fn figure(
    picture: &RgbImage,
    lines: &[String],
    bar: Option<&ColorBar>,
    min_side: u32,
) -> RgbImage {
    let picture = enlarged(picture, min_side);
    let width = picture.width().max(2 * MARGIN + 8);
    let top = if lines.is_empty() {
        0
    } else {
        2 * MARGIN + LINE * lines.len() as u32
    };
    let bottom = if bar.is_some() {
        2 * MARGIN + BAR + LINE
    } else {
        0
    };
    let mut out = RgbImage::from_pixel(width, top + picture.height() + bottom, BACKGROUND);
    let fits = ((width - 2 * MARGIN) / 8) as usize;
    for (i, line) in lines.iter().enumerate() {
        let text: String = line.chars().take(fits).collect();
        let y = i64::from(MARGIN + LINE * i as u32);
        draw_text(&mut out, i64::from(MARGIN), y, &text, TEXT, 1);
    }
    imageops::overlay(&mut out, &picture, 0, i64::from(top));
    if let Some(bar) = bar {
        let y0 = top + picture.height() + MARGIN;
        let span = width - 2 * MARGIN;
        for x in 0..span {
            let v = x as f32 / (span - 1).max(1) as f32;
            let c = color(bar.cmap, v).map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8);
            for y in y0..y0 + BAR {
                out.put_pixel(MARGIN + x, y, Rgb(c));
            }
        }
        let y = i64::from(y0 + BAR + 2);
        draw_text(&mut out, i64::from(MARGIN), y, &bar.low, TEXT, 1);
        let high_width = 8 * bar.high.chars().count() as i64;
        let x = i64::from(width - MARGIN) - high_width;
        draw_text(&mut out, x.max(0), y, &bar.high, TEXT, 1);
    }
    out
}

/// `picture` enlarged by Catmull–Rom until its longer side is at least `min_side`.
fn enlarged(picture: &RgbImage, min_side: u32) -> RgbImage {
    let side = picture.width().max(picture.height()).max(1);
    if side >= min_side {
        return picture.clone();
    }
    let scale = min_side as f32 / side as f32;
    let w = (picture.width() as f32 * scale).round().max(1.0) as u32;
    let h = (picture.height() as f32 * scale).round().max(1.0) as u32;
    imageops::resize(picture, w, h, imageops::FilterType::CatmullRom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_is_enlarged_captioned_and_barred() {
        let picture = RgbImage::from_pixel(224, 112, Rgb([200, 10, 10]));
        let lines = vec!["gradcam: class 285".to_string(), "layer x".to_string()];
        let bar = ColorBar {
            cmap: Colormap::Viridis,
            low: "0".into(),
            high: "max".into(),
        };
        let out = figure(&picture, &lines, Some(&bar), 448);
        let top = 2 * MARGIN + 2 * LINE;
        assert_eq!(out.width(), 448);
        assert_eq!(out.height(), top + 224 + 2 * MARGIN + BAR + LINE);
        // The picture sits under the caption, enlarged; the bar runs dark to bright.
        assert_eq!(out.get_pixel(200, top + 100), &Rgb([200, 10, 10]));
        let y = top + 224 + MARGIN + 2;
        let (left, right) = (out.get_pixel(MARGIN, y), out.get_pixel(448 - MARGIN - 1, y));
        let luma = |p: &Rgb<u8>| p.0.iter().map(|&c| u32::from(c)).sum::<u32>();
        assert!(luma(left) < luma(right), "{left:?} {right:?}");
        // Caption text is drawn (some pixels are the text colour).
        let texty = (0..448).any(|x| out.get_pixel(x, MARGIN + 3).0 == TEXT);
        assert!(texty);
        // Big pictures are kept as they are; no caption and no bar add nothing.
        let same = figure(&RgbImage::new(500, 300), &[], None, 448);
        assert_eq!(same.dimensions(), (500, 300));
    }
}
