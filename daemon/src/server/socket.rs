//! The socket: its folder (0700 when the daemon makes it), the lock that says a daemon runs,
//! the socket itself (0600), and the peer check (SO_PEERCRED: the same uid only).

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use convlens_shared::paths;
use rustix::fs::{flock, FlockOperation};
use tokio::net::{UnixListener, UnixStream};

/// A bound socket and the lock that makes it ours; the socket file is removed on drop.
pub struct Bound {
    /// The listener.
    pub listener: UnixListener,
    path: PathBuf,
    _lock: File,
}

impl Drop for Bound {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path`: makes its folder (0700), takes the lock beside it (another daemon holding it
/// is an error that says so), replaces a stale socket, and makes the socket 0600.
pub fn bind(path: &Path) -> anyhow::Result<Bound> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot make {}", dir.display()))?;
    }
    let lock_path = paths::lock_file(path);
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    if flock(&lock, FlockOperation::NonBlockingLockExclusive).is_err() {
        bail!(
            "another convlens daemon is running on {} (`convlens status` shows it)",
            path.display()
        );
    }
    if path.exists() {
        // We hold the lock, so no daemon serves this socket: it is stale.
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot make {} private", path.display()))?;
    Ok(Bound {
        listener,
        path: path.to_path_buf(),
        _lock: lock,
    })
}

/// Whether the peer of `stream` runs as our uid.
pub fn peer_is_us(stream: &UnixStream) -> Result<bool, std::io::Error> {
    let cred = stream.peer_cred()?;
    Ok(cred.uid() == rustix::process::getuid().as_raw())
}
