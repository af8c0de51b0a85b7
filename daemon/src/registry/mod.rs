//! The models the daemon holds: loaded once, shared by every client, versioned, evicted least
//! recently used first past the memory budget (never one a request is using).
//!
//! A request holds an `Arc<Loaded>` while it runs; "in use" is that Arc having another owner
//! than the registry. An evicted model keeps its entry and is reloaded on its next use
//! ([`residency`]).
//!
//! Each model also keeps its history ([`crate::history`]): one record per version. A version
//! whose file was copied can be had again as a *frozen* model (`m1@3`), an entry of its own that
//! is evicted and reloaded like any other and goes when its copy goes.

pub mod entry;
pub mod load_key;
pub mod loaded;
pub mod residency;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::Device;
use convlens_shared::methods::history::{frozen_id, parse_frozen_id, VersionsResult};
use convlens_shared::methods::model::ModelInfo;
use convlens_shared::sync::lock;

use crate::clients::ClientId;
use crate::error::MethodError;
use crate::files::FileStamp;
use crate::history::versions::{VersionRecord, Weights};
use crate::history::{Dropped, History, Snapshot};
use entry::Entry;
pub use load_key::LoadKey;
pub use loaded::Loaded;
use residency::Residency;

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

    /// Keeps `history` within its limits; forgets the frozen models of the versions dropped.
    /// Returns the copies to delete.
    fn enforce_history(&mut self, history: &History) -> Vec<std::path::PathBuf> {
        let Dropped { copies, versions } = history.enforce(
            self.entries
                .iter_mut()
                .map(|e| (e.id.as_str(), &mut e.versions)),
        );
        self.entries.retain(|e| {
            e.frozen
                .as_ref()
                .is_none_or(|(m, v)| !versions.iter().any(|(d, dv)| d == m && dv == v))
        });
        copies
    }

    /// Removes entry `id` and, for a model, its frozen versions; returns its kept copies.
    fn forget(&mut self, id: &str) -> Vec<std::path::PathBuf> {
        let mut copies = Vec::new();
        for e in self.entries.iter().filter(|e| e.id == id) {
            for r in &e.versions {
                if let Weights::Copy(copy) = &r.weights {
                    copies.push(copy.clone());
                }
            }
        }
        self.entries
            .retain(|e| e.id != id && e.frozen.as_ref().is_none_or(|(m, _)| m != id));
        copies
    }
}

/// The models, their versions and residency.
pub struct ModelRegistry {
    inner: Mutex<Inner>,
    device: Device,
    residency: Residency,
    history: History,
}

impl ModelRegistry {
    /// An empty registry for models on `device`, holding at most `budget` bytes of them,
    /// keeping their history in `history`.
    pub fn new(device: Device, budget: Option<u64>, history: History) -> Self {
        ModelRegistry {
            inner: Mutex::new(Inner::default()),
            device,
            residency: Residency { budget },
            history,
        }
    }

    /// The most bytes resident models may take (none: no limit).
    pub fn budget(&self) -> Option<u64> {
        self.residency.budget
    }

    /// The device models run on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Copies checkpoint `path` into the history (see [`History::snapshot`]).
    pub fn snapshot(&self, path: &Path, stamp: Option<FileStamp>) -> Snapshot {
        self.history.snapshot(path, stamp)
    }

    /// Deletes the copy of a snapshot that will not be used.
    pub fn discard(&self, snapshot: Snapshot) {
        self.history.discard(snapshot)
    }

