//! Shard files read back as one stream of rows in the folder's order: a k-way merge by path of
//! the shards' rows (each shard's rows are in the folder's order already), each row read from its
//! file when its turn comes. A merge holds every shard's header (the images' relative paths and
//! where each array lies), never the codes, maxima or positions: merging a million images' shards
//! costs their paths, not their rows.
//!
//! The safetensors header is parsed here rather than by the `safetensors` crate, whose reader
//! wants the whole file in memory (or mapped); the layout is its documented one: an 8-byte
//! little-endian header length, a JSON header naming each array's dtype, shape and byte range,
//! then the arrays.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::codes::{FolderSummary, ImageSummary, LayerShape, SkippedFile};
use super::shard::{ShardHeader, FORMAT, MAX_SHARDS, METADATA_KEY};
use crate::{Error, Result};

/// The largest shard header read (a shard's paths are in it: some millions of them).
const MAX_HEADER_BYTES: u64 = 1 << 30;
/// Shard files kept open during a merge; beyond, a file is opened for each row read from it.
const MAX_OPEN: usize = 256;

/// The arrays of a shard file: name, dtype, and whether it has a value per unit (else one per
/// image).
const ARRAYS: [(&str, &str, bool); 5] = [
    ("codes", "F32", true),
    ("max", "F32", true),
    ("argmax", "U32", true),
    ("top1_class", "U32", false),
    ("top1_prob", "F32", false),
];

/// One shard file's header and where its arrays start.
struct ShardFile {
    path: PathBuf,
    header: ShardHeader,
    /// The byte offset of each of [`ARRAYS`] in the file.
    offsets: [u64; 5],
}

/// What a tensor entry of a safetensors header says.
#[derive(serde::Deserialize)]
struct TensorEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

impl ShardFile {
    /// Reads and checks the header of the shard file at `path`: a convlens shard of this format,
    /// with every array of the size its images and units ask for, inside the file.
    fn open(path: &Path) -> Result<ShardFile> {
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let bad = |message: String| Error::Format {
            path: path.to_path_buf(),
            message,
        };
        let mut file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut prefix = [0u8; 8];
        file.read_exact(&mut prefix)
            .map_err(|e| bad(format!("not a shard file (cut short?): {e}")))?;
        let header_len = u64::from_le_bytes(prefix);
        if header_len > MAX_HEADER_BYTES || header_len > len.saturating_sub(8) {
            return Err(bad(format!(
                "not a shard file (damaged or cut short?): a header of {header_len} bytes in a \
                 file of {len}"
            )));
        }
        let mut text = vec![0u8; header_len as usize];
        file.read_exact(&mut text).map_err(io)?;
        let mut entries: HashMap<String, serde_json::Value> = serde_json::from_slice(&text)
            .map_err(|e| bad(format!("not a shard file (damaged or cut short?): {e}")))?;
        let header: ShardHeader = entries
            .remove("__metadata__")
            .and_then(|m| m.get(METADATA_KEY)?.as_str().map(str::to_string))
            .ok_or_else(|| bad("a safetensors file, but not a convlens shard".into()))
            .and_then(|text| {
                serde_json::from_str(&text).map_err(|e| bad(format!("its shard header: {e}")))
            })?;
        if header.format != FORMAT {
            return Err(bad(format!(
                "shard format {}, this convlens reads {FORMAT}",
                header.format
            )));
        }
        if header.shard.index >= header.shard.count || header.shard.count > MAX_SHARDS {
            return Err(bad(format!("shard {} is not valid", header.shard)));
        }
        let (n, u) = (header.paths.len(), header.shape.units);
        let data_start = 8 + header_len;
        let mut offsets = [0u64; 5];
        for (slot, (name, dtype, per_unit)) in offsets.iter_mut().zip(ARRAYS) {
            let shape = if per_unit { vec![n, u] } else { vec![n] };
            let entry: TensorEntry = entries
                .remove(name)
                .ok_or_else(|| bad(format!("no array `{name}`")))
                .and_then(|v| {
                    serde_json::from_value(v).map_err(|e| bad(format!("array `{name}`: {e}")))
                })?;
            if entry.dtype != dtype || entry.shape != shape {
                return Err(bad(format!(
                    "array `{name}` is {} {:?}, expected {dtype} {shape:?} for {n} images",
                    entry.dtype, entry.shape
                )));
            }
            let (begin, end) = entry.data_offsets;
            let size = shape.iter().product::<usize>() as u64 * 4;
            if end < begin || end - begin != size || data_start + end > len {
                return Err(bad(format!(
                    "array `{name}` lies at bytes {begin}..{end} of the data, which is not its \
                     {size} bytes inside the file (cut short?)"
                )));
            }
            *slot = data_start + begin;
        }
        Ok(ShardFile {
            path: path.to_path_buf(),
            header,
            offsets,
        })
    }

