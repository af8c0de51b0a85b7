//! The models the daemon holds: loaded once, shared by every client, versioned, evicted least
//! recently used first past the memory budget (never one a request is using).
//!
//! A request holds an `Arc<Loaded>` while it runs; "in use" is that Arc having another owner
//! than the registry. An evicted model keeps its entry and is reloaded on its next use.
//!
//! Each model also keeps its history: one record per version (when it was loaded, its file's
//! size, the metrics beside it). The versions of a watched checkpoint keep a copy of their file
//! ([`CopyStore`]) within a count per model and a byte budget for all, the oldest dropped first;
//! a kept version can be had again as a *frozen* model (`m1@3`), an entry of its own that is
//! evicted and reloaded like any other and goes when its copy goes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use candle_core::Device;
use convlens_models::{LoadOptions, Model};
use convlens_shared::codes::{self, kind};
use convlens_shared::methods::history::{frozen_id, parse_frozen_id, VersionInfo, VersionsResult};
use convlens_shared::methods::model::ModelInfo;
use serde_json::Value;

use crate::cache::VersionKey;
use crate::files::FileStamp;
use crate::watch::history::CopyStore;
use crate::watch::metrics::metrics_beside;
use crate::{Config, MethodError};
use convlens_shared::sync::lock;

/// What a model was loaded from; loading the same again finds the same model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadKey {
    /// A weight file, `demo` or `random:ARCH`.
    pub path: String,
    /// `--arch`.
    pub arch: Option<String>,
    /// `--labels`.
    pub labels: Option<String>,
    /// `--graph`: the `torch.export` program the weights are bound to.
    pub graph: Option<String>,
    /// `--mean`.
    pub mean: Option<Vec<f32>>,
    /// `--std`.
    pub std: Option<Vec<f32>>,
    /// `--resize`.
    pub resize: Option<u32>,
}

impl LoadKey {
    /// Loads it on `device`.
    pub fn load(&self, device: &Device) -> convlens_models::Result<Model> {
        let options = LoadOptions {
            arch: self.arch.clone(),
            labels: self.labels.as_ref().map(Into::into),
            graph: self.graph.as_ref().map(Into::into),
            mean: self.mean.clone(),
            std: self.std.clone(),
            resize: self.resize,
        };
        Model::load(&self.path, &options, device)
    }

    /// Whether it names a file (not `demo` or `random:ARCH`).
    pub fn is_file(&self) -> bool {
        self.path != "demo" && !self.path.starts_with("random:")
    }

    /// The same options on another file (a kept copy), bound to `program` — the program the
    /// first version was bound to — when no `--graph` was given (a copy has no program beside
    /// it).
    fn at(&self, path: &Path, program: Option<&String>) -> LoadKey {
        LoadKey {
            path: path.display().to_string(),
            graph: self.graph.clone().or_else(|| program.cloned()),
            ..self.clone()
        }
    }
}

/// One version of a model on the device.
#[derive(Debug)]
pub struct Loaded {
    /// The model's id.
    pub id: String,
    /// The version.
    pub version: u64,
    /// The network.
    pub model: Model,
}

impl Loaded {
    /// Its cache key. A frozen version (`m1@3`) shares the caches of the version it freezes
    /// (the same weights), and they go when that model's old versions' caches go.
    pub fn key(&self) -> VersionKey {
        let model = parse_frozen_id(&self.id).map_or(self.id.as_str(), |(m, _)| m);
        VersionKey {
            model: model.to_string(),
            version: self.version,
        }
    }
}

/// Where a version's weights can be had again.
#[derive(Clone, Debug)]
enum Weights {
    /// A kept copy of its file.
    Copy(PathBuf),
    /// The model's own source, which is not reloaded (`demo`, `random:ARCH`, a file not
    /// watched).
    Source,
    /// Not kept: dropped to stay within the history's budget, or never copied.
    Gone,
}

/// One version of a model.
#[derive(Clone, Debug)]
struct VersionRecord {
    version: u64,
    loaded_at: u64,
    source: String,
    bytes: u64,
    weights: Weights,
    metrics: Option<Value>,
}

