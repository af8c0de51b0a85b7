//! One model the registry knows: what it was loaded from, whether it is resident, what it says
//! of itself, and its versions.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use convlens_models::Model;
use convlens_shared::methods::model::ModelInfo;

use super::load_key::LoadKey;
use super::loaded::Loaded;
use crate::clients::ClientId;
use crate::error::MethodError;
use crate::history::versions::{self, VersionRecord, Weights};

/// A model of the registry (resident or evicted), or a frozen version of one (`m1@3`).
#[derive(Debug)]
pub struct Entry {
    /// Its id (`m1`, `m1@3`).
    pub id: String,
    /// What it was loaded from.
    pub key: LoadKey,
    /// The version serving now.
    pub version: u64,
    /// The network on the device, when resident.
    pub resident: Option<Arc<Loaded>>,
    /// The registry's tick when it was last used.
    pub last_used: u64,
    /// Bytes of its parameters on the device.
    pub bytes: u64,
    /// Whether its file is watched (reloaded when written).
    pub watched: bool,
    /// Its architecture's name.
    pub arch: String,
    /// Where it came from, as said to clients.
    pub source: String,
    /// Output classes.
    pub classes: usize,
    /// Input side in pixels.
    pub input_size: usize,
    /// Parameter count.
    pub parameters: usize,
    /// Layer paths in execution order.
    pub layers: Vec<String>,
    /// For a frozen version: the model and the version it freezes.
    pub frozen: Option<(String, u64)>,
    /// The `torch.export` program the first version was bound to, if any.
    pub program: Option<String>,
    /// Every version, oldest first (none for a frozen version).
    pub versions: Vec<VersionRecord>,
    /// The connected clients that loaded it.
    pub holders: BTreeSet<ClientId>,
    /// Since when its file has been seen missing.
    pub missing_since: Option<Instant>,
}

impl Entry {
    /// A resident entry for `loaded` (its version and id), last used at `tick`; what it says of
    /// the model comes from the model.
    pub fn resident(
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
            holders: BTreeSet::new(),
            missing_since: None,
        }
    }

    /// Makes `model` its next version; returns that version's number.
    pub fn next_version(&mut self, model: Model) -> u64 {
        let (parameters, bytes) = size_of(&model);
        self.version += 1;
        self.parameters = parameters;
        self.bytes = bytes;
        self.layers = layers_of(&model);
        self.arch = model.arch.clone();
        self.classes = model.labels.len();
        self.resident = Some(Arc::new(Loaded {
            id: self.id.clone(),
            version: self.version,
            model,
        }));
        self.version
    }

    /// What to load the version serving now from: its kept copy when there is one (the
    /// watched file may already hold a newer version), else the key.
    pub fn current_key(&self) -> LoadKey {
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
    pub fn record(&self, version: u64) -> Result<&VersionRecord, MethodError> {
        versions::find(&self.id, &self.versions, version)
    }

    /// Whether a request (not only the registry) holds its resident network.
    pub fn in_use(&self) -> bool {
        self.resident
            .as_ref()
            .is_some_and(|r| Arc::strong_count(r) > 1)
    }

    /// What `model/list` says of it.
    pub fn info(&self) -> ModelInfo {
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
