//! A folder pass split into shards that run apart (a Slurm array job, a Kubernetes Indexed Job)
//! and merge into what one pass gives.
//!
//! Every image belongs to exactly one shard, chosen by a stable hash of its path relative to
//! the folder (SHA-256, so adding files moves none between shards and every machine agrees).
//! A shard writes its rows of the [`FolderSummary`] to `shard-IIIII-of-NNNNN.safetensors` in a
//! shard folder, together with the job it belongs to (an opaque JSON the caller chooses: the
//! command, the model, the layer); [`read_shards`] checks that every shard of the job is there
//! once and puts the rows back in the folder's order, so what follows (top images, statistics,
//! maps) is computed from the same summary, in the same order, as an unsharded pass.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use super::codes::{FolderSummary, LayerShape, SkippedFile};
use crate::{Error, Result};

/// The metadata key of a shard file.
const METADATA_KEY: &str = "convlens_shard";
/// The shard file format this code writes and reads.
const FORMAT: u32 = 1;
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
struct ShardHeader {
    format: u32,
    shard: Shard,
    /// The job the shard belongs to; every shard of a merge must carry the same.
    job: serde_json::Value,
    layer: String,
    shape: LayerShape,
    /// The images, relative to the folder, in the rows' order.
    paths: Vec<String>,
    /// Unreadable files, relative to the folder.
    skipped: Vec<(String, String)>,
    other_files: usize,
    computed: usize,
    cached: usize,
    forward_passes: usize,
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

/// One shard file read back.
struct ShardRows {
    header: ShardHeader,
    codes: Vec<f32>,
    max: Vec<f32>,
    argmax: Vec<u32>,
    top1_class: Vec<u32>,
    top1_prob: Vec<f32>,
}

/// The job the shards in `from` belong to (from the first shard file), without reading their
/// arrays: what a merge needs to know to ask for the same outputs.
pub fn shard_job(from: &Path) -> Result<serde_json::Value> {
    let files = shard_files(from)?;
    let first = files.first().ok_or_else(|| no_shards(from))?;
    Ok(read_shard(first)?.header.job)
}

/// Merges every shard in `from` into the summary one pass over the folder `dir` gives: each
/// shard of the job present exactly once, all of one job, layer and shape; rows in the folder's
/// (sorted path) order. Refused with the missing or disagreeing shard named.
pub fn read_shards(from: &Path, dir: &Path) -> Result<(serde_json::Value, FolderSummary)> {
    let files = shard_files(from)?;
    if files.is_empty() {
        return Err(no_shards(from));
    }
    let shards = files
        .iter()
        .map(|f| read_shard(f))
        .collect::<Result<Vec<_>>>()?;
    let first = &shards[0].header;
    let count = first.shard.count;
    let mut seen = vec![false; count];
    for (file, s) in files.iter().zip(&shards) {
        let h = &s.header;
        let differs = |what: &str| {
            Error::InvalidArgument(format!(
                "{}: its {what} differs from {}'s: shards of another job? (one job per shard folder)",
                file.display(),
                files[0].display()
            ))
        };
        if h.shard.count != count {
            return Err(differs("shard count"));
        }
        if h.job != first.job {
            return Err(differs("job (model, folder or layer)"));
        }
        if h.layer != first.layer || h.shape != first.shape {
            return Err(differs("layer"));
        }
        if std::mem::replace(&mut seen[h.shard.index], true) {
            return Err(Error::InvalidArgument(format!(
                "{}: shard {} is there twice",
                from.display(),
                h.shard
            )));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|&i| !seen[i])
        .map(|i| i.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{}: shards {} of {count} are missing (rerun them: a rerun reads what it already \
             computed from the code cache)",
            from.display(),
            missing.join(", ")
        )));
    }
    let u = first.shape.units;
    let mut rows: Vec<(PathBuf, &ShardRows, usize)> = shards
        .iter()
        .flat_map(|s| {
            s.header
                .paths
                .iter()
                .enumerate()
                .map(move |(i, p)| (dir.join(p), s, i))
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = FolderSummary {
        layer: first.layer.clone(),
        shape: first.shape,
        paths: Vec::with_capacity(rows.len()),
        codes: Vec::with_capacity(rows.len() * u),
        max: Vec::with_capacity(rows.len() * u),
        argmax: Vec::with_capacity(rows.len() * u),
        top1_class: Vec::with_capacity(rows.len()),
        top1_prob: Vec::with_capacity(rows.len()),
        skipped: Vec::new(),
        other_files: 0,
        computed: 0,
        cached: 0,
        forward_passes: 0,
        cache_file: None,
    };
    for (path, s, i) in rows {
        out.paths.push(path);
        out.codes.extend_from_slice(&s.codes[i * u..(i + 1) * u]);
        out.max.extend_from_slice(&s.max[i * u..(i + 1) * u]);
        out.argmax.extend_from_slice(&s.argmax[i * u..(i + 1) * u]);
        out.top1_class.push(s.top1_class[i]);
        out.top1_prob.push(s.top1_prob[i]);
    }
    for s in &shards {
        let h = &s.header;
        out.skipped
            .extend(h.skipped.iter().map(|(p, reason)| SkippedFile {
                path: dir.join(p),
                reason: reason.clone(),
            }));
        out.other_files += h.other_files;
        out.computed += h.computed;
        out.cached += h.cached;
        out.forward_passes += h.forward_passes;
    }
    out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((first.job.clone(), out))
}

fn no_shards(from: &Path) -> Error {
    Error::InvalidArgument(format!(
        "{}: no shard files (shard-*-of-*.safetensors) there; run `convlens embed` or `convlens \
         top` with --shard I/N --shard-dir {} first",
        from.display(),
        from.display()
    ))
}

/// The shard files in `from`, sorted.
fn shard_files(from: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(from).map_err(|source| Error::Io {
        path: from.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".safetensors"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// One shard file, checked: its header, and arrays of the sizes the header says.
fn read_shard(path: &Path) -> Result<ShardRows> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |message: String| Error::Format {
        path: path.to_path_buf(),
        message,
    };
    let (_, metadata) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a shard file (damaged or cut short?): {e}")))?;
    let text = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(METADATA_KEY))
        .ok_or_else(|| bad("a safetensors file, but not a convlens shard".into()))?;
    let header: ShardHeader =
        serde_json::from_str(text).map_err(|e| bad(format!("its shard header: {e}")))?;
    if header.format != FORMAT {
        return Err(bad(format!(
            "shard format {}, this convlens reads {FORMAT}",
            header.format
        )));
    }
    if header.shard.index >= header.shard.count || header.shard.count > MAX_SHARDS {
        return Err(bad(format!("shard {} is not valid", header.shard)));
    }
    let tensors = SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let (n, u) = (header.paths.len(), header.shape.units);
    let array = |name: &str, dtype: Dtype, shape: &[usize]| -> Result<Vec<[u8; 4]>> {
        let view = tensors
            .tensor(name)
            .map_err(|e| bad(format!("array `{name}`: {e}")))?;
        if view.dtype() != dtype || view.shape() != shape {
            return Err(bad(format!(
                "array `{name}` is {:?} {:?}, expected {dtype:?} {shape:?} for {n} images",
                view.dtype(),
                view.shape()
            )));
        }
        Ok(view
            .data()
            .chunks_exact(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect())
    };
    let f32s = |v: Vec<[u8; 4]>| v.into_iter().map(f32::from_le_bytes).collect::<Vec<_>>();
    let u32s = |v: Vec<[u8; 4]>| v.into_iter().map(u32::from_le_bytes).collect::<Vec<_>>();
    Ok(ShardRows {
        codes: f32s(array("codes", Dtype::F32, &[n, u])?),
        max: f32s(array("max", Dtype::F32, &[n, u])?),
        argmax: u32s(array("argmax", Dtype::U32, &[n, u])?),
        top1_class: u32s(array("top1_class", Dtype::U32, &[n])?),
        top1_prob: f32s(array("top1_prob", Dtype::F32, &[n])?),
        header,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // A damaged file is named.
        std::fs::write(into.join(one.file_name()), b"not a shard").unwrap();
        let e = read_shards(&into, &dir).unwrap_err().to_string();
        assert!(e.contains("shard-00001-of-00002.safetensors"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
