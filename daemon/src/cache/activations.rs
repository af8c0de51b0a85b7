//! Forward-pass activations per (model version, image, layer set), so that predict, activations,
//! CAMs and statistics of one image cost one forward pass.
//!
//! An entry keeps the outputs of a set of layers (or of all layers) and always the logits. A
//! request for layers an entry lacks runs one forward pass keeping the union, which replaces it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use candle_core::Tensor;
use convlens_models::graph::{NodeId, Trace};
use convlens_models::{Error, Model, Result};

use super::{tensor_bytes, ByteLru, VersionKey};
use crate::files::ImageKey;
use convlens_shared::sync::lock;

/// The kept outputs of one forward pass of one image.
#[derive(Debug)]
pub struct Activations {
    /// The layers kept; `None` when all were.
    pub kept: Option<BTreeSet<NodeId>>,
    /// Their outputs, [1, ...] each.
    pub outputs: HashMap<NodeId, Tensor>,
    /// The network's output [1, classes].
    pub logits: Tensor,
}

impl Activations {
    /// Whether it holds every layer of `layers` (`None`: all layers).
    pub fn covers(&self, layers: Option<&[NodeId]>) -> bool {
        match (&self.kept, layers) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(kept), Some(wanted)) => wanted.iter().all(|l| kept.contains(l)),
        }
    }

    /// The output of `layer`, if kept.
    pub fn get(&self, layer: NodeId) -> Option<&Tensor> {
        self.outputs.get(&layer)
    }

    fn bytes(&self) -> u64 {
        tensor_bytes(&self.logits) + self.outputs.values().map(tensor_bytes).sum::<u64>()
    }
}

/// Activations by (model version, image).
pub struct ActivationCache {
    entries: Mutex<ByteLru<(VersionKey, ImageKey), Arc<Activations>>>,
    forwards: AtomicU64,
}

impl ActivationCache {
    /// A cache of at most `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        ActivationCache {
            entries: Mutex::new(ByteLru::new(capacity)),
            forwards: AtomicU64::new(0),
        }
    }

    /// The activations of `image` keeping at least `layers` (`None`: all), from the cache or
    /// from one forward pass of `input()`.
    pub fn get_or_forward(
        &self,
        version: &VersionKey,
        model: &Model,
        image: &ImageKey,
        layers: Option<&[NodeId]>,
        input: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Arc<Activations>> {
        let key = (version.clone(), image.clone());
        let cached = lock(&self.entries).get(&key);
        let keep: Option<BTreeSet<NodeId>> = match (&cached, layers) {
            (Some(a), _) if a.covers(layers) => return Ok(Arc::clone(a)),
            (_, None) => None,
            (Some(a), Some(wanted)) => {
                let mut union = a.kept.clone().unwrap_or_default();
                union.extend(wanted.iter().copied());
                Some(union)
            }
            (None, Some(wanted)) => Some(wanted.iter().copied().collect()),
        };
        let x = input()?;
        let ids: Option<Vec<NodeId>> = keep.as_ref().map(|k| k.iter().copied().collect());
        self.forwards.fetch_add(1, Ordering::Relaxed);
        let trace = model.graph.forward(&x, ids.as_deref())?;
        let logits = trace
            .output()
            .cloned()
            .ok_or_else(|| Error::InvalidArgument("the network produced no output".into()))?;
        let node_count = model.graph.nodes().len();
        let outputs = match &ids {
            Some(ids) => ids
                .iter()
                .filter_map(|&i| trace.get(i).map(|t| (i, t.clone())))
                .collect(),
            None => (0..node_count)
                .filter_map(|i| trace.get(i).map(|t| (i, t.clone())))
                .collect(),
        };
        let activations = Arc::new(Activations {
            kept: keep,
            outputs,
            logits,
        });
        let bytes = activations.bytes();
        lock(&self.entries).insert(key, Arc::clone(&activations), bytes);
        Ok(activations)
    }

    /// The forward trace of every node of `model` for `image` (computed from `input` and kept
    /// when the cache holds less), for the methods that run backward passes over it.
    pub fn full_trace(
        &self,
        version: &VersionKey,
        model: &Model,
        image: &ImageKey,
        input: &Tensor,
    ) -> Result<Trace> {
        let forward = self.get_or_forward(version, model, image, None, || Ok(input.clone()))?;
        let nodes = model.graph.nodes().len();
        Ok(Trace::from_outputs(
            (0..nodes).map(|n| forward.get(n).cloned()).collect(),
        ))
    }

    /// Keeps the logits of images whose forward pass ran elsewhere (a batch).
    pub fn insert_logits(&self, version: &VersionKey, image: &ImageKey, logits: Tensor) {
        let key = (version.clone(), image.clone());
        let mut entries = lock(&self.entries);
        if entries.get(&key).is_some() {
            return;
        }
        let a = Arc::new(Activations {
            kept: Some(BTreeSet::new()),
            outputs: HashMap::new(),
            logits,
        });
        let bytes = a.bytes();
        entries.insert(key, a, bytes);
    }

    /// The cached activations of `image`, if any.
    pub fn get(&self, version: &VersionKey, image: &ImageKey) -> Option<Arc<Activations>> {
        lock(&self.entries).get(&(version.clone(), image.clone()))
    }

    /// Counts a forward pass run outside [`ActivationCache::get_or_forward`] (a batch).
    pub fn count_forward(&self) {
        self.forwards.fetch_add(1, Ordering::Relaxed);
    }

    /// Forward passes run since start.
    pub fn forwards(&self) -> u64 {
        self.forwards.load(Ordering::Relaxed)
    }

    /// Drops the entries whose version `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&VersionKey) -> bool) {
        lock(&self.entries).retain(|(v, _)| keep(v));
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        lock(&self.entries).bytes()
    }
}
