//! The checkpoint history: one record per version of each model (when it was loaded, its
//! file's size, the metrics beside it), and for the versions of a watched checkpoint a kept copy
//! of its file ([`copies::CopyStore`]) within a count per model and a byte budget for all, the
//! oldest dropped first. The registry keeps the records with its models; this module decides
//! what is copied and what is dropped.

pub mod copies;
pub mod metrics;
pub mod versions;

use std::path::{Path, PathBuf};

use convlens_shared::codes::{self, kind};
use serde_json::Value;

use crate::config::Config;
use crate::error::MethodError;
use crate::files::FileStamp;
use copies::CopyStore;
use versions::{VersionRecord, Weights};

/// How much history is kept.
#[derive(Clone, Copy, Debug)]
pub struct HistoryLimits {
    /// The most versions of each model kept.
    pub versions: usize,
    /// The most bytes all kept copies take together.
    pub bytes: u64,
}

/// A checkpoint's file as it was when a version was loaded from it.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// A copy of the file and its size (none when the history keeps nothing, or the file
    /// changed while it was copied).
    pub copy: Option<(PathBuf, u64)>,
    /// The metrics written beside it.
    pub metrics: Option<Value>,
}

/// What [`History::enforce`] dropped.
#[derive(Debug, Default)]
pub struct Dropped {
    /// The copies to delete (outside any lock: file I/O).
    pub copies: Vec<PathBuf>,
    /// The versions no longer kept: (model id, version).
    pub versions: Vec<(String, u64)>,
}

/// The history's limits and its store of copies.
pub struct History {
    limits: HistoryLimits,
    store: CopyStore,
}

impl History {
    /// A history within `config`'s limits (`history_versions`, `history_bytes`), copying into
    /// `history_dir`.
    pub fn new(config: &Config) -> History {
        History::with(
            HistoryLimits {
                versions: config.history_versions,
                bytes: config.history_bytes,
            },
            CopyStore::new(config.history_dir.clone()),
        )
    }

    /// A history within `limits`, copying into `store`.
    pub fn with(limits: HistoryLimits, store: CopyStore) -> History {
        History { limits, store }
    }

    /// Copies checkpoint `path` into the history and reads the metrics beside it, after a model
    /// was loaded from it while its stamp was `stamp`. The copy is kept only if the file is
    /// still at `stamp` once copied (so that it holds the weights loaded), and the history keeps
    /// anything at all.
    pub fn snapshot(&self, path: &Path, stamp: Option<FileStamp>) -> Snapshot {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let copy = if self.limits.versions == 0 || size > self.limits.bytes || stamp.is_none() {
            None
        } else {
            match self.store.copy_in(path) {
                Ok(copy) if FileStamp::of(path) == stamp => Some(copy),
                Ok((copy, _)) => {
                    tracing::info!(path = %path.display(), "changed while copied; not kept");
                    self.store.remove(&copy);
                    None
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cannot keep a copy: {e}");
                    None
                }
            }
        };
        let metrics =
            metrics::metrics_beside(path, copy.as_ref().map_or(path, |(c, _)| c.as_path()));
        Snapshot { copy, metrics }
    }

    /// Deletes the copy of a snapshot that will not be used.
    pub fn discard(&self, snapshot: Snapshot) {
        if let Some((copy, _)) = snapshot.copy {
            self.store.remove(&copy);
        }
    }

    /// Deletes `copies`.
    pub fn remove_copies(&self, copies: Vec<PathBuf>) {
        for copy in copies {
            self.store.remove(&copy);
        }
    }

    /// Drops the oldest kept copies of `models` (each model's id and versions) until each keeps
    /// at most the version count and all together the byte budget.
    pub fn enforce<'a>(
        &self,
        models: impl Iterator<Item = (&'a str, &'a mut Vec<VersionRecord>)>,
    ) -> Dropped {
        let mut models: Vec<(&str, &mut Vec<VersionRecord>)> = models.collect();
        let mut dropped = Dropped::default();
        let mut drop_record = |id: &str, r: &mut VersionRecord| {
            if let Weights::Copy(copy) = std::mem::replace(&mut r.weights, Weights::Gone) {
                tracing::info!(model = id, version = r.version, "history: version dropped");
                dropped.copies.push(copy);
                dropped.versions.push((id.to_string(), r.version));
            }
        };
        for (id, versions) in models.iter_mut() {
            let kept = versions.iter().filter(|r| r.has_copy()).count();
            let excess = kept.saturating_sub(self.limits.versions);
            for r in versions.iter_mut().filter(|r| r.has_copy()).take(excess) {
                drop_record(id, r);
            }
        }
        loop {
            let total: u64 = models
                .iter()
                .flat_map(|(_, versions)| versions.iter())
                .filter(|r| r.has_copy())
                .map(|r| r.bytes)
                .sum();
            if total <= self.limits.bytes {
                break;
            }
            let oldest = models
                .iter_mut()
                .flat_map(|(id, versions)| versions.iter_mut().map(move |r| (*id, r)))
                .filter(|(_, r)| r.has_copy())
                .min_by_key(|(_, r)| (r.loaded_at, r.version));
            match oldest {
                Some((id, r)) => drop_record(id, r),
                None => break,
            }
        }
        dropped
    }

    /// The error for version `version` of `id`, whose copy was dropped.
    pub fn not_kept(&self, id: &str, version: u64) -> MethodError {
        MethodError::new(
            codes::REQUEST_FAILED,
            format!(
                "version {version} of model `{id}` is no longer kept: its copy was dropped to \
                 keep the checkpoint history within {} versions and {} MiB (`convlens daemon \
                 --history-versions N --history-bytes SIZE`)",
                self.limits.versions,
                self.limits.bytes >> 20
            ),
            kind::UNKNOWN_MODEL,
        )
    }
}
