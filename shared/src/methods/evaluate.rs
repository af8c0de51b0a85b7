//! `image/evaluate`: how faithful an explanation is (`convlens evaluate`): the explanation of
//! `image/explain` with the same parameters, then each metric's curve and score; and
//! `folder/evaluate`, the same for every image under a folder.

use serde::{Deserialize, Serialize};

use super::explain::{ExplainParams, Skipped};
use super::folder::SkippedFile;
use super::request;
use crate::choices::{Method, Metric};
use crate::defaults::evaluate as default;

request!(
    /// Scores one method's (or every method's) explanation of one image by faithfulness
    /// metrics.
    ImageEvaluate,
    "image/evaluate",
    EvaluateParams,
    EvaluateResult
);

request!(
    /// Scores the explanations of every image under a folder (`convlens evaluate DIR`): the
    /// parameters are `image/evaluate`'s with `image` naming the folder.
    FolderEvaluate,
    "folder/evaluate",
    EvaluateParams,
    FolderEvaluateResult
);

/// `image/evaluate`'s parameters: `image/explain`'s (the explanation is the one `image/explain`
/// gives, and keeps, for them; `map` is not used; its `seed` also seeds ROAD's noise), the
/// metrics, the curves' step, ROAD's percentiles and noise, and the perturbations of
/// infidelity and max-sensitivity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateParams {
    /// The explanation to score.
    #[serde(flatten)]
    pub explain: ExplainParams,
    /// The metrics.
    pub metrics: Vec<Metric>,
    /// Pixels removed or added per step of deletion and insertion (default: the input's width,
    /// as RISE's 224 for 224×224).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// ROAD's percentiles of the map, each in [0, 100): at p the pixels at or above the map's
    /// p-th percentile are removed (most relevant first), or those at or below the (100 − p)-th
    /// (least relevant first).
    #[serde(default = "default_road_percentiles")]
    pub road_percentiles: Vec<f64>,
    /// The standard deviation of the noise ROAD's linear imputation adds (normalized input
    /// units; 0: none).
    #[serde(default = "default_road_noise")]
    pub road_noise: f64,
    /// Perturbations for infidelity and max-sensitivity.
    #[serde(default = "default_perturbations")]
    pub perturbations: usize,
    /// The standard deviation of infidelity's Gaussian perturbations (normalized input units).
    #[serde(default = "default_infidelity_noise")]
    pub infidelity_noise: f64,
    /// Whether infidelity first scales the map by the factor that fits it best (Captum's
    /// `normalize`), so that maps of different scales compare.
    #[serde(default = "default_infidelity_normalize")]
    pub infidelity_normalize: bool,
    /// The radius of max-sensitivity's uniform perturbations (normalized input units).
    #[serde(default = "default_sensitivity_radius")]
    pub sensitivity_radius: f64,
}

impl EvaluateParams {
    /// `metrics` of `explain`'s explanation, with every other parameter at its default.
    pub fn new(explain: ExplainParams, metrics: Vec<Metric>) -> EvaluateParams {
        EvaluateParams {
            explain,
            metrics,
            step: None,
            road_percentiles: default_road_percentiles(),
            road_noise: default_road_noise(),
            perturbations: default_perturbations(),
            infidelity_noise: default_infidelity_noise(),
            infidelity_normalize: default_infidelity_normalize(),
            sensitivity_radius: default_sensitivity_radius(),
        }
    }
}

fn default_road_percentiles() -> Vec<f64> {
    default::ROAD_PERCENTILES.to_vec()
}

fn default_road_noise() -> f64 {
    default::ROAD_NOISE
}

fn default_perturbations() -> usize {
    default::PERTURBATIONS
}

fn default_infidelity_noise() -> f64 {
    default::INFIDELITY_NOISE
}

fn default_infidelity_normalize() -> bool {
    default::INFIDELITY_NORMALIZE
}

fn default_sensitivity_radius() -> f64 {
    default::SENSITIVITY_RADIUS
}

/// One metric of one method's explanation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Score {
    /// The method.
    pub method: Method,
    /// The metric.
    pub metric: Metric,
    /// The score (for deletion and insertion, the area under the curve).
    pub value: f32,
    /// The curve it is the area of: the class's probability at the start and after each step
    /// (for ROAD in one order, the change at each percentile; for the randomization check, the
    /// similarity after each step of the cascade, in `randomizedLayers`' order).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub curve: Vec<f32>,
}

/// `image/evaluate`'s result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluateResult {
    /// The model version that answered.
    pub version: u64,
    /// The class explained and scored.
    pub class: usize,
    /// Its name.
    pub label: Option<String>,
    /// Every method's score by every metric, in the methods' display order.
    pub scores: Vec<Score>,
    /// Methods `all` skipped (they do not apply to this model), and metrics skipped for a
    /// method whose map they cannot judge (`error` names the metric: ROAD on a map flat at its minimum over more of the image than
    /// a percentile).
    pub skipped: Vec<Skipped>,
    /// The randomization check's cascade: the block re-initialized at each step, the output's
    /// first (empty unless a randomization metric was asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub randomized_layers: Vec<String>,
}

/// `folder/evaluate`'s result: each image's `image/evaluate` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderEvaluateResult {
    /// The model version that answered.
    pub version: u64,
    /// Every image scored, in the folder's order (paths sorted), with its scores.
    pub images: Vec<ImageScores>,
    /// Images that could not be scored (unreadable, undecodable), with the reason; the others
    /// are scored all the same.
    pub skipped_files: Vec<SkippedFile>,
    /// The randomization check's cascade, as in `image/evaluate` (empty unless asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub randomized_layers: Vec<String>,
}

/// One image's scores in a `folder/evaluate` result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageScores {
    /// The image (absolute path).
    pub image: String,
    /// The class explained and scored.
    pub class: usize,
    /// Its name.
    pub label: Option<String>,
    /// Every method's score by every metric.
    pub scores: Vec<Score>,
    /// Methods or metrics skipped for this image, as `image/evaluate` gives them.
    pub skipped: Vec<Skipped>,
}
