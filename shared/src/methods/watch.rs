//! `watch/add` and `watch/remove`: following a folder of images or a checkpoint file.

use serde::{Deserialize, Serialize};

use super::request;

request!(
    /// Watches a folder (this client gets `images/changed`) or a checkpoint file (models
    /// loaded from it reload on change; every client gets `model/reloaded`).
    WatchAdd,
    "watch/add",
    WatchParams,
    WatchResult
);
request!(
    /// Stops this client's watch of a path.
    WatchRemove,
    "watch/remove",
    WatchParams,
    ()
);

/// Names a watched path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchParams {
    /// A folder or a checkpoint file, absolute path.
    pub path: String,
}

/// What is watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WatchKind {
    /// A folder of images.
    Folder,
    /// A checkpoint file.
    Checkpoint,
}

/// `watch/add`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchResult {
    /// The path, canonical.
    pub path: String,
    /// Folder or checkpoint.
    pub kind: WatchKind,
    /// For a folder: its images now (absolute paths, sorted).
    #[serde(default)]
    pub images: Vec<String>,
}
