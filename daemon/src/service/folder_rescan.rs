//! A watched folder changed: list its images again and tell the subscribers what came and went.

use std::collections::BTreeSet;
use std::path::Path;

use convlens_shared::methods::images::{ImagesChanged, ImagesChangedParams};

use super::Service;
use crate::files::list_images;

/// Rescans `folder` and sends `images/changed` if its images differ from the last scan.
pub fn rescan(service: &Service, folder: &Path) {
    let now = list_images(folder).unwrap_or_default();
    let Some((old, subscribers)) = service.watches.swap_images(folder, now.clone()) else {
        return;
    };
    let added: Vec<String> = now.difference(&old).cloned().collect();
    let removed: Vec<String> = old.difference(&now).cloned().collect();
    if added.is_empty() && removed.is_empty() {
        return;
    }
    tracing::info!(folder = %folder.display(), added = added.len(), removed = removed.len(), "images changed");
    let params = ImagesChangedParams {
        folder: folder.display().to_string(),
        added,
        removed,
    };
    let unique: BTreeSet<_> = subscribers.into_iter().collect();
    for s in unique {
        service.clients.notify::<ImagesChanged>(s, &params);
    }
}
