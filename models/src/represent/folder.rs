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
/// [`FolderListing::unlistable`] rather than failing the walk. Holds the whole listing: a pass
/// over a large folder walks it with [`walk_images`] instead.
pub fn list_images(dir: &Path) -> Result<FolderListing> {
    let mut walk = walk_images(dir)?;
    let images = walk.by_ref().collect();
    Ok(FolderListing {
        images,
        unlistable: walk.unlistable,
        other_files: walk.other_files,
    })
}

/// The image files under `dir` one at a time, in the order [`list_images`] sorts them, holding
/// only the folders being walked (each folder's entries are sorted as it is read, and a depth-first
/// walk of sorted entries visits paths in the order `Path` sorts them: by component).
pub fn walk_images(dir: &Path) -> Result<ImageWalk> {
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
    Ok(ImageWalk {
        dir: dir.to_path_buf(),
        entries: walkdir::WalkDir::new(dir)
            .follow_links(true)
            .sort_by_file_name()
            .into_iter(),
        unlistable: Vec::new(),
        other_files: 0,
    })
}

/// A walk of a folder's image files (see [`walk_images`]); what it passed over is counted as it
/// goes.
pub struct ImageWalk {
    dir: PathBuf,
    entries: walkdir::IntoIter,
    /// Entries that could not be listed so far, with the reason.
    pub unlistable: Vec<(PathBuf, String)>,
    /// Other files passed over so far.
    pub other_files: usize,
}

impl Iterator for ImageWalk {
    type Item = PathBuf;

    fn next(&mut self) -> Option<PathBuf> {
        loop {
            match self.entries.next()? {
                Ok(e) if e.file_type().is_file() => {
                    if has_image_extension(e.path()) {
                        return Some(e.into_path());
                    }
                    self.other_files += 1;
                }
                Ok(_) => {}
                Err(e) => {
                    let path = e.path().map_or_else(|| self.dir.clone(), Path::to_path_buf);
                    self.unlistable.push((path, e.to_string()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_walk_gives_the_sorted_listing_in_order() {
        let dir = std::env::temp_dir().join(format!("convlens-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Names where sorting whole path strings and sorting by component disagree
        // ('-' sorts before '/', '.' too).
        for name in [
            "a/x.png",
            "a-b.png",
            "a.png",
            "a/b/c.jpg",
            "B.PNG",
            "a0/z.webp",
            "n.txt",
        ] {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"").unwrap();
        }
        let mut sorted: Vec<PathBuf> = [
            "a/x.png",
            "a-b.png",
            "a.png",
            "a/b/c.jpg",
            "B.PNG",
            "a0/z.webp",
        ]
        .iter()
        .map(|n| dir.join(n))
        .collect();
        sorted.sort();
        let mut walk = walk_images(&dir).unwrap();
        let walked: Vec<PathBuf> = walk.by_ref().collect();
        assert_eq!(walked, sorted);
        assert_eq!(walk.other_files, 1);
        assert_eq!(list_images(&dir).unwrap().images, sorted);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
