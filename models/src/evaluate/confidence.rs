//! pytorch-grad-cam's `CamMultImageConfidenceChange`: the input multiplied by the map, scaled to
//! [0, 1] as its `scale_cam_image` scales it (minimum subtracted, divided by 1e-7 plus the
//! maximum, then resized bilinearly to the input), and the change in the class's probability,
//! after − before. A faithful map keeps what the model needs: a small drop, or a rise.
//!
//! A map at a layer [h, w] is scaled there and then resized, as pytorch-grad-cam does; an
//! input-space attribution [C, H, W] is summed over its channels first.

use candle_core::{DType, Tensor};

use super::causal::class_probabilities;

use crate::explain::resize::scale_cam;
use crate::{Error, Model, Result};

/// The map as a multiplier of the input [H, W], in [0, 1].
pub fn cam_multiplier(map: &Tensor, height: usize, width: usize) -> Result<Tensor> {
    let map = map.to_dtype(DType::F32)?;
    let plane = match map.dims() {
        [_, h, w] if (*h, *w) == (height, width) => map.sum(0)?,
        [_, _] => map,
        other => {
            return Err(Error::InvalidArgument(format!(
                "a map of shape {other:?} cannot multiply a {height}×{width} input (expected \
                 [C, {height}, {width}] or [h, w])"
            )))
        }
    };
    Ok(scale_cam(&plane, height, width)?)
}

/// The change in the probability of `class` when `input` [1, C, H, W] is multiplied by the
/// multiplier `cam` [H, W] (see [`cam_multiplier`]).
pub fn confidence_change(model: &Model, input: &Tensor, cam: &Tensor, class: usize) -> Result<f32> {
    let input = input.to_device(&model.device)?.to_dtype(DType::F32)?;
    let kept = input.broadcast_mul(&cam.to_device(&model.device)?)?;
    let both = Tensor::cat(&[&input, &kept], 0)?;
    let p = class_probabilities(&model.logits(&both)?, class)?;
    Ok((p[1] as f32) - (p[0] as f32))
}
