//! The pass over a folder's images as a pipeline: a reader thread hashes each file, takes what
//! the code cache has, and decodes the rest on worker threads, a chunk ahead of the network
//! (a bounded queue of [`PREFETCH`] chunks), while this thread runs the forward passes. Each
//! image's summary goes to a sink in the files' order as soon as its chunk is done, so what
//! consumes the pass (top images per unit, statistics, codes on disk) need not hold the folder in
//! memory: the pipeline holds at most a few chunks of `batch` images.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Mutex;
use std::time::Instant;

use candle_core::Tensor;
use rayon::prelude::*;

use super::cache::{model_fingerprint, CacheKey, CodeCache, ContentHash, HashIndex};
use super::codes::{
    preprocess_file, probe_shape, reason_of, resolve_layer, run_batch, ImageSummary, LayerShape,
    SkippedFile, SummaryOptions,
};
use convlens_shared::sync::lock;

use crate::progress::Progress;
use crate::{Error, Model, Result};

/// Chunks decoded ahead of the network.
pub const PREFETCH: usize = 2;

/// What a pass did besides its rows.
#[derive(Clone, Debug)]
pub struct PassInfo {
    /// The layer's path.
    pub layer: String,
    /// Its units and positions.
    pub shape: LayerShape,
    /// Files that could not be read or decoded, in the files' order.
    pub skipped: Vec<SkippedFile>,
    /// Images that went through the network.
    pub computed: usize,
    /// Images whose summary came from the cache.
    pub cached: usize,
    /// Forward passes (batches) run.
    pub forward_passes: usize,
    /// The cache file, when one was used.
    pub cache_file: Option<PathBuf>,
}

/// One file of a chunk, as the reader left it.
enum Entry {
    /// The cache had its summary.
    Cached(ImageSummary),
    /// Decoded and preprocessed, waiting for the network.
    Decoded(ContentHash, Tensor),
    /// Unreadable.
    Skipped(String),
}

/// Consecutive files, ready for one forward pass (those not cached).
struct Chunk {
    /// The index of the chunk's first file.
    first: usize,
    /// The files, in order.
    paths: Vec<PathBuf>,
    entries: Vec<Entry>,
}

/// What a pass gives its sink for each readable image: its index among the files, its path and
/// its summary.
pub type Sink<'a> = dyn FnMut(usize, &Path, ImageSummary) -> Result<()> + 'a;

/// Runs the pass over `files` (in that order; `total` of them, for progress) at
/// `options.layer`, giving `sink` each readable image's index among the files, path and summary,
/// in order. The files are taken one at a time (a folder's walk need not be listed first).
/// Progress reports images per second.
pub fn stream_files(
    model: &Model,
    files: &mut (dyn Iterator<Item = PathBuf> + Send),
    total: usize,
    options: &SummaryOptions,
    progress: &dyn Progress,
    sink: &mut Sink,
) -> Result<PassInfo> {
    if options.batch == 0 {
        return Err(Error::InvalidArgument(
            "the batch size must be at least 1".into(),
        ));
    }
    let (layer_id, layer) = resolve_layer(model, options.layer.as_deref())?;
    let preprocess = options.preprocess.unwrap_or(model.preprocess);
    let (cache, index) = match &options.cache_dir {
        Some(dir) => {
            let key = CacheKey {
                model: model_fingerprint(model)?,
                layer: layer.clone(),
                preprocess,
            };
            (Some(CodeCache::open(dir, &key)?), HashIndex::open(dir))
        }
        None => (None, HashIndex::disabled()),
    };
    let shape = cache.as_ref().and_then(CodeCache::shape);
    let cache_file = cache.as_ref().map(|c| c.path().to_path_buf());
    let cache = Mutex::new(cache);
    progress.step(0, total, "reading images")?;
    let info = PassInfo {
        layer,
        shape: LayerShape {
            units: 0,
            height: 0,
            width: 0,
        },
        skipped: Vec::new(),
        computed: 0,
        cached: 0,
        forward_passes: 0,
        cache_file,
    };
    let started = Instant::now();
    let mut consumer = Consumer {
        model,
        layer_id,
        cache: &cache,
        shape,
        info,
        done: 0,
    };
    let step = |done: usize| {
        let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
        progress.step(done, total, &format!("embedding, {rate:.0} images/s"))
    };
    let batch = options.batch;
    let outcome = if options.prefetch {
        std::thread::scope(|scope| -> Result<HashIndex> {
            let (tx, rx) = sync_channel::<Chunk>(PREFETCH);
            let (preprocess, cache) = (&preprocess, &cache);
            let reader = scope.spawn(move || {
                read_ahead(files, batch, preprocess, index, cache, &mut |chunk| {
                    tx.send(chunk).is_ok()
                })
            });
            let mut consumed = Ok(());
            for chunk in rx.iter() {
                consumed = consumer.take(chunk, sink).and_then(&step);
                if consumed.is_err() {
                    break;
                }
            }
            // Dropping the receiver stops a reader still running (cancelled, or an error here).
            drop(rx);
            let index = reader
                .join()
                .map_err(|_| Error::InvalidArgument("the image reader thread panicked".into()))?;
            consumed.map(|()| index)
        })
    } else {
        // Read, decode, then run the network, in turn (to measure what the read-ahead gains).
        let mut consumed = Ok(());
        let index = read_ahead(files, batch, &preprocess, index, &cache, &mut |chunk| {
            consumed = consumer.take(chunk, sink).and_then(&step);
            consumed.is_ok()
        });
        consumed.map(|()| index)
    };
    let mut index = outcome?;
    progress.step(total, total, "embedded")?;
    index.save()?;
    let Consumer {
        shape, mut info, ..
    } = consumer;
    info.shape = match shape {
        Some(s) => s,
        None => probe_shape(model, &preprocess, layer_id)?,
    };
    Ok(info)
}

