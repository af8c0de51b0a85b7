//! Turning maps into pictures: matplotlib's colormaps, Captum's attribution scaling, CAM
//! upsampling, blending over the photo, a segmentation's classes, tile grids.

mod colormap_tables;
pub mod curves;
pub mod figure;
pub mod segmentation;
pub mod text;

pub use figure::{figure, ColorBar};

use candle_core::{DType, Device, Tensor};
use image::{Rgb, RgbImage};

use crate::explain::resize::scale_cam;
use crate::Result;

/// A colormap, as matplotlib names it (`convlens_shared::choices`).
pub use convlens_shared::choices::Colormap;

/// The 256-entry table of `cmap`.
fn table(cmap: Colormap) -> &'static [[f32; 3]; 256] {
    match cmap {
        Colormap::Viridis => &colormap_tables::VIRIDIS,
        Colormap::Inferno => &colormap_tables::INFERNO,
        Colormap::Jet => &colormap_tables::JET,
        Colormap::Gray => &colormap_tables::GRAY,
    }
}

/// The colour of `v` in [0, 1] in `cmap`, as matplotlib's `cmap(v)` with 256 entries.
pub fn color(cmap: Colormap, v: f32) -> [f32; 3] {
    let index = if v.is_nan() {
        0
    } else {
        ((v.clamp(0.0, 1.0)) * 256.0).min(255.0) as usize
    };
    table(cmap)[index]
}

/// The value of `heat` at pixel (`x`, `y`); 0 outside it.
fn heat_at(heat: &[Vec<f32>], x: u32, y: u32) -> f32 {
    heat.get(y as usize)
        .and_then(|r| r.get(x as usize))
        .copied()
        .unwrap_or(0.0)
}

/// An attribution's `heat` (values in [0, 1]) over `photo` drawn in gray, each pixel's colour
/// weighted by `alpha` times its value: where the attribution is zero the photo shows as it is
/// (in gray, as Captum's blended heat map draws it under the map), so the speckles of a gradient
/// map mark the object instead of tinting the whole picture.
pub fn attribution_overlay(
    photo: &RgbImage,
    heat: &[Vec<f32>],
    cmap: Colormap,
    alpha: f32,
) -> RgbImage {
    let (w, h) = photo.dimensions();
    let mut out = RgbImage::new(w, h);
    for (x, y, p) in out.enumerate_pixels_mut() {
        let v = heat_at(heat, x, y).clamp(0.0, 1.0);
        let c = color(cmap, v);
        let [r, g, b] = photo.get_pixel(x, y).0.map(f32::from);
        let gray = 0.299 * r + 0.587 * g + 0.114 * b;
        let weight = (alpha * v).clamp(0.0, 1.0);
        *p = Rgb(c.map(|c| {
            (weight * c * 255.0 + (1.0 - weight) * gray)
                .round()
                .clamp(0.0, 255.0) as u8
        }));
    }
    out
}

/// Captum's `visualize_image_attr(sign="absolute_value")` scaling of an attribution [C, H, W]:
/// |Σ_c attr|, divided by the value where the sorted cumulative sum reaches 98 %, clipped to 1.
pub fn attribution_magnitude(attr: &Tensor) -> Result<Vec<Vec<f32>>> {
    let attr = attr.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let combined = if attr.rank() == 3 { attr.sum(0)? } else { attr };
    let rows = combined.abs()?.to_vec2::<f32>()?;
    let mut sorted: Vec<f32> = rows.iter().flatten().copied().collect();
    sorted.sort_by(f32::total_cmp);
    let total: f64 = sorted.iter().map(|&v| f64::from(v)).sum();
    let mut running = 0f64;
    let mut threshold = sorted.last().copied().unwrap_or(1.0);
    for &v in &sorted {
        running += f64::from(v);
        if running >= total * 0.98 {
            threshold = v;
            break;
        }
    }
    let threshold = if threshold > 0.0 { threshold } else { 1.0 };
    Ok(rows
        .into_iter()
        .map(|r| r.into_iter().map(|v| (v / threshold).min(1.0)).collect())
        .collect())
}

/// A CAM [h, w] upsampled to `h`×`w` and min–max scaled as pytorch-grad-cam shows it.
pub fn cam_heat(cam: &Tensor, h: usize, w: usize) -> Result<Vec<Vec<f32>>> {
    let scaled = scale_cam(&cam.to_dtype(DType::F32)?, h, w)?;
    Ok(scaled.to_device(&Device::Cpu)?.to_vec2::<f32>()?)
}

