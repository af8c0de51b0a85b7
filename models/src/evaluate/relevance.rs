//! One relevance per input pixel from any map an explain method returns: an input-space
//! attribution [C, H, W] is summed over its channels (signed: a pixel that lowers the score is
//! least relevant), a map at a layer [h, w] is resized bilinearly to the input (half-pixel
//! centres, PyTorch's `align_corners=False`, as CAM overlays are). And a map as an attribution
//! of every input value, for the metrics that multiply the map by a perturbation.

use candle_core::{DType, Tensor};

use crate::explain::resize::resize_bilinear;
use crate::{Error, Result};

/// The relevance [H, W] of each pixel of an input `height`×`width` under `map`.
pub fn pixel_relevance(map: &Tensor, height: usize, width: usize) -> Result<Tensor> {
    let map = map.to_dtype(DType::F32)?;
    match map.dims() {
        [_, h, w] if (*h, *w) == (height, width) => Ok(map.sum(0)?),
        [h, w] if (*h, *w) == (height, width) => Ok(map),
        [_, _] => Ok(resize_bilinear(&map, height, width, false)?),
        other => Err(Error::InvalidArgument(format!(
            "a map of shape {other:?} gives no relevance per pixel of a {height}×{width} input \
             (expected [C, {height}, {width}] or [h, w])"
        ))),
    }
}

/// `map` as an attribution shaped as the input [C, H, W]: an input-space map as it is, a map at
/// a layer [h, w] resized bilinearly (`align_corners=False`) and given to every channel.
pub fn input_attribution(
    map: &Tensor,
    channels: usize,
    height: usize,
    width: usize,
) -> Result<Tensor> {
    let map = map.to_dtype(DType::F32)?;
    match map.dims() {
        [c, h, w] if (*c, *h, *w) == (channels, height, width) => Ok(map),
        [_, _] => Ok(resize_bilinear(&map, height, width, false)?
            .unsqueeze(0)?
            .broadcast_as((channels, height, width))?
            .contiguous()?),
        other => Err(Error::InvalidArgument(format!(
            "a map of shape {other:?} is no attribution of a [{channels}, {height}, {width}] input"
        ))),
    }
}
