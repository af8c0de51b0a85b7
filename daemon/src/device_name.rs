//! The canonical name of a device spec, so that a client can tell whether a daemon runs where it
//! wants to compute.

/// `cuda` → `cuda:0`; `cpu` and `cuda:N` as they are; anything else unchanged (it fails to open).
pub fn canonical(spec: &str) -> String {
    match spec.trim() {
        "cuda" => "cuda:0".into(),
        other => other.to_string(),
    }
}