/// `heat` (values in [0, 1]) coloured with `cmap` and blended over `photo` with weight `alpha`.
pub fn overlay(photo: &RgbImage, heat: &[Vec<f32>], cmap: Colormap, alpha: f32) -> RgbImage {
    let (w, h) = photo.dimensions();
    let mut out = RgbImage::new(w, h);
    for (x, y, p) in out.enumerate_pixels_mut() {
        let v = heat_at(heat, x, y);
        let c = color(cmap, v);
        let base = photo.get_pixel(x, y).0;
        let mut px = [0u8; 3];
        for i in 0..3 {
            let blended = alpha * c[i] * 255.0 + (1.0 - alpha) * f32::from(base[i]);
            px[i] = blended.round().clamp(0.0, 255.0) as u8;
        }
        *p = Rgb(px);
    }
    out
}

/// `tiles` (equal sizes) laid out in a grid `columns` wide with a `gap`-pixel dark border.
pub fn grid(tiles: &[RgbImage], columns: usize, gap: u32) -> RgbImage {
    let Some(first) = tiles.first() else {
        return RgbImage::new(1, 1);
    };
    let (tw, th) = first.dimensions();
    let columns = columns.max(1);
    let rows = tiles.len().div_ceil(columns);
    let width = columns as u32 * (tw + gap) + gap;
    let height = rows as u32 * (th + gap) + gap;
    let mut out = RgbImage::from_pixel(width, height, Rgb([24, 24, 24]));
    for (i, tile) in tiles.iter().enumerate() {
        let x0 = gap + (i % columns) as u32 * (tw + gap);
        let y0 = gap + (i / columns) as u32 * (th + gap);
        image::imageops::overlay(&mut out, tile, i64::from(x0), i64::from(y0));
    }
    out
}

/// The photo a model input [1, C, H, W] shows, undoing the normalization.
pub fn input_photo(input: &Tensor, mean: [f32; 3], std: [f32; 3]) -> Result<RgbImage> {
    let x = input
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .squeeze(0)?;
    let (c, h, w) = x.dims3()?;
    let data = x.flatten_all()?.to_vec1::<f32>()?;
    let plane = h * w;
    let mut img = RgbImage::new(w as u32, h as u32);
    for (i, p) in img.pixels_mut().enumerate() {
        let mut px = [0u8; 3];
        for (ch, slot) in px.iter_mut().enumerate() {
            let src = if c == 1 { 0 } else { ch };
            let v = data[src * plane + i] * std[src] + mean[src];
            *slot = (v * 255.0).round().clamp(0.0, 255.0) as u8;
        }
        *p = Rgb(px);
    }
    Ok(img)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attribution_leaves_the_photo_gray_where_it_is_zero() {
        let photo = RgbImage::from_pixel(2, 1, Rgb([200, 100, 50]));
        let heat = vec![vec![0.0, 1.0]];
        let out = attribution_overlay(&photo, &heat, Colormap::Viridis, 1.0);
        let gray = (0.299f32 * 200.0 + 0.587 * 100.0 + 0.114 * 50.0).round() as u8;
        assert_eq!(out.get_pixel(0, 0).0, [gray; 3]);
        let top = color(Colormap::Viridis, 1.0).map(|c| (c * 255.0).round() as u8);
        assert_eq!(out.get_pixel(1, 0).0, top);
    }

    #[test]
    fn colormap_ends_are_matplotlibs() {
        // matplotlib: viridis(0) = (0.267004, 0.004874, 0.329415), viridis(1.0) = (0.993248, 0.906157, 0.143936)
        assert_eq!(
            color(Colormap::Viridis, 0.0),
            [0.267004, 0.004874, 0.329415]
        );
        assert_eq!(
            color(Colormap::Viridis, 1.0),
            [0.993248, 0.906157, 0.143936]
        );
        assert_eq!(color(Colormap::Gray, 1.0), [1.0, 1.0, 1.0]);
    }

    #[test]
    fn magnitude_clips_the_top_two_percent() {
        let mut v = vec![1f32; 100];
        v[0] = 1000.0;
        let t = Tensor::from_vec(v, (1, 10, 10), &Device::Cpu).unwrap();
        let m = attribution_magnitude(&t).unwrap();
        assert_eq!(m[0][0], 1.0);
        assert!(
            m[5][5] < 0.01,
            "an outlier holding over 2% of the mass sets the scale"
        );
    }
}
