//! The `unit` view: one channel's activation map at a layer on the image, in one checkpoint,
//! drawn on a value range shared by every checkpoint.

use candle_core::Tensor;
use image::{ImageBuffer, Rgb, RgbImage};
use serde::Serialize;

use crate::graph::Graph;
use crate::render::Colormap;
use crate::units::{layer_activations, range_level, upscale_factor};
use crate::Result;

/// A unit's map on the image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct UnitMap {
    /// The layer, as the graph names it.
    pub layer: String,
    /// The channel.
    pub unit: usize,
    /// Map height.
    pub height: usize,
    /// Map width.
    pub width: usize,
    /// The values, row-major.
    pub values: Vec<f32>,
}

impl UnitMap {
    /// The largest value (the view's number for one checkpoint).
    pub fn max(&self) -> f32 {
        self.values
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max)
    }

    /// The smallest value.
    pub fn min(&self) -> f32 {
        self.values.iter().copied().fold(f32::INFINITY, f32::min)
    }
}

/// Channel `unit` of `layer`'s output for `input` [1, C, H, W] (computed on the model's
/// device by `units::layer_activations`); an error names the layer's range when `unit` is
/// past it.
pub fn unit_map(graph: &Graph, input: &Tensor, layer: &str, unit: usize) -> Result<UnitMap> {
    let acts = layer_activations(graph, input, layer)?;
    let unit = acts.layer.check_unit(unit)?;
    let (h, w) = (acts.layer.height, acts.layer.width);
    let values = acts
        .maps
        .data
        .get(unit * h * w..(unit + 1) * h * w)
        .map(<[f32]>::to_vec)
        .unwrap_or_default();
    Ok(UnitMap {
        layer: acts.layer.name,
        unit,
        height: h,
        width: w,
        values,
    })
}

/// The map coloured with `cmap` over (`lo`, `hi`) — the range shared by every checkpoint —
/// each cell enlarged to a block.
pub fn render_unit_map(map: &UnitMap, lo: f32, hi: f32, cmap: Colormap) -> RgbImage {
    let factor = upscale_factor(map.height, map.width).max(1);
    ImageBuffer::from_fn(
        map.width as u32 * factor,
        map.height as u32 * factor,
        |px, py| {
            let (y, x) = ((py / factor) as usize, (px / factor) as usize);
            let v = map.values.get(y * map.width + x).copied().unwrap_or(lo);
            Rgb(crate::render::color(cmap, range_level(v, lo, hi))
                .map(|c| (c * 255.0).round().clamp(0.0, 255.0) as u8))
        },
    )
}
