//! A daemon for one test: the real binary on a socket in a scratch folder of its own, stopped
//! and cleaned up on drop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use convlens_shared::{Client, Notification};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch folder removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A new empty folder under the system's temp folder.
    pub fn new(tag: &str) -> Scratch {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "convlens-{tag}-{}-{n}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A path inside it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running daemon.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub scratch: Scratch,
}

/// The convlens binary.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_convlens")
}

impl Daemon {
    /// Starts `convlens daemon` with `args` on a fresh socket and waits until it answers.
    pub fn start(tag: &str, args: &[&str]) -> Daemon {
        let scratch = Scratch::new(tag);
        let socket = scratch.path("run/daemon.sock");
        // Kept checkpoint versions go in the scratch folder, not the user's cache.
        let history = (!args.contains(&"--history-dir"))
            .then(|| ["--history-dir".into(), scratch.path("history")])
            .into_iter()
            .flatten();
        let child = Command::new(binary())
            .arg("daemon")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .args(history)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the convlens binary runs");
        let d = Daemon {
            child,
            socket,
            scratch,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if Client::connect(&d.socket).is_ok() {
                return d;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the daemon did not answer on {}", d.socket.display());
    }

    /// A connected, initialized client.
    pub fn client(&self) -> Client {
        Client::connect(&self.socket).expect("connects")
    }

    /// The daemon's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(convlens_shared::paths::log_file(&self.socket)).unwrap_or_default()
    }

    /// The daemon's resident set in bytes, from /proc.
    pub fn rss(&self) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = text.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 1024
    }

    /// Waits for the process to end (at most `timeout`); its exit status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a notification of `method` for which `pred` holds, at most `timeout`; others seen
/// on the way are returned too.
pub fn wait_for(
    client: &Client,
    method: &str,
    timeout: Duration,
    pred: impl Fn(&Notification) -> bool,
) -> (Option<Notification>, Vec<Notification>) {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Some(n) = client.next_notification(Duration::from_millis(50)) {
            if n.method == method && pred(&n) {
                return (Some(n), seen);
            }
            seen.push(n);
        }
    }
    (None, seen)
}

/// Writes a preprocessed input [1, 3, size, size] with values from `seed` as .npy.
pub fn write_input(path: &Path, size: usize, seed: u64) {
    let n = 3 * size * size;
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect();
    candle_core::Tensor::from_vec(values, (1, 3, size, size), &candle_core::Device::Cpu)
        .unwrap()
        .write_npy(path)
        .unwrap();
}

/// `got` equals `want` within 1e-5 of `want`'s largest magnitude.
pub fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * scale,
            "{what}[{i}]: {g} vs {w} (scale {scale})"
        );
    }
}

/// The error response `r` must be.
pub fn server_error<T: std::fmt::Debug>(
    r: Result<T, convlens_shared::ClientError>,
) -> convlens_shared::ResponseError {
    match r {
        Err(convlens_shared::ClientError::Server(e)) => e,
        other => panic!("expected an error response, got {other:?}"),
    }
}
