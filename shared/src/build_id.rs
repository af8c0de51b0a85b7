//! What build a program is: its executable's size and modification time. The CLI uses a running
//! daemon only when the daemon's build is its own, so a daemon left over from an older build is
//! never asked to do a newer build's work.

use std::os::unix::fs::MetadataExt;

/// `SIZE-MTIME` of the running executable (`unknown` when it cannot be read).
pub fn build_id() -> String {
    std::env::current_exe()
        .and_then(std::fs::metadata)
        .map(|m| format!("{}-{}.{}", m.len(), m.mtime(), m.mtime_nsec()))
        .unwrap_or_else(|_| "unknown".into())
}