impl VersionRecord {
    fn info(&self) -> VersionInfo {
        VersionInfo {
            version: self.version,
            loaded_at: self.loaded_at,
            source: self.source.clone(),
            bytes: self.bytes,
            kept: !matches!(self.weights, Weights::Gone),
            metrics: self.metrics.clone(),
        }
    }
}

/// A checkpoint's file as it was when a version was loaded from it.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// A copy of the file and its size (none when the history keeps nothing, or the file
    /// changed while it was copied).
    pub copy: Option<(PathBuf, u64)>,
    /// The metrics written beside it.
    pub metrics: Option<Value>,
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The size of file `path` (0 for `demo`, `random:ARCH` or an unreadable file).
fn file_size(key: &LoadKey) -> u64 {
    if !key.is_file() {
        return 0;
    }
    std::fs::metadata(&key.path).map_or(0, |m| m.len())
}

/// How much history is kept.
#[derive(Clone, Copy, Debug)]
struct HistoryLimits {
    versions: usize,
    bytes: u64,
}

#[derive(Debug)]
struct Entry {
    id: String,
    key: LoadKey,
    version: u64,
    resident: Option<Arc<Loaded>>,
    last_used: u64,
    bytes: u64,
    watched: bool,
    arch: String,
    source: String,
    classes: usize,
    input_size: usize,
    parameters: usize,
    layers: Vec<String>,
    /// For a frozen version: the model and the version it freezes.
    frozen: Option<(String, u64)>,
    /// The `torch.export` program the first version was bound to, if any.
    program: Option<String>,
    /// Every version, oldest first (none for a frozen version).
    versions: Vec<VersionRecord>,
}

impl Entry {
    /// A resident entry for `loaded` (its version and id), last used at `tick`; what it says of
    /// the model comes from the model.
    fn resident(
        key: LoadKey,
        loaded: &Arc<Loaded>,
        tick: u64,
        watched: bool,
        frozen: Option<(String, u64)>,
        versions: Vec<VersionRecord>,
    ) -> Entry {
        let model = &loaded.model;
        let (parameters, bytes) = size_of(model);
        Entry {
            id: loaded.id.clone(),
            key,
            version: loaded.version,
            resident: Some(Arc::clone(loaded)),
            last_used: tick,
            bytes,
            watched,
            arch: model.arch.clone(),
            source: model.source.clone(),
            classes: model.labels.len(),
            input_size: model.preprocess.crop as usize,
            parameters,
            layers: layers_of(model),
            frozen,
            versions,
            program: model.program.as_ref().map(|p| p.display().to_string()),
        }
    }

    /// What to load the version serving now from: its kept copy when there is one (the
    /// watched file may already hold a newer version), else the key.
    fn current_key(&self) -> LoadKey {
        let current = self
            .versions
            .iter()
            .rev()
            .find(|r| r.version == self.version);
        match current.map(|r| &r.weights) {
            Some(Weights::Copy(copy)) => self.key.at(copy, self.program.as_ref()),
            _ => self.key.clone(),
        }
    }

    /// The record of `version`, or an error naming it.
    fn record(&self, version: u64) -> Result<&VersionRecord, MethodError> {
        self.versions
            .iter()
            .find(|r| r.version == version)
            .ok_or_else(|| {
                let range = match (self.versions.first(), self.versions.last()) {
                    (Some(a), Some(b)) if a.version != b.version => {
                        format!("versions {} to {}", a.version, b.version)
                    }
                    (Some(a), _) => format!("only version {}", a.version),
                    _ => "no versions".to_string(),
                };
                MethodError::new(
                    codes::REQUEST_FAILED,
                    format!(
                        "model `{}` has no version {version} (it has {range})",
                        self.id
                    ),
                    kind::UNKNOWN_MODEL,
                )
            })
    }

