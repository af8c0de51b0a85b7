//! A folder pass split into shards that run apart (a Slurm array job, a Kubernetes Indexed Job)
//! and merge into what one pass gives.
//!
//! Every image belongs to exactly one shard, chosen by a stable hash of its path relative to
//! the folder (SHA-256, so adding files moves none between shards and every machine agrees).
//! A shard writes its rows of the [`FolderSummary`] to `shard-IIIII-of-NNNNN.safetensors` in a
//! shard folder, together with the job it belongs to (an opaque JSON the caller chooses: the
//! command, the model, the layer); [`super::shard_read::open_shards`] checks that every shard of the job is there
//! once and puts the rows back in the folder's order (`super::shard_read`), so what follows (top
//! images, statistics, maps) is computed from the same rows, in the same order, as an unsharded
//! pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use sha2::{Digest, Sha256};

use super::codes::{FolderSummary, LayerShape};
use crate::{Error, Result};

/// The metadata key of a shard file.
pub(super) const METADATA_KEY: &str = "convlens_shard";
/// The shard file format this code writes and reads.
pub(super) const FORMAT: u32 = 1;
/// The most shards a job may have.
pub const MAX_SHARDS: usize = 100_000;

/// One share of a folder: shard `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: usize,
    /// How many shards the folder is split into.
    pub count: usize,
}

