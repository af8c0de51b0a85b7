//! `image/explain`: one attribution or CAM method (or all of them) on one image, with the raw
//! maps and the overlays. Results are cached by their full parameters.

use std::path::Path;

use candle_core::{DType, Device};
use convlens_models::explain::{explain_with_trace, ConceptTarget, ExplainOptions, RegionSpec};
use convlens_models::progress::{Progress, Stage};
use convlens_models::render::input_photo;
use convlens_models::render::segmentation::segmentation_overlay;
use convlens_shared::array::Array;
use convlens_shared::choices::MethodSelection;
use convlens_shared::methods::explain::{
    ExplainParams, ExplainResult, ExplanationData, ImageExplain, Skipped,
};

use super::call::{cached, Call};
use super::router::{interactive, Router};
use crate::error::MethodError;
use crate::files::{FileStamp, ImageKey};
use crate::render::{overlay_of, png};

/// Adds `image/explain`.
pub fn register(r: &mut Router) {
    r.job::<ImageExplain>(interactive, explain);
}

/// Explains the prediction on one image.
pub fn explain(call: &Call, p: ExplainParams) -> Result<ExplainResult, MethodError> {
    let loaded = call.service.models.acquire(&p.model_id)?;
    let version = loaded.key();
    let image = ImageKey::of(Path::new(&p.image));
    // The kept result always holds the raw maps (they are computed anyway), so a request with
    // `map` and one without (the TUI's overlay, then `image/evaluate` of it) share it; they are
    // taken out of the answer when not asked for.
    let key = {
        let mut q = p.clone();
        q.work_done_token = None;
        q.partial_result_token = None;
        q.map = true;
        // The files a target reads (a region's mask, a reference image) by their stamps too,
        // so that one edited in place is read again.
        let mask = match &p.region {
            Some(RegionSpec::Mask(path)) => FileStamp::of(Path::new(path)),
            _ => None,
        };
        let reference = p
            .target_image
            .as_ref()
            .and_then(|path| FileStamp::of(Path::new(path)));
        format!(
            "image/explain {} {:?} {mask:?} {reference:?}",
            serde_json::to_string(&q).unwrap_or_default(),
            image.stamp
        )
    };
    cached(call, &version, key, || {
        let model = &loaded.model;
        let input = call.service.inputs.get_or_load(&version, model, &image)?;
        // The full forward trace from the activation cache: activations and every explanation
        // of this image share one forward pass (predict's too, once an explanation of the image
        // before asked for every node: `ActivationCache::for_prediction`).
        let trace = call
            .service
            .activations
            .full_trace(&version, model, &image, &input)?;
        let cmap = p.cmap;
        // Cheap methods first: with `all`, the first maps come in seconds and go out as partial
        // results while the costly ones run.
        let methods = p.method.run_order();
        // A reference image is read as the input is, through the same cache.
        let concept = match &p.target_image {
            Some(path) => {
                let reference = ImageKey::of(Path::new(path));
                Some(ConceptTarget {
                    reference: call
                        .service
                        .inputs
                        .get_or_load(&version, model, &reference)?,
                    layer: p.target_layer.clone(),
                })
            }
            None => None,
        };
        let base = ExplainOptions {
            method: methods[0],
            concept,
            ..explain_options(&p)
        };
        let photo = if p.render {
            Some(input_photo(
                &input,
                model.normalization().mean,
                model.normalization().std,
            )?)
        } else {
            None
        };
        let mut result = ExplainResult {
            version: loaded.version,
            ..ExplainResult::default()
        };
        let photo_png = photo
            .as_ref()
            .map(png)
            .transpose()
            .map_err(|err| MethodError::internal(err.to_string()))?;
        // The photo goes with the first partial result.
        let mut unsent_photo = photo_png.clone();
        for (index, &method) in methods.iter().enumerate() {
            let options = ExplainOptions {
                method,
                ..base.clone()
            };
            // With several methods, one progress over them all, naming the method and which of
            // how many it is.
            let stage = Stage {
                inner: call.progress,
                index,
                count: methods.len(),
                name: method.name(),
            };
            let progress: &dyn Progress = if methods.len() > 1 {
                // Every method is announced, even one too quick to report steps of its own.
                stage.step(0, 1, "explain")?;
                &stage
            } else {
                call.progress
            };
            let e = match explain_with_trace(model, &input, &trace, &options, progress) {
                Ok(e) => e,
                Err(convlens_models::Error::Cancelled) => return Err(MethodError::cancelled()),
                // `all` skips what does not apply to this model (plain CAM without a GAP head).
                Err(e) if methods.len() > 1 => {
                    let skipped = Skipped {
                        method,
                        error: e.to_string(),
                    };
                    let piece = ExplainResult {
                        skipped: vec![skipped.clone()],
                        ..ExplainResult::default()
                    };
                    send_partial(call, &p, piece, result.version, &mut unsent_photo)?;
                    result.skipped.push(skipped);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let host = e.map.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
            let map = Some(Array::from_f32(
                host.dims(),
                &host.flatten_all()?.to_vec1::<f32>()?,
            ));
            let overlay = match &photo {
                Some(photo) => Some(
                    png(&overlay_of(&e, photo, cmap, p.alpha)?)
                        .map_err(|err| MethodError::internal(err.to_string()))?,
                ),
                None => None,
            };
            // A segmentation model's classes beside its explanations, the region outlined
            // (every method explains the same region).
            if let (Some(photo), Some(region), None) = (&photo, &e.region, &result.segmentation) {
                if let Some(logits) = trace.output() {
                    result.segmentation = Some(
                        png(&segmentation_overlay(photo, logits, Some(region))?)
                            .map_err(|err| MethodError::internal(err.to_string()))?,
                    );
                }
            }
            let data = ExplanationData {
                method: e.method,
                class: e.target(),
                classes: if e.classes.len() > 1 {
                    e.classes.clone()
                } else {
                    Vec::new()
                },
                label: e
                    .target_name
                    .clone()
                    .or_else(|| joined_label(&model.labels, &e.classes)),
                logit: e.score,
                prob: e.probability,
                layer: e.layer.clone(),
                shape: e.map.dims().to_vec(),
                convergence_delta: e.convergence_delta,
                flat: e.is_flat()?,
                map,
                overlay,
            };
            if methods.len() > 1 {
                let piece = ExplainResult {
                    explanations: vec![data.clone()],
                    ..ExplainResult::default()
                };
                send_partial(call, &p, piece, result.version, &mut unsent_photo)?;
            }
            result.explanations.push(data);
        }
        // The result in display order, whatever order the methods ran in.
        result
            .explanations
            .sort_by_key(|e| MethodSelection::display_rank(e.method));
        result
            .skipped
            .sort_by_key(|s| MethodSelection::display_rank(s.method));
        result.photo = photo_png;
        Ok(result)
    })
    .map(|mut result| {
        if !p.map {
            result.explanations.iter_mut().for_each(|e| e.map = None);
        }
        result
    })
}

/// Sends `piece` (one method's explanation or skip) of version `version` as a partial result,
/// when the request passed a `partialResultToken`; the photo goes with the first piece sent.
fn send_partial(
    call: &Call,
    p: &ExplainParams,
    piece: ExplainResult,
    version: u64,
    unsent_photo: &mut Option<convlens_shared::array::Png>,
) -> Result<(), MethodError> {
    let Some(token) = &p.partial_result_token else {
        return Ok(());
    };
    let mut piece = ExplainResult {
        version,
        photo: unsent_photo.take(),
        ..piece
    };
    if !p.map {
        piece.explanations.iter_mut().for_each(|e| e.map = None);
    }
    let value = serde_json::to_value(&piece).map_err(|e| MethodError::internal(e.to_string()))?;
    call.partial.send(token, value);
    Ok(())
}

/// The engine's options for `image/explain`'s parameters (the method: the first of the
/// selection's run order).
pub fn explain_options(p: &ExplainParams) -> ExplainOptions {
    ExplainOptions {
        method: p.method.run_order()[0],
        target: p.target.clone(),
        region: p.region.clone(),
        // The reference image is loaded by `explain`, which has the model.
        concept: None,
        layer: p.layer.clone(),
        samples: p.samples,
        noise: p.noise,
        seed: p.seed,
        steps: p.steps,
        baseline: p.baseline,
        window: p.window,
        stride: p.stride,
        batch_size: p.batch,
        eigen_smooth: p.eigen_smooth,
        aug_smooth: p.aug_smooth,
        rise_masks: p.rise_masks,
        rise_cells: p.rise_cells,
        rise_keep: p.rise_keep,
        occlusion_passes: Default::default(),
    }
}

/// The classes' labels joined by ` + ` (`None` when the model has none for one of them).
fn joined_label(labels: &[String], classes: &[usize]) -> Option<String> {
    let names = classes
        .iter()
        .map(|&c| labels.get(c).cloned())
        .collect::<Option<Vec<String>>>()?;
    Some(names.join(" + "))
}
