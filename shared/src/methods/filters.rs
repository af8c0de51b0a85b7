//! `layer/filters`: a convolution's kernels with their norms and dead filters
//! (`convlens filters`).

use serde::{Deserialize, Serialize};

use super::model::ModelId;
use super::request;
use crate::array::{Array, Png};

request!(
    /// A convolution's kernels, each filter's numbers and the layer's summary.
    LayerFilters,
    "layer/filters",
    FiltersParams,
    FiltersResult
);

/// `layer/filters`' parameters: the `convlens filters` flags, with the same defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiltersParams {
    /// The model.
    pub model_id: ModelId,
    /// The Conv2d layer (default: the first convolution).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// A filter is dead when its norm is at most this fraction of the layer's median norm.
    #[serde(default = "default_dead_ratio")]
    pub dead_ratio: f32,
    /// Whether to return the kernel [out, in/groups, kh, kw].
    #[serde(default = "yes")]
    pub weights: bool,
    /// Whether to return the grid of kernels as a PNG (`convlens filters -o`).
    #[serde(default)]
    pub render: bool,
    /// Filters drawn (the first ones; the statistics cover all).
    #[serde(default = "default_max_filters")]
    pub max_filters: usize,
    /// Input channels drawn per filter of a deeper layer (the first ones).
    #[serde(default = "default_max_inputs")]
    pub max_inputs: usize,
}

impl FiltersParams {
    /// The parameters of `convlens filters MODEL` with no flag (the kernel returned, no picture).
    pub fn new(model_id: impl Into<ModelId>, layer: Option<String>) -> Self {
        FiltersParams {
            model_id: model_id.into(),
            layer,
            dead_ratio: default_dead_ratio(),
            weights: true,
            render: false,
            max_filters: default_max_filters(),
            max_inputs: default_max_inputs(),
        }
    }
}

fn default_dead_ratio() -> f32 {
    crate::defaults::filters::DEAD_RATIO
}
fn yes() -> bool {
    true
}
fn default_max_filters() -> usize {
    crate::defaults::filters::MAX_FILTERS
}
fn default_max_inputs() -> usize {
    crate::defaults::filters::MAX_INPUTS
}

/// One filter's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KernelStats {
    /// Output channel.
    pub filter: usize,
    /// √Σw².
    pub l2_norm: f32,
    /// Mean weight.
    pub mean: f32,
    /// Smallest weight.
    pub min: f32,
    /// Largest weight.
    pub max: f32,
    /// `l2Norm` scaled by the BatchNorm that alone reads the convolution, if any.
    pub effective_norm: Option<f32>,
    /// Whether the filter is dead.
    pub dead: bool,
}

/// The layer's summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterStats {
    /// Smallest filter norm (effective norm when a BatchNorm follows).
    pub norm_min: f32,
    /// Median filter norm.
    pub norm_median: f32,
    /// Mean filter norm.
    pub norm_mean: f32,
    /// Largest filter norm.
    pub norm_max: f32,
    /// The dead ratio used.
    pub dead_ratio: f32,
    /// The dead filters.
    pub dead: Vec<usize>,
    /// Whether the norms are the BatchNorm-scaled effective norms.
    pub batch_norm_scaled: bool,
}

/// `layer/filters`' result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FiltersResult {
    /// The model version that answered.
    pub version: u64,
    /// The layer.
    pub layer: String,
    /// Output channels.
    pub out_channels: usize,
    /// Input channels (all groups).
    pub in_channels: usize,
    /// Groups.
    pub groups: usize,
    /// [kh, kw].
    pub kernel_size: [usize; 2],
    /// Stride.
    pub stride: usize,
    /// Dilation.
    pub dilation: usize,
    /// Padding, as `[top, bottom, left, right]` or `same`.
    pub padding: String,
    /// Whether the kernels are drawn as RGB tiles.
    pub rgb: bool,
    /// The layer's summary.
    pub stats: FilterStats,
    /// Every filter's numbers.
    pub filters: Vec<KernelStats>,
    /// The kernel, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Array>,
    /// The grid of kernels, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<Png>,
}
