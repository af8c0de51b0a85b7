//! The `cam` view: a class activation map (Grad-CAM by default) of the image for one fixed
//! class, in one checkpoint, over the photo.

use candle_core::{DType, Tensor};
use image::RgbImage;

use crate::explain::{explain_with_progress, ExplainOptions, Explanation};
use crate::progress::Progress;
use crate::render::{attribution_magnitude, cam_heat, overlay, Colormap};
use crate::{Model, Result};

/// How strongly the heat map covers the photo.
const OVERLAY_ALPHA: f32 = 0.5;

/// The explanation of `input` [1, C, H, W] by `model` with `options` (method, class, layer).
pub fn checkpoint_explanation(
    model: &Model,
    input: &Tensor,
    options: &ExplainOptions,
    progress: &dyn Progress,
) -> Result<Explanation> {
    explain_with_progress(model, input, options, progress)
}

/// The view's number for one checkpoint: the raw map's maximum (a CAM's at the layer, before
/// upsampling and scaling; max |Σ_c map| for a map in input space).
pub fn map_max(explanation: &Explanation) -> Result<f32> {
    let map = explanation.map.to_dtype(DType::F32)?;
    // A CAM is [h, w] at the layer; guided Grad-CAM and the attributions are [C, H, W].
    let map = if map.rank() == 3 {
        map.sum(0)?.abs()?
    } else {
        map
    };
    Ok(map.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

/// The map over `photo`, scaled as `convlens explain` draws it: a CAM upsampled and min–max
/// scaled (pytorch-grad-cam), an attribution by Captum's 98 % rule. Each frame is scaled on its
/// own: a CAM's scale is arbitrary, so the frames compare where the class evidence is, and
/// [`map_max`] carries its size.
pub fn render_explanation(
    explanation: &Explanation,
    photo: &RgbImage,
    cmap: Colormap,
) -> Result<RgbImage> {
    let (w, h) = photo.dimensions();
    let heat = if explanation.map.rank() == 2 {
        cam_heat(&explanation.map, h as usize, w as usize)?
    } else {
        attribution_magnitude(&explanation.map)?
    };
    Ok(overlay(photo, &heat, cmap, OVERLAY_ALPHA))
}
