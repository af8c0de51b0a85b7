//! Locking that survives a panic elsewhere: a leaf module the daemon, the client and the TUI
//! share.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, going on if a thread panicked while holding it (every critical section in
/// convlens leaves its data consistent between statements).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
