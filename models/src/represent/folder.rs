//! The image files under a folder, found recursively, in a stable order.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp"];

/// What a folder walk found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FolderListing {
    /// Files with an image extension, sorted by path.
    pub images: Vec<PathBuf>,
    /// Entries that could not be listed (a folder without read permission), with the reason.
    pub unlistable: Vec<(PathBuf, String)>,
    /// How many other files were passed over (no image extension).
    pub other_files: usize,
}

/// Whether `path` has one of the [`IMAGE_EXTENSIONS`].
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Every file with an image extension under `dir`, recursively (symbolic links followed), sorted.
/// Whether each one decodes is found out later; a folder that cannot be read is listed in
/// [`FolderListing::unlistable`] rather than failing the walk.
pub fn list_images(dir: &Path) -> Result<FolderListing> {
    let meta = std::fs::metadata(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{}: not a folder",
            dir.display()
        )));
    }
    let mut listing = FolderListing::default();
    for entry in walkdir::WalkDir::new(dir).follow_links(true) {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                if has_image_extension(e.path()) {
                    listing.images.push(e.into_path());
                } else {
                    listing.other_files += 1;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let path = e
                    .path()
                    .map_or_else(|| dir.to_path_buf(), Path::to_path_buf);
                listing.unlistable.push((path, e.to_string()));
            }
        }
    }
    listing.images.sort();
    Ok(listing)
}
