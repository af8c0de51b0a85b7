//! Preprocessed inputs: an image decoded, resized, cropped and normalized once per model
//! version, kept on the device.

use std::sync::Mutex;
use std::time::Instant;

use candle_core::Tensor;
use convlens_models::input::load_input;
use convlens_models::Model;

use super::{tensor_bytes, ByteLru, VersionKey};
use crate::files::ImageKey;
use crate::timing::{self, Part};

/// Inputs by (model version, image).
pub struct InputCache {
    entries: Mutex<ByteLru<(VersionKey, ImageKey), Tensor>>,
}

impl InputCache {
    /// A cache of at most `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        InputCache {
            entries: Mutex::new(ByteLru::new(capacity)),
        }
    }

    /// The input tensor [1, C, H, W] of `image` for `model`, loaded when not cached.
    pub fn get_or_load(
        &self,
        version: &VersionKey,
        model: &Model,
        image: &ImageKey,
    ) -> convlens_models::Result<Tensor> {
        let key = (version.clone(), image.clone());
        if let Some(t) = convlens_shared::sync::lock(&self.entries).get(&key) {
            return Ok(t);
        }
        let start = Instant::now();
        let t = load_input(&image.path, &model.preprocess, &model.device)?;
        timing::record(Part::Decode, start);
        convlens_shared::sync::lock(&self.entries).insert(key, t.clone(), tensor_bytes(&t));
        Ok(t)
    }

    /// Drops the entries of `model` that `keep` refuses.
    pub fn retain(&self, keep: impl Fn(&VersionKey) -> bool) {
        convlens_shared::sync::lock(&self.entries).retain(|(v, _)| keep(v));
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        convlens_shared::sync::lock(&self.entries).bytes()
    }
}