    fn info(&self) -> ModelInfo {
        ModelInfo {
            model_id: self.id.clone(),
            version: self.version,
            arch: self.arch.clone(),
            source: self.source.clone(),
            classes: self.classes,
            input_size: self.input_size,
            parameters: self.parameters,
            bytes: self.bytes,
            resident: self.resident.is_some(),
            watched: self.watched,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: Vec<Entry>,
    next_id: u64,
    tick: u64,
}

impl Inner {
    fn entry(&mut self, id: &str) -> Result<&mut Entry, MethodError> {
        self.entries
            .iter_mut()
            .find(|e| e.id == id)
            .ok_or_else(|| MethodError::unknown_model(id))
    }

    fn touch(&mut self, id: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self.entries.iter_mut().find(|e| e.id == id) {
            e.last_used = tick;
        }
    }
}

/// The models, their versions and residency.
pub struct ModelRegistry {
    inner: Mutex<Inner>,
    device: Device,
    budget: Option<u64>,
    limits: HistoryLimits,
    store: CopyStore,
}

/// Parameters and their bytes on the device (f32).
fn size_of(model: &Model) -> (usize, u64) {
    let count: usize = model
        .graph
        .parameters()
        .iter()
        .map(|(_, shape)| shape.iter().product::<usize>())
        .sum();
    (count, count as u64 * 4)
}

/// The layer paths of `model` in execution order.
fn layers_of(model: &Model) -> Vec<String> {
    model
        .graph
        .nodes()
        .iter()
        .skip(1)
        .map(|n| n.name.clone())
        .collect()
}

/// Version `version` of `id` is no longer kept.
fn not_kept(id: &str, version: u64, limits: HistoryLimits) -> MethodError {
    MethodError::new(
        codes::REQUEST_FAILED,
        format!(
            "version {version} of model `{id}` is no longer kept: its copy was dropped to keep \
             the checkpoint history within {} versions and {} MiB (`convlens daemon \
             --history-versions N --history-bytes SIZE`)",
            limits.versions,
            limits.bytes >> 20
        ),
        kind::UNKNOWN_MODEL,
    )
}

impl ModelRegistry {
    /// An empty registry for models on `device`, holding at most `budget` bytes of them, with
    /// the default history (see [`ModelRegistry::with_history`]).
    pub fn new(device: Device, budget: Option<u64>) -> Self {
        let defaults = Config::default();
        ModelRegistry {
            inner: Mutex::new(Inner::default()),
            device,
            budget,
            limits: HistoryLimits {
                versions: defaults.history_versions,
                bytes: defaults.history_bytes,
            },
            store: CopyStore::new(None),
        }
    }

    /// Keeps checkpoint history as `config` says (`history_versions`, `history_bytes`,
    /// `history_dir`).
    pub fn with_history(mut self, config: &Config) -> Self {
        self.limits = HistoryLimits {
            versions: config.history_versions,
            bytes: config.history_bytes,
        };
        self.store = CopyStore::new(config.history_dir.clone());
        self
    }

    /// The device models run on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Copies checkpoint `path` into the history and reads the metrics beside it, after
    /// `model` was loaded from it while its stamp was `stamp`. The copy is kept only if the
    /// file is still at `stamp` once copied (so that it holds the weights loaded), and the
    /// history keeps anything at all.
    pub fn snapshot(&self, path: &Path, stamp: Option<FileStamp>) -> Snapshot {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        let copy = if self.limits.versions == 0 || size > self.limits.bytes || stamp.is_none() {
            None
        } else {
            match self.store.copy_in(path) {
                Ok(copy) if FileStamp::of(path) == stamp => Some(copy),
                Ok((copy, _)) => {
                    tracing::info!(path = %path.display(), "changed while copied; not kept");
                    self.store.remove(&copy);
                    None
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "cannot keep a copy: {e}");
                    None
                }
            }
        };
        let metrics = metrics_beside(path, copy.as_ref().map_or(path, |(c, _)| c.as_path()));
        Snapshot { copy, metrics }
    }

    /// Deletes the copy of a snapshot that will not be used.
    pub fn discard(&self, snapshot: Snapshot) {
        if let Some((copy, _)) = snapshot.copy {
            self.store.remove(&copy);
        }
    }

    /// Loads `key` (or finds it loaded) and marks whether its file is watched.
    pub fn load(
        &self,
        key: &LoadKey,
        watched: bool,
    ) -> Result<(Arc<Loaded>, Vec<String>), MethodError> {
        let existing = lock(&self.inner)
            .entries
            .iter()
            .find(|e| &e.key == key && e.frozen.is_none())
            .map(|e| e.id.clone());
        if let Some(id) = existing {
            let loaded = self.acquire(&id)?;
            let (layers, newly_watched) = {
                let mut inner = lock(&self.inner);
                let entry = inner.entry(&id)?;
                let newly = watched && !entry.watched && key.is_file();
                entry.watched |= watched;
                (entry.layers.clone(), newly)
            };
            if newly_watched {
                self.start_history(&id, key);
            }
            return Ok((loaded, layers));
        }
        let path = Path::new(&key.path);
        let stamp = key.is_file().then(|| FileStamp::of(path)).flatten();
        let model = key.load(&self.device)?;
        let history = watched && key.is_file();
        let snapshot = if history {
            self.snapshot(path, stamp)
        } else {
            Snapshot::default()
        };
        let mut inner = lock(&self.inner);
        if let Some(e) = inner
            .entries
            .iter()
            .find(|e| &e.key == key && e.frozen.is_none())
        {
            // Another request loaded it meanwhile: use that one.
            if let Some(r) = &e.resident {
                let found = (Arc::clone(r), e.layers.clone());
                drop(inner);
                self.discard(snapshot);
                return Ok(found);
            }
        }
        inner.next_id += 1;
        inner.tick += 1;
        let id = format!("m{}", inner.next_id);
        let loaded = Arc::new(Loaded {
            id: id.clone(),
            version: 1,
            model,
        });
        let record = VersionRecord {
            version: 1,
            loaded_at: now_ms(),
            source: key.path.clone(),
            bytes: snapshot
                .copy
                .as_ref()
                .map_or_else(|| file_size(key), |(_, b)| *b),
            weights: match snapshot.copy {
                Some((copy, _)) => Weights::Copy(copy),
                None if history => Weights::Gone,
                None => Weights::Source,
            },
            metrics: snapshot.metrics,
        };
        let entry = Entry::resident(
            key.clone(),
            &loaded,
            inner.tick,
            watched,
            None,
            vec![record],
        );
        let layers = entry.layers.clone();
        inner.entries.push(entry);
        if let Err(e) = self.enforce_budget(&mut inner, &id) {
            let copies = Self::forget(&mut inner, &id);
            drop(inner);
            self.remove_copies(copies);
            return Err(e);
        }
        let dropped = self.enforce_history(&mut inner);
        drop(inner);
        self.remove_copies(dropped);
        Ok((loaded, layers))
    }

    /// A model loaded unwatched is watched from now on: its current version, which until now
    /// was had again from its file, gets a copy of the file as it is now.
    fn start_history(&self, id: &str, key: &LoadKey) {
        let path = Path::new(&key.path);
        let snapshot = self.snapshot(path, FileStamp::of(path));
        let mut inner = lock(&self.inner);
        let Ok(entry) = inner.entry(id) else {
            drop(inner);
            self.discard(snapshot);
            return;
        };
        let version = entry.version;
        let Some(record) = entry.versions.iter_mut().find(|r| r.version == version) else {
            drop(inner);
            self.discard(snapshot);
            return;
        };
        record.weights = match snapshot.copy {
            Some((copy, bytes)) => {
                record.bytes = bytes;
                Weights::Copy(copy)
            }
            None => Weights::Gone,
        };
        if record.metrics.is_none() {
            record.metrics = snapshot.metrics;
        }
        let dropped = self.enforce_history(&mut inner);
        drop(inner);
        self.remove_copies(dropped);
    }

    /// The resident version of `id`, reloading it if it was evicted; marks it used. A frozen
    /// id (`m1@3`) not loaded yet is loaded from its kept copy.
    pub fn acquire(&self, id: &str) -> Result<Arc<Loaded>, MethodError> {
        let known = lock(&self.inner).entries.iter().any(|e| e.id == id);
        match parse_frozen_id(id) {
            Some((model, version)) if !known => Ok(self.at_version(model, version)?.0),
            _ => self.acquire_entry(id),
        }
    }

    /// The resident version of entry `id`, reloading it if it was evicted.
    fn acquire_entry(&self, id: &str) -> Result<Arc<Loaded>, MethodError> {
        let (key, source) = {
            let mut inner = lock(&self.inner);
            inner.touch(id);
            let entry = inner.entry(id)?;
            if let Some(r) = &entry.resident {
                return Ok(Arc::clone(r));
            }
            (entry.current_key(), entry.source.clone())
        };
        tracing::info!(model = id, "reloading an evicted model");
        let mut model = key.load(&self.device)?;
        model.source = source;
        let mut inner = lock(&self.inner);
        let entry = inner.entry(id)?;
        if let Some(r) = &entry.resident {
            return Ok(Arc::clone(r));
        }
        let loaded = Arc::new(Loaded {
            id: id.to_string(),
            version: entry.version,
            model,
        });
        entry.resident = Some(Arc::clone(&loaded));
        if let Err(e) = self.enforce_budget(&mut inner, id) {
            if let Ok(entry) = inner.entry(id) {
                entry.resident = None;
            }
            return Err(e);
        }
        Ok(loaded)
    }

    /// Version `version` of model `id` as a frozen model (`m1@3`), loaded from its kept copy
    /// (or found loaded); with its layers.
    pub fn at_version(
        &self,
        id: &str,
        version: u64,
    ) -> Result<(Arc<Loaded>, Vec<String>), MethodError> {
        let frozen = frozen_id(id, version);
        let (key, source) = {
            let inner = lock(&self.inner);
            if let Some(e) = inner.entries.iter().find(|e| e.id == frozen) {
                let layers = e.layers.clone();
                drop(inner);
                return Ok((self.acquire_entry(&frozen)?, layers));
            }
            let base = inner
                .entries
                .iter()
                .find(|e| e.id == id && e.frozen.is_none())
                .ok_or_else(|| MethodError::unknown_model(id))?;
            let record = base.record(version)?;
            let key = match &record.weights {
                Weights::Copy(copy) => base.key.at(copy, base.program.as_ref()),
                Weights::Source => base.key.clone(),
                Weights::Gone => return Err(not_kept(id, version, self.limits)),
            };
            (key, base.source.clone())
        };
        let loaded = key.load(&self.device);
        let mut inner = lock(&self.inner);
        let still_kept = inner
            .entries
            .iter()
            .find(|e| e.id == id && e.frozen.is_none())
            .and_then(|e| e.record(version).ok())
            .is_some_and(|r| !matches!(r.weights, Weights::Gone));
        if !still_kept {
            // Dropped (or the model unloaded) while it loaded.
            return Err(not_kept(id, version, self.limits));
        }
        let mut model = loaded?;
        model.source = source;
        if let Some(e) = inner.entries.iter_mut().find(|e| e.id == frozen) {
            // Another request froze it meanwhile.
            let layers = e.layers.clone();
            let r = e.resident.get_or_insert_with(|| {
                Arc::new(Loaded {
                    id: frozen.clone(),
                    version,
                    model,
                })
            });
            return Ok((Arc::clone(r), layers));
        }
        inner.tick += 1;
        let tick = inner.tick;
        let loaded = Arc::new(Loaded {
            id: frozen.clone(),
            version,
            model,
        });
        let entry = Entry::resident(
            key,
            &loaded,
            tick,
            false,
            Some((id.to_string(), version)),
            Vec::new(),
        );
        let layers = entry.layers.clone();
        inner.entries.push(entry);
        if let Err(e) = self.enforce_budget(&mut inner, &frozen) {
            inner.entries.retain(|e| e.id != frozen);
            return Err(e);
        }
        Ok((loaded, layers))
    }

    /// Every version of `id` (of the model a frozen id belongs to), oldest first.
    pub fn versions(&self, id: &str) -> Result<VersionsResult, MethodError> {
        let inner = lock(&self.inner);
        let base = inner
            .entries
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.frozen.as_ref().map(|(m, _)| m.as_str()))
            .or_else(|| parse_frozen_id(id).map(|(m, _)| m))
            .unwrap_or(id);
        let entry = inner
            .entries
            .iter()
            .find(|e| e.id == base && e.frozen.is_none())
            .ok_or_else(|| MethodError::unknown_model(id))?;
        Ok(VersionsResult {
            model_id: entry.id.clone(),
            versions: entry.versions.iter().map(VersionRecord::info).collect(),
        })
    }

