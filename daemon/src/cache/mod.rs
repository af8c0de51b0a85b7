//! The daemon's caches: preprocessed inputs, forward-pass activations, and finished results,
//! each bounded in bytes and keyed by model version so that a reload never serves old numbers.

pub mod activations;
pub mod byte_lru;
pub mod inputs;
pub mod results;

pub use activations::{ActivationCache, Activations};
pub use byte_lru::ByteLru;
pub use inputs::InputCache;
pub use results::ResultCache;

/// A model version: the model's id and its version number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VersionKey {
    /// The model's id.
    pub model: String,
    /// Its version.
    pub version: u64,
}

/// Bytes a tensor takes.
pub fn tensor_bytes(t: &candle_core::Tensor) -> u64 {
    (t.elem_count() * t.dtype().size_in_bytes()) as u64
}
