//! The method table: each method's name, its handler over raw JSON, and where it runs.
//!
//! A route is either *inline* (bookkeeping, answered on the I/O task) or a *job* (engine work,
//! run on the job queue at the priority its parameters call for).

use std::collections::BTreeMap;

use convlens_shared::methods::RequestMethod;
use serde_json::Value;

use convlens_models::progress::{Progress, Silent};

use super::call::{Call, NoPartials, PartialResults};
use crate::clients::ClientId;
use crate::error::MethodError;
use crate::jobs::Priority;
use crate::service::Service;

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
    /// An empty table (see [`super::table`] for the daemon's).
    pub fn new() -> Router {
        Router {
            routes: BTreeMap::new(),
        }
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

    /// Runs `method` with raw `params` on `service`, on this thread.
    pub fn call(
        &self,
        service: &Service,
        method: &str,
        params: Value,
        client: Option<ClientId>,
        progress: &dyn Progress,
        partial: &dyn PartialResults,
    ) -> Result<Value, MethodError> {
        let route = self.get(method).ok_or_else(|| {
            MethodError::new(
                convlens_shared::codes::METHOD_NOT_FOUND,
                format!("unknown method `{method}`"),
                convlens_shared::codes::kind::METHOD_NOT_FOUND,
            )
        })?;
        let call = Call {
            service,
            client,
            progress,
            partial,
        };
        (route.call)(&call, params)
    }

    /// Runs method `M` on `service` in-process (the CLI's `--no-daemon`), reporting to
    /// `progress` and passing partial results to `partial`.
    pub fn call_typed<M: RequestMethod>(
        &self,
        service: &Service,
        params: &M::Params,
        progress: Option<&dyn Progress>,
        partial: Option<&dyn PartialResults>,
    ) -> Result<M::Result, MethodError> {
        let params =
            serde_json::to_value(params).map_err(|e| MethodError::internal(e.to_string()))?;
        let value = self.call(
            service,
            M::NAME,
            params,
            None,
            progress.unwrap_or(&Silent),
            partial.unwrap_or(&NoPartials),
        )?;
        serde_json::from_value(value).map_err(|e| MethodError::internal(e.to_string()))
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