    /// Evicts least recently used models not in use (never `keep`) until the resident ones fit
    /// the budget; refuses when `keep` alone does not fit.
    fn enforce_budget(&self, inner: &mut Inner, keep: &str) -> Result<(), MethodError> {
        let Some(budget) = self.budget else {
            return Ok(());
        };
        let resident = |inner: &Inner| -> u64 {
            inner
                .entries
                .iter()
                .filter(|e| e.resident.is_some())
                .map(|e| e.bytes)
                .sum()
        };
        if let Some(e) = inner.entries.iter().find(|e| e.id == keep) {
            if e.bytes > budget {
                return Err(MethodError::new(
                    codes::REQUEST_FAILED,
                    format!(
                        "{} takes {} bytes, over the memory budget of {budget} bytes",
                        e.source, e.bytes
                    ),
                    kind::MEMORY_BUDGET,
                ));
            }
        }
        while resident(inner) > budget {
            let victim = inner
                .entries
                .iter_mut()
                .filter(|e| e.id != keep)
                .filter(|e| {
                    e.resident
                        .as_ref()
                        .is_some_and(|r| Arc::strong_count(r) == 1)
                })
                .min_by_key(|e| e.last_used);
            match victim {
                Some(e) => {
                    tracing::info!(model = %e.id, bytes = e.bytes, "evicted (memory budget)");
                    e.resident = None;
                }
                None => {
                    tracing::warn!("over the memory budget: every other model is in use");
                    break;
                }
            }
        }
        Ok(())
    }