/// A file as the reader first sees it.
enum Read {
    /// The cache had its summary.
    Cached(ImageSummary),
    /// Its content hash, and its bytes when they were read to hash it.
    Pending(ContentHash, Option<Vec<u8>>),
    /// Unreadable.
    Skipped(String),
}

/// The reader: hashes files in order, takes cached summaries, decodes the rest (in parallel)
/// and emits a chunk each time `batch` files need the network. Stops when `emit` says so
/// (the receiver gone, or an error).
fn read_ahead(
    files: &mut (dyn Iterator<Item = PathBuf> + Send),
    batch: usize,
    preprocess: &crate::input::Preprocess,
    mut index: HashIndex,
    cache: &Mutex<Option<CodeCache>>,
    emit: &mut dyn FnMut(Chunk) -> bool,
) -> HashIndex {
    let mut send = |first: usize, paths: Vec<PathBuf>, chunk: Vec<Read>| -> bool {
        let entries: Vec<Entry> = chunk
            .into_par_iter()
            .zip(paths.par_iter())
            .map(|(read, path)| match read {
                Read::Cached(summary) => Entry::Cached(summary),
                Read::Skipped(reason) => Entry::Skipped(reason),
                Read::Pending(hash, bytes) => {
                    match preprocess_file(preprocess, path, bytes.as_deref()) {
                        Ok(t) => Entry::Decoded(hash, t),
                        Err(reason) => Entry::Skipped(reason),
                    }
                }
            })
            .collect();
        emit(Chunk {
            first,
            paths,
            entries,
        })
    };
    // Without a cache no content hash is needed: the file is only read.
    let hashing = lock(cache).is_some();
    let (mut chunk, mut paths, mut first, mut pending) = (Vec::new(), Vec::new(), 0, 0);
    for (slot, file) in files.enumerate() {
        let hashed = if hashing {
            index.hash(&file)
        } else {
            std::fs::read(&file)
                .map(|bytes| ([0; 32], Some(bytes)))
                .map_err(|source| Error::Io {
                    path: file.clone(),
                    source,
                })
        };
        let read = match hashed {
            Err(e) => Read::Skipped(reason_of(&e)),
            Ok((hash, bytes)) => match lock(cache).as_ref().and_then(|c| c.get(&hash)) {
                Some(summary) => Read::Cached(summary),
                None => {
                    pending += 1;
                    Read::Pending(hash, bytes)
                }
            },
        };
        chunk.push(read);
        paths.push(file);
        // A chunk ends when `batch` images need the network (or, all cached, at 8 batches).
        if pending >= batch || chunk.len() >= batch * 8 {
            if !send(
                first,
                std::mem::take(&mut paths),
                std::mem::take(&mut chunk),
            ) {
                return index;
            }
            (first, pending) = (slot + 1, 0);
        }
    }
    if !chunk.is_empty() {
        send(first, paths, chunk);
    }
    index
}

/// Where the network's side keeps what it needs from chunk to chunk.
struct Consumer<'a> {
    model: &'a Model,
    layer_id: crate::graph::NodeId,
    cache: &'a Mutex<Option<CodeCache>>,
    shape: Option<LayerShape>,
    info: PassInfo,
    done: usize,
}

impl Consumer<'_> {
    /// Runs a chunk's decoded images through the model, keeps their summaries in the cache, and
    /// gives every row of the chunk to `sink` in order; returns how many files are done.
    fn take(&mut self, chunk: Chunk, sink: &mut Sink) -> Result<usize> {
        let decoded: Vec<&Tensor> = chunk
            .entries
            .iter()
            .filter_map(|e| match e {
                Entry::Decoded(_, t) => Some(t),
                _ => None,
            })
            .collect();
        let mut fresh = if decoded.is_empty() {
            Vec::new().into_iter()
        } else {
            let x = Tensor::stack(&decoded, 0)?.to_device(&self.model.device)?;
            let (batch_shape, summaries) = run_batch(self.model, self.layer_id, &x)?;
            self.shape = Some(batch_shape);
            self.info.computed += summaries.len();
            self.info.forward_passes += 1;
            if let Some(cache) = lock(self.cache).as_mut() {
                let hashes = chunk.entries.iter().filter_map(|e| match e {
                    Entry::Decoded(h, _) => Some(*h),
                    _ => None,
                });
                cache.insert(batch_shape, hashes.zip(summaries.iter().cloned()))?;
            }
            summaries.into_iter()
        };
        let count = chunk.entries.len();
        for (offset, (entry, path)) in chunk.entries.into_iter().zip(chunk.paths).enumerate() {
            let slot = chunk.first + offset;
            match entry {
                Entry::Cached(summary) => {
                    self.info.cached += 1;
                    sink(slot, &path, summary)?;
                }
                Entry::Decoded(..) => {
                    if let Some(summary) = fresh.next() {
                        sink(slot, &path, summary)?;
                    }
                }
                Entry::Skipped(reason) => self.info.skipped.push(SkippedFile { path, reason }),
            }
        }
        self.done += count;
        Ok(self.done)
    }
}
