//! `unit/maximize`: activation maximization as a sweep job. Every optimization step goes through
//! the job's progress, which reports `$/progress` and stops the run on `$/cancelRequest`.
//! Results are cached by their full parameters (a seed makes a run repeatable).

use candle_core::{DType, Device, Tensor};
use convlens_models::maximize::{maximize, pictures, MaximizeOptions, Objective, Preset};
use convlens_shared::array::Array;
use convlens_shared::methods::maximize::{FrameData, MaximizeParams, MaximizeResult, UnitMaximize};

use super::{cached, sweep, Router};
use crate::render::png;
use crate::{Call, MethodError};

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
        let result = maximize(&loaded.model, &options, call.progress)?;
        let pictures = if p.render {
            pictures(&result.images)?
                .iter()
                .map(png)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| MethodError::internal(e.to_string()))?
        } else {
            Vec::new()
        };
        Ok(MaximizeResult {
            version: loaded.version,
            objective: result.objective.describe(),
            layer: result.layer.clone(),
            preset: result.preset.name(),
            steps: result.steps,
            images: array_of(&result.images)?,
            pictures,
            inputs: if p.inputs {
                Some(array_of(&result.inputs)?)
            } else {
                None
            },
            start_values: result.start_values.clone(),
            final_values: result.final_values.clone(),
            history: result.history.clone(),
            similarity: result.similarity.clone(),
            frames: result
                .frames
                .iter()
                .map(|f| {
                    Ok(FrameData {
                        step: f.step,
                        images: array_of(&f.images)?,
                    })
                })
                .collect::<Result<Vec<_>, MethodError>>()?,
        })
    })
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
        preset: Preset::from_name(&p.preset)?,
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