    /// Drops the oldest kept copies until each model keeps at most the version count and all
    /// together the byte budget; forgets the frozen models of the versions dropped. Returns the
    /// copies to delete.
    fn enforce_history(&self, inner: &mut Inner) -> Vec<PathBuf> {
        let mut dropped: Vec<(String, u64)> = Vec::new();
        let mut copies = Vec::new();
        let mut drop_record = |id: &str, r: &mut VersionRecord| {
            if let Weights::Copy(copy) = std::mem::replace(&mut r.weights, Weights::Gone) {
                tracing::info!(model = id, version = r.version, "history: version dropped");
                copies.push(copy);
                dropped.push((id.to_string(), r.version));
            }
        };
        for e in inner.entries.iter_mut() {
            let kept = e
                .versions
                .iter()
                .filter(|r| matches!(r.weights, Weights::Copy(_)))
                .count();
            let excess = kept.saturating_sub(self.limits.versions);
            let id = e.id.clone();
            for r in e
                .versions
                .iter_mut()
                .filter(|r| matches!(r.weights, Weights::Copy(_)))
                .take(excess)
            {
                drop_record(&id, r);
            }
        }
        loop {
            let total: u64 = inner
                .entries
                .iter()
                .flat_map(|e| &e.versions)
                .filter(|r| matches!(r.weights, Weights::Copy(_)))
                .map(|r| r.bytes)
                .sum();
            if total <= self.limits.bytes {
                break;
            }
            let oldest = inner
                .entries
                .iter_mut()
                .flat_map(|e| {
                    let id = e.id.clone();
                    e.versions.iter_mut().map(move |r| (id.clone(), r))
                })
                .filter(|(_, r)| matches!(r.weights, Weights::Copy(_)))
                .min_by_key(|(_, r)| (r.loaded_at, r.version));
            match oldest {
                Some((id, r)) => drop_record(&id, r),
                None => break,
            }
        }
        inner.entries.retain(|e| {
            e.frozen
                .as_ref()
                .is_none_or(|(m, v)| !dropped.iter().any(|(d, dv)| d == m && dv == v))
        });
        copies
    }

