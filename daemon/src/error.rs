//! A method's failure, as it goes on the wire: a JSON-RPC code, a message and `data.kind`.

use convlens_shared::codes::{self, kind};
use convlens_shared::ResponseError;

/// Why a method failed.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodError {
    /// A [`codes`] value.
    pub code: i64,
    /// What went wrong, for a person.
    pub message: String,
    /// `data.kind`.
    pub kind: String,
}

impl MethodError {
    /// An error with `code`, `message` and `kind`.
    pub fn new(code: i64, message: impl Into<String>, kind: &str) -> Self {
        MethodError {
            code,
            message: message.into(),
            kind: kind.into(),
        }
    }

    /// Parameters that do not fit `method`.
    pub fn invalid_params(method: &str, e: impl std::fmt::Display) -> Self {
        Self::new(
            codes::INVALID_PARAMS,
            format!("invalid params for {method}: {e}"),
            kind::INVALID_PARAMS,
        )
    }

    /// A model id the daemon does not know.
    pub fn unknown_model(id: &str) -> Self {
        Self::new(
            codes::REQUEST_FAILED,
            format!("unknown model `{id}`: load it with model/load"),
            kind::UNKNOWN_MODEL,
        )
    }

    /// A request cancelled by `$/cancelRequest`.
    pub fn cancelled() -> Self {
        Self::new(
            codes::REQUEST_CANCELLED,
            "request cancelled",
            kind::CANCELLED,
        )
    }

    /// A failure inside the daemon.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(codes::INTERNAL_ERROR, message, kind::INTERNAL)
    }

    /// Whether it is a cancellation.
    pub fn is_cancelled(&self) -> bool {
        self.code == codes::REQUEST_CANCELLED
    }
}

impl std::fmt::Display for MethodError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MethodError {}

impl From<convlens_models::Error> for MethodError {
    fn from(e: convlens_models::Error) -> Self {
        match e {
            convlens_models::Error::Cancelled => MethodError::cancelled(),
            other => MethodError::new(codes::REQUEST_FAILED, other.to_string(), other.kind()),
        }
    }
}

impl From<candle_core::Error> for MethodError {
    fn from(e: candle_core::Error) -> Self {
        convlens_models::Error::from(e).into()
    }
}

impl From<MethodError> for ResponseError {
    fn from(e: MethodError) -> Self {
        ResponseError::new(e.code, e.message, &e.kind)
    }
}
