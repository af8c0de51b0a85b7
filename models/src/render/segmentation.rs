//! A segmentation drawn over its photo: each pixel in the colour of its most likely class
//! (Pascal VOC's palette), the background class left as the photo, and the pixels an
//! explanation summed over outlined in white.

use candle_core::{DType, Device, Tensor};
use image::{Rgb, RgbImage};

use crate::{Error, Result};

/// How much of a class's colour covers the photo.
const ALPHA: f32 = 0.55;
/// The outline of the explained region.
const OUTLINE: Rgb<u8> = Rgb([255, 255, 255]);

/// Pascal VOC's colour for class `index`, as its label PNGs' palette assigns it: the index's
/// bits dealt out to red, green and blue in turn, from the high bit of each channel down.
pub fn voc_color(index: usize) -> [u8; 3] {
    let mut rgb = [0u8; 3];
    let mut c = index;
    for bit in (0..8).rev() {
        for (channel, value) in rgb.iter_mut().enumerate() {
            *value |= (((c >> channel) & 1) as u8) << bit;
        }
        c >>= 3;
    }
    rgb
}

/// `photo` with the segmentation of `logits` ([1, classes, H, W], the photo's size) over it:
/// each pixel blended with its argmax class's colour, class 0 (the background) left as it is,
/// and the border of `region` ([H, W], non-zero inside) in white.
pub fn segmentation_overlay(
    photo: &RgbImage,
    logits: &Tensor,
    region: Option<&Tensor>,
) -> Result<RgbImage> {
    let (_, _, h, w) = logits.dims4()?;
    let (pw, ph) = photo.dimensions();
    if (pw as usize, ph as usize) != (w, h) {
        return Err(Error::Shape {
            what: "segmentation over the photo".into(),
            expected: format!("[{ph}, {pw}]"),
            found: format!("[{h}, {w}]"),
        });
    }
    let labels = logits
        .to_device(&Device::Cpu)?
        .argmax(1)?
        .flatten_all()?
        .to_vec1::<u32>()?;
    let inside = match region {
        Some(r) => Some(
            r.to_device(&Device::Cpu)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?
                .into_iter()
                .map(|v| v != 0.0)
                .collect::<Vec<bool>>(),
        ),
        None => None,
    };
    let is_inside = |x: i64, y: i64| -> bool {
        if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
            return false;
        }
        inside
            .as_ref()
            .is_some_and(|m| m[y as usize * w + x as usize])
    };
    let mut out = photo.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        let (xi, yi) = (x as i64, y as i64);
        if is_inside(xi, yi)
            && [(1, 0), (-1, 0), (0, 1), (0, -1)]
                .iter()
                .any(|(dx, dy)| !is_inside(xi + dx, yi + dy))
        {
            *p = OUTLINE;
            continue;
        }
        let class = labels[y as usize * w + x as usize] as usize;
        if class == 0 {
            continue;
        }
        let color = voc_color(class);
        for (v, c) in p.0.iter_mut().zip(color) {
            *v = ((1.0 - ALPHA) * f32::from(*v) + ALPHA * f32::from(c)).round() as u8;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voc_palette_matches_its_label_pngs() {
        // The first entries of the palette every VOC SegmentationClass PNG carries.
        assert_eq!(voc_color(0), [0, 0, 0]);
        assert_eq!(voc_color(1), [128, 0, 0]);
        assert_eq!(voc_color(2), [0, 128, 0]);
        assert_eq!(voc_color(8), [64, 0, 0]);
        assert_eq!(voc_color(15), [192, 128, 128]);
        assert_eq!(voc_color(20), [0, 64, 128]);
    }

    #[test]
    fn classes_are_coloured_the_background_kept_and_the_region_outlined() {
        let photo = RgbImage::from_pixel(4, 4, Rgb([100, 100, 100]));
        // Class 1 wins on the left half, the background on the right.
        let mut values = vec![0f32; 2 * 16];
        for y in 0..4 {
            for x in 0..4 {
                let class = if x < 2 { 1 } else { 0 };
                values[class * 16 + y * 4 + x] = 1.0;
            }
        }
        let logits = Tensor::from_vec(values, (1, 2, 4, 4), &Device::Cpu).unwrap();
        let mut mask = vec![0f32; 16];
        for y in 1..4 {
            for x in 0..3 {
                mask[y * 4 + x] = 1.0;
            }
        }
        let region = Tensor::from_vec(mask, (4, 4), &Device::Cpu).unwrap();
        let out = segmentation_overlay(&photo, &logits, Some(&region)).unwrap();
        // Background outside the region: the photo.
        assert_eq!(out.get_pixel(3, 0), &Rgb([100, 100, 100]));
        // Class 1 outside the region: blended with VOC's dark red.
        let red = (0.45f32 * 100.0 + 0.55 * 128.0).round() as u8;
        let rest = (0.45f32 * 100.0).round() as u8;
        assert_eq!(out.get_pixel(0, 0), &Rgb([red, rest, rest]));
        // The region's border (its inside pixels next to the outside or the edge).
        assert_eq!(out.get_pixel(0, 1), &OUTLINE);
        assert_eq!(out.get_pixel(2, 2), &OUTLINE);
        // The region's one interior pixel keeps its class's colour.
        assert_eq!(out.get_pixel(1, 2), &Rgb([red, rest, rest]));
        let wrong = RgbImage::new(3, 4);
        let e = segmentation_overlay(&wrong, &logits, None).unwrap_err();
        assert!(e.to_string().contains("segmentation over the photo"), "{e}");
    }
}
