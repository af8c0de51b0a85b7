//! `model/*`: loading models into the daemon, listing, unloading, their layer trees, and the
//! notifications a watched checkpoint sends.

use serde::{Deserialize, Serialize};

use super::{notification, request, NoParams};

request!(
    /// Loads a model (or finds it already loaded with the same options) and keeps it resident.
    ModelLoad,
    "model/load",
    LoadParams,
    LoadResult
);
request!(
    /// Every model the daemon knows.
    ModelList,
    "model/list",
    NoParams,
    ListResult
);
request!(
    /// Forgets a model and frees its memory and caches.
    ModelUnload,
    "model/unload",
    ModelRef,
    ()
);
request!(
    /// The model's layer tree with output shapes and parameter counts.
    ModelLayers,
    "model/layers",
    LayersParams,
    LayersResult
);
notification!(
    /// A watched checkpoint was rewritten and loaded: requests now use `version`.
    ModelReloaded,
    "model/reloaded",
    ReloadedParams
);
notification!(
    /// A watched checkpoint changed but could not be loaded; the previous version still serves.
    ModelReloadFailed,
    "model/reloadFailed",
    ReloadFailedParams
);

/// A model's id (`m1`), as `model/load` gave it.
pub type ModelId = String;

/// `model/load`'s parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadParams {
    /// A weight file (absolute path: the daemon does not know the client's folder), `demo`, or
    /// `random:ARCH`.
    pub path: String,
    /// The architecture, when it should not be inferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// A class-name file (absolute path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// Whether to reload the model when its file is rewritten (default: true for files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<bool>,
    /// A `torch.export` program (`.pt2`, absolute path) that `path`'s weights are bound to by
    /// state_dict key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph: Option<String>,
    /// Per-channel input mean (0–1 pixel scale), instead of the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<Vec<f32>>,
    /// Per-channel input standard deviation, instead of the model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<Vec<f32>>,
    /// The shorter image side is resized to this before the centre crop, instead of the
    /// model's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize: Option<u32>,
}

/// A model as the daemon holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// Its id.
    pub model_id: ModelId,
    /// Bumped each time its checkpoint is reloaded (starts at 1).
    pub version: u64,
    /// The architecture (`resnet18`, `efficientnet_lite0`, `onnx`).
    pub arch: String,
    /// What it was loaded from.
    pub source: String,
    /// Number of classes.
    pub classes: usize,
    /// The square input size its preprocessing crops to.
    pub input_size: usize,
    /// Parameters.
    pub parameters: usize,
    /// Bytes its parameters take on the device.
    pub bytes: u64,
    /// Whether it is on the device now (an evicted model is reloaded on its next use).
    pub resident: bool,
    /// Whether its checkpoint file is watched.
    pub watched: bool,
}

/// `model/load`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadResult {
    /// The model.
    #[serde(flatten)]
    pub model: ModelInfo,
    /// Every layer path in execution order (`conv1`, `layer1.0.conv1`, …).
    pub layers: Vec<String>,
    /// What the daemon chose for the user (a `.pt2` program found beside a checkpoint), to show.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `model/list`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListResult {
    /// The models, in load order.
    pub models: Vec<ModelInfo>,
}

/// Names a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelRef {
    /// The model's id.
    pub model_id: ModelId,
}

/// `model/layers`'s parameters (`convlens layers` flags).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayersParams {
    /// The model's id.
    pub model_id: ModelId,
    /// Square input size the shapes are computed for; 0 (the default): the model's own input
    /// size (`inputSize` of `model/load`).
    #[serde(default)]
    pub input_size: usize,
}

/// One module of the layer tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerInfo {
    /// Full path (`layer1.0.conv1`).
    pub path: String,
    /// Op class for a leaf, `Module` for a container.
    pub class_name: String,
    /// Nesting depth (0 for top-level modules).
    pub depth: usize,
    /// Output shape for the traced input.
    pub output_shape: Vec<usize>,
    /// Parameters in the module and its children.
    pub params: usize,
    /// Whether it has no children.
    pub is_leaf: bool,
    /// The graph node producing its output.
    pub node: usize,
}

/// `model/layers`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayersResult {
    /// The architecture.
    pub arch: String,
    /// What the model was loaded from.
    pub source: String,
    /// The model's version.
    pub version: u64,
    /// Input channels.
    pub channels: usize,
    /// The input size the shapes are for.
    pub input_size: usize,
    /// Parameters in the whole model.
    pub total_params: usize,
    /// Modules, parents before children.
    pub layers: Vec<LayerInfo>,
}

/// `model/reloaded`'s parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadedParams {
    /// The model.
    pub model_id: ModelId,
    /// Its new version.
    pub version: u64,
}

/// `model/reloadFailed`'s parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadFailedParams {
    /// The model.
    pub model_id: ModelId,
    /// Why the new file could not be loaded.
    pub error: String,
    /// The version still serving.
    pub version: u64,
}
