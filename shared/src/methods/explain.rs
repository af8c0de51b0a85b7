//! `image/explain`: attribution maps and class activation maps (`convlens explain`).

use serde::{Deserialize, Serialize};

use super::model::ModelId;
use super::progress::ProgressToken;
use super::request;
use crate::array::{Array, Png};
use crate::choices::{Baseline, Colormap, Method, MethodSelection};
use crate::defaults::explain as default;
use crate::region::RegionSpec;
use crate::target::TargetSpec;

request!(
    /// Explains the model's prediction on one image by one method (or `all`).
    ImageExplain,
    "image/explain",
    ExplainParams,
    ExplainResult
);

/// `image/explain`'s parameters: the `convlens explain` flags, with the same defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainParams {
    /// The model.
    pub model_id: ModelId,
    /// The image (or preprocessed `.npy`), absolute path.
    pub image: String,
    /// The method, or `all` ([`MethodSelection`]).
    #[serde(default = "default_method")]
    pub method: MethodSelection,
    /// Layer for the CAM family (default: the last spatial layer before the head).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Class to explain (default: the top-1 prediction): an index (a number), or text naming a
    /// class by index or label, or several joined by `+` whose logits are summed (`"281+282"`,
    /// `"tabby+tiger cat"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetSpec>,
    /// On a segmentation model (a dense output [N, classes, H, W]): where the class is summed,
    /// `[x0, y0, x1, y1]` (ends exclusive) or a mask image's path; the pixels the model assigns
    /// to the class when absent. Refused on a classification model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<RegionSpec>,
    /// Instead of a class: the cosine similarity of the image's code to this reference image's
    /// (a path), pytorch-grad-cam's SimilarityToConceptTarget; refused with `target` or
    /// `region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_image: Option<String>,
    /// The layer whose codes `target_image` compares (flattened); the pooled code before the
    /// classifier when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_layer: Option<String>,
    /// SmoothGrad and GradientShap samples; DeepLiftShap and GradientShap's noise baselines.
    #[serde(default = "default_samples")]
    pub samples: usize,
    /// SmoothGrad noise as a fraction of the input's range.
    #[serde(default = "default_noise")]
    pub noise: f64,
    /// Seed for SmoothGrad's noise.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Integrated Gradients steps.
    #[serde(default = "default_steps")]
    pub steps: usize,
    /// Baseline of Integrated Gradients and DeepLift (the Shapley methods: its distribution).
    #[serde(default = "default_baseline")]
    pub baseline: Baseline,
    /// Occlusion window (pixels, square).
    #[serde(default = "default_window")]
    pub window: usize,
    /// Occlusion stride.
    #[serde(default = "default_stride")]
    pub stride: usize,
    /// Inputs per batch for IG steps, occluded copies and CAM masks.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// CAMs: project the weighted activations on their first principal component instead of
    /// summing them over the channels (pytorch-grad-cam's `eigen_smooth`).
    #[serde(default = "default_eigen_smooth")]
    pub eigen_smooth: bool,
    /// CAMs: the mean of the CAMs of six flipped and scaled copies of the input, [H, W] at its
    /// resolution in [0, 1] (pytorch-grad-cam's `aug_smooth`).
    #[serde(default = "default_aug_smooth")]
    pub aug_smooth: bool,
    /// RISE's masks.
    #[serde(default = "default_rise_masks")]
    pub rise_masks: usize,
    /// RISE's grid: cells per side.
    #[serde(default = "default_rise_cells")]
    pub rise_cells: usize,
    /// RISE's probability of keeping a cell.
    #[serde(default = "default_rise_keep")]
    pub rise_keep: f64,
    /// Colormap of the overlays.
    #[serde(default = "default_cmap")]
    pub cmap: Colormap,
    /// Weight of the heat map over the photo.
    #[serde(default = "default_alpha")]
    pub alpha: f32,
    /// Whether to return each raw map.
    #[serde(default = "yes")]
    pub map: bool,
    /// Whether to return each overlay and the photo as PNGs.
    #[serde(default = "yes")]
    pub render: bool,
    /// Where to send `$/progress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_done_token: Option<ProgressToken>,
    /// Where to send partial results (LSP's `partialResultToken`): with several methods, a
    /// `$/progress` whose `value` is an [`ExplainResult`] holding each method's explanation (or
    /// its skip) as it is done, cheap methods first, and the photo with the first one. The final
    /// result still holds them all, in display order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial_result_token: Option<ProgressToken>,
}

