//! Finished results by their full parameters: asking the same question twice answers from
//! memory.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{ByteLru, VersionKey};
use convlens_shared::sync::lock;

/// Results by (model version, method, canonical parameters).
pub struct ResultCache {
    entries: Mutex<ByteLru<(VersionKey, String), Arc<Value>>>,
}

impl ResultCache {
    /// A cache of at most `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        ResultCache {
            entries: Mutex::new(ByteLru::new(capacity)),
        }
    }

    /// The cached result for `key` (method name and canonical parameters).
    pub fn get(&self, version: &VersionKey, key: &str) -> Option<Arc<Value>> {
        lock(&self.entries).get(&(version.clone(), key.to_string()))
    }

    /// Keeps `value` for `key`.
    pub fn insert(&self, version: &VersionKey, key: String, value: Arc<Value>) {
        let bytes = approx_bytes(&value) + key.len() as u64;
        lock(&self.entries).insert((version.clone(), key), value, bytes);
    }

    /// Drops the entries whose version `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&VersionKey) -> bool) {
        lock(&self.entries).retain(|(v, _)| keep(v));
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        lock(&self.entries).bytes()
    }
}

/// About the bytes `value` takes (strings dominate: base64 maps and pictures).
fn approx_bytes(value: &Value) -> u64 {
    match value {
        Value::String(s) => s.len() as u64 + 24,
        Value::Array(a) => a.iter().map(approx_bytes).sum::<u64>() + 24,
        Value::Object(o) => {
            o.iter()
                .map(|(k, v)| k.len() as u64 + approx_bytes(v))
                .sum::<u64>()
                + 48
        }
        _ => 16,
    }
}
