//! `--shard I/N|auto --shard-dir D` on `embed` and `top`: run one share of a folder (a Slurm
//! array task, a Kubernetes Indexed Job pod) and write its rows to a shard folder, which
//! `convlens merge D` turns into what the unsharded command writes.

use std::io::Write;
use std::path::{Path, PathBuf};

use convlens_models::represent::shard::Shard;
use convlens_shared::methods::folder::{FolderPass, PassReport, ShardRun};

use super::client::Engine;
use super::embed::{FolderArgs, Shown};
use super::output;
use super::ModelArgs;

/// Which share of the folder this process runs, and where it goes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ShardArgs {
    /// Run only shard I of N (from 0) of the folder, by a stable hash of each image's path under
    /// it; `auto` reads Slurm's array task or a Kubernetes Indexed Job's index. Writes the
    /// shard to --shard-dir; `convlens merge DIR` writes the outputs.
    #[arg(long, value_name = "I/N|auto", requires = "shard_dir")]
    pub shard: Option<String>,
    /// With `--shard auto` in a Kubernetes Indexed Job: the job's completions (Slurm gives its
    /// own count).
    #[arg(long, value_name = "N", requires = "shard")]
    pub shard_count: Option<usize>,
    /// The shard folder: every shard of one job writes its file there.
    #[arg(long, value_name = "DIR", requires = "shard")]
    pub shard_dir: Option<PathBuf>,
}

/// What `merge` needs to ask for a job's outputs again: the command, the model as loaded, the
/// folder and the layer. Kept in every shard file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// `embed` or `top`.
    pub command: String,
    /// The model as given (a path made absolute, `demo`, `random:ARCH`).
    pub model: String,
    /// `--arch`.
    pub arch: Option<String>,
    /// `--labels`, absolute.
    pub labels: Option<String>,
    /// `--graph`, absolute.
    pub graph: Option<String>,
    /// `--mean`.
    pub mean: Option<Vec<f32>>,
    /// `--std`.
    pub std: Option<Vec<f32>>,
    /// `--resize`.
    pub resize: Option<u32>,
    /// The folder, absolute.
    pub folder: String,
    /// The folder as the user typed it (the outputs name images under it so).
    pub folder_as_typed: String,
    /// `--layer`.
    pub layer: Option<String>,
    /// `--size`.
    pub size: Option<u32>,
}

impl Job {
    /// The job of `command` on `model` over the folder `typed` (as the user typed it), read as
    /// `pass` says.
    pub fn new(
        command: &str,
        engine: &Engine,
        model: &ModelArgs,
        typed: &Path,
        pass: &FolderPass,
        folder: &FolderArgs,
    ) -> Job {
        let spec = &model.model;
        let absolute = |p: &Path| engine.path_arg(p);
        Job {
            command: command.into(),
            model: if spec == "demo" || spec.starts_with("random:") {
                spec.clone()
            } else {
                absolute(Path::new(spec))
            },
            arch: model.arch.clone(),
            labels: model.labels.as_deref().map(absolute),
            graph: model.load.graph.as_deref().map(absolute),
            mean: model.load.mean.clone(),
            std: model.load.std.clone(),
            resize: model.load.resize,
            folder: pass.folder.clone(),
            folder_as_typed: typed.display().to_string(),
            layer: pass.layer.clone(),
            size: folder.size,
        }
    }

    /// The model flags that load the model again.
    pub fn model_args(&self) -> ModelArgs {
        ModelArgs {
            model: self.model.clone(),
            arch: self.arch.clone(),
            labels: self.labels.as_ref().map(PathBuf::from),
            load: super::LoadFlags {
                graph: self.graph.as_ref().map(PathBuf::from),
                mean: self.mean.clone(),
                std: self.std.clone(),
                resize: self.resize,
            },
            at_version: None,
        }
    }
}

impl ShardArgs {
    /// The shard to run, if one was asked for: `I/N`, or `auto` from the scheduler's
    /// environment.
    pub fn shard(&self) -> anyhow::Result<Option<Shard>> {
        let Some(text) = &self.shard else {
            return Ok(None);
        };
        let shard = if text == "auto" {
            Shard::from_scheduler(|name| std::env::var(name).ok(), self.shard_count)?
        } else {
            if self.shard_count.is_some() {
                anyhow::bail!("--shard-count goes with --shard auto (here the count is in {text})");
            }
            Shard::parse(text)?
        };
        Ok(Some(shard))
    }

    /// The protocol's shard run for `job`, if a shard was asked for. `outputs` names the output
    /// flags given, which a shard does not write (merge does).
    pub fn run(
        &self,
        engine: &Engine,
        job: &Job,
        outputs: &[&str],
    ) -> anyhow::Result<Option<ShardRun>> {
        let (Some(shard), Some(dir)) = (self.shard()?, &self.shard_dir) else {
            return Ok(None);
        };
        if let Some(flag) = outputs.first() {
            anyhow::bail!(
                "{flag} with --shard: a shard writes only its shard file; give {flag} to \
                 `convlens merge {}` once every shard is done",
                dir.display()
            );
        }
        Ok(Some(ShardRun {
            index: shard.index,
            count: shard.count,
            dir: engine.path_arg(dir),
            job: serde_json::to_value(job)?,
        }))
    }
}

/// What a shard run prints: which shard, how many images, and the file.
pub fn print_shard(
    run: &ShardRun,
    report: &PassReport,
    shown: &Shown,
    json: bool,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let file = report.shard_file.clone().unwrap_or_default();
    if json {
        let value = serde_json::json!({
            "shard": format!("{}/{}", run.index, run.count),
            "file": file,
            "layer": report.layer,
            "images": report.images,
            "computed": report.computed,
            "cached": report.cached,
            "skipped": shown.skipped_json(report),
        });
        output::print_json!(&mut out, &value)?;
    } else {
        writeln!(
            out,
            "shard {}/{}: {} images at layer `{}` ({} embedded, {} from the cache) → {file}",
            run.index, run.count, report.images, report.layer, report.computed, report.cached
        )?;
    }
    Ok(())
}