    /// Row `i`, read from `file` (this shard's file, open).
    fn row(&self, file: &File, i: usize) -> Result<ImageSummary> {
        let u = self.header.shape.units;
        let read = |array: usize, count: usize| -> Result<Vec<[u8; 4]>> {
            let mut bytes = vec![0u8; count * 4];
            let at = self.offsets[array] + (i * count * 4) as u64;
            file.read_exact_at(&mut bytes, at)
                .map_err(|source| Error::Io {
                    path: self.path.clone(),
                    source,
                })?;
            Ok(bytes
                .chunks_exact(4)
                .map(|c| [c[0], c[1], c[2], c[3]])
                .collect())
        };
        let f32s = |v: Vec<[u8; 4]>| v.into_iter().map(f32::from_le_bytes).collect::<Vec<_>>();
        let u32s = |v: Vec<[u8; 4]>| v.into_iter().map(u32::from_le_bytes).collect::<Vec<_>>();
        Ok(ImageSummary {
            code: f32s(read(0, u)?),
            max: f32s(read(1, u)?),
            argmax: u32s(read(2, u)?),
            top1_class: u32s(read(3, 1)?)[0],
            top1_prob: f32s(read(4, 1)?)[0],
        })
    }
}

/// Every shard of one job, checked: each present once, all of one job, layer and shape.
pub struct ShardSet {
    from: PathBuf,
    shards: Vec<ShardFile>,
}

/// What the shards' passes did besides their rows, summed.
#[derive(Clone, Debug, Default)]
pub struct ShardTotals {
    /// Unreadable files, under the folder, sorted.
    pub skipped: Vec<SkippedFile>,
    /// Files without an image extension.
    pub other_files: usize,
    /// Images that went through the network.
    pub computed: usize,
    /// Images whose summary came from a cache.
    pub cached: usize,
    /// Forward passes run.
    pub forward_passes: usize,
}

/// The job the shards in `from` belong to (from the first shard file's header): what a merge
/// needs to know to ask for the same outputs.
pub fn shard_job(from: &Path) -> Result<serde_json::Value> {
    let files = shard_files(from)?;
    let first = files.first().ok_or_else(|| no_shards(from))?;
    Ok(ShardFile::open(first)?.header.job)
}

