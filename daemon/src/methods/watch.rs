//! `watch/add` and `watch/remove`: a client follows a folder or a checkpoint.

use std::path::Path;

use convlens_shared::methods::watch::{WatchAdd, WatchKind, WatchParams, WatchRemove, WatchResult};

use super::call::Call;
use super::router::Router;
use crate::error::MethodError;
use crate::files::FileStamp;
use crate::watch::Owner;

/// Adds `watch/add` and `watch/remove`.
pub fn register(r: &mut Router) {
    r.inline::<WatchAdd>(add);
    r.inline::<WatchRemove>(remove);
}

/// The owner a client's watches are held by (the daemon's own in-process).
fn owner(call: &Call) -> Owner {
    match call.client {
        Some(id) => Owner::Client(id),
        None => Owner::Everyone,
    }
}

/// Watches a folder or a checkpoint file for this client.
pub fn add(call: &Call, p: WatchParams) -> Result<WatchResult, MethodError> {
    let path = Path::new(&p.path);
    let watches = &call.service.watches;
    if path.is_dir() {
        let images = watches.add_folder(path, owner(call))?;
        Ok(WatchResult {
            path: p.path,
            kind: WatchKind::Folder,
            images: images.into_iter().collect(),
        })
    } else {
        watches.add_checkpoint(path, owner(call), FileStamp::of(path))?;
        Ok(WatchResult {
            path: p.path,
            kind: WatchKind::Checkpoint,
            images: Vec::new(),
        })
    }
}

/// Stops this client's watch of a path.
pub fn remove(call: &Call, p: WatchParams) -> Result<(), MethodError> {
    call.service
        .watches
        .remove(Path::new(&p.path), &owner(call))
}
