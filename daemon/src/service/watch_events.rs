//! The service hears of changed watched paths: a folder is rescanned on the watcher's thread;
//! a checkpoint settles and reloads on a thread of its own (it may wait seconds for a writer).

use std::path::PathBuf;
use std::sync::Arc;

use super::checkpoint_reload::settle_and_reload;
use super::folder_rescan::rescan;
use super::Service;
use crate::watch::ChangeListener;

impl ChangeListener for Service {
    fn paths_changed(self: Arc<Self>, paths: &[PathBuf]) {
        let changed = self.watches.on_change(paths);
        for folder in changed.folders {
            rescan(&self, &folder);
        }
        for path in changed.checkpoints {
            let service = Arc::clone(&self);
            let spawned = std::thread::Builder::new()
                .name("convlens-checkpoint".into())
                .spawn(move || settle_and_reload(&service, &path));
            if let Err(e) = spawned {
                tracing::error!("cannot start a checkpoint thread: {e}");
            }
        }
    }
}
