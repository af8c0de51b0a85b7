//! `unit/maximize`: activation maximization as a sweep job. Every optimization step goes through
//! the job's progress, which reports `$/progress` and stops the run on `$/cancelRequest`.
//! Results are cached by their full parameters (a seed makes a run repeatable).

use candle_core::{DType, Device, Tensor};
use convlens_models::maximize::display::stretched;
use convlens_models::maximize::{
    maximize, picture_inputs, pictures, Frame, MaximizeOptions, Objective,
};
use convlens_shared::array::{Array, Png};
use convlens_shared::methods::maximize::{FrameData, MaximizeParams, MaximizeResult, UnitMaximize};
use convlens_shared::methods::predict::ClassScore;
use image::RgbImage;

use super::call::{cached, Call};
use super::router::{sweep, Router};
use crate::error::MethodError;
use crate::render::png;

/// Adds `unit/maximize`.
pub fn register(r: &mut Router) {
    r.job::<UnitMaximize>(sweep, run);
}

/// Runs the optimization.
pub fn run(call: &Call, p: MaximizeParams) -> Result<MaximizeResult, MethodError> {
    let options = options_of(&p)?;
    let loaded = call.service.models.acquire(&p.model_id)?;
    let version = loaded.key();
    let key = {
        let mut q = p.clone();
        q.work_done_token = None;
        format!(
            "unit/maximize {}",
            serde_json::to_string(&q).unwrap_or_default()
        )
    };
    cached(call, &version, key, || {
        let model = &loaded.model;
        let result = maximize(model, &options, call.progress)?;
        let tiles = if p.render || p.top > 0 {
            pictures(&result.images)?
        } else {
            Vec::new()
        };
        let top = if p.top > 0 {
            // What the model makes of the pictures as saved (8-bit), seen as they are.
            let seen = model.top_k(&model.logits(&picture_inputs(model, &tiles)?)?, p.top)?;
            seen.into_iter()
                .map(|classes| classes.into_iter().map(score_of).collect())
                .collect()
        } else {
            Vec::new()
        };
        let label = match &result.objective {
            Objective::Class(c) => model.labels.get(*c).cloned(),
            _ => None,
        };
        Ok(MaximizeResult {
            version: loaded.version,
            objective: result.objective.describe(),
            label,
            layer: result.layer.clone(),
            preset: result.preset,
            steps: result.steps,
            images: array_of(&result.images)?,
            pictures: match (p.render, p.stretch) {
                (false, _) => Vec::new(),
                (true, false) => pngs(&tiles)?,
                (true, true) => {
                    let mean = model.normalization().mean;
                    pngs(&pictures(&stretched(&result.images, &mean)?)?)?
                }
            },
            inputs: if p.inputs {
                Some(array_of(&result.inputs)?)
            } else {
                None
            },
            top,
            start_values: result.start_values.clone(),
            final_values: result.final_values.clone(),
            history: result.history.clone(),
            similarity: result.similarity.clone(),
            frames: result
                .frames
                .iter()
                .map(|f| frame_of(f, p.frame_pictures))
                .collect::<Result<Vec<_>, MethodError>>()?,
        })
    })
}

/// One kept frame: its images as an array, or as PNGs.
fn frame_of(frame: &Frame, as_pictures: bool) -> Result<FrameData, MethodError> {
    Ok(if as_pictures {
        FrameData {
            step: frame.step,
            images: None,
            pictures: pngs(&pictures(&frame.images)?)?,
        }
    } else {
        FrameData {
            step: frame.step,
            images: Some(array_of(&frame.images)?),
            pictures: Vec::new(),
        }
    })
}

/// Pictures as PNGs for the wire.
fn pngs(tiles: &[RgbImage]) -> Result<Vec<Png>, MethodError> {
    tiles
        .iter()
        .map(png)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| MethodError::internal(e.to_string()))
}

/// The engine's class score in the protocol's terms.
fn score_of(c: convlens_models::ClassScore) -> ClassScore {
    ClassScore {
        class: c.class,
        label: c.label,
        prob: c.prob,
    }
}

/// The engine's options from the parameters, refusing an objective that is not one of a class,
/// or a layer with a unit.
fn options_of(p: &MaximizeParams) -> Result<MaximizeOptions, MethodError> {
    let objective = match (p.class, &p.layer, p.unit) {
        (Some(class), None, None) if !p.neuron => Objective::Class(class),
        (None, Some(layer), Some(unit)) if p.neuron => Objective::Neuron {
            layer: layer.clone(),
            unit,
        },
        (None, Some(layer), Some(unit)) => Objective::Channel {
            layer: layer.clone(),
            unit,
        },
        _ => {
            return Err(convlens_models::Error::InvalidArgument(
                "give `class`, or `layer` with `unit` (and `neuron` for its centre neuron)".into(),
            )
            .into())
        }
    };
    Ok(MaximizeOptions {
        objective,
        preset: p.preset,
        steps: p.steps,
        seed: p.seed,
        size: p.size,
        images: p.diversity,
        diversity_weight: p.diversity_weight,
        diversity_layer: p.diversity_layer.clone(),
        frame_every: p.frame_every,
    })
}

/// A tensor's values as a float32 array on the wire.
fn array_of(t: &Tensor) -> Result<Array, MethodError> {
    let host = t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    Ok(Array::from_f32(
        host.dims(),
        &host.flatten_all()?.to_vec1::<f32>()?,
    ))
}
