//! How a daemon is set up (`convlens daemon` flags).

use std::path::PathBuf;
use std::time::Duration;

/// The share of the device's memory (the machine's RAM, or the GPU's on CUDA) that resident
/// models may take when no budget is given: the box is shared with training jobs.
pub const DEFAULT_MEMORY_SHARE: f64 = 0.25;

/// The daemon's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The socket (default: [`convlens_shared::paths::default_socket`]).
    pub socket: PathBuf,
    /// Where models run: `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    /// Folders and checkpoints watched from the start, for every client.
    pub watch: Vec<PathBuf>,
    /// The most bytes resident models may take; the least recently used model not in use is
    /// evicted past it (default: [`DEFAULT_MEMORY_SHARE`] of the device's memory; `u64::MAX`
    /// for no limit).
    pub memory_budget: Option<u64>,
    /// Bytes of cached activations and inputs.
    pub activation_cache_bytes: u64,
    /// Bytes of cached results.
    pub result_cache_bytes: u64,
    /// The largest frame read.
    pub max_frame: usize,
    /// Worker threads for engine work (at least 2: one only takes interactive jobs).
    pub workers: usize,
    /// Jobs that may wait in the queue before requests are refused as busy.
    pub queue_capacity: usize,
    /// Exit after this long with no client, no job and no client watch.
    pub idle_exit: Option<Duration>,
    /// Also log to stderr.
    pub foreground: bool,
    /// How long a changed checkpoint's size and mtime must stay the same before it is read.
    pub settle: Duration,
    /// The most versions of each watched checkpoint kept for `model/atVersion` (0: none).
    pub history_versions: usize,
    /// The most bytes all kept checkpoint versions may take on disk together.
    pub history_bytes: u64,
    /// Where kept versions are copied; a folder of this process is made inside and removed when
    /// it ends (default: `daemon-history` in convlens's cache folder, `~/.cache/convlens`).
    pub history_dir: Option<PathBuf>,
}

impl Config {
    /// The budget of resident models on a device of `device_memory` bytes: the one given, else
    /// [`DEFAULT_MEMORY_SHARE`] of the device's memory (none when that is unknown).
    pub fn memory_budget_for(&self, device_memory: Option<u64>) -> Option<u64> {
        match self.memory_budget {
            Some(u64::MAX) => None,
            Some(bytes) => Some(bytes),
            None => device_memory.map(|m| (m as f64 * DEFAULT_MEMORY_SHARE) as u64),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            socket: convlens_shared::paths::default_socket(),
            device: "cpu".into(),
            watch: Vec::new(),
            memory_budget: None,
            activation_cache_bytes: 512 << 20,
            result_cache_bytes: 256 << 20,
            max_frame: convlens_shared::framing::DEFAULT_MAX_FRAME,
            workers: 2,
            queue_capacity: 1024,
            idle_exit: None,
            foreground: false,
            settle: Duration::from_millis(500),
            history_versions: 32,
            history_bytes: 1 << 30,
            history_dir: None,
        }
    }
}