/// Reads the headers of every shard in `from` and checks that they make one job's shards, each
/// present once; refused with the missing or disagreeing shard named.
pub fn open_shards(from: &Path) -> Result<ShardSet> {
    let files = shard_files(from)?;
    if files.is_empty() {
        return Err(no_shards(from));
    }
    let shards = files
        .iter()
        .map(|f| ShardFile::open(f))
        .collect::<Result<Vec<_>>>()?;
    let first = &shards[0].header;
    let count = first.shard.count;
    let mut seen = vec![false; count];
    for s in &shards {
        let h = &s.header;
        let differs = |what: &str| {
            Error::InvalidArgument(format!(
                "{}: its {what} differs from {}'s: shards of another job? (one job per shard folder)",
                s.path.display(),
                shards[0].path.display()
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
    Ok(ShardSet {
        from: from.to_path_buf(),
        shards,
    })
}

impl ShardSet {
    /// The job every shard carries.
    pub fn job(&self) -> &serde_json::Value {
        &self.shards[0].header.job
    }

    /// The layer the rows are of.
    pub fn layer(&self) -> &str {
        &self.shards[0].header.layer
    }

    /// Its units and positions.
    pub fn shape(&self) -> LayerShape {
        self.shards[0].header.shape
    }

    /// The rows of every shard.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.header.paths.len()).sum()
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the shards' passes did, summed, with paths under the folder `dir`.
    pub fn totals(&self, dir: &Path) -> ShardTotals {
        let mut totals = ShardTotals::default();
        for s in &self.shards {
            let h = &s.header;
            totals
                .skipped
                .extend(h.skipped.iter().map(|(p, reason)| SkippedFile {
                    path: dir.join(p),
                    reason: reason.clone(),
                }));
            totals.other_files += h.other_files;
            totals.computed += h.computed;
            totals.cached += h.cached;
            totals.forward_passes += h.forward_passes;
        }
        totals.skipped.sort_by(|a, b| a.path.cmp(&b.path));
        totals
    }

    /// Gives `sink` every row, as the path under the folder `dir` and its summary, in the
    /// folder's (sorted path) order: the order one pass over the folder gives them.
    pub fn stream(
        &self,
        dir: &Path,
        sink: &mut dyn FnMut(&Path, ImageSummary) -> Result<()>,
    ) -> Result<()> {
        let keep_open = self.shards.len() <= MAX_OPEN;
        let open = |s: &ShardFile| {
            File::open(&s.path).map_err(|source| Error::Io {
                path: s.path.clone(),
                source,
            })
        };
        let files: Vec<Option<File>> = self
            .shards
            .iter()
            .map(|s| keep_open.then(|| open(s)).transpose())
            .collect::<Result<_>>()?;
        // The next row of each shard, smallest path first.
        let mut next: BinaryHeap<Reverse<(PathBuf, usize, usize)>> = BinaryHeap::new();
        for (k, s) in self.shards.iter().enumerate() {
            if let Some(p) = s.header.paths.first() {
                next.push(Reverse((dir.join(p), k, 0)));
            }
        }
        while let Some(Reverse((path, k, i))) = next.pop() {
            let shard = &self.shards[k];
            let row = match &files[k] {
                Some(file) => shard.row(file, i)?,
                None => shard.row(&open(shard)?, i)?,
            };
            if let Some(p) = shard.header.paths.get(i + 1) {
                let following = dir.join(p);
                if following <= path {
                    return Err(Error::Format {
                        path: shard.path.clone(),
                        message: format!(
                            "its images are out of order ({} after {}): not a shard convlens \
                             wrote",
                            following.display(),
                            path.display()
                        ),
                    });
                }
                next.push(Reverse((following, k, i + 1)));
            }
            if next.peek().is_some_and(|Reverse((p, ..))| *p == path) {
                return Err(Error::InvalidArgument(format!(
                    "{}: {} is in two shards",
                    self.from.display(),
                    path.display()
                )));
            }
            sink(&path, row)?;
        }
        Ok(())
    }
}

/// Merges every shard in `from` into the summary one pass over the folder `dir` gives (holding
/// every row: for tests and small folders; a merge streams with [`ShardSet::stream`]).
pub fn read_shards(from: &Path, dir: &Path) -> Result<(serde_json::Value, FolderSummary)> {
    let set = open_shards(from)?;
    let totals = set.totals(dir);
    let mut out = FolderSummary {
        layer: set.layer().to_string(),
        shape: set.shape(),
        paths: Vec::new(),
        codes: Vec::new(),
        max: Vec::new(),
        argmax: Vec::new(),
        top1_class: Vec::new(),
        top1_prob: Vec::new(),
        skipped: totals.skipped,
        other_files: totals.other_files,
        computed: totals.computed,
        cached: totals.cached,
        forward_passes: totals.forward_passes,
        cache_file: None,
    };
    set.stream(dir, &mut |path, row| {
        out.paths.push(path.to_path_buf());
        out.codes.extend_from_slice(&row.code);
        out.max.extend_from_slice(&row.max);
        out.argmax.extend_from_slice(&row.argmax);
        out.top1_class.push(row.top1_class);
        out.top1_prob.push(row.top1_prob);
        Ok(())
    })?;
    Ok((set.job().clone(), out))
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
