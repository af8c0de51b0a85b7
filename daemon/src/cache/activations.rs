//! Forward-pass activations per (model version, image, layer set), so that predict, activations,
//! CAMs and statistics of one image cost one forward pass.
//!
//! An entry keeps the outputs of a set of layers (or of all layers) and always the logits. A
//! request for layers an entry lacks runs one forward pass keeping the union, which replaces it.
//!
//! What a fresh image's `predict` keeps follows what the views asked of the image before it
//! ([`ActivationCache::for_prediction`]): as a user moves from image to image the same views
//! follow each `predict`, and keeping every node's output (80 MB for the demo at 224 px,
//! written to memory not in cache) costs a third of the forward pass itself, which a script
//! asking only for predictions should not pay.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use candle_core::Tensor;
use convlens_models::graph::{NodeId, Trace};
use convlens_models::{Error, Model, Result};

use super::{tensor_bytes, ByteLru, VersionKey};
use crate::files::ImageKey;
use crate::timing::{self, Part};
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

/// Layers to keep: `None` for every layer.
type Keep = Option<BTreeSet<NodeId>>;

/// What the views (activations, explanations, …) asked of the latest image of a model version.
struct Asked {
    image: ImageKey,
    layers: Keep,
}

impl Asked {
    /// Adds the layers of one more request (`None`: all).
    fn add(&mut self, layers: Option<&[NodeId]>) {
        match (&mut self.layers, layers) {
            (None, _) => {}
            (kept @ Some(_), None) => *kept = None,
            (Some(kept), Some(wanted)) => kept.extend(wanted.iter().copied()),
        }
    }
}

/// Activations by (model version, image).
pub struct ActivationCache {
    entries: Mutex<ByteLru<(VersionKey, ImageKey), Arc<Activations>>>,
    /// Per model version, what the views asked of the latest image.
    asked: Mutex<HashMap<VersionKey, Asked>>,
    forwards: AtomicU64,
}

