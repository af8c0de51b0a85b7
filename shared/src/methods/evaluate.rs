//! `image/evaluate`: how faithful an explanation is (`convlens evaluate`): the explanation of
//! `image/explain` with the same parameters, then each metric's curve and score.

use serde::{Deserialize, Serialize};

use super::explain::{ExplainParams, Skipped};
use super::request;
use crate::choices::{Method, Metric};

request!(
    /// Scores one method's (or every method's) explanation of one image by faithfulness
    /// metrics.
    ImageEvaluate,
    "image/evaluate",
    EvaluateParams,
    EvaluateResult
);

/// `image/evaluate`'s parameters: `image/explain`'s (the explanation is the one `image/explain`
/// gives, and keeps, for them; `map` is not used), the metrics and the curves' step.
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
    /// The curve it is the area of: the class's probability at the start and after each step.
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
    /// Methods `all` skipped (they do not apply to this model).
    pub skipped: Vec<Skipped>,
}
