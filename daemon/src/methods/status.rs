//! `status`: models, memory, watches, queue and clients.

use convlens_shared::methods::status::{Memory, Queue, Status, StatusResult};
use convlens_shared::methods::NoParams;

use super::call::Call;
use super::router::Router;
use crate::error::MethodError;

/// Adds `status`.
pub fn register(r: &mut Router) {
    r.inline::<Status>(status);
}

/// What the daemon holds now.
pub fn status(call: &Call, _: NoParams) -> Result<StatusResult, MethodError> {
    let s = call.service;
    s.drop_gone_models();
    Ok(StatusResult {
        pid: std::process::id(),
        uptime_secs: s.started.elapsed().as_secs(),
        device: s.device_name.clone(),
        socket: s.config.socket.display().to_string(),
        clients: s.clients.count(),
        models: s.models.list(),
        memory: Memory {
            budget: s.models.budget(),
            budget_is_default: s.config.memory_budget.is_none() && s.models.budget().is_some(),
            models: s.models.resident_bytes(),
            activation_cache: s.activations.bytes() + s.inputs.bytes(),
            result_cache: s.results.bytes(),
            rss: crate::memory::resident_set_bytes(),
        },
        watches: s.watches.list(),
        queue: s.jobs.get().map(|q| q.stats()).unwrap_or(Queue {
            interactive: 0,
            sweeps: 0,
            running: 0,
            workers: 0,
            completed: 0,
        }),
        forward_passes: s.activations.forwards(),
    })
}
