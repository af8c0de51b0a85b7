//! One call of a handler, and the result cache the handlers share.

use convlens_models::progress::Progress;
use convlens_shared::methods::progress::ProgressToken;

use crate::cache::VersionKey;
use crate::clients::ClientId;
use crate::error::MethodError;
use crate::service::Service;

/// One call of a handler: the service, who asked, and where progress goes (it may cancel).
pub struct Call<'a> {
    /// The service.
    pub service: &'a Service,
    /// The client (none in-process).
    pub client: Option<ClientId>,
    /// Progress and cancellation.
    pub progress: &'a dyn Progress,
    /// Where pieces of the result go before it is done.
    pub partial: &'a dyn PartialResults,
}

/// Where a request's partial results go (LSP's `partialResultToken`): the daemon sends each
/// as `$/progress` with the token to the client that asked; in-process, the caller takes it.
pub trait PartialResults: Sync {
    /// Sends `value`, a piece of the result, to whoever passed `token`.
    fn send(&self, token: &ProgressToken, value: serde_json::Value);
}

/// Partial results nobody asked for (inline methods, callers that want only the result).
pub struct NoPartials;

impl PartialResults for NoPartials {
    fn send(&self, _: &ProgressToken, _: serde_json::Value) {}
}

impl<F: Fn(&ProgressToken, serde_json::Value) + Sync> PartialResults for F {
    fn send(&self, token: &ProgressToken, value: serde_json::Value) {
        self(token, value)
    }
}

/// The model's cache key and the cached result for `key`, or the result of `compute` kept.
pub fn cached<R: serde::Serialize + serde::de::DeserializeOwned>(
    call: &Call,
    version: &VersionKey,
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
