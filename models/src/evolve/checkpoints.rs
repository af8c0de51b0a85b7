//! Finding a training run's checkpoints and putting them in training order: by the step number
//! in their file names (`step-000200.safetensors`, `epoch3.pt`) when every file has one, else by
//! modification time.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::{Error, Result};

/// How the checkpoints were ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointOrder {
    /// By the number in each file name (the last run of digits in the name without extension).
    Step,
    /// By modification time, oldest first, because some file name has no number.
    ModifiedTime,
}

/// One checkpoint file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    /// The file.
    pub path: PathBuf,
    /// The number in its file name, if it has one.
    pub step: Option<u64>,
}

impl Checkpoint {
    /// A short name for captions: `step N` when the name has a number, else the file name.
    pub fn label(&self) -> String {
        match self.step {
            Some(step) => format!("step {step}"),
            None => self.path.file_name().map_or_else(
                || self.path.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }
}

/// A run's checkpoints in training order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointList {
    /// The files, first trained first.
    pub checkpoints: Vec<Checkpoint>,
    /// How they were ordered.
    pub order: CheckpointOrder,
    /// Why, in words (`every file name has a step number`, or the first file without one).
    pub order_reason: String,
}

/// Every file that one of `patterns` (glob patterns or plain paths) matches, once each, in
/// training order. A pattern that matches nothing, or is not a valid pattern, is an error naming
/// it.
pub fn find_checkpoints(patterns: &[String]) -> Result<CheckpointList> {
    if patterns.is_empty() {
        return Err(Error::InvalidArgument(
            "no checkpoints given: pass a glob such as 'runs/step-*.safetensors'".into(),
        ));
    }
    let mut paths: Vec<PathBuf> = Vec::new();
    for pattern in patterns {
        let entries = glob::glob(pattern).map_err(|e| {
            Error::InvalidArgument(format!("`{pattern}` is not a valid glob pattern: {e}"))
        })?;
        let mut matched = false;
        for entry in entries {
            // An entry the glob could not read (a folder without permission) is left out; the
            // files it did list are what the user can load anyway.
            let Ok(path) = entry else { continue };
            if path.is_file() {
                matched = true;
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        }
        if !matched {
            return Err(Error::InvalidArgument(format!(
                "no checkpoint file matches `{pattern}`"
            )));
        }
    }
    order_checkpoints(paths)
}

/// `paths` in training order: by step number when every file name has one (ties by name), else
/// by modification time (ties by name).
pub fn order_checkpoints(paths: Vec<PathBuf>) -> Result<CheckpointList> {
    let mut checkpoints: Vec<Checkpoint> = paths
        .into_iter()
        .map(|path| Checkpoint {
            step: step_from_name(&path),
            path,
        })
        .collect();
    if let Some(unnumbered) = checkpoints.iter().find(|c| c.step.is_none()) {
        let reason = format!(
            "by modification time: `{}` has no step number in its name",
            unnumbered.path.display()
        );
        let mut timed = checkpoints
            .into_iter()
            .map(|c| Ok((modified(&c.path)?, c)))
            .collect::<Result<Vec<(SystemTime, Checkpoint)>>>()?;
        timed.sort_by(|(ta, a), (tb, b)| ta.cmp(tb).then_with(|| a.path.cmp(&b.path)));
        return Ok(CheckpointList {
            checkpoints: timed.into_iter().map(|(_, c)| c).collect(),
            order: CheckpointOrder::ModifiedTime,
            order_reason: reason,
        });
    }
    checkpoints.sort_by(|a, b| a.step.cmp(&b.step).then_with(|| a.path.cmp(&b.path)));
    Ok(CheckpointList {
        checkpoints,
        order: CheckpointOrder::Step,
        order_reason: "by the step number in each file name".into(),
    })
}

/// The last run of ASCII digits in the file name without its extension
/// (`step-000200.safetensors` → 200, `resnet18-epoch3.pt` → 3, `final.pt` → none).
pub fn step_from_name(path: &Path) -> Option<u64> {
    let stem = path.file_stem()?.to_string_lossy();
    let end = stem.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = stem[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    stem[start..end].parse().ok()
}

fn modified(path: &Path) -> Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_numbers_come_from_the_last_digits_of_the_stem() {
        assert_eq!(
            step_from_name(Path::new("run/step-000200.safetensors")),
            Some(200)
        );
        assert_eq!(step_from_name(Path::new("resnet18-epoch3.pt")), Some(3));
        assert_eq!(step_from_name(Path::new("v12/final.pt")), None);
        assert_eq!(step_from_name(Path::new("checkpoint.safetensors")), None);
    }

    #[test]
    fn numbered_files_sort_by_number_not_by_name() {
        let list = order_checkpoints(vec![
            PathBuf::from("step-1000.pt"),
            PathBuf::from("step-200.pt"),
            PathBuf::from("step-30.pt"),
        ])
        .unwrap();
        let steps: Vec<_> = list.checkpoints.iter().map(|c| c.step).collect();
        assert_eq!(steps, vec![Some(30), Some(200), Some(1000)]);
        assert_eq!(list.order, CheckpointOrder::Step);
    }
}
