//! What the daemon reads from disk about files: which are images, and a stamp (size, mtime,
//! inode) that says whether a file changed.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Extensions `image/list` and folder watches count as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "bmp", "npy"];

/// Whether `path` names an image by its extension.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The images directly inside `folder` (absolute paths, sorted).
pub fn list_images(folder: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if is_image(&path) && path.is_file() {
            out.insert(path.display().to_string());
        }
    }
    Ok(out)
}

/// What identifies one version of a file's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileStamp {
    /// Size in bytes.
    pub len: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// The inode (an atomic rename gives a new one).
    pub inode: u64,
}

impl FileStamp {
    /// The stamp of `path` now; `None` when it cannot be read.
    pub fn of(path: &Path) -> Option<FileStamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            len: m.len(),
            mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
            inode: m.ino(),
        })
    }
}

/// An image as a cache key: its path and its stamp (so an edited image is read again).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageKey {
    /// The path as given.
    pub path: PathBuf,
    /// Its stamp (`None` when it cannot be read; loading it then fails with the engine's error).
    pub stamp: Option<FileStamp>,
}

impl ImageKey {
    /// The key of `path` now.
    pub fn of(path: &Path) -> ImageKey {
        ImageKey {
            path: path.to_path_buf(),
            stamp: FileStamp::of(path),
        }
    }
}