    /// Deletes `copies` (outside the lock: file I/O).
    fn remove_copies(&self, copies: Vec<PathBuf>) {
        for copy in copies {
            self.store.remove(&copy);
        }
    }

    /// Removes entry `id` and, for a model, its frozen versions; returns its kept copies.
    fn forget(inner: &mut Inner, id: &str) -> Vec<PathBuf> {
        let mut copies = Vec::new();
        for e in inner.entries.iter().filter(|e| e.id == id) {
            for r in &e.versions {
                if let Weights::Copy(copy) = &r.weights {
                    copies.push(copy.clone());
                }
            }
        }
        inner
            .entries
            .retain(|e| e.id != id && e.frozen.as_ref().is_none_or(|(m, _)| m != id));
        copies
    }

    /// Installs a reloaded `model` as the next version of `id`, with what was kept of its file;
    /// returns that version.
    pub fn replace(&self, id: &str, model: Model, snapshot: Snapshot) -> Result<u64, MethodError> {
        let mut inner = lock(&self.inner);
        let entry = match inner.entry(id) {
            Ok(entry) => entry,
            Err(e) => {
                drop(inner);
                self.discard(snapshot);
                return Err(e);
            }
        };
        let (parameters, bytes) = size_of(&model);
        entry.version += 1;
        entry.parameters = parameters;
        entry.bytes = bytes;
        entry.layers = layers_of(&model);
        entry.arch = model.arch.clone();
        entry.classes = model.labels.len();
        entry.resident = Some(Arc::new(Loaded {
            id: id.to_string(),
            version: entry.version,
            model,
        }));
        let version = entry.version;
        entry.versions.push(VersionRecord {
            version,
            loaded_at: now_ms(),
            source: entry.key.path.clone(),
            bytes: snapshot
                .copy
                .as_ref()
                .map_or_else(|| file_size(&entry.key), |(_, b)| *b),
            weights: snapshot
                .copy
                .map_or(Weights::Gone, |(copy, _)| Weights::Copy(copy)),
            metrics: snapshot.metrics,
        });
        let dropped = self.enforce_history(&mut inner);
        let fits = self.enforce_budget(&mut inner, id);
        drop(inner);
        self.remove_copies(dropped);
        fits?;
        Ok(version)
    }

