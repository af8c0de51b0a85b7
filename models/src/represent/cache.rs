//! The on-disk cache of per-image layer summaries, so that a second pass over a folder only runs
//! the network on new or changed files.
//!
//! One cache file per (model weights, layer, preprocessing): its name is a hash of the three, the
//! model being identified by a hash of its architecture and parameter values
//! ([`model_fingerprint`]), not by its path. Inside, records are keyed by the SHA-256 of each image
//! file's bytes, so renaming or moving files costs nothing and editing one re-embeds only it.
//! Records are appended after every batch, so an interrupted pass resumes where it stopped; a
//! record cut short by the interruption, or damaged, fails its CRC and is dropped on load.
//!
//! A second, small index remembers each file's SHA-256 by path, size and modification time, so an
//! unchanged folder is not even re-read ([`HashIndex`]).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};

use std::path::{Path, PathBuf};

use candle_core::DType;
use sha2::{Digest, Sha256};

use super::codes::{ImageSummary, LayerShape};
use crate::input::Preprocess;
use crate::ops::Op;
use crate::{Error, Model, Result};

/// Bumped whenever the record layout or what a record means changes.
const FORMAT_VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"CLCODES\0";
const HEADER_LEN: usize = 8 + 4 * 4;

/// The SHA-256 of a file's bytes.
pub type ContentHash = [u8; 32];

/// The SHA-256 of `bytes`.
pub fn content_hash(bytes: &[u8]) -> ContentHash {
    Sha256::digest(bytes).into()
}

/// Lower-case hexadecimal of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where caches go when the caller names no folder: `$CONVLENS_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/convlens`, else `$HOME/.cache/convlens`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = env("CONVLENS_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = env("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("convlens"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".cache").join("convlens"))
}

/// A hash of what the model computes: its architecture name, every node's name, class and
/// inputs, the geometry of its convolutions and pools, and the values of all its parameters.
/// Two loads of the same weights (from any path) agree; any change to a weight changes it.
pub fn model_fingerprint(model: &Model) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"convlens-model-fingerprint-1\0");
    h.update(model.arch.as_bytes());
    for node in model.graph.nodes() {
        h.update(b"\0node\0");
        h.update(node.name.as_bytes());
        h.update(node.op.class_name().as_bytes());
        for &i in &node.inputs {
            h.update((i as u64).to_le_bytes());
        }
        let (geometry, tensors) = match &node.op {
            Op::Conv2d(c) => (
                format!("{} {:?} {} {}", c.stride, c.padding, c.dilation, c.groups),
                vec![Some(&c.weight), c.bias.as_ref()],
            ),
            Op::BatchNorm2d(b) => (
                format!("{}", b.eps),
                vec![
                    Some(&b.weight),
                    Some(&b.bias),
                    Some(&b.running_mean),
                    Some(&b.running_var),
                ],
            ),
            Op::Linear(l) => (String::new(), vec![Some(&l.weight), l.bias.as_ref()]),
            Op::Constant(t) => (String::new(), vec![Some(t)]),
            Op::MaxPool2d(p) => (format!("{:?}", p.window), vec![]),
            Op::AvgPool2d(p) => (format!("{:?} {}", p.window, p.count_include_pad), vec![]),
            Op::Pad(p) => (format!("{:?} {}", p.pads, p.value), vec![]),
            Op::Activation(a) => (format!("{a:?}"), vec![]),
            _ => (String::new(), vec![]),
        };
        h.update(geometry.as_bytes());
        for t in tensors.into_iter().flatten() {
            h.update(format!("{:?}", t.dims()).as_bytes());
            let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            for v in values {
                h.update(v.to_le_bytes());
            }
        }
    }
    Ok(hex(&h.finalize()))
}

/// What a cache file holds summaries of.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CacheKey {
    /// [`model_fingerprint`] of the model.
    pub model: String,
    /// The layer's path.
    pub layer: String,
    /// How images were preprocessed.
    pub preprocess: Preprocess,
}

impl CacheKey {
    /// The cache file's name for this key.
    pub fn file_name(&self) -> String {
        let text = format!(
            "v{FORMAT_VERSION}\0{}\0{}\0{:?}",
            self.model, self.layer, self.preprocess
        );
        format!("{}.codes", &hex(&content_hash(text.as_bytes()))[..32])
    }
}

