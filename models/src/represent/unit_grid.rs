//! The picture of units' top images: one row per unit, each image cropped (as the model sees it)
//! to the unit's receptive field around the position of its maximum, as deepvis shows them. The
//! field comes from [`crate::units::receptive_field`].

use candle_core::{DType, Tensor};
use image::{imageops, Rgb, RgbImage};

use super::top_units::TopUnits;
use crate::graph::{NodeId, Trace};
use crate::input::{open_image, Preprocess};
use crate::progress::Progress;
use crate::render::text::draw_text;
use crate::units::receptive_field;
use crate::{Model, Result};

/// Width of the label column on the left of each row.
const LABEL_WIDTH: u32 = 64;
/// Pixels between tiles.
const GAP: u32 = 2;

/// A rectangle of the model's input: rows `top..bottom`, columns `left..right`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InputRect {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// One past the last row.
    pub bottom: usize,
    /// One past the last column.
    pub right: usize,
}

/// The crop of one image to `rect` of the model's input (the image resized and centre-cropped as
/// the model sees it), resized to `tile`×`tile`; a grey tile when the image cannot be read.
pub fn field_crop(
    path: &std::path::Path,
    preprocess: &Preprocess,
    rect: InputRect,
    tile: u32,
) -> RgbImage {
    let Ok(image) = open_image(path) else {
        return RgbImage::from_pixel(tile, tile, Rgb([128, 128, 128]));
    };
    let seen = preprocess.crop_image(&image).to_rgb8();
    let bottom = rect.bottom.min(seen.height() as usize);
    let right = rect.right.min(seen.width() as usize);
    let top = rect.top.min(bottom.saturating_sub(1));
    let left = rect.left.min(right.saturating_sub(1));
    let crop = imageops::crop_imm(
        &seen,
        left as u32,
        top as u32,
        (right - left).max(1) as u32,
        (bottom - top).max(1) as u32,
    )
    .to_image();
    imageops::resize(&crop, tile, tile, imageops::FilterType::Triangle)
}

/// A forward pass of a blank input keeping every node, whose shapes give the receptive fields.
fn shape_trace(model: &Model, p: &Preprocess) -> Result<Trace> {
    let size = p.crop as usize;
    let x = Tensor::zeros(
        (1, p.normalization.channels, size, size),
        DType::F32,
        &model.device,
    )?;
    model.graph.forward(&x, None)
}

/// The input rectangle seen by `layer`'s unit at (`y`, `x`): its receptive field, or the whole
/// input (`size` pixels square) for a layer without space.
fn field_rect(
    model: &Model,
    trace: &Trace,
    layer: NodeId,
    size: usize,
    (y, x): (usize, usize),
) -> InputRect {
    match receptive_field(&model.graph, trace, layer, y, x) {
        Ok(f) => InputRect {
            top: f.top,
            left: f.left,
            bottom: f.bottom,
            right: f.right,
        },
        Err(_) => InputRect {
            top: 0,
            left: 0,
            bottom: size,
            right: size,
        },
    }
}

/// One row per unit of `top` (a ranking of node `layer`'s units), its images left to right, best
/// first, under a "unit N" label. Images are cropped as `preprocess` makes the model see them (the
/// preprocessing the ranking was computed with).
pub fn render_top_grid(
    model: &Model,
    preprocess: &Preprocess,
    layer: NodeId,
    top: &TopUnits,
    tile: u32,
    progress: &dyn Progress,
) -> Result<RgbImage> {
    let trace = shape_trace(model, preprocess)?;
    let size = preprocess.crop as usize;
    let k = top
        .units
        .iter()
        .map(|u| u.top.len())
        .max()
        .unwrap_or(0)
        .max(1) as u32;
    let rows = top.units.len().max(1) as u32;
    let width = LABEL_WIDTH + k * (tile + GAP) + GAP;
    let height = rows * (tile + GAP) + GAP;
    let mut img = RgbImage::from_pixel(width, height, Rgb([24, 24, 24]));
    for (r, unit) in top.units.iter().enumerate() {
        let y0 = GAP + r as u32 * (tile + GAP);
        draw_text(
            &mut img,
            4,
            i64::from(y0 + tile / 2) - 4,
            &format!("unit {}", unit.unit),
            [230, 230, 230],
            1,
        );
        for (c, entry) in unit.top.iter().enumerate() {
            let rect = field_rect(model, &trace, layer, size, (entry.y, entry.x));
            let crop = field_crop(&entry.path, preprocess, rect, tile);
            let x0 = LABEL_WIDTH + GAP + c as u32 * (tile + GAP);
            imageops::overlay(&mut img, &crop, x0.into(), y0.into());
        }
        progress.step(r + 1, top.units.len(), "drawing the top images")?;
    }
    Ok(img)
}
