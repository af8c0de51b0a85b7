//! `image/predict`: the top-K classes of images. Logits come from the activation cache; the
//! images not cached go through the network in batches.

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use convlens_shared::array::Array;
use convlens_shared::methods::predict::{
    ClassScore, ImagePredict, PredictParams, PredictResult, Prediction,
};
use serde_json::Value;

use super::call::Call;
use super::router::Router;
use crate::error::MethodError;
use crate::files::ImageKey;
use crate::jobs::Priority;
use crate::timing::{self, Part};

/// Images per forward pass.
const BATCH: usize = 32;

/// Adds `image/predict`.
pub fn register(r: &mut Router) {
    r.job::<ImagePredict>(priority, predict);
}

/// One image is interactive; more are a sweep.
fn priority(params: &Value) -> Priority {
    match params.get("images").and_then(Value::as_array) {
        Some(images) if images.len() > 1 => Priority::Sweep,
        _ => Priority::Interactive,
    }
}

/// The predictions for every image.
pub fn predict(call: &Call, p: PredictParams) -> Result<PredictResult, MethodError> {
    let loaded = call.service.models.acquire(&p.model_id)?;
    let model = &loaded.model;
    let version = loaded.key();
    let service = call.service;
    let keys: Vec<ImageKey> = p
        .images
        .iter()
        .map(|s| ImageKey::of(Path::new(s)))
        .collect();
    let mut rows: Vec<Option<Tensor>> = keys
        .iter()
        .map(|k| {
            service
                .activations
                .get(&version, k)
                .map(|a| a.logits.clone())
        })
        .collect();
    let missing: Vec<usize> = (0..keys.len()).filter(|&i| rows[i].is_none()).collect();
    let inputs = missing
        .iter()
        .map(|&i| service.inputs.get_or_load(&version, model, &keys[i]))
        .collect::<Result<Vec<Tensor>, _>>()?;
    for (done, chunk) in missing.chunks(BATCH).zip(inputs.chunks(BATCH)).enumerate() {
        call.progress.step(done * BATCH, missing.len(), "predict")?;
        let (indices, batch) = chunk;
        let same_shape = batch.windows(2).all(|w| w[0].dims() == w[1].dims());
        // One image (what the TUI asks as the user moves) keeps what the views asked of the
        // image before it, so that the same views of this one cost no forward pass of their
        // own; a batch keeps logits only.
        let single = missing.len() == 1;
        if same_shape && !single {
            service.activations.count_forward();
            let start = Instant::now();
            let logits = model.logits(&Tensor::cat(batch, 0)?)?;
            timing::record(Part::Forward, start);
            for (row, &i) in indices.iter().enumerate() {
                let r = logits.narrow(0, row, 1)?;
                service
                    .activations
                    .insert_logits(&version, &keys[i], r.clone());
                rows[i] = Some(r);
            }
        } else {
            for (x, &i) in batch.iter().zip(indices) {
                let a = service.activations.for_prediction(
                    &version,
                    model,
                    &keys[i],
                    single,
                    || Ok(x.clone()),
                )?;
                rows[i] = Some(a.logits.clone());
            }
        }
    }
    let rows: Vec<Tensor> = rows.into_iter().flatten().collect();
    if rows.is_empty() {
        return Ok(PredictResult {
            version: loaded.version,
            predictions: Vec::new(),
            logits: None,
        });
    }
    let logits = Tensor::cat(&rows, 0)?;
    let top = model.top_k(&logits, p.top)?;
    let logits = if p.logits {
        let host = logits.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        Some(Array::from_f32(
            host.dims(),
            &host.flatten_all()?.to_vec1::<f32>()?,
        ))
    } else {
        None
    };
    Ok(PredictResult {
        version: loaded.version,
        predictions: p
            .images
            .iter()
            .zip(top)
            .map(|(image, classes)| Prediction {
                image: image.clone(),
                top: classes
                    .into_iter()
                    .map(|c| ClassScore {
                        class: c.class,
                        label: c.label,
                        prob: c.prob,
                    })
                    .collect(),
            })
            .collect(),
        logits,
    })
}
