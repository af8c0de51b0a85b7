//! A watched checkpoint changed. A file being written is never read half-way: wait until its
//! size, mtime and inode have stayed the same for the settle time, load it completely, and check
//! that it did not change during the load. A file that fails to load while still changing is
//! waited for again; one that fails and stays the same is reported (`model/reloadFailed`) and
//! the previous version keeps serving. A good one becomes the next version (`model/reloaded`),
//! a copy of its file is kept for the history (`model/versions`, `model/atVersion`), and the
//! old version's caches are dropped.

use std::path::Path;
use std::time::{Duration, Instant};

use convlens_shared::methods::model::{
    ModelReloadFailed, ModelReloaded, ReloadFailedParams, ReloadedParams,
};

use super::Service;
use crate::clients::Subscriber;
use crate::files::FileStamp;
use crate::history::Snapshot;

/// How long a checkpoint may stay missing (between a writer's unlink and rename) before the
/// wait is given up.
const MISSING_LIMIT: Duration = Duration::from_secs(30);

/// Waits until `path`'s stamp has been the same for `settle`; `None` if it stays missing.
fn wait_until_still(path: &Path, settle: Duration) -> Option<FileStamp> {
    let poll = (settle / 5).max(Duration::from_millis(10));
    let mut last = FileStamp::of(path);
    let mut since = Instant::now();
    let mut missing_since = Instant::now();
    loop {
        std::thread::sleep(poll);
        let now = FileStamp::of(path);
        if now.is_some() {
            missing_since = Instant::now();
        } else if missing_since.elapsed() > MISSING_LIMIT {
            return None;
        }
        if now != last {
            last = now;
            since = Instant::now();
        } else if now.is_some() && since.elapsed() >= settle {
            return now;
        }
    }
}

/// Reloads the models watching `path` once it is whole.
pub fn settle_and_reload(service: &Service, path: &Path) {
    let settle = service.watches.settle();
    loop {
        let Some(stamp) = wait_until_still(path, settle) else {
            tracing::warn!(path = %path.display(), "checkpoint went away");
            service.watches.finish_settling(path, None);
            return;
        };
        if service.watches.loaded_stamp(path) != Some(stamp) {
            reload(service, path, stamp);
        }
        if service.watches.finish_settling(path, Some(stamp)) {
            return;
        }
    }
}

/// Loads every model watching `path` from the file as it is at `stamp`.
fn reload(service: &Service, path: &Path, stamp: FileStamp) {
    let settle = service.watches.settle();
    for (id, key, version) in service.models.watched_from(path) {
        let loaded = key.load(service.models.device());
        // Kept for the history (`model/atVersion`) only if the file is still the one loaded.
        let snapshot = match &loaded {
            Ok(_) => service.models.snapshot(path, Some(stamp)),
            Err(_) => Snapshot::default(),
        };
        if FileStamp::of(path) != Some(stamp) {
            // Written to while it was read: the next round reads it again.
            tracing::info!(model = %id, "checkpoint changed while loading; waiting again");
            service.models.discard(snapshot);
            return;
        }
        match loaded {
            Ok(model) => match service.models.replace(&id, model, snapshot) {
                Ok(v) => {
                    service.drop_caches(&id, Some(v));
                    service.release_free_memory();
                    tracing::info!(model = %id, version = v, "reloaded");
                    service.clients.notify::<ModelReloaded>(
                        Subscriber::Everyone,
                        &ReloadedParams {
                            model_id: id.clone(),
                            version: v,
                        },
                    );
                }
                Err(e) => report_failure(service, &id, version, &e.message),
            },
            Err(e) => {
                // A torn file may still be being written: wait once more before reporting.
                std::thread::sleep(settle);
                if FileStamp::of(path) != Some(stamp) {
                    tracing::info!(model = %id, "checkpoint still changing after a failed load");
                    return;
                }
                report_failure(service, &id, version, &e.to_string());
            }
        }
    }
    service.watches.set_loaded_stamp(path, Some(stamp));
}

fn report_failure(service: &Service, id: &str, version: u64, error: &str) {
    tracing::warn!(model = %id, version, "reload failed: {error}");
    service.clients.notify::<ModelReloadFailed>(
        Subscriber::Everyone,
        &ReloadFailedParams {
            model_id: id.to_string(),
            error: error.to_string(),
            version,
        },
    );
}
