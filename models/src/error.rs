//! The engine's error type: one variant per kind of failure, each naming the thing at fault.

use std::path::PathBuf;

/// Everything the engine can refuse or fail at.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// A weight, model or image file whose contents are not what its format requires.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A pickle that names something outside the allow-list; it is never executed.
    #[error("{path}: refused to load pickle: it references `{global}`, which is not a tensor-rebuild function or a plain container")]
    UnsafePickle {
        /// The file.
        path: PathBuf,
        /// The module.name the pickle asked for.
        global: String,
    },
    /// Weights that do not fit the architecture.
    #[error("{0}")]
    Weights(String),
    /// A tensor whose shape is not the one expected.
    #[error("{what}: expected shape {expected}, found {found}")]
    Shape {
        /// The layer or tensor.
        what: String,
        /// The expected shape.
        expected: String,
        /// The shape found.
        found: String,
    },
    /// A layer path that the model does not have.
    #[error("unknown layer `{layer}`{hint}")]
    UnknownLayer {
        /// The path asked for.
        layer: String,
        /// A suggestion ("; did you mean ...").
        hint: String,
    },
    /// An operation the engine does not implement (an ONNX op, an unknown architecture).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A request whose arguments are out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// The caller cancelled the computation (through its [`crate::progress::Progress`]).
    #[error("cancelled")]
    Cancelled,
    /// An error from candle's tensor library.
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
}

impl Error {
    /// A short machine-readable name of the error's kind (the protocol's `data.kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Io { .. } => "io",
            Error::Format { .. } => "format",
            Error::UnsafePickle { .. } => "unsafePickle",
            Error::Weights(_) => "weights",
            Error::Shape { .. } => "shape",
            Error::UnknownLayer { .. } => "unknownLayer",
            Error::Unsupported(_) => "unsupported",
            Error::InvalidArgument(_) => "invalidArgument",
            Error::Cancelled => "cancelled",
            Error::Tensor(_) => "tensor",
        }
    }

    /// A format error for `path`.
    pub fn format(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Format {
            path: path.into(),
            message: message.into(),
        }
    }
}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl From<convlens_shared::choices::UnknownName> for Error {
    fn from(e: convlens_shared::choices::UnknownName) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}