    /// Forgets `id` (a model's frozen versions and kept copies with it); requests holding it
    /// finish on the old Arc.
    pub fn unload(&self, id: &str) -> Result<LoadKey, MethodError> {
        let mut inner = lock(&self.inner);
        let key = inner
            .entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.key.clone())
            .ok_or_else(|| MethodError::unknown_model(id))?;
        let copies = Self::forget(&mut inner, id);
        drop(inner);
        self.remove_copies(copies);
        Ok(key)
    }

    /// What is known of `id`.
    pub fn info(&self, id: &str) -> Result<ModelInfo, MethodError> {
        Ok(lock(&self.inner).entry(id)?.info())
    }

    /// The current version of `id`.
    pub fn version(&self, id: &str) -> Option<u64> {
        lock(&self.inner)
            .entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.version)
    }

    /// Every model, in load order.
    pub fn list(&self) -> Vec<ModelInfo> {
        lock(&self.inner).entries.iter().map(Entry::info).collect()
    }

    /// The watched models loaded from `path`, with what to load them from.
    pub fn watched_from(&self, path: &std::path::Path) -> Vec<(String, LoadKey, u64)> {
        lock(&self.inner)
            .entries
            .iter()
            .filter(|e| e.watched && e.key.is_file() && e.frozen.is_none())
            .filter(|e| {
                let p = std::path::Path::new(&e.key.path);
                p == path || std::fs::canonicalize(p).is_ok_and(|c| c == path)
            })
            .map(|e| (e.id.clone(), e.key.clone(), e.version))
            .collect()
    }

    /// Bytes of the resident models.
    pub fn resident_bytes(&self) -> u64 {
        lock(&self.inner)
            .entries
            .iter()
            .filter(|e| e.resident.is_some())
            .map(|e| e.bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64, loaded_at: u64, bytes: u64) -> VersionRecord {
        VersionRecord {
            version,
            loaded_at,
            source: "/run/checkpoint.safetensors".into(),
            bytes,
            weights: Weights::Copy(PathBuf::from(format!("/copies/{loaded_at}-{version}"))),
            metrics: Some(serde_json::json!({ "step": version * 100 })),
        }
    }

    fn entry(id: &str, versions: Vec<VersionRecord>, frozen: Option<(&str, u64)>) -> Entry {
        Entry {
            id: id.into(),
            key: LoadKey {
                path: "/run/checkpoint.safetensors".into(),
                ..LoadKey::default()
            },
            version: versions.last().map_or(1, |r| r.version),
            resident: None,
            last_used: 0,
            bytes: 0,
            watched: frozen.is_none(),
            arch: "small-vgg".into(),
            source: "/run/checkpoint.safetensors".into(),
            classes: 10,
            input_size: 28,
            parameters: 0,
            layers: Vec::new(),
            frozen: frozen.map(|(m, v)| (m.to_string(), v)),
            versions,
            program: None,
        }
    }

    fn registry(entries: Vec<Entry>, versions: usize, bytes: u64) -> ModelRegistry {
        ModelRegistry {
            inner: Mutex::new(Inner {
                entries,
                next_id: 2,
                tick: 0,
            }),
            device: Device::Cpu,
            budget: None,
            limits: HistoryLimits { versions, bytes },
            store: CopyStore::new(Some(std::env::temp_dir().join("convlens-unused"))),
        }
    }

    fn kept(r: &ModelRegistry, id: &str) -> Vec<bool> {
        r.versions(id)
            .unwrap()
            .versions
            .iter()
            .map(|v| v.kept)
            .collect()
    }

    #[test]
    fn history_drops_the_oldest_copies_past_the_count_then_the_bytes() {
        // m1: five copies of 40 bytes loaded at t = 10..50; m2: three of 100 bytes at 15, 25, 60.
        let m1 = (1..=5).map(|v| record(v, v * 10, 40)).collect();
        let m2 = vec![record(1, 15, 100), record(2, 25, 100), record(3, 60, 100)];
        let r = registry(
            vec![
                entry("m1", m1, None),
                entry("m2", m2, None),
                entry("m1@2", Vec::new(), Some(("m1", 2))),
                entry("m1@4", Vec::new(), Some(("m1", 4))),
            ],
            3,
            250,
        );
        let dropped = r.enforce_history(&mut lock(&r.inner));
        // The count leaves m1 three (v3..v5: 120 bytes); with m2's 300 that is 420 > 250, so the
        // oldest left go, whichever model they belong to: m2's v1 (t=15), then its v2 (t=25).
        let names: Vec<String> = dropped.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "/copies/10-1",
                "/copies/20-2",
                "/copies/15-1",
                "/copies/25-2"
            ]
        );
        assert_eq!(kept(&r, "m1"), [false, false, true, true, true]);
        assert_eq!(kept(&r, "m2"), [false, false, true]);
        // The frozen model of a dropped version goes; that of a kept one stays.
        let ids: Vec<String> = r.list().into_iter().map(|m| m.model_id).collect();
        assert_eq!(ids, ["m1", "m2", "m1@4"]);
        // A dropped version is listed still (metrics and all) but cannot be had.
        let listed = r.versions("m1@4").unwrap();
        assert_eq!(listed.model_id, "m1");
        assert_eq!(
            listed.versions[0].metrics,
            Some(serde_json::json!({"step": 100}))
        );
        let gone = r.at_version("m1", 2).unwrap_err().message;
        assert!(
            gone.contains("version 2 of model `m1` is no longer kept"),
            "{gone}"
        );
        let missing = r.at_version("m1", 9).unwrap_err().message;
        assert!(
            missing.contains("`m1` has no version 9 (it has versions 1 to 5)"),
            "{missing}"
        );
        assert!(r.at_version("m7", 1).is_err());
        // Nothing more to drop.
        assert!(r.enforce_history(&mut lock(&r.inner)).is_empty());
    }

    #[test]
    fn a_history_of_no_versions_keeps_nothing() {
        let r = registry(vec![entry("m1", vec![record(1, 10, 40)], None)], 0, 1 << 30);
        assert_eq!(r.enforce_history(&mut lock(&r.inner)).len(), 1);
        assert_eq!(kept(&r, "m1"), [false]);
    }

    #[test]
    fn frozen_versions_share_the_caches_of_their_model() {
        let model = Model::load("random:small-vgg", &LoadOptions::default(), &Device::Cpu).unwrap();
        let loaded = Loaded {
            id: frozen_id("m3", 2),
            version: 2,
            model,
        };
        assert_eq!(
            loaded.key(),
            VersionKey {
                model: "m3".into(),
                version: 2
            }
        );
    }
}
