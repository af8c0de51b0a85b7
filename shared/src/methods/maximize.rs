//! `unit/maximize`: activation maximization, an input synthesized to drive a class logit, a
//! channel or one neuron as high as possible (`convlens maximize`).

use serde::{Deserialize, Serialize};

use super::model::ModelId;
use super::predict::ClassScore;
use super::progress::ProgressToken;
use super::request;
use crate::array::{Array, Png};
use crate::choices::Preset;
use crate::defaults::maximize as default;

request!(
    /// Synthesizes the images that maximize a class, a channel or a neuron: a sweep, with a
    /// step of `$/progress` per optimization step, cancellable.
    UnitMaximize,
    "unit/maximize",
    MaximizeParams,
    MaximizeResult
);

/// `unit/maximize`'s parameters: the `convlens maximize` flags, with the same defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaximizeParams {
    /// The model.
    pub model_id: ModelId,
    /// Maximize the logit of this class (or give `layer` and `unit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<usize>,
    /// Maximize a channel of this layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// The channel of `layer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<usize>,
    /// Maximize the channel's centre neuron instead of its mean.
    #[serde(default)]
    pub neuron: bool,
    /// The preset.
    #[serde(default = "default_preset")]
    pub preset: Preset,
    /// Optimization steps (default: the preset's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Seed of the starting image and the random transforms: same seed, same image.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Image side in pixels (default: the model's input size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<usize>,
    /// How many images to optimize at once, pushed apart by the diversity term.
    #[serde(default = "one")]
    pub diversity: usize,
    /// Weight of the diversity term.
    #[serde(default = "default_diversity_weight")]
    pub diversity_weight: f64,
    /// Layer of the diversity term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diversity_layer: Option<String>,
    /// Keep the images every this many steps (and the last), returned as `frames`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_every: Option<usize>,
    /// Whether the kept frames come as PNGs (`pictures`, 8-bit, a fraction of the bytes)
    /// instead of float arrays (`images`).
    #[serde(default)]
    pub frame_pictures: bool,
    /// Whether to return each image as a PNG.
    #[serde(default = "yes")]
    pub render: bool,
    /// Whether those PNGs are display copies as the deep-visualization-toolbox shows its
    /// results: the deviation from the mean image stretched to the full range around mid-gray
    /// (the pixel presets stay within a few levels of the mean). `top` is of the image itself.
    #[serde(default)]
    pub stretch: bool,
    /// Whether to return the network's input for the images (normalized) [N, C, S, S].
    #[serde(default)]
    pub inputs: bool,
    /// How many of the model's top classes to return for each final image as saved (8-bit);
    /// 0 for none.
    #[serde(default = "default_top")]
    pub top: usize,
    /// Where to send `$/progress` (a step per optimization step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_done_token: Option<ProgressToken>,
}

impl MaximizeParams {
    /// The parameters of `convlens maximize MODEL --class CLASS` with no other flag.
    pub fn class(model_id: impl Into<ModelId>, class: usize) -> Self {
        MaximizeParams {
            model_id: model_id.into(),
            class: Some(class),
            layer: None,
            unit: None,
            neuron: false,
            preset: default_preset(),
            steps: None,
            seed: default::SEED,
            size: None,
            diversity: 1,
            diversity_weight: default_diversity_weight(),
            diversity_layer: None,
            frame_every: None,
            frame_pictures: false,
            render: true,
            stretch: false,
            inputs: false,
            top: default_top(),
            work_done_token: None,
        }
    }

    /// The parameters of `convlens maximize MODEL --layer LAYER --unit UNIT`.
    pub fn channel(model_id: impl Into<ModelId>, layer: impl Into<String>, unit: usize) -> Self {
        MaximizeParams {
            class: None,
            layer: Some(layer.into()),
            unit: Some(unit),
            ..MaximizeParams::class(model_id, 0)
        }
    }
}

fn default_preset() -> Preset {
    default::PRESET
}
fn default_seed() -> u64 {
    default::SEED
}
fn one() -> usize {
    default::DIVERSITY
}
fn default_diversity_weight() -> f64 {
    default::DIVERSITY_WEIGHT
}
fn yes() -> bool {
    true
}
/// The classes `convlens maximize` reports for each image.
fn default_top() -> usize {
    default::TOP
}

/// The images at one step of the optimization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameData {
    /// The step (0 is the starting image).
    pub step: usize,
    /// The images in [0, 1], [N, C, S, S] (absent with `framePictures`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Array>,
    /// Each image as a PNG, with `framePictures`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pictures: Vec<Png>,
}

/// `unit/maximize`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaximizeResult {
    /// The model version that answered.
    pub version: u64,
    /// The objective (`class 207`, `channel layer3:5`, `neuron layer3:5`).
    pub objective: String,
    /// The class's name, for a class objective.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The layer it was read at.
    pub layer: String,
    /// The preset.
    pub preset: Preset,
    /// Steps taken.
    pub steps: usize,
    /// The images in [0, 1], [N, C, S, S].
    pub images: Array,
    /// Each image as a PNG, when asked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pictures: Vec<Png>,
    /// The network's input for the images, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<Array>,
    /// The model's top classes for each image as saved (8-bit), `top` of them:
    /// `top[image][rank]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<Vec<ClassScore>>,
    /// The objective of each starting image.
    pub start_values: Vec<f32>,
    /// The objective of each final image.
    pub final_values: Vec<f32>,
    /// The objective of each image at each step, as the optimizer saw it: `history[step][image]`.
    pub history: Vec<Vec<f32>>,
    /// The batch's Gram similarity at each step, when the diversity term is on.
    #[serde(default)]
    pub similarity: Vec<f32>,
    /// The kept frames, when `frameEvery` was given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<FrameData>,
}