/// Per-image layer summaries kept on disk. Only an index (each content hash and where its
/// record lies in the file, ~80 bytes an image) is held in memory; a record is read when asked
/// for, so a cache of a million images does not fill the memory with their codes.
#[derive(Debug)]
pub struct CodeCache {
    path: PathBuf,
    shape: Option<LayerShape>,
    /// Where each stored summary's record starts in the file.
    offsets: HashMap<ContentHash, u64>,
    /// The file, for reading records; `None` until it exists.
    reader: Option<File>,
    /// The file's length (where the next record goes).
    end: u64,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Whether records keep the maxima and their positions: not for a layer without space, where
/// the maximum is the code and its position 0.
fn keeps_maxima(shape: LayerShape) -> bool {
    shape.height * shape.width > 1
}

fn record_len(shape: LayerShape) -> usize {
    let per_unit = if keeps_maxima(shape) { 12 } else { 4 };
    32 + 4 + 4 + 4 + per_unit * shape.units
}

impl CodeCache {
    /// Opens (or prepares to create) the cache for `key` under `dir`, reading its records once
    /// to index them (streamed: a record at a time). A file from another format version, or
    /// damaged beyond its header, is started afresh; a record cut short by an interrupted
    /// append is dropped.
    pub fn open(dir: &Path, key: &CacheKey) -> Result<CodeCache> {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let path = dir.join(key.file_name());
        let mut cache = CodeCache {
            path: path.clone(),
            shape: None,
            offsets: HashMap::new(),
            reader: None,
            end: 0,
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(io_error(&path)(e)),
        };
        let length = file.metadata().map_err(io_error(&path))?.len();
        let mut input = std::io::BufReader::new(&file);
        let mut header = [0u8; HEADER_LEN];
        let shape = match input.read_exact(&mut header) {
            Ok(()) => parse_header(&header),
            Err(_) => None,
        };
        let Some(shape) = shape else {
            drop(input);
            std::fs::remove_file(&path).map_err(io_error(&path))?;
            return Ok(cache);
        };
        let len = record_len(shape);
        let mut record = vec![0u8; len];
        let mut offset = HEADER_LEN as u64;
        while offset + len as u64 <= length {
            input.read_exact(&mut record).map_err(io_error(&path))?;
            if let Some(hash) = check_record(&record) {
                cache.offsets.insert(hash, offset);
            }
            offset += len as u64;
        }
        drop(input);
        if offset != length {
            // An interrupted append: drop the partial record so that new ones stay aligned.
            let f = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_error(&path))?;
            f.set_len(offset).map_err(io_error(&path))?;
        }
        cache.shape = Some(shape);
        cache.reader = Some(file);
        cache.end = offset;
        Ok(cache)
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The layer shape the records were made with, if any are stored.
    pub fn shape(&self) -> Option<LayerShape> {
        self.shape
    }

    /// How many images are stored.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The summary stored for a file with these contents, read from the file (`None` also when
    /// its record no longer reads back whole).
    pub fn get(&self, hash: &ContentHash) -> Option<ImageSummary> {
        use std::os::unix::fs::FileExt;
        let (&offset, shape, file) = (self.offsets.get(hash)?, self.shape?, self.reader.as_ref()?);
        let mut record = vec![0u8; record_len(shape)];
        file.read_exact_at(&mut record, offset).ok()?;
        parse_record(&record, shape)
            .filter(|(h, _)| h == hash)
            .map(|(_, summary)| summary)
    }

