//! `image/list` and `images/changed`: the images of a folder, and what a watched folder gained
//! or lost.

use serde::{Deserialize, Serialize};

use super::{notification, request};

request!(
    /// The images (PNG, JPEG, WebP, BMP, `.npy`) directly inside a folder, sorted.
    ImageList,
    "image/list",
    FolderParams,
    ImageListResult
);
notification!(
    /// A watched folder gained or lost images.
    ImagesChanged,
    "images/changed",
    ImagesChangedParams
);

/// Names a folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FolderParams {
    /// The folder, absolute path.
    pub folder: String,
}

/// `image/list`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageListResult {
    /// The folder.
    pub folder: String,
    /// Absolute paths, sorted.
    pub images: Vec<String>,
}

/// `images/changed`'s parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImagesChangedParams {
    /// The watched folder.
    pub folder: String,
    /// Images that appeared (absolute paths, sorted).
    pub added: Vec<String>,
    /// Images that went away.
    pub removed: Vec<String>,
}
