//! Watched folders and checkpoints: who holds each watch, and what changed. One notify watcher
//! (debounced) watches directories: a folder itself, or a checkpoint's parent (so that atomic
//! renames onto it are seen). Changes go to a [`ChangeListener`] (the service, which rescans
//! folders and reloads checkpoints); this module only keeps the books.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use convlens_shared::codes::{self, kind};
use convlens_shared::methods::status::WatchInfo;
use convlens_shared::methods::watch::WatchKind;
use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::clients::{ClientId, Subscriber};
use crate::error::MethodError;
use crate::files::FileStamp;
use convlens_shared::sync::lock;

/// Who hears of changes to watched paths.
pub trait ChangeListener: Send + Sync {
    /// `paths` changed (debounced); called on the watcher's thread.
    fn paths_changed(self: Arc<Self>, paths: &[PathBuf]);
}

/// What a change means for the watches: folders to rescan, checkpoints to settle and reload.
#[derive(Debug, Default)]
pub struct Changed {
    /// Watched folders that changed.
    pub folders: BTreeSet<PathBuf>,
    /// Watched checkpoints that changed and are not already settling (now they are).
    pub checkpoints: Vec<PathBuf>,
}

/// Who holds a watch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Owner {
    /// The daemon's `--watch`: its notifications go to every client.
    Everyone,
    /// A client's `watch/add`.
    Client(ClientId),
    /// A model loaded from the checkpoint with `watch`.
    Model(String),
}

impl Owner {
    /// Who hears this owner's folder notifications.
    fn subscriber(&self) -> Option<Subscriber> {
        match self {
            Owner::Everyone => Some(Subscriber::Everyone),
            Owner::Client(id) => Some(Subscriber::Client(*id)),
            Owner::Model(_) => None,
        }
    }
}

/// A watched folder.
struct FolderWatch {
    images: BTreeSet<String>,
    owners: BTreeSet<Owner>,
}

/// A watched checkpoint file.
struct CheckpointWatch {
    owners: BTreeSet<Owner>,
    /// The stamp of the version serving now.
    loaded: Option<FileStamp>,
    /// Whether a thread is waiting for it to settle.
    settling: bool,
}

#[derive(Default)]
struct Inner {
    debouncer: Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>,
    folders: HashMap<PathBuf, FolderWatch>,
    checkpoints: HashMap<PathBuf, CheckpointWatch>,
    /// Directories watched and how many watches need each.
    dirs: HashMap<PathBuf, usize>,
}

/// The watches of the daemon and its clients.
pub struct Watches {
    listener: Weak<dyn ChangeListener>,
    settle: Duration,
    inner: Mutex<Inner>,
}

fn watch_error(path: &Path, e: impl std::fmt::Display) -> MethodError {
    MethodError::new(
        codes::REQUEST_FAILED,
        format!("{}: cannot watch: {e}", path.display()),
        kind::WATCH,
    )
}

