//! The daemon's state without its socket and its methods: the device, the models, the caches,
//! the watches, and what the daemon does by itself when a watched path changes
//! ([`folder_rescan`], [`checkpoint_reload`]). The method handlers (`crate::methods`) work on it.

pub mod checkpoint_reload;
pub mod folder_rescan;
pub mod watch_events;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use crate::cache::{ActivationCache, InputCache, ResultCache, VersionKey};
use crate::clients::Clients;
use crate::config::Config;
use crate::history::History;
use crate::jobs::JobQueue;
use crate::registry::ModelRegistry;
use crate::watch::{ChangeListener, Owner, Watches};

/// Everything the handlers share.
pub struct Service {
    /// The settings.
    pub config: Config,
    /// The device's canonical name (`cpu`, `cuda:0`).
    pub device_name: String,
    /// The models.
    pub models: ModelRegistry,
    /// Preprocessed inputs.
    pub inputs: InputCache,
    /// Forward-pass activations.
    pub activations: ActivationCache,
    /// Finished results.
    pub results: ResultCache,
    /// Connected clients (none in-process).
    pub clients: Clients,
    /// Watched folders and checkpoints.
    pub watches: Watches,
    /// The job queue, once the server has started it.
    pub jobs: OnceLock<JobQueue>,
    /// When it started.
    pub started: Instant,
    /// Set by `shutdown`: new requests are refused.
    pub shutting_down: AtomicBool,
}

impl Service {
    /// Opens the device and builds an empty service.
    pub fn new(config: Config) -> convlens_models::Result<Arc<Service>> {
        let device = convlens_models::device::parse_device(&config.device)?;
        let budget = config.memory_budget_for(crate::memory::device_memory(&device));
        Ok(Arc::new_cyclic(|weak: &Weak<Service>| Service {
            device_name: crate::device_name::canonical(&config.device),
            models: ModelRegistry::new(device, budget, History::new(&config)),
            inputs: InputCache::new(config.activation_cache_bytes / 4),
            activations: ActivationCache::new(config.activation_cache_bytes),
            results: ResultCache::new(config.result_cache_bytes),
            clients: Clients::default(),
            watches: Watches::new(weak.clone() as Weak<dyn ChangeListener>, config.settle),
            jobs: OnceLock::new(),
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            config,
        }))
    }

    /// Drops every cached entry of model `id` except those of version `keep`.
    pub fn drop_caches(&self, id: &str, keep: Option<u64>) {
        let keep_entry = |v: &VersionKey| v.model != id || Some(v.version) == keep;
        self.inputs.retain(keep_entry);
        self.activations.retain(keep_entry);
        self.results.retain(keep_entry);
    }

    /// Forgets the models whose file is gone and that no client holds and no request uses
    /// (their caches, watches and kept copies with them), and gives their memory back.
    /// Returns their ids.
    pub fn drop_gone_models(&self) -> Vec<String> {
        let dropped = self.models.drop_gone(self.config.settle);
        for id in &dropped {
            self.drop_caches(id, None);
            self.watches.remove_owner(&Owner::Model(id.clone()));
            tracing::info!(model = %id, "dropped: its file is gone and no client holds it");
        }
        if !dropped.is_empty() {
            self.release_free_memory();
        }
        dropped
    }

    /// Gives free memory back to the system (after a model is unloaded or replaced): the
    /// process's, and each worker's when it is next idle.
    pub fn release_free_memory(&self) {
        convlens_models::allocator::release_free_memory();
        if let Some(jobs) = self.jobs.get() {
            jobs.release_free_memory();
        }
    }

    /// Whether `shutdown` was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
