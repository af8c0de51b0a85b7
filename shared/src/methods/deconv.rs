//! `unit/deconv`: Zeiler & Fergus' deconvnet reconstructions of units of a layer on one image,
//! or their guided-backprop or gradient projections (`convlens deconv`).

use serde::{Deserialize, Serialize};

use super::model::ModelId;
use super::progress::ProgressToken;
use super::request;
use crate::array::{Array, Png};
use crate::choices::{BackwardRule, UnitPosition};

request!(
    /// Projects units of a layer down to pixels, with the receptive field each kept position sees.
    UnitDeconv,
    "unit/deconv",
    DeconvParams,
    DeconvResult
);

/// `unit/deconv`'s parameters: the `convlens deconv` flags, with the same defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeconvParams {
    /// The model.
    pub model_id: ModelId,
    /// The image (or preprocessed `.npy`), absolute path.
    pub image: String,
    /// The layer (a leaf path, or a module path standing for its output).
    pub layer: String,
    /// The units (channels); exactly one of `units` and `top` is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<usize>,
    /// Instead of `units`: the K units with the largest activation on this image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<usize>,
    /// Which of the unit's activations are kept.
    #[serde(default = "default_position")]
    pub position: UnitPosition,
    /// The rule sending the signal back.
    #[serde(default = "default_rule")]
    pub rule: BackwardRule,
    /// Whether to return each unit's signal at the input [C, H, W].
    #[serde(default = "yes")]
    pub signals: bool,
    /// Whether to return the picture (photo and reconstruction side by side, per unit).
    #[serde(default)]
    pub render: bool,
    /// Side in pixels of the square each receptive-field crop is fitted into.
    #[serde(default = "default_tile")]
    pub tile: u32,
    /// Where to send `$/progress` (a step per unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_done_token: Option<ProgressToken>,
}

impl DeconvParams {
    /// The parameters of `convlens deconv MODEL IMAGE --layer LAYER --unit U,...`.
    pub fn new(
        model_id: impl Into<ModelId>,
        image: impl Into<String>,
        layer: impl Into<String>,
        units: Vec<usize>,
    ) -> Self {
        DeconvParams {
            model_id: model_id.into(),
            image: image.into(),
            layer: layer.into(),
            units,
            top: None,
            position: default_position(),
            rule: default_rule(),
            signals: true,
            render: false,
            tile: default_tile(),
            work_done_token: None,
        }
    }
}

fn default_position() -> UnitPosition {
    crate::defaults::deconv::POSITION
}
fn default_rule() -> BackwardRule {
    crate::defaults::deconv::RULE
}
fn default_tile() -> u32 {
    crate::defaults::deconv::TILE
}
fn yes() -> bool {
    true
}

/// The input rectangle a kept position sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceptiveField {
    /// First row inside the image.
    pub top: usize,
    /// First column inside the image.
    pub left: usize,
    /// One past the last row inside the image.
    pub bottom: usize,
    /// One past the last column inside the image.
    pub right: usize,
    /// [height, width] before clipping to the image (padding included).
    pub size: [usize; 2],
}

/// One unit's projection down to pixels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconstructionData {
    /// The layer's node name.
    pub layer: String,
    /// The unit (channel).
    pub unit: usize,
    /// max or all.
    pub position: String,
    /// The backward rule.
    pub rule: String,
    /// The kept position [row, column] of the layer's map, for `max`.
    pub location: Option<[usize; 2]>,
    /// The kept activation (the map's largest value for `all`).
    pub activation: f32,
    /// The input rectangle the kept position sees, for `max`.
    pub receptive_field: Option<ReceptiveField>,
    /// The signal at the input [C, H, W] (unnormalized), when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Array>,
}

/// `unit/deconv`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeconvResult {
    /// The model version that answered.
    pub version: u64,
    /// One per unit, in the order asked (strongest first for `top`).
    pub reconstructions: Vec<ReconstructionData>,
    /// The picture, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<Png>,
}
