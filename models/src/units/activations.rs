//! A layer's feature maps on one image (the deepvis view): every channel's map as a tile, and
//! per-channel numbers (mean, max and where, fraction of positions active).

use candle_core::{DType, Tensor};
use image::RgbImage;
use serde::Serialize;

use super::array::HostArray;
use super::feature_layer::{feature_layer_in, FeatureLayer};
use super::tiles::{enlarged_tile, square_columns, to_byte, upscale_factor, TILE_GAP};
use crate::graph::{Graph, NodeId};
use crate::render::{grid, Colormap};
use crate::{Error, Result};

/// One channel's numbers on the image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelStats {
    /// The channel.
    pub channel: usize,
    /// Mean over positions.
    pub mean: f32,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Where the largest value is, (row, column); the first in row-major order on ties.
    pub argmax: (usize, usize),
    /// Fraction of positions with a value above zero.
    pub active_fraction: f32,
}

/// A layer's output on one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerActivations {
    /// The layer and its map size.
    pub layer: FeatureLayer,
    /// Per channel.
    pub channels: Vec<ChannelStats>,
    /// The maps, [C, H, W].
    pub maps: HostArray,
}

/// How the tiles of an activation grid are scaled to colours (`convlens_shared::choices`).
pub use convlens_shared::choices::ActivationScale;

/// The output of `layer` for `input` [1, C, H, W], with per-channel numbers computed on the
/// model's device.
pub fn layer_activations(graph: &Graph, input: &Tensor, layer: &str) -> Result<LayerActivations> {
    check_single_image(input)?;
    let id = graph.node_id(layer)?;
    let trace = graph.forward(input, Some(&[id]))?;
    layer_activations_from(graph, layer, |node| trace.get(node).cloned())
}

/// The numbers and maps of `layer` from its output on one image, which `output_of` gives (a
/// forward pass run elsewhere, such as the daemon's activation cache).
pub fn layer_activations_from(
    graph: &Graph,
    layer: &str,
    output_of: impl Fn(NodeId) -> Option<Tensor>,
) -> Result<LayerActivations> {
    let layer = feature_layer_in(graph, layer, &output_of)?;
    let output = output_of(layer.node)
        .ok_or_else(|| Error::InvalidArgument(format!("no output for `{}`", layer.name)))?
        .to_dtype(DType::F32)?;
    let (c, h, w) = (layer.channels, layer.height, layer.width);
    let maps = output.reshape((c, h, w))?;
    let flat = maps.reshape((c, h * w))?;
    let mean: Vec<f32> = flat.mean(1)?.to_vec1()?;
    let min: Vec<f32> = flat.min(1)?.to_vec1()?;
    let max: Vec<f32> = flat.max(1)?.to_vec1()?;
    let argmax: Vec<u32> = flat.argmax(1)?.to_vec1()?;
    let active: Vec<f32> = flat.gt(0f64)?.to_dtype(DType::F32)?.mean(1)?.to_vec1()?;
    let channels = (0..c)
        .map(|i| ChannelStats {
            channel: i,
            mean: mean[i],
            min: min[i],
            max: max[i],
            argmax: (argmax[i] as usize / w.max(1), argmax[i] as usize % w.max(1)),
            active_fraction: active[i],
        })
        .collect();
    Ok(LayerActivations {
        layer,
        channels,
        maps: HostArray::from_tensor(&maps)?,
    })
}

/// Refuses anything but one image [1, C, H, W].
pub(super) fn check_single_image(input: &Tensor) -> Result<()> {
    if input.rank() != 4 || input.dim(0)? != 1 {
        return Err(Error::Shape {
            what: "input".into(),
            expected: "[1, C, H, W]".into(),
            found: format!("{:?}", input.dims()),
        });
    }
    Ok(())
}

impl LayerActivations {
    /// The value range mapped onto the colormap for `channel`'s tile under `scale`.
    pub fn range(&self, scale: ActivationScale, channel: usize) -> (f32, f32) {
        match scale {
            ActivationScale::PerTile => self
                .channels
                .get(channel)
                .map_or((0.0, 0.0), |s| (s.min, s.max)),
            ActivationScale::Shared => self
                .channels
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
                    (lo.min(s.min), hi.max(s.max))
                }),
        }
    }

    /// Tiles per row of the grid (about square).
    pub fn grid_columns(&self) -> usize {
        square_columns(self.layer.channels)
    }

    /// Each map cell is drawn as a `factor`×`factor` block.
    pub fn grid_factor(&self) -> u32 {
        upscale_factor(self.layer.height, self.layer.width)
    }
}

/// `v` in the range (`lo`, `hi`) as a level in [0, 1] (0 when the range is empty).
pub fn range_level(v: f32, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Every channel's map as a tile, in channel order, coloured with `cmap` over the range
/// [`LayerActivations::range`] gives.
pub fn render_activation_grid(
    acts: &LayerActivations,
    scale: ActivationScale,
    cmap: Colormap,
) -> RgbImage {
    let (h, w) = (acts.layer.height, acts.layer.width);
    let factor = acts.grid_factor();
    let tiles: Vec<RgbImage> = (0..acts.layer.channels)
        .map(|c| {
            let (lo, hi) = acts.range(scale, c);
            enlarged_tile(h, w, factor, |y, x| {
                let v = acts.maps.data[(c * h + y) * w + x];
                crate::render::color(cmap, range_level(v, lo, hi)).map(to_byte)
            })
        })
        .collect();
    grid(&tiles, acts.grid_columns(), TILE_GAP)
}
