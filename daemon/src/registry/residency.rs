//! Which models stay on the device: the resident ones fit the memory budget, the least recently
//! used model that no request holds is evicted first, and an evicted model keeps its entry and
//! is loaded again on its next use.

use convlens_shared::codes::{self, kind};

use super::entry::Entry;
use crate::error::MethodError;

/// The memory budget of the resident models.
#[derive(Clone, Copy, Debug)]
pub struct Residency {
    /// The most bytes resident models may take (none: no limit).
    pub budget: Option<u64>,
}

/// Bytes of the resident models among `entries`.
pub fn resident_bytes(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .filter(|e| e.resident.is_some())
        .map(|e| e.bytes)
        .sum()
}

impl Residency {
    /// Evicts least recently used models not in use (never `keep`) until the resident ones fit
    /// the budget; refuses when `keep` alone does not fit.
    pub fn enforce(&self, entries: &mut [Entry], keep: &str) -> Result<(), MethodError> {
        let Some(budget) = self.budget else {
            return Ok(());
        };
        if let Some(e) = entries.iter().find(|e| e.id == keep) {
            if e.bytes > budget {
                return Err(MethodError::new(
                    codes::REQUEST_FAILED,
                    format!(
                        "{} takes {} bytes, over the memory budget of {budget} bytes",
                        e.source, e.bytes
                    ),
                    kind::MEMORY_BUDGET,
                ));
            }
        }
        while resident_bytes(entries) > budget {
            let victim = entries
                .iter_mut()
                .filter(|e| e.id != keep && e.resident.is_some() && !e.in_use())
                .min_by_key(|e| e.last_used);
            match victim {
                Some(e) => {
                    tracing::info!(model = %e.id, bytes = e.bytes, "evicted (memory budget)");
                    e.resident = None;
                }
                None => {
                    tracing::warn!("over the memory budget: every other model is in use");
                    break;
                }
            }
        }
        Ok(())
    }
}
