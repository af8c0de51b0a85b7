//! Class names: ImageNet-1k's built in, or a file with one name a line.

use std::path::Path;

use crate::{Error, Result};

const IMAGENET: &str = include_str!("../assets/imagenet_classes.txt");

/// The 1000 ImageNet-1k class names in index order.
pub fn imagenet() -> Vec<String> {
    IMAGENET.lines().map(str::to_string).collect()
}

/// Class names from `path`, one a line.
pub fn from_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text.lines().map(|l| l.trim().to_string()).collect())
}

/// Names for a model with `classes` outputs: ImageNet's for 1000, else `class N`.
pub fn default_for(classes: usize) -> Vec<String> {
    if classes == 1000 {
        imagenet()
    } else {
        (0..classes).map(|i| format!("class {i}")).collect()
    }
}
