//! Training checkpoints on disk, each file written to a temporary name and renamed into place so
//! that a watcher never reads half a file.
//!
//! Layout of the output folder:
//!
//! ```text
//! checkpoint.safetensors   the latest weights, replaced at every checkpoint (watch this one)
//! checkpoint.json          its metrics (written just before it)
//! step-000200.safetensors  a numbered copy of each checkpoint
//! step-000200.json         and its metrics
//! metrics.jsonl            every checkpoint's metrics, one JSON object a line
//! ```
//!
//! The safetensors files hold the state_dict under PyTorch's names (BatchNorm's
//! `num_batches_tracked` included), so both `Model::load` and PyTorch's `load_state_dict` take
//! them; their metadata repeats the architecture, step and epoch.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::{Error, Result};

/// What a checkpoint records about the training run at its step.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// The architecture (`small-vgg`, `small-resnet`).
    pub arch: String,
    /// Optimizer steps done.
    pub step: usize,
    /// The epoch the step belongs to, from 1.
    pub epoch: usize,
    /// Steps in one epoch.
    pub steps_per_epoch: usize,
    /// Mean training loss over the steps since the previous checkpoint.
    pub loss: f64,
    /// Accuracy on the training batches of the current epoch so far, in [0, 1].
    pub train_accuracy: f64,
    /// Accuracy on the first `test_images` test images, in [0, 1], when evaluated.
    pub test_accuracy: Option<f64>,
    /// How many test images `test_accuracy` is over.
    pub test_images: usize,
    /// The learning rate at this step.
    pub learning_rate: f64,
    /// Seconds since training started.
    pub elapsed_s: f64,
    /// Seconds since the Unix epoch when the checkpoint was written.
    pub unix_time: f64,
    /// The numbered weights file (`step-000200.safetensors`).
    pub checkpoint: String,
}

/// Writes checkpoints into one folder.
#[derive(Clone, Debug)]
pub struct CheckpointWriter {
    dir: PathBuf,
}

/// The name of the checkpoint that is replaced each time.
pub const LATEST: &str = "checkpoint.safetensors";

/// The name of the latest checkpoint's metrics.
pub const LATEST_METRICS: &str = "checkpoint.json";

/// The metrics history, one JSON object a line.
pub const HISTORY: &str = "metrics.jsonl";

/// The numbered weights file of `step` (`step-000200.safetensors`).
pub fn numbered_name(step: usize) -> String {
    format!("step-{step:06}.safetensors")
}

impl CheckpointWriter {
    /// A writer into `dir`, created if missing.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(CheckpointWriter {
            dir: dir.to_path_buf(),
        })
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `state` (a state_dict) and `metrics`: the numbered copy, then the latest
    /// checkpoint's metrics and weights, then a line of history. Returns the numbered path.
    pub fn write(&self, state: &BTreeMap<String, Tensor>, metrics: &Metrics) -> Result<PathBuf> {
        let weights = serialize_state(state, metrics)?;
        let json = serde_json::to_vec_pretty(metrics)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode metrics: {e}")))?;
        let numbered = self.dir.join(&metrics.checkpoint);
        write_atomically(&numbered, &weights)?;
        write_atomically(&numbered.with_extension("json"), &json)?;
        write_atomically(&self.dir.join(LATEST_METRICS), &json)?;
        write_atomically(&self.dir.join(LATEST), &weights)?;
        let line = serde_json::to_string(metrics)
            .map_err(|e| Error::InvalidArgument(format!("cannot encode metrics: {e}")))?;
        let history = self.dir.join(HISTORY);
        let io = |source| Error::Io {
            path: history.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&history)
            .map_err(io)?;
        writeln!(file, "{line}").map_err(io)?;
        Ok(numbered)
    }
}

/// The safetensors bytes of `state` with the architecture, step and epoch as metadata.
fn serialize_state(state: &BTreeMap<String, Tensor>, metrics: &Metrics) -> Result<Vec<u8>> {
    let tensors = state
        .iter()
        .map(|(k, t)| Ok((k.clone(), t.to_device(&Device::Cpu)?.contiguous()?)))
        .collect::<Result<Vec<(String, Tensor)>>>()?;
    let metadata: HashMap<String, String> = [
        ("format", "pt".to_string()),
        ("arch", metrics.arch.clone()),
        ("step", metrics.step.to_string()),
        ("epoch", metrics.epoch.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    safetensors::tensor::serialize(tensors, Some(metadata))
        .map_err(|e| Error::InvalidArgument(format!("cannot encode the checkpoint: {e}")))
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk, and renames it to
/// `path` (atomic on POSIX file systems: readers see the old file or the new one, never half).
/// The temporary file is this call's own (process id and a counter), so writers in several
/// processes or threads (Slurm shards sharing a cache folder) never rename each other's.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.tmp-{}-{call}", std::process::id()));
    let written = write_and_sync(&temp, bytes).and_then(|()| {
        std::fs::rename(&temp, path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    });
    if written.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Writes `bytes` to `path` and flushes them to the disk.
fn write_and_sync(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::create(path).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)
}
