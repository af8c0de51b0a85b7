//! The daemon without its socket, for the CLI's `--no-daemon`: a service and the method table,
//! called on the caller's thread.

use std::sync::Arc;

use convlens_models::progress::Progress;
use convlens_shared::methods::RequestMethod;

use crate::config::Config;
use crate::error::MethodError;
pub use crate::methods::call::PartialResults;
use crate::methods::router::Router;
use crate::service::Service;

/// A service and its methods in this process.
pub struct InProcess {
    service: Arc<Service>,
    router: Router,
}

impl InProcess {
    /// Opens the device `config` names and builds an empty service.
    pub fn new(config: Config) -> convlens_models::Result<InProcess> {
        Ok(InProcess {
            service: Service::new(config)?,
            router: crate::methods::table(),
        })
    }

    /// Runs method `M`, reporting to `progress` and passing partial results to `partial`.
    pub fn call_typed<M: RequestMethod>(
        &self,
        params: &M::Params,
        progress: Option<&dyn Progress>,
        partial: Option<&dyn PartialResults>,
    ) -> Result<M::Result, MethodError> {
        self.router
            .call_typed::<M>(&self.service, params, progress, partial)
    }
}
