//! The record of one version of a model: when it was loaded, from what, how big its file was,
//! the metrics beside it, and where its weights can be had again.

use std::path::PathBuf;

use convlens_shared::codes::{self, kind};
use convlens_shared::methods::history::VersionInfo;
use serde_json::Value;

use crate::error::MethodError;

/// Where a version's weights can be had again.
#[derive(Clone, Debug)]
pub enum Weights {
    /// A kept copy of its file.
    Copy(PathBuf),
    /// The model's own source, which is not reloaded (`demo`, `random:ARCH`, a file not
    /// watched).
    Source,
    /// Not kept: dropped to stay within the history's budget, or never copied.
    Gone,
}

/// One version of a model.
#[derive(Clone, Debug)]
pub struct VersionRecord {
    /// Its number, from 1.
    pub version: u64,
    /// When it was loaded (milliseconds since the Unix epoch).
    pub loaded_at: u64,
    /// The file (or `demo`, `random:ARCH`) it was loaded from.
    pub source: String,
    /// The size of that file.
    pub bytes: u64,
    /// Where its weights can be had again.
    pub weights: Weights,
    /// The metrics written beside the checkpoint.
    pub metrics: Option<Value>,
}

impl VersionRecord {
    /// A version loaded now from `source`, of `bytes`, its weights at `weights`.
    pub fn now(
        version: u64,
        source: &str,
        bytes: u64,
        weights: Weights,
        metrics: Option<Value>,
    ) -> VersionRecord {
        VersionRecord {
            version,
            loaded_at: now_ms(),
            source: source.to_string(),
            bytes,
            weights,
            metrics,
        }
    }

    /// Whether a copy of its file is kept.
    pub fn has_copy(&self) -> bool {
        matches!(self.weights, Weights::Copy(_))
    }

    /// What `model/versions` says of it.
    pub fn info(&self) -> VersionInfo {
        VersionInfo {
            version: self.version,
            loaded_at: self.loaded_at,
            source: self.source.clone(),
            bytes: self.bytes,
            kept: !matches!(self.weights, Weights::Gone),
            metrics: self.metrics.clone(),
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The record of `version` among `versions` of model `id`, or an error naming the versions
/// there are.
pub fn find<'a>(
    id: &str,
    versions: &'a [VersionRecord],
    version: u64,
) -> Result<&'a VersionRecord, MethodError> {
    versions
        .iter()
        .find(|r| r.version == version)
        .ok_or_else(|| {
            let range = match (versions.first(), versions.last()) {
                (Some(a), Some(b)) if a.version != b.version => {
                    format!("versions {} to {}", a.version, b.version)
                }
                (Some(a), _) => format!("only version {}", a.version),
                _ => "no versions".to_string(),
            };
            MethodError::new(
                codes::REQUEST_FAILED,
                format!("model `{id}` has no version {version} (it has {range})"),
                kind::UNKNOWN_MODEL,
            )
        })
}