    /// Stores `entries` (made with a layer of `shape`) and appends them to the file at once.
    pub fn insert(
        &mut self,
        shape: LayerShape,
        entries: impl IntoIterator<Item = (ContentHash, ImageSummary)>,
    ) -> Result<()> {
        let mut buffer = Vec::new();
        let fresh = match self.shape {
            Some(s) if s == shape => false,
            Some(_) => {
                // The layer changed shape under the same key (another input size is part of the
                // key, so this means a changed model): start over.
                self.offsets.clear();
                true
            }
            None => true,
        };
        if fresh {
            buffer.extend_from_slice(MAGIC);
            for v in [
                FORMAT_VERSION,
                shape.units as u32,
                shape.height as u32,
                shape.width as u32,
            ] {
                buffer.extend_from_slice(&v.to_le_bytes());
            }
            self.shape = Some(shape);
            self.end = 0;
        }
        let mut new = Vec::new();
        for (hash, summary) in entries {
            if summary.code.len() != shape.units
                || summary.max.len() != shape.units
                || summary.argmax.len() != shape.units
            {
                return Err(Error::InvalidArgument(format!(
                    "a layer summary with {} units does not fit the cache's {}",
                    summary.code.len(),
                    shape.units
                )));
            }
            new.push((hash, self.end + buffer.len() as u64));
            buffer.extend_from_slice(&encode_record(&hash, &summary, keeps_maxima(shape)));
        }
        let mut f = if fresh {
            File::create(&self.path)
        } else {
            OpenOptions::new().append(true).open(&self.path)
        }
        .map_err(io_error(&self.path))?;
        f.write_all(&buffer).map_err(io_error(&self.path))?;
        self.end += buffer.len() as u64;
        self.offsets.extend(new);
        if fresh || self.reader.is_none() {
            self.reader = Some(File::open(&self.path).map_err(io_error(&self.path))?);
        }
        Ok(())
    }
}

/// A record's content hash when its checksum holds.
fn check_record(chunk: &[u8]) -> Option<ContentHash> {
    let hash: ContentHash = chunk.get(..32)?.try_into().ok()?;
    let crc = u32::from_le_bytes(chunk.get(32..36)?.try_into().ok()?);
    (crc32fast::hash(chunk.get(36..)?) == crc).then_some(hash)
}

fn parse_header(bytes: &[u8]) -> Option<LayerShape> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return None;
    }
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    if word(8) != FORMAT_VERSION {
        return None;
    }
    let shape = LayerShape {
        units: word(12) as usize,
        height: word(16) as usize,
        width: word(20) as usize,
    };
    (shape.units > 0).then_some(shape)
}

fn encode_record(hash: &ContentHash, s: &ImageSummary, maxima: bool) -> Vec<u8> {
    let mut payload = Vec::with_capacity(8 + 12 * s.code.len());
    payload.extend_from_slice(&s.top1_class.to_le_bytes());
    payload.extend_from_slice(&s.top1_prob.to_le_bytes());
    for v in &s.code {
        payload.extend_from_slice(&v.to_le_bytes());
    }
    if maxima {
        for v in &s.max {
            payload.extend_from_slice(&v.to_le_bytes());
        }
        for v in &s.argmax {
            payload.extend_from_slice(&v.to_le_bytes());
        }
    }
    let mut out = Vec::with_capacity(36 + payload.len());
    out.extend_from_slice(hash);
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn parse_record(chunk: &[u8], shape: LayerShape) -> Option<(ContentHash, ImageSummary)> {
    let units = shape.units;
    let hash: ContentHash = chunk.get(..32)?.try_into().ok()?;
    let crc = u32::from_le_bytes(chunk.get(32..36)?.try_into().ok()?);
    let payload = chunk.get(36..)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let words: Vec<[u8; 4]> = payload
        .chunks_exact(4)
        .map(|c| [c[0], c[1], c[2], c[3]])
        .collect();
    let f = |w: &[u8; 4]| f32::from_le_bytes(*w);
    let u = |w: &[u8; 4]| u32::from_le_bytes(*w);
    let code: Vec<f32> = words.get(2..2 + units)?.iter().map(f).collect();
    let (max, argmax) = if keeps_maxima(shape) {
        if words.len() != 2 + 3 * units {
            return None;
        }
        (
            words[2 + units..2 + 2 * units].iter().map(f).collect(),
            words[2 + 2 * units..].iter().map(u).collect(),
        )
    } else {
        if words.len() != 2 + units {
            return None;
        }
        (code.clone(), vec![0; units])
    };
    Some((
        hash,
        ImageSummary {
            top1_class: u(&words[0]),
            top1_prob: f(&words[1]),
            code,
            max,
            argmax,
        },
    ))
}

/// Remembers each file's content hash by path, size and modification time, so that files
/// unchanged since the last pass are not read again. A file whose size or time changed is hashed
/// anew; the content hash stays the key of the summaries.
#[derive(Debug, Default)]
pub struct HashIndex {
    path: Option<PathBuf>,
    entries: HashMap<PathBuf, (u64, u128, ContentHash)>,
    dirty: bool,
}

impl HashIndex {
    /// The index stored under `dir` (empty if there is none or it cannot be read).
    pub fn open(dir: &Path) -> HashIndex {
        let path = dir.join("file-hashes.tsv");
        let mut index = HashIndex {
            path: Some(path.clone()),
            ..HashIndex::default()
        };
        let Ok(text) = std::fs::read_to_string(&path) else {
            return index;
        };
        for line in text.lines() {
            let mut parts = line.splitn(4, '\t');
            let (Some(size), Some(mtime), Some(hash), Some(file)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(size), Ok(mtime)) = (size.parse::<u64>(), mtime.parse::<u128>()) else {
                continue;
            };
            let Some(hash) = parse_hex(hash) else {
                continue;
            };
            index
                .entries
                .insert(PathBuf::from(file), (size, mtime, hash));
        }
        index
    }

    /// An index that remembers nothing and writes nothing.
    pub fn disabled() -> HashIndex {
        HashIndex::default()
    }

    /// The content hash of `file`, from the index when its size and time are unchanged, else by
    /// reading it (the bytes are returned then, to be decoded without a second read).
    pub fn hash(&mut self, file: &Path) -> Result<(ContentHash, Option<Vec<u8>>)> {
        let meta = std::fs::metadata(file).map_err(io_error(file))?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let absolute = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        if let Some(&(size, time, hash)) = self.entries.get(&absolute) {
            if size == meta.len() && time == mtime && mtime != 0 {
                return Ok((hash, None));
            }
        }
        let bytes = std::fs::read(file).map_err(io_error(file))?;
        let hash = content_hash(&bytes);
        if self.path.is_some() {
            self.entries
                .insert(absolute, (bytes.len() as u64, mtime, hash));
            self.dirty = true;
        }
        Ok((hash, Some(bytes)))
    }

    /// Writes the index back if it changed.
    pub fn save(&mut self) -> Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        let mut text = String::new();
        for (file, (size, mtime, hash)) in &self.entries {
            let Some(name) = file.to_str() else { continue };
            if name.contains('\n') {
                continue;
            }
            text.push_str(&format!("{size}\t{mtime}\t{}\t{name}\n", hex(hash)));
        }
        // Several shards of one sweep save the same index: each through a temporary file of
        // its own (the last rename wins; an entry lost that way is hashed again next time).
        crate::train::checkpoint::write_atomically(path, text.as_bytes())?;
        self.dirty = false;
        Ok(())
    }
}

