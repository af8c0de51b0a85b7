//! One relevance per input pixel from any map an explain method returns: an input-space
//! attribution [C, H, W] is summed over its channels (signed: a pixel that lowers the score is
//! least relevant), a map at a layer [h, w] is resized bilinearly to the input (half-pixel
//! centres, PyTorch's `align_corners=False`, as CAM overlays are).

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
