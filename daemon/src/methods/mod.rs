//! The method table: one handler file per capability, each mapping its parameters (typed in
//! `convlens_shared::methods::<capability>`) onto the engine call.
//!
//! A route is either *inline* (bookkeeping, answered on the I/O task) or a *job* (engine work,
//! run on the job queue at the priority its parameters call for). `initialize`, `shutdown` and
//! `exit` belong to the connection and are handled by the server.

pub mod activations;
pub mod deconv;
pub mod explain;
pub mod filters;
pub mod folder;
pub mod history;
pub mod images;
pub mod maximize;
pub mod model;
pub mod predict;
pub mod status;
pub mod watch;

use std::collections::BTreeMap;

use convlens_shared::methods::RequestMethod;
use serde_json::Value;

use crate::jobs::Priority;
use crate::{Call, MethodError};

/// A handler over raw JSON.
pub type Handler = Box<dyn Fn(&Call, Value) -> Result<Value, MethodError> + Send + Sync>;

/// Picks a job's priority from its raw parameters.
pub type PriorityOf = fn(&Value) -> Priority;

/// Where a method runs.
pub enum Mode {
    /// On the I/O task: it only reads or updates the daemon's bookkeeping.
    Inline,
    /// On the job queue, at the priority its parameters call for.
    Job(PriorityOf),
}

/// A method's handler and where it runs.
pub struct Route {
    /// Inline or job.
    pub mode: Mode,
    /// The handler.
    pub call: Handler,
}

/// Every method the service answers.
pub struct Router {
    routes: BTreeMap<&'static str, Route>,
}

/// Always interactive.
pub fn interactive(_: &Value) -> Priority {
    Priority::Interactive
}

/// Always a sweep.
pub fn sweep(_: &Value) -> Priority {
    Priority::Sweep
}

impl Router {
    /// The table of every capability.
    pub fn new() -> Router {
        let mut r = Router {
            routes: BTreeMap::new(),
        };
        model::register(&mut r);
        history::register(&mut r);
        predict::register(&mut r);
        explain::register(&mut r);
        activations::register(&mut r);
        deconv::register(&mut r);
        maximize::register(&mut r);
        filters::register(&mut r);
        folder::register(&mut r);
        images::register(&mut r);
        watch::register(&mut r);
        status::register(&mut r);
        r
    }

    /// Adds method `M`, answered on the I/O task.
    pub fn inline<M: RequestMethod + 'static>(
        &mut self,
        f: fn(&Call, M::Params) -> Result<M::Result, MethodError>,
    ) {
        self.routes.insert(
            M::NAME,
            Route {
                mode: Mode::Inline,
                call: typed::<M>(f),
            },
        );
    }

    /// Adds method `M`, run on the job queue at `priority`.
    pub fn job<M: RequestMethod + 'static>(
        &mut self,
        priority: PriorityOf,
        f: fn(&Call, M::Params) -> Result<M::Result, MethodError>,
    ) {
        self.routes.insert(
            M::NAME,
            Route {
                mode: Mode::Job(priority),
                call: typed::<M>(f),
            },
        );
    }

    /// The route of `method`.
    pub fn get(&self, method: &str) -> Option<&Route> {
        self.routes.get(method)
    }

    /// Every method's name.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes.keys().copied()
    }
}

impl Default for Router {
    fn default() -> Self {
        Router::new()
    }
}

/// `f` over raw JSON: parameters decoded (absent means `{}`), the result encoded.
fn typed<M: RequestMethod + 'static>(
    f: fn(&Call, M::Params) -> Result<M::Result, MethodError>,
) -> Handler {
    Box::new(move |call, params| {
        let params = if params.is_null() {
            Value::Object(Default::default())
        } else {
            params
        };
        let params: M::Params =
            serde_json::from_value(params).map_err(|e| MethodError::invalid_params(M::NAME, e))?;
        let result = f(call, params)?;
        serde_json::to_value(result).map_err(|e| MethodError::internal(e.to_string()))
    })
}

/// The model's cache key and the cached result for `key`, or the result of `compute` kept.
pub fn cached<R: serde::Serialize + serde::de::DeserializeOwned>(
    call: &Call,
    version: &crate::cache::VersionKey,
    key: String,
    compute: impl FnOnce() -> Result<R, MethodError>,
) -> Result<R, MethodError> {
    let results = &call.service.results;
    if let Some(v) = results.get(version, &key) {
        if let Ok(r) = serde_json::from_value::<R>((*v).clone()) {
            return Ok(r);
        }
    }
    let r = compute()?;
    if let Ok(v) = serde_json::to_value(&r) {
        results.insert(version, key, std::sync::Arc::new(v));
    }
    Ok(r)
}