impl ExplainParams {
    /// The parameters `convlens explain MODEL IMAGE` uses when given no flag.
    pub fn new(model_id: impl Into<ModelId>, image: impl Into<String>) -> Self {
        ExplainParams {
            model_id: model_id.into(),
            image: image.into(),
            method: default_method(),
            layer: None,
            target: None,
            region: None,
            target_image: None,
            target_layer: None,
            samples: default_samples(),
            noise: default_noise(),
            seed: default::SEED,
            steps: default_steps(),
            baseline: default_baseline(),
            window: default_window(),
            stride: default_stride(),
            batch: default_batch(),
            eigen_smooth: default_eigen_smooth(),
            aug_smooth: default_aug_smooth(),
            rise_masks: default_rise_masks(),
            rise_cells: default_rise_cells(),
            rise_keep: default_rise_keep(),
            cmap: default_cmap(),
            alpha: default_alpha(),
            map: true,
            render: true,
            work_done_token: None,
            partial_result_token: None,
        }
    }
}

fn default_method() -> MethodSelection {
    MethodSelection::One(default::METHOD)
}
fn default_seed() -> u64 {
    default::SEED
}
fn default_samples() -> usize {
    default::SAMPLES
}
fn default_noise() -> f64 {
    default::NOISE
}
fn default_steps() -> usize {
    default::STEPS
}
fn default_baseline() -> Baseline {
    default::BASELINE
}
fn default_window() -> usize {
    default::WINDOW
}
fn default_stride() -> usize {
    default::STRIDE
}
fn default_batch() -> usize {
    default::BATCH
}
fn default_eigen_smooth() -> bool {
    default::EIGEN_SMOOTH
}
fn default_aug_smooth() -> bool {
    default::AUG_SMOOTH
}
fn default_rise_masks() -> usize {
    default::RISE_MASKS
}
fn default_rise_cells() -> usize {
    default::RISE_CELLS
}
fn default_rise_keep() -> f64 {
    default::RISE_KEEP
}
fn default_cmap() -> Colormap {
    default::CMAP
}
fn default_alpha() -> f32 {
    default::ALPHA
}
fn yes() -> bool {
    true
}

/// One method's explanation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplanationData {
    /// The method.
    pub method: Method,
    /// The class explained (the first, when several are summed).
    pub class: usize,
    /// Every class whose logit is summed, when more than one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<usize>,
    /// Its name (the classes' joined by ` + `).
    pub label: Option<String>,
    /// The model's logit for it (the sum of the classes').
    pub logit: f32,
    /// Its probability (the softmax of the logits at the class), as `image/predict`'s `prob`
    /// (the sum of the classes').
    #[serde(default)]
    pub prob: f32,
    /// The layer a CAM was computed at.
    pub layer: Option<String>,
    /// The raw map's shape ([C, H, W] in input space, [h, w] at the layer).
    pub shape: Vec<usize>,
    /// Integrated Gradients' completeness gap, DeepLift's summation-to-delta gap.
    pub convergence_delta: Option<f32>,
    /// Whether the map is flat (every value equal): its overlay shows nothing.
    #[serde(default)]
    pub flat: bool,
    /// The raw map (float32, unnormalized), when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<Array>,
    /// The overlay on the photo, when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<Png>,
}

/// A method that `all` skipped because it does not apply to this model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// The method.
    pub method: Method,
    /// Why.
    pub error: String,
}

/// `image/explain`'s result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExplainResult {
    /// The model version that answered.
    pub version: u64,
    /// The preprocessed photo the overlays are drawn on, when rendering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<Png>,
    /// On a segmentation model, when rendering: the photo with each pixel in its most likely
    /// class's colour (Pascal VOC's palette, the background uncoloured) and the region
    /// explained outlined in white. In the final result, not in partial ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<Png>,
    /// One per method, in order.
    pub explanations: Vec<ExplanationData>,
    /// What `all` skipped.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}