impl Shard {
    /// Shard `index` of `count`, refused unless `index < count <= MAX_SHARDS`.
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(Error::InvalidArgument(format!(
                "shard {index} of {count}: the index counts from 0 and must be below the count \
                 (1 to {MAX_SHARDS})"
            )));
        }
        Ok(Shard { index, count })
    }

    /// `I/N` (shard I of N, from 0).
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || {
            Error::InvalidArgument(format!(
                "shard `{text}`: expected I/N, shard I of N counting from 0 (`0/4` … `3/4`)"
            ))
        };
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let i = i.trim().parse().map_err(|_| bad())?;
        let n = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n)
    }

    /// The shard a scheduler gives this process, read through `var` (the environment):
    /// Slurm's array job (`SLURM_ARRAY_TASK_ID` less `SLURM_ARRAY_TASK_MIN`, of
    /// `SLURM_ARRAY_TASK_COUNT`) or a Kubernetes Indexed Job (`JOB_COMPLETION_INDEX`, of
    /// `count`, which Kubernetes does not put in the environment).
    pub fn from_scheduler(
        var: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Shard> {
        let number =
            |name: &str| -> Result<Option<usize>> {
                match var(name) {
                    None => Ok(None),
                    Some(v) => v.trim().parse().map(Some).map_err(|_| {
                        Error::InvalidArgument(format!("${name} is `{v}`, not a number"))
                    }),
                }
            };
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let total = number("SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                Error::InvalidArgument(
                    "$SLURM_ARRAY_TASK_ID is set but $SLURM_ARRAY_TASK_COUNT is not".into(),
                )
            })?;
            let index = id.checked_sub(min).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "$SLURM_ARRAY_TASK_ID {id} is below $SLURM_ARRAY_TASK_MIN {min}"
                ))
            })?;
            return Shard::new(index, total);
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let total = count.ok_or_else(|| {
                Error::InvalidArgument(
                    "$JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): give the job's \
                     completions with --shard-count"
                        .into(),
                )
            })?;
            return Shard::new(index, total);
        }
        Err(Error::InvalidArgument(
            "--shard auto: neither Slurm ($SLURM_ARRAY_TASK_ID) nor a Kubernetes Indexed Job \
             ($JOB_COMPLETION_INDEX) set this process's index; give --shard I/N"
                .into(),
        ))
    }

    /// Whether the image at `relative` (its path under the folder) belongs to this shard.
    pub fn holds(&self, relative: &str) -> bool {
        shard_of(relative, self.count) == self.index
    }

    /// Whether this shard counts the folder's other files (shard 0 does, so the merged report
    /// counts them once).
    pub fn counts_other_files(&self) -> bool {
        self.index == 0
    }

    /// The shard's file name in the shard folder.
    pub fn file_name(&self) -> String {
        format!("shard-{:05}-of-{:05}.safetensors", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard, of `count`, that the path `relative` (under the folder, `/`-separated) belongs to:
/// the first eight bytes of its SHA-256, big-endian, modulo `count`.
pub fn shard_of(relative: &str, count: usize) -> usize {
    let digest = Sha256::digest(relative.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) % count.max(1) as u64) as usize
}

/// `path` relative to `dir`, its components joined by `/` (the same on every machine).
pub fn relative_path(dir: &Path, path: &Path) -> String {
    let rest = path.strip_prefix(dir).unwrap_or(path);
    rest.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// What a shard file says besides its arrays.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(super) struct ShardHeader {
    pub(super) format: u32,
    pub(super) shard: Shard,
    /// The job the shard belongs to; every shard of a merge must carry the same.
    pub(super) job: serde_json::Value,
    pub(super) layer: String,
    pub(super) shape: LayerShape,
    /// The images, relative to the folder, in the rows' order.
    pub(super) paths: Vec<String>,
    /// Unreadable files, relative to the folder.
    pub(super) skipped: Vec<(String, String)>,
    pub(super) other_files: usize,
    pub(super) computed: usize,
    pub(super) cached: usize,
    pub(super) forward_passes: usize,
}

/// Writes `summary` (the pass over shard `shard` of the folder `dir`) with `job` to the shard
/// folder `into`, replacing the shard's earlier file in one step (a shard killed while writing
/// leaves none). Returns the file.
pub fn write_shard(
    into: &Path,
    dir: &Path,
    shard: Shard,
    job: &serde_json::Value,
    summary: &FolderSummary,
) -> Result<PathBuf> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(into).map_err(io(into))?;
    let header = ShardHeader {
        format: FORMAT,
        shard,
        job: job.clone(),
        layer: summary.layer.clone(),
        shape: summary.shape,
        paths: summary
            .paths
            .iter()
            .map(|p| relative_path(dir, p))
            .collect(),
        skipped: summary
            .skipped
            .iter()
            .map(|s| (relative_path(dir, &s.path), s.reason.clone()))
            .collect(),
        other_files: summary.other_files,
        computed: summary.computed,
        cached: summary.cached,
        forward_passes: summary.forward_passes,
    };
    let (n, u) = (summary.len(), summary.shape.units);
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let arrays: Vec<(&str, Dtype, Vec<usize>, Vec<u8>)> = vec![
        ("codes", Dtype::F32, vec![n, u], f32s(&summary.codes)),
        ("max", Dtype::F32, vec![n, u], f32s(&summary.max)),
        ("argmax", Dtype::U32, vec![n, u], u32s(&summary.argmax)),
        ("top1_class", Dtype::U32, vec![n], u32s(&summary.top1_class)),
        ("top1_prob", Dtype::F32, vec![n], f32s(&summary.top1_prob)),
    ];
    let views = arrays
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (*name, v))
                .map_err(|e| Error::InvalidArgument(format!("shard array `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata = HashMap::from([(
        METADATA_KEY.to_string(),
        serde_json::to_string(&header).map_err(|e| Error::InvalidArgument(e.to_string()))?,
    )]);
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::InvalidArgument(format!("cannot write the shard: {e}")))?;
    let path = into.join(shard.file_name());
    let partial = into.join(format!(
        ".{}.{}.partial",
        shard.file_name(),
        std::process::id()
    ));
    std::fs::write(&partial, bytes).map_err(io(&partial))?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::represent::shard_read::read_shards;

    fn summary(dir: &Path, names: &[&str]) -> FolderSummary {
        let n = names.len();
        FolderSummary {
            layer: "features".into(),
            shape: LayerShape {
                units: 2,
                height: 3,
                width: 3,
            },
            paths: names.iter().map(|p| dir.join(p)).collect(),
            codes: (0..2 * n).map(|v| v as f32 * 0.5).collect(),
            max: (0..2 * n).map(|v| v as f32).collect(),
            argmax: (0..2 * n as u32).collect(),
            top1_class: (0..n as u32).collect(),
            top1_prob: vec![0.25; n],
            skipped: vec![],
            other_files: 1,
            computed: n,
            cached: 0,
            forward_passes: 1,
            cache_file: None,
        }
    }

    #[test]
    fn every_path_has_one_shard_and_it_does_not_move() {
        let paths: Vec<String> = (0..200)
            .map(|i| format!("class{}/img{i}.png", i % 3))
            .collect();
        let shards: Vec<Shard> = (0..4).map(|i| Shard::new(i, 4).unwrap()).collect();
        for p in &paths {
            assert_eq!(shards.iter().filter(|s| s.holds(p)).count(), 1, "{p}");
        }
        // Each shard gets some, and the hash is fixed (the same on every machine and release).
        assert!(shards
            .iter()
            .all(|s| paths.iter().filter(|p| s.holds(p)).count() > 20));
        assert_eq!(
            shard_of("class0/img0.png", 4),
            shard_of("class0/img0.png", 4)
        );
        assert_eq!(shard_of("a.png", 1), 0);
    }

    #[test]
    fn shards_are_parsed_and_read_from_schedulers() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1/0", "x/2", "3", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_scheduler(slurm, None).unwrap(),
            Shard { index: 2, count: 4 }
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "1")]);
        assert_eq!(
            Shard::from_scheduler(k8s, Some(3)).unwrap(),
            Shard { index: 1, count: 3 }
        );
        let e = Shard::from_scheduler(k8s, None).unwrap_err().to_string();
        assert!(e.contains("--shard-count"), "{e}");
        let e = Shard::from_scheduler(env(&[]), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--shard I/N"), "{e}");
    }

    #[test]
    fn shards_merge_into_the_folder_order_and_refuse_gaps() {
        let root = std::env::temp_dir().join(format!("convlens-shard-{}", std::process::id()));
        let (dir, into) = (root.join("photos"), root.join("shards"));
        let job = serde_json::json!({"command": "top"});
        // Shard 0 has b and d, shard 1 has a and c: merged, a b c d.
        let zero = Shard::new(0, 2).unwrap();
        let one = Shard::new(1, 2).unwrap();
        write_shard(&into, &dir, zero, &job, &summary(&dir, &["b.png", "d.png"])).unwrap();
        let e = read_shards(&into, &dir).unwrap_err().to_string();
        assert!(e.contains("shards 1 of 2 are missing"), "{e}");
        write_shard(&into, &dir, one, &job, &summary(&dir, &["a.png", "c.png"])).unwrap();
        let (read_job, merged) = read_shards(&into, &dir).unwrap();
        assert_eq!(read_job, job);
        let names: Vec<String> = merged
            .paths
            .iter()
            .map(|p| relative_path(&dir, p))
            .collect();
        assert_eq!(names, ["a.png", "b.png", "c.png", "d.png"]);
        // a is shard 1's first row, b shard 0's first.
        assert_eq!(&merged.codes[..4], &[0.0, 0.5, 0.0, 0.5]);
        assert_eq!(merged.top1_class, vec![0, 0, 1, 1]);
        assert_eq!((merged.other_files, merged.computed), (2, 4));
        // Another job's shard in the same folder is refused by name.
        let other = serde_json::json!({"command": "embed"});
        write_shard(&into, &dir, one, &other, &summary(&dir, &["a.png"])).unwrap();
        let e = read_shards(&into, &dir).unwrap_err().to_string();
        assert!(e.contains("job"), "{e}");
        // A file cut short (a shard killed while copying it) is named, before any row is read.
        write_shard(&into, &dir, one, &job, &summary(&dir, &["a.png", "c.png"])).unwrap();
        let file = into.join(one.file_name());
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 4]).unwrap();
        let e = read_shards(&into, &dir).unwrap_err().to_string();
        assert!(
            e.contains("shard-00001-of-00002.safetensors") && e.contains("cut short"),
            "{e}"
        );
        // The same image in two shards (a hand-made shard folder) is refused, naming it.
        write_shard(&into, &dir, one, &job, &summary(&dir, &["a.png", "b.png"])).unwrap();
        let e = read_shards(&into, &dir).unwrap_err().to_string();
        assert!(e.contains("b.png is in two shards"), "{e}");
        // Rows out of order likewise.
        write_shard(&into, &dir, one, &job, &summary(&dir, &["c.png", "a.png"])).unwrap();
        let e = read_shards(&into, &dir).unwrap_err().to_string();
        assert!(e.contains("out of order"), "{e}");
        // A damaged file is named.
        std::fs::write(into.join(one.file_name()), b"not a shard").unwrap();
        let e = read_shards(&into, &dir).unwrap_err().to_string();
        assert!(e.contains("shard-00001-of-00002.safetensors"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