fn parse_hex(text: &str) -> Option<ContentHash> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(seed: f32, units: usize) -> ImageSummary {
        ImageSummary {
            code: (0..units).map(|u| seed + u as f32).collect(),
            max: (0..units).map(|u| seed * 2.0 + u as f32).collect(),
            argmax: (0..units as u32).collect(),
            top1_class: seed as u32,
            top1_prob: 0.5,
        }
    }

    #[test]
    fn records_are_read_back_from_the_file_after_reopening_and_a_cut_record_is_dropped() {
        let dir = std::env::temp_dir().join(format!("convlens-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let key = CacheKey {
            model: "m".into(),
            layer: "l".into(),
            preprocess: Preprocess::standard(crate::input::Normalization::IMAGENET),
        };
        let shape = LayerShape {
            units: 3,
            height: 2,
            width: 2,
        };
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        let mut cache = CodeCache::open(&dir, &key).unwrap();
        assert!(cache.get(&a).is_none());
        cache.insert(shape, [(a, summary(1.0, 3))]).unwrap();
        cache.insert(shape, [(b, summary(2.0, 3))]).unwrap();
        assert_eq!(
            cache.get(&b),
            Some(summary(2.0, 3)),
            "read from the open file"
        );
        drop(cache);
        let cache = CodeCache::open(&dir, &key).unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&a), Some(summary(1.0, 3)));
        assert_eq!(cache.get(&b), Some(summary(2.0, 3)));
        assert_eq!(cache.get(&c), None);
        drop(cache);
        // An append cut short: the partial record goes, the others stay.
        let path = dir.join(key.file_name());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[7; 20]);
        std::fs::write(&path, &bytes).unwrap();
        let mut cache = CodeCache::open(&dir, &key).unwrap();
        assert_eq!(cache.len(), 2);
        cache.insert(shape, [(c, summary(3.0, 3))]).unwrap();
        drop(cache);
        let cache = CodeCache::open(&dir, &key).unwrap();
        assert_eq!(cache.get(&c), Some(summary(3.0, 3)));
        assert_eq!(cache.get(&a), Some(summary(1.0, 3)));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn writers_saving_one_index_at_once_never_trip_over_each_others_files() {
        // Slurm shards of one sweep share the cache folder; each saves the hash index when it
        // ends. Four writers saving the same index over and over, all at once.
        let dir = std::env::temp_dir().join(format!("convlens-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let mut index = HashIndex::open(&dir);
                        index
                            .entries
                            .insert(PathBuf::from(format!("/w{w}/{i}")), (i, 1, [w as u8; 32]));
                        index.dirty = true;
                        index.save().unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        assert!(!HashIndex::open(&dir).entries.is_empty());
        std::fs::remove_dir_all(&dir).ok();
    }
}
