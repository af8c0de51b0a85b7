//! The daemon's state without its socket: the device, the models, the caches, the watches and
//! the method handlers. The server calls it from its workers; the CLI's `--no-daemon` mode
//! calls it directly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use convlens_models::progress::{Progress, Silent};
use convlens_shared::methods::RequestMethod;
use serde_json::Value;

use crate::cache::{ActivationCache, InputCache, ResultCache, VersionKey};
use crate::clients::{ClientId, Clients};
use crate::jobs::JobQueue;
use crate::methods::Router;
use crate::registry::ModelRegistry;
use crate::watch::Watches;
use crate::{Config, MethodError};

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
    router: Router,
}

/// One call of a handler: the service, who asked, and where progress goes (it may cancel).
pub struct Call<'a> {
    /// The service.
    pub service: &'a Service,
    /// The client (none in-process).
    pub client: Option<ClientId>,
    /// Progress and cancellation.
    pub progress: &'a dyn Progress,
}

impl Service {
    /// Opens the device and builds an empty service.
    pub fn new(config: Config) -> convlens_models::Result<Arc<Service>> {
        let device = convlens_models::device::parse_device(&config.device)?;
        Ok(Arc::new_cyclic(|weak| Service {
            device_name: crate::device_name::canonical(&config.device),
            models: ModelRegistry::new(device, config.memory_budget).with_history(&config),
            inputs: InputCache::new(config.activation_cache_bytes / 4),
            activations: ActivationCache::new(config.activation_cache_bytes),
            results: ResultCache::new(config.result_cache_bytes),
            clients: Clients::default(),
            watches: Watches::new(weak.clone(), config.settle),
            jobs: OnceLock::new(),
            started: Instant::now(),
            shutting_down: AtomicBool::new(false),
            router: Router::new(),
            config,
        }))
    }

    /// The method table.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Runs `method` with raw `params` on this thread.
    pub fn call(
        &self,
        method: &str,
        params: Value,
        client: Option<ClientId>,
        progress: &dyn Progress,
    ) -> Result<Value, MethodError> {
        let route = self.router.get(method).ok_or_else(|| {
            MethodError::new(
                convlens_shared::codes::METHOD_NOT_FOUND,
                format!("unknown method `{method}`"),
                convlens_shared::codes::kind::METHOD_NOT_FOUND,
            )
        })?;
        let call = Call {
            service: self,
            client,
            progress,
        };
        (route.call)(&call, params)
    }

    /// Runs method `M` in-process (the CLI's `--no-daemon`), reporting to `progress`.
    pub fn call_typed<M: RequestMethod>(
        &self,
        params: &M::Params,
        progress: Option<&dyn Progress>,
    ) -> Result<M::Result, MethodError> {
        let params =
            serde_json::to_value(params).map_err(|e| MethodError::internal(e.to_string()))?;
        let value = self.call(M::NAME, params, None, progress.unwrap_or(&Silent))?;
        serde_json::from_value(value).map_err(|e| MethodError::internal(e.to_string()))
    }

    /// Drops every cached entry of model `id` except those of version `keep`.
    pub fn drop_caches(&self, id: &str, keep: Option<u64>) {
        let keep_entry = |v: &VersionKey| v.model != id || Some(v.version) == keep;
        self.inputs.retain(keep_entry);
        self.activations.retain(keep_entry);
        self.results.retain(keep_entry);
    }

    /// Whether `shutdown` was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