impl ActivationCache {
    /// A cache of at most `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        ActivationCache {
            entries: Mutex::new(ByteLru::new(capacity)),
            asked: Mutex::new(HashMap::new()),
            forwards: AtomicU64::new(0),
        }
    }

    /// The activations of `image` keeping at least `layers` (`None`: all), from the cache or
    /// from one forward pass of `input()`, for a view; what it asks is noted for the next
    /// image's `predict` ([`ActivationCache::for_prediction`]).
    pub fn get_or_forward(
        &self,
        version: &VersionKey,
        model: &Model,
        image: &ImageKey,
        layers: Option<&[NodeId]>,
        input: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Arc<Activations>> {
        {
            let mut asked = lock(&self.asked);
            match asked.get_mut(version) {
                Some(a) if a.image == *image => a.add(layers),
                _ => {
                    asked.insert(
                        version.clone(),
                        Asked {
                            image: image.clone(),
                            layers: layers.map(|l| l.iter().copied().collect()),
                        },
                    );
                }
            }
        }
        self.keeping(version, model, image, layers, input)
    }

    /// The activations of `image` for `image/predict`, from the cache or from one forward pass
    /// of `input()`. `alone` (the only image of its request, as the TUI asks while the user
    /// moves): the pass keeps what the views asked of the image before it, so that the same
    /// views of this one cost no second pass; otherwise (or when no view asked anything) the
    /// logits only.
    pub fn for_prediction(
        &self,
        version: &VersionKey,
        model: &Model,
        image: &ImageKey,
        alone: bool,
        input: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Arc<Activations>> {
        let keep: Keep = if alone {
            let mut asked = lock(&self.asked);
            match asked.get(version) {
                Some(a) if a.image == *image => a.layers.clone(),
                before => {
                    let layers = before.map_or(Some(BTreeSet::new()), |a| a.layers.clone());
                    asked.insert(
                        version.clone(),
                        Asked {
                            image: image.clone(),
                            layers: Some(BTreeSet::new()),
                        },
                    );
                    layers
                }
            }
        } else {
            Some(BTreeSet::new())
        };
        let ids: Option<Vec<NodeId>> = keep.map(|k| k.into_iter().collect());
        self.keeping(version, model, image, ids.as_deref(), input)
    }

    /// [`ActivationCache::get_or_forward`] without noting what was asked.
    fn keeping(
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
        let start = Instant::now();
        let trace = model.graph.forward(&x, ids.as_deref())?;
        timing::record(Part::Forward, start);
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
        lock(&self.asked).retain(|v, _| keep(v));
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        lock(&self.entries).bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use convlens_models::LoadOptions;
    use std::path::Path;

    fn image(name: &str) -> ImageKey {
        ImageKey::of(Path::new(name))
    }

    #[test]
    fn a_fresh_prediction_keeps_what_the_views_asked_of_the_image_before() {
        let model = Model::load("random:small-vgg", &LoadOptions::default(), &Device::Cpu).unwrap();
        let version = VersionKey {
            model: "m1".into(),
            version: 1,
        };
        let cache = ActivationCache::new(1 << 30);
        let x = || {
            Ok(Tensor::ones(
                (1, 1, 28, 28),
                candle_core::DType::F32,
                &Device::Cpu,
            )?)
        };
        let layer = model.graph.node_id("features.3").unwrap();
        let all = model.graph.nodes().len();

        // No view asked anything yet: the logits only.
        let a = cache
            .for_prediction(&version, &model, &image("1"), true, x)
            .unwrap();
        assert_eq!(a.kept, Some(BTreeSet::new()));
        assert_eq!(cache.forwards(), 1);
        // The unit grid of that image needs a pass of its own.
        let a = cache
            .get_or_forward(&version, &model, &image("1"), Some(&[layer]), x)
            .unwrap();
        assert!(a.get(layer).is_some());
        assert_eq!(cache.forwards(), 2);

        // The next image keeps that layer: its grid costs no pass.
        let a = cache
            .for_prediction(&version, &model, &image("2"), true, x)
            .unwrap();
        assert_eq!(a.kept, Some(BTreeSet::from([layer])));
        cache
            .get_or_forward(&version, &model, &image("2"), Some(&[layer]), x)
            .unwrap();
        assert_eq!(cache.forwards(), 3);
        // An explanation of it asks for every node.
        let trace = cache
            .full_trace(&version, &model, &image("2"), &x().unwrap())
            .unwrap();
        assert!(trace.is_complete(all));
        assert_eq!(cache.forwards(), 4);

        // The next image keeps every node: its explanation and its grid cost no pass.
        let a = cache
            .for_prediction(&version, &model, &image("3"), true, x)
            .unwrap();
        assert_eq!(a.kept, None);
        assert_eq!(a.outputs.len(), all);
        cache
            .full_trace(&version, &model, &image("3"), &x().unwrap())
            .unwrap();
        cache
            .get_or_forward(&version, &model, &image("3"), Some(&[layer]), x)
            .unwrap();
        assert_eq!(cache.forwards(), 5);

        // No view asked anything of image 4: image 5 keeps the logits only again.
        let a = cache
            .for_prediction(&version, &model, &image("4"), true, x)
            .unwrap();
        assert_eq!(a.kept, None);
        let a = cache
            .for_prediction(&version, &model, &image("5"), true, x)
            .unwrap();
        assert_eq!(a.kept, Some(BTreeSet::new()));
        assert_eq!(cache.forwards(), 7);

        // An image of a batch keeps the logits only, whatever the views asked.
        cache
            .full_trace(&version, &model, &image("5"), &x().unwrap())
            .unwrap();
        let a = cache
            .for_prediction(&version, &model, &image("6"), false, x)
            .unwrap();
        assert_eq!(a.kept, Some(BTreeSet::new()));
        // A cached image is answered from the cache.
        let before = cache.forwards();
        cache
            .for_prediction(&version, &model, &image("5"), true, x)
            .unwrap();
        assert_eq!(cache.forwards(), before);

        // A version dropped forgets what was asked of it.
        cache.retain(|_| false);
        let a = cache
            .for_prediction(&version, &model, &image("7"), true, x)
            .unwrap();
        assert_eq!(a.kept, Some(BTreeSet::new()));
    }
}
