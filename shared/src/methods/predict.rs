//! `image/predict`: the top-K classes of images (`convlens predict`).

use serde::{Deserialize, Serialize};

use super::model::ModelId;
use super::request;
use crate::array::Array;

request!(
    /// The top-K classes for each image, and optionally the raw logits.
    ImagePredict,
    "image/predict",
    PredictParams,
    PredictResult
);

/// `image/predict`'s parameters (`convlens predict` flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PredictParams {
    /// The model.
    pub model_id: ModelId,
    /// Images (PNG, JPEG, WebP, BMP) or preprocessed `.npy` tensors, absolute paths.
    pub images: Vec<String>,
    /// How many classes per image.
    #[serde(default = "default_top")]
    pub top: usize,
    /// Whether to return the logits [N, classes].
    #[serde(default)]
    pub logits: bool,
}

fn default_top() -> usize {
    crate::defaults::predict::TOP
}

/// One class of a prediction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    /// Class index.
    pub class: usize,
    /// Class name.
    pub label: String,
    /// Softmax probability.
    pub prob: f32,
}

/// The prediction for one image.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The image, as asked.
    pub image: String,
    /// The most probable classes, best first.
    pub top: Vec<ClassScore>,
}

/// `image/predict`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PredictResult {
    /// The model version that answered.
    pub version: u64,
    /// One per image, in order.
    pub predictions: Vec<Prediction>,
    /// The logits [N, classes], when asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logits: Option<Array>,
}
