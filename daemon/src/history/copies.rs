//! Where the kept versions of watched checkpoints live: a copy of each file in a private folder
//! of this process, removed when the daemon ends (and, if it died, by the next daemon).
//!
//! Copies rather than weights in memory: a version nobody looks at costs disk, not the device's
//! or the host's memory (a hundred versions of a 100 MB network would not fit either), and a
//! frozen version loads through `Model::load` exactly as the checkpoint did (architecture
//! inference, PyTorch zip and nested dicts, ONNX). Not a hard link: a writer that rewrites the
//! file in place would change the kept version too.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use convlens_shared::sync::lock;

/// The kept copies of checkpoints.
pub struct CopyStore {
    /// The folder holding one folder per process.
    root: Option<PathBuf>,
    /// This process's folder, once made.
    dir: Mutex<Option<PathBuf>>,
    next: AtomicU64,
}

/// The folder under `root` of process `pid`.
fn process_dir(root: &Path, pid: u32) -> PathBuf {
    root.join(pid.to_string())
}

/// Whether process `pid` is gone (a folder of a live one, even another user's, is left alone).
fn is_gone(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid).is_some_and(|p| {
        matches!(
            rustix::process::test_kill_process(p),
            Err(rustix::io::Errno::SRCH)
        )
    })
}

/// Removes the folders under `root` of processes that have ended.
fn remove_stale(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 != std::process::id() && is_gone(pid) {
            tracing::info!(dir = %entry.path().display(), "removing the history of an ended daemon");
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl CopyStore {
    /// Copies go under `root` (default: `daemon-history` in convlens's cache folder, else the
    /// temporary folder); nothing is made before the first copy.
    pub fn new(root: Option<PathBuf>) -> CopyStore {
        let root = root.or_else(|| {
            convlens_models::represent::cache::default_cache_dir()
                .or_else(|| Some(std::env::temp_dir().join("convlens")))
                .map(|d| d.join("daemon-history"))
        });
        CopyStore {
            root,
            dir: Mutex::new(None),
            next: AtomicU64::new(0),
        }
    }

    /// This process's folder, made (0700) on first use.
    fn dir(&self) -> std::io::Result<PathBuf> {
        let mut dir = lock(&self.dir);
        if let Some(d) = dir.as_ref() {
            return Ok(d.clone());
        }
        let root = self.root.as_ref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no folder for the history")
        })?;
        remove_stale(root);
        let mine = process_dir(root, std::process::id());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&mine)?;
        *dir = Some(mine.clone());
        Ok(mine)
    }

    /// Copies `path` into the store under its own file name (its extension says ONNX); returns
    /// the copy and its size.
    pub fn copy_in(&self, path: &Path) -> std::io::Result<(PathBuf, u64)> {
        let name = path.file_name().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name")
        })?;
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let folder = self.dir()?.join(format!("{n:06}"));
        std::fs::create_dir(&folder)?;
        let copy = folder.join(name);
        match std::fs::copy(path, &copy) {
            Ok(bytes) => Ok((copy, bytes)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&folder);
                Err(e)
            }
        }
    }

    /// Deletes a copy made by [`CopyStore::copy_in`].
    pub fn remove(&self, copy: &Path) {
        if let Err(e) = std::fs::remove_file(copy) {
            tracing::warn!(copy = %copy.display(), "cannot remove a kept version: {e}");
        }
        if let Some(folder) = copy.parent() {
            let _ = std::fs::remove_dir(folder);
        }
    }
}

impl Drop for CopyStore {
    fn drop(&mut self) {
        if let Some(dir) = lock(&self.dir).take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_keep_their_name_and_bytes_and_go_with_the_store() {
        let root = std::env::temp_dir().join(format!("convlens-copystore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        // A folder of an ended process is removed; another name is left alone.
        let stale = root.join(i32::MAX.to_string());
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::create_dir_all(root.join("notes")).unwrap();
        let source = root.join("checkpoint.safetensors");
        std::fs::write(&source, b"version one").unwrap();
        let store = CopyStore::new(Some(root.clone()));
        let (first, bytes) = store.copy_in(&source).unwrap();
        std::fs::write(&source, b"version two!").unwrap();
        let (second, _) = store.copy_in(&source).unwrap();
        assert_eq!(bytes, 11);
        assert_eq!(first.file_name(), source.file_name());
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).unwrap(), b"version one");
        assert_eq!(std::fs::read(&second).unwrap(), b"version two!");
        assert!(!stale.exists());
        assert!(root.join("notes").exists());
        store.remove(&first);
        assert!(!first.exists() && !first.parent().unwrap().exists());
        let mine = process_dir(&root, std::process::id());
        assert!(mine.exists());
        drop(store);
        assert!(!mine.exists());
        let _ = std::fs::remove_dir_all(&root);
    }
}
