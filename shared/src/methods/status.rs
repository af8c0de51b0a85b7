//! `status`: what the daemon holds (`convlens status`).

use serde::{Deserialize, Serialize};

use super::model::ModelInfo;
use super::watch::WatchKind;
use super::{request, NoParams};

request!(
    /// The daemon's models, memory, watches, queue and clients.
    Status,
    "status",
    NoParams,
    StatusResult
);

/// Memory the daemon accounts for, in bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// The budget for resident models (`--memory-budget`, else a share of the device's
    /// memory), if any.
    pub budget: Option<u64>,
    /// Whether the budget is the default share of the device's memory.
    #[serde(default)]
    pub budget_is_default: bool,
    /// Parameters of the resident models.
    pub models: u64,
    /// Cached activations and inputs.
    pub activation_cache: u64,
    /// Cached results.
    pub result_cache: u64,
    /// The process's resident set (from /proc), when known.
    pub rss: Option<u64>,
}

/// One watch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchInfo {
    /// The path.
    pub path: String,
    /// Folder or checkpoint.
    pub kind: WatchKind,
    /// How many clients subscribed (the daemon's own `--watch` counts as one).
    pub subscribers: usize,
}

/// The job queue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    /// Interactive jobs waiting.
    pub interactive: usize,
    /// Sweep jobs waiting.
    pub sweeps: usize,
    /// Jobs running.
    pub running: usize,
    /// Worker threads.
    pub workers: usize,
    /// Jobs finished since start.
    pub completed: u64,
}

/// `status`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    /// The daemon's process id.
    pub pid: u32,
    /// Seconds since it started.
    pub uptime_secs: u64,
    /// Where models run.
    pub device: String,
    /// The socket.
    pub socket: String,
    /// Connected clients.
    pub clients: usize,
    /// The models.
    pub models: Vec<ModelInfo>,
    /// Memory.
    pub memory: Memory,
    /// Watches.
    pub watches: Vec<WatchInfo>,
    /// The queue.
    pub queue: Queue,
    /// Forward passes run since start (repeated requests on one image share one).
    #[serde(default)]
    pub forward_passes: u64,
}
