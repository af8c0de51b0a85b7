//! The models the daemon holds: loaded once, shared by every client, versioned, evicted least
//! recently used first past the memory budget (never one a request is using).
//!
//! A request holds an `Arc<Loaded>` while it runs; "in use" is that Arc having another owner
//! than the registry. An evicted model keeps its entry and is reloaded on its next use.

use std::sync::{Arc, Mutex};

use candle_core::Device;
use convlens_models::{LoadOptions, Model};
use convlens_shared::codes::{self, kind};
use convlens_shared::methods::model::ModelInfo;

use crate::cache::VersionKey;
use crate::service::lock;
use crate::MethodError;

/// What a model was loaded from; loading the same again finds the same model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoadKey {
    /// A weight file, `demo` or `random:ARCH`.
    pub path: String,
    /// `--arch`.
    pub arch: Option<String>,
    /// `--labels`.
    pub labels: Option<String>,
}

impl LoadKey {
    /// Loads it on `device`.
    pub fn load(&self, device: &Device) -> convlens_models::Result<Model> {
        let options = LoadOptions {
            arch: self.arch.clone(),
            labels: self.labels.as_ref().map(Into::into),
        };
        Model::load(&self.path, &options, device)
    }

    /// Whether it names a file (not `demo` or `random:ARCH`).
    pub fn is_file(&self) -> bool {
        self.path != "demo" && !self.path.starts_with("random:")
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
    /// Its cache key.
    pub fn key(&self) -> VersionKey {
        VersionKey {
            model: self.id.clone(),
            version: self.version,
        }
    }
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
}

impl Entry {
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

impl ModelRegistry {
    /// An empty registry for models on `device`, holding at most `budget` bytes of them.
    pub fn new(device: Device, budget: Option<u64>) -> Self {
        ModelRegistry {
            inner: Mutex::new(Inner::default()),
            device,
            budget,
        }
    }

    /// The device models run on.
    pub fn device(&self) -> &Device {
        &self.device
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
            .find(|e| &e.key == key)
            .map(|e| e.id.clone());
        if let Some(id) = existing {
            let loaded = self.acquire(&id)?;
            let mut inner = lock(&self.inner);
            let entry = inner.entry(&id)?;
            entry.watched |= watched;
            return Ok((loaded, entry.layers.clone()));
        }
        let model = key.load(&self.device)?;
        let (parameters, bytes) = size_of(&model);
        let layers: Vec<String> = model
            .graph
            .nodes()
            .iter()
            .skip(1)
            .map(|n| n.name.clone())
            .collect();
        let mut inner = lock(&self.inner);
        if let Some(e) = inner.entries.iter().find(|e| &e.key == key) {
            // Another request loaded it meanwhile: use that one.
            if let Some(r) = &e.resident {
                return Ok((Arc::clone(r), e.layers.clone()));
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
        let entry = Entry {
            id: id.clone(),
            key: key.clone(),
            version: 1,
            resident: Some(Arc::clone(&loaded)),
            last_used: inner.tick,
            bytes,
            watched,
            arch: loaded.model.arch.clone(),
            source: loaded.model.source.clone(),
            classes: loaded.model.labels.len(),
            input_size: loaded.model.preprocess.crop as usize,
            parameters,
            layers: layers.clone(),
        };
        inner.entries.push(entry);
        if let Err(e) = self.enforce_budget(&mut inner, &id) {
            inner.entries.retain(|e| e.id != id);
            return Err(e);
        }
        Ok((loaded, layers))
    }

    /// The resident version of `id`, reloading it if it was evicted; marks it used.
    pub fn acquire(&self, id: &str) -> Result<Arc<Loaded>, MethodError> {
        let key = {
            let mut inner = lock(&self.inner);
            inner.touch(id);
            let entry = inner.entry(id)?;
            if let Some(r) = &entry.resident {
                return Ok(Arc::clone(r));
            }
            entry.key.clone()
        };
        tracing::info!(model = id, "reloading an evicted model");
        let model = key.load(&self.device)?;
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

    /// Installs a reloaded `model` as the next version of `id`; returns that version.
    pub fn replace(&self, id: &str, model: Model) -> Result<u64, MethodError> {
        let mut inner = lock(&self.inner);
        let entry = inner.entry(id)?;
        let (parameters, bytes) = size_of(&model);
        entry.version += 1;
        entry.parameters = parameters;
        entry.bytes = bytes;
        entry.layers = model
            .graph
            .nodes()
            .iter()
            .skip(1)
            .map(|n| n.name.clone())
            .collect();
        entry.arch = model.arch.clone();
        entry.classes = model.labels.len();
        entry.resident = Some(Arc::new(Loaded {
            id: id.to_string(),
            version: entry.version,
            model,
        }));
        let version = entry.version;
        self.enforce_budget(&mut inner, id)?;
        Ok(version)
    }

    /// Forgets `id`; requests holding it finish on the old Arc.
    pub fn unload(&self, id: &str) -> Result<LoadKey, MethodError> {
        let mut inner = lock(&self.inner);
        let at = inner
            .entries
            .iter()
            .position(|e| e.id == id)
            .ok_or_else(|| MethodError::unknown_model(id))?;
        Ok(inner.entries.remove(at).key)
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
            .filter(|e| e.watched && e.key.is_file())
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