/// The absolute, canonical form of `path` (as it is, when it cannot be resolved).
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Watches {
    /// No watches yet; changes go to `listener`; checkpoints must be still for `settle` before
    /// they are read.
    pub fn new(listener: Weak<dyn ChangeListener>, settle: Duration) -> Self {
        Watches {
            listener,
            settle,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Watches `dir` (counting how many watches need it).
    fn watch_dir(&self, inner: &mut Inner, dir: &Path) -> Result<(), MethodError> {
        if let Some(n) = inner.dirs.get_mut(dir) {
            *n += 1;
            return Ok(());
        }
        if inner.debouncer.is_none() {
            let listener = self.listener.clone();
            let debouncer = new_debouncer(
                Duration::from_millis(100),
                None,
                move |result: DebounceEventResult| {
                    if let (Some(listener), Ok(events)) = (listener.upgrade(), result) {
                        let paths: Vec<PathBuf> = events
                            .iter()
                            .filter(|e| !matches!(e.kind, EventKind::Access(_)))
                            .flat_map(|e| e.paths.iter().cloned())
                            .collect();
                        listener.paths_changed(&paths);
                    }
                },
            )
            .map_err(|e| watch_error(dir, e))?;
            inner.debouncer = Some(debouncer);
        }
        if let Some(d) = inner.debouncer.as_mut() {
            d.watch(dir, RecursiveMode::NonRecursive)
                .map_err(|e| watch_error(dir, e))?;
        }
        inner.dirs.insert(dir.to_path_buf(), 1);
        Ok(())
    }

    /// Stops needing `dir`.
    fn unwatch_dir(inner: &mut Inner, dir: &Path) {
        let Some(n) = inner.dirs.get_mut(dir) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            inner.dirs.remove(dir);
            if let Some(d) = inner.debouncer.as_mut() {
                let _ = d.unwatch(dir);
            }
        }
    }

    /// Watches folder `path` for `owner`; returns its images now.
    pub fn add_folder(&self, path: &Path, owner: Owner) -> Result<BTreeSet<String>, MethodError> {
        let path = canonical(path);
        let mut inner = lock(&self.inner);
        if let Some(w) = inner.folders.get_mut(&path) {
            w.owners.insert(owner);
            return Ok(w.images.clone());
        }
        let images = crate::files::list_images(&path).map_err(|e| watch_error(&path, e))?;
        self.watch_dir(&mut inner, &path)?;
        inner.folders.insert(
            path,
            FolderWatch {
                images: images.clone(),
                owners: BTreeSet::from([owner]),
            },
        );
        Ok(images)
    }

    /// Watches checkpoint `path` for `owner`; `stamp` is that of the version serving now.
    pub fn add_checkpoint(
        &self,
        path: &Path,
        owner: Owner,
        stamp: Option<FileStamp>,
    ) -> Result<(), MethodError> {
        if !path.is_file() {
            return Err(watch_error(path, "neither a folder nor a file"));
        }
        let path = canonical(path);
        let mut inner = lock(&self.inner);
        if let Some(w) = inner.checkpoints.get_mut(&path) {
            w.owners.insert(owner);
            return Ok(());
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        self.watch_dir(&mut inner, &dir)?;
        inner.checkpoints.insert(
            path,
            CheckpointWatch {
                owners: BTreeSet::from([owner]),
                loaded: stamp,
                settling: false,
            },
        );
        Ok(())
    }

    /// Drops `owner`'s watch of `path`.
    pub fn remove(&self, path: &Path, owner: &Owner) -> Result<(), MethodError> {
        let path = canonical(path);
        let mut inner = lock(&self.inner);
        let found = inner
            .folders
            .get_mut(&path)
            .map(|w| w.owners.remove(owner))
            .or_else(|| {
                inner
                    .checkpoints
                    .get_mut(&path)
                    .map(|w| w.owners.remove(owner))
            })
            .unwrap_or(false);
        if !found {
            return Err(watch_error(&path, "not watched by this client"));
        }
        Self::prune(&mut inner);
        Ok(())
    }

    /// Drops every watch of `owner` (a client that left, a model unloaded).
    pub fn remove_owner(&self, owner: &Owner) {
        let mut inner = lock(&self.inner);
        for w in inner.folders.values_mut() {
            w.owners.remove(owner);
        }
        for w in inner.checkpoints.values_mut() {
            w.owners.remove(owner);
        }
        Self::prune(&mut inner);
    }

    /// Forgets watches nobody holds.
    fn prune(inner: &mut Inner) {
        let folders: Vec<PathBuf> = inner
            .folders
            .iter()
            .filter(|(_, w)| w.owners.is_empty())
            .map(|(p, _)| p.clone())
            .collect();
        for p in folders {
            inner.folders.remove(&p);
            Self::unwatch_dir(inner, &p);
        }
        let checkpoints: Vec<PathBuf> = inner
            .checkpoints
            .iter()
            .filter(|(_, w)| w.owners.is_empty())
            .map(|(p, _)| p.clone())
            .collect();
        for p in checkpoints {
            inner.checkpoints.remove(&p);
            if let Some(dir) = p.parent() {
                Self::unwatch_dir(inner, dir);
            }
        }
    }

    /// Whether any client holds a watch (an idle daemon with client watches stays up).
    pub fn has_client_watches(&self) -> bool {
        let inner = lock(&self.inner);
        let is_client = |o: &Owner| matches!(o, Owner::Client(_));
        inner
            .folders
            .values()
            .any(|w| w.owners.iter().any(is_client))
            || inner
                .checkpoints
                .values()
                .any(|w| w.owners.iter().any(is_client))
    }

    /// Every watch, for `status`.
    pub fn list(&self) -> Vec<WatchInfo> {
        let inner = lock(&self.inner);
        let mut out: Vec<WatchInfo> = inner
            .folders
            .iter()
            .map(|(p, w)| WatchInfo {
                path: p.display().to_string(),
                kind: WatchKind::Folder,
                subscribers: w.owners.len(),
            })
            .chain(inner.checkpoints.iter().map(|(p, w)| WatchInfo {
                path: p.display().to_string(),
                kind: WatchKind::Checkpoint,
                subscribers: w.owners.len(),
            }))
            .collect();
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// What changed `paths` mean: the watched folders they are in or are, and the watched
    /// checkpoints among them, which are marked settling until [`Watches::finish_settling`].
    pub fn on_change(&self, paths: &[PathBuf]) -> Changed {
        let mut changed = Changed::default();
        let mut inner = lock(&self.inner);
        for p in paths {
            let parent = p.parent().map(Path::to_path_buf);
            for candidate in [Some(p.clone()), parent].into_iter().flatten() {
                if inner.folders.contains_key(&candidate) {
                    changed.folders.insert(candidate);
                }
            }
            if let Some(w) = inner.checkpoints.get_mut(p) {
                if !w.settling {
                    w.settling = true;
                    changed.checkpoints.push(p.clone());
                }
            }
        }
        changed
    }

    /// The settle time.
    pub fn settle(&self) -> Duration {
        self.settle
    }

    /// The images recorded for folder `path`, replaced by `now`; returns the old set and who
    /// hears of the change.
    pub fn swap_images(
        &self,
        path: &Path,
        now: BTreeSet<String>,
    ) -> Option<(BTreeSet<String>, Vec<Subscriber>)> {
        let mut inner = lock(&self.inner);
        let w = inner.folders.get_mut(path)?;
        let old = std::mem::replace(&mut w.images, now);
        let subscribers = w.owners.iter().filter_map(Owner::subscriber).collect();
        Some((old, subscribers))
    }

    /// The stamp of the version of checkpoint `path` serving now.
    pub fn loaded_stamp(&self, path: &Path) -> Option<FileStamp> {
        lock(&self.inner).checkpoints.get(path)?.loaded
    }

    /// Records that checkpoint `path` now serves `stamp`.
    pub fn set_loaded_stamp(&self, path: &Path, stamp: Option<FileStamp>) {
        if let Some(w) = lock(&self.inner).checkpoints.get_mut(path) {
            w.loaded = stamp;
        }
    }

    /// Ends settling `path` unless its file changed again since `seen`; says whether it ended.
    pub fn finish_settling(&self, path: &Path, seen: Option<FileStamp>) -> bool {
        let mut inner = lock(&self.inner);
        let Some(w) = inner.checkpoints.get_mut(path) else {
            return true;
        };
        if FileStamp::of(path) != seen {
            return false;
        }
        w.settling = false;
        true
    }
}
