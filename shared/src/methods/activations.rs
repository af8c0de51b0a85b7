//! `unit/activations`: every channel's feature map of a layer on one image, with per-channel
//! numbers (`convlens activations`).

use serde::{Deserialize, Serialize};

use super::model::ModelId;
use super::request;
use crate::array::{Array, Png};
use crate::choices::{ActivationScale, Colormap};
use crate::defaults::activations as default;

request!(
    /// A layer's feature maps on one image and each channel's mean, min, max, argmax and
    /// fraction active.
    UnitActivations,
    "unit/activations",
    ActivationsParams,
    ActivationsResult
);

/// `unit/activations`' parameters: the `convlens activations` flags, with the same defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationsParams {
    /// The model.
    pub model_id: ModelId,
    /// The image (or preprocessed `.npy`), absolute path.
    pub image: String,
    /// The layer (a leaf path, or a module path standing for its output).
    pub layer: String,
    /// Whether to return the raw maps [C, H, W].
    #[serde(default = "yes")]
    pub maps: bool,
    /// Whether to return the grid of maps as a PNG (`convlens activations -o`).
    #[serde(default)]
    pub render: bool,
    /// The grid's scale.
    #[serde(default = "default_scale")]
    pub scale: ActivationScale,
    /// The grid's colormap.
    #[serde(default = "default_cmap")]
    pub cmap: Colormap,
}

impl ActivationsParams {
    /// The parameters `convlens activations MODEL IMAGE --layer LAYER` uses with no other flag
    /// (maps returned, no picture).
    pub fn new(
        model_id: impl Into<ModelId>,
        image: impl Into<String>,
        layer: impl Into<String>,
    ) -> Self {
        ActivationsParams {
            model_id: model_id.into(),
            image: image.into(),
            layer: layer.into(),
            maps: true,
            render: false,
            scale: default_scale(),
            cmap: default_cmap(),
        }
    }
}

fn yes() -> bool {
    true
}
fn default_scale() -> ActivationScale {
    default::SCALE
}
fn default_cmap() -> Colormap {
    default::CMAP
}

/// One channel's numbers on the image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelStats {
    /// The channel.
    pub channel: usize,
    /// Mean over positions.
    pub mean: f32,
    /// Smallest value.
    pub min: f32,
    /// Largest value.
    pub max: f32,
    /// Where the largest value is, [row, column]; the first in row-major order on ties.
    pub argmax: [usize; 2],
    /// Fraction of positions with a value above zero.
    pub active_fraction: f32,
}

/// `unit/activations`' result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivationsResult {
    /// The model version that answered.
    pub version: u64,
    /// The layer's resolved name (`layer2.1.relu#2` for the module path `layer2`).
    pub layer: String,
    /// [C, H, W].
    pub shape: [usize; 3],
    /// One per channel, in order.
    pub channels: Vec<ChannelStats>,
    /// The maps [C, H, W], when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps: Option<Array>,
    /// The grid of maps, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<Png>,
}
