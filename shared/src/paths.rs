//! Where the daemon's socket, lock and log live.

use std::path::{Path, PathBuf};

/// The socket's file name inside its folder.
pub const SOCKET_NAME: &str = "daemon.sock";

/// The default socket: `$XDG_RUNTIME_DIR/convlens/daemon.sock`, or `/tmp/convlens-$UID/daemon.sock`
/// when `XDG_RUNTIME_DIR` is unset or empty.
pub fn default_socket() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("convlens").join(SOCKET_NAME),
        _ => PathBuf::from(format!(
            "/tmp/convlens-{}",
            rustix::process::getuid().as_raw()
        ))
        .join(SOCKET_NAME),
    }
}

/// The lock file beside `socket`, held by the daemon for its lifetime.
pub fn lock_file(socket: &Path) -> PathBuf {
    sibling(socket, "lock")
}

/// The log file beside `socket`.
pub fn log_file(socket: &Path) -> PathBuf {
    sibling(socket, "log")
}

/// `socket` with its extension replaced by `extension` (`daemon.sock` → `daemon.log`).
fn sibling(socket: &Path, extension: &str) -> PathBuf {
    socket.with_extension(extension)
}