    /// Loads `key` (or finds it loaded) for `holder` (a connected client; none in-process) and
    /// marks whether its file is watched.
    pub fn load(
        &self,
        key: &LoadKey,
        watched: bool,
        holder: Option<ClientId>,
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
                entry.holders.extend(holder);
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
            .iter_mut()
            .find(|e| &e.key == key && e.frozen.is_none())
        {
            // Another request loaded it meanwhile: use that one.
            e.holders.extend(holder);
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
        let bytes = snapshot
            .copy
            .as_ref()
            .map_or_else(|| key.file_size(), |(_, b)| *b);
        let weights = match snapshot.copy {
            Some((copy, _)) => Weights::Copy(copy),
            None if history => Weights::Gone,
            None => Weights::Source,
        };
        let record = VersionRecord::now(1, &key.path, bytes, weights, snapshot.metrics);
        let mut entry = Entry::resident(
            key.clone(),
            &loaded,
            inner.tick,
            watched,
            None,
            vec![record],
        );
        entry.holders.extend(holder);
        let layers = entry.layers.clone();
        inner.entries.push(entry);
        if let Err(e) = self.residency.enforce(&mut inner.entries, &id) {
            let copies = inner.forget(&id);
            drop(inner);
            self.history.remove_copies(copies);
            return Err(e);
        }
        let dropped = inner.enforce_history(&self.history);
        drop(inner);
        self.history.remove_copies(dropped);
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
        let dropped = inner.enforce_history(&self.history);
        drop(inner);
        self.history.remove_copies(dropped);
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
        if let Err(e) = self.residency.enforce(&mut inner.entries, id) {
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
                Weights::Gone => return Err(self.history.not_kept(id, version)),
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
            return Err(self.history.not_kept(id, version));
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
        if let Err(e) = self.residency.enforce(&mut inner.entries, &frozen) {
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

    /// Installs a reloaded `model` as the next version of `id`, with what was kept of its file;
    /// returns that version.
    pub fn replace(
        &self,
        id: &str,
        model: convlens_models::Model,
        snapshot: Snapshot,
    ) -> Result<u64, MethodError> {
        let mut inner = lock(&self.inner);
        let entry = match inner.entry(id) {
            Ok(entry) => entry,
            Err(e) => {
                drop(inner);
                self.discard(snapshot);
                return Err(e);
            }
        };
        let version = entry.next_version(model);
        let bytes = snapshot
            .copy
            .as_ref()
            .map_or_else(|| entry.key.file_size(), |(_, b)| *b);
        let weights = snapshot
            .copy
            .map_or(Weights::Gone, |(copy, _)| Weights::Copy(copy));
        let record = VersionRecord::now(version, &entry.key.path, bytes, weights, snapshot.metrics);
        entry.versions.push(record);
        let dropped = inner.enforce_history(&self.history);
        let fits = self.residency.enforce(&mut inner.entries, id);
        drop(inner);
        self.history.remove_copies(dropped);
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
        let copies = inner.forget(id);
        drop(inner);
        self.history.remove_copies(copies);
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

    /// Client `client` has gone: it holds no model any more.
    pub fn release(&self, client: ClientId) {
        for e in lock(&self.inner).entries.iter_mut() {
            e.holders.remove(&client);
        }
    }

    /// Forgets the models whose file has been missing for `grace` (a writer's unlink and
    /// rename take less), that no connected client holds and no request uses, with their
    /// frozen versions and kept copies. Returns their ids.
    pub fn drop_gone(&self, grace: Duration) -> Vec<String> {
        let mut inner = lock(&self.inner);
        let now = Instant::now();
        let mut gone = Vec::new();
        for e in inner.entries.iter_mut() {
            if !e.key.is_file() || e.frozen.is_some() {
                continue;
            }
            if Path::new(&e.key.path).exists() {
                e.missing_since = None;
                continue;
            }
            let since = *e.missing_since.get_or_insert(now);
            if now.duration_since(since) >= grace && e.holders.is_empty() && !e.in_use() {
                gone.push(e.id.clone());
            }
        }
        let mut copies = Vec::new();
        for id in &gone {
            copies.extend(inner.forget(id));
        }
        drop(inner);
        self.history.remove_copies(copies);
        gone
    }

    /// Bytes of the resident models.
    pub fn resident_bytes(&self) -> u64 {
        residency::resident_bytes(&lock(&self.inner).entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::copies::CopyStore;
    use crate::history::HistoryLimits;
    use std::path::PathBuf;

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
            holders: Default::default(),
            missing_since: None,
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
            residency: Residency { budget: None },
            history: History::with(
                HistoryLimits { versions, bytes },
                CopyStore::new(Some(std::env::temp_dir().join("convlens-unused"))),
            ),
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
        let dropped = lock(&r.inner).enforce_history(&r.history);
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
        assert!(lock(&r.inner).enforce_history(&r.history).is_empty());
    }

    #[test]
    fn a_history_of_no_versions_keeps_nothing() {
        let r = registry(vec![entry("m1", vec![record(1, 10, 40)], None)], 0, 1 << 30);
        assert_eq!(lock(&r.inner).enforce_history(&r.history).len(), 1);
        assert_eq!(kept(&r, "m1"), [false]);
    }
}
