//! `model/versions` and `model/atVersion`: the history of a watched checkpoint. Each version the
//! daemon loaded from it is kept (within a count and a byte budget, oldest dropped first) and
//! can be had again as a frozen model whose id is the model's id, `@` and the version (`m1@3`);
//! every method that takes a model id takes a frozen one.

use serde::{Deserialize, Serialize};

use super::model::{LoadResult, ModelId};
use super::request;

request!(
    /// Every version of a model, oldest first (a model whose file is not watched has one).
    ModelVersions,
    "model/versions",
    super::model::ModelRef,
    VersionsResult
);
request!(
    /// A kept version of a model as a frozen model (`m1@3`), loaded as `model/load` would.
    ModelAtVersion,
    "model/atVersion",
    AtVersionParams,
    LoadResult
);

/// `model/atVersion`'s parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AtVersionParams {
    /// The model (`m1`).
    pub model_id: ModelId,
    /// The version, as `model/versions` lists it.
    pub version: u64,
}

/// `model/versions`' result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionsResult {
    /// The model (the one a frozen id belongs to).
    pub model_id: ModelId,
    /// Its versions, oldest first; the last is the one serving now.
    pub versions: Vec<VersionInfo>,
}

/// One version of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    /// The version (1 for the first load, then one more per reload).
    pub version: u64,
    /// When the daemon loaded it, in milliseconds since the Unix epoch.
    pub loaded_at: u64,
    /// The file it was loaded from (`demo` or `random:ARCH` for those).
    pub source: String,
    /// The file's size in bytes (0 for `demo` and `random:ARCH`).
    pub bytes: u64,
    /// Whether its weights can still be had (`model/atVersion`); false once its copy was
    /// dropped to stay within the history's budget.
    pub kept: bool,
    /// The metrics JSON written beside the checkpoint (`checkpoint.json` beside
    /// `checkpoint.safetensors`: step, epoch, loss, test_accuracy, …), when there was one.
    #[serde(default)]
    pub metrics: Option<serde_json::Value>,
}

/// The id of version `version` of `model_id` frozen (`m1@3`).
pub fn frozen_id(model_id: &str, version: u64) -> ModelId {
    format!("{model_id}@{version}")
}

/// The model and version a frozen id names (`m1@3` → (`m1`, 3)); `None` for any other id.
pub fn parse_frozen_id(id: &str) -> Option<(&str, u64)> {
    let (model, version) = id.rsplit_once('@')?;
    if model.is_empty() || version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((model, version.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_ids_round_trip_and_others_are_not_frozen() {
        assert_eq!(frozen_id("m1", 3), "m1@3");
        assert_eq!(parse_frozen_id(&frozen_id("m12", 40)), Some(("m12", 40)));
        for id in ["m1", "m1@", "@3", "m1@x", "m1@-3", "m1@+3"] {
            assert_eq!(parse_frozen_id(id), None, "{id}");
        }
    }

    #[test]
    fn a_version_without_metrics_has_them_null_on_the_wire() {
        let v = VersionInfo {
            version: 2,
            loaded_at: 1_700_000_000_000,
            source: "/run/checkpoint.safetensors".into(),
            bytes: 1234,
            kept: true,
            metrics: None,
        };
        let json = serde_json::to_value(&v).unwrap_or_default();
        assert_eq!(json["loadedAt"], 1_700_000_000_000u64);
        assert!(json["metrics"].is_null());
        assert!(json.as_object().is_some_and(|o| o.contains_key("metrics")));
        let back: VersionInfo = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, v);
    }
}
