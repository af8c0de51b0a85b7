//! Infidelity (Yeh, Hsieh, Suggala, Inouye and Ravikumar 2019), as Captum's
//! `captum.metrics.infidelity` computes it: for perturbations I of the input, how far the map's
//! prediction of the change, Σ attribution · I, is from the change in the class's logit,
//! f(x) − f(x − I), squared and averaged over the perturbations. With `normalize` (Captum's
//! option) the map is first scaled by the β that fits it best, β = Σ(a·I)(Δf) / Σ(a·I)², so maps
//! of different scales (a CAM's units, a gradient's) compare; lower is more faithful.
//!
//! The perturbations are Gaussian noise of standard deviation `noise` (Captum's own example),
//! drawn on the host from ChaCha8 (stream 2 of the seed) so a seed gives the same ones on every
//! device. A map at a layer [h, w] is resized bilinearly to the input and given to every
//! channel (see [`super::relevance::input_attribution`]).

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::ops::Convolutions;
use crate::{Error, Model, Result};

/// The ChaCha8 stream of the seed the perturbations come from.
const STREAM: u64 = 2;

/// `samples` Gaussian perturbations of standard deviation `noise`, each of `shape`.
pub fn infidelity_perturbations(
    shape: &[usize],
    samples: usize,
    noise: f64,
    seed: u64,
    device: &Device,
) -> Result<Vec<Tensor>> {
    if !(noise > 0.0 && noise.is_finite()) || samples == 0 {
        return Err(Error::InvalidArgument(format!(
            "infidelity needs at least one perturbation and a noise > 0 (got {samples} of {noise})"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(STREAM);
    let count: usize = shape.iter().product();
    (0..samples)
        .map(|_| {
            let values: Vec<f32> = (0..count)
                .map(|_| {
                    let draw: f64 = StandardNormal.sample(&mut rng);
                    (noise * draw) as f32
                })
                .collect();
            Ok(Tensor::from_vec(values, shape, device)?)
        })
        .collect()
}

/// The infidelity of `attribution` (input-shaped, [C, H, W]) for class `class` of `model` at
/// `input` [1, C, H, W] under `perturbations` (each input-shaped).
pub fn infidelity(
    model: &Model,
    input: &Tensor,
    attribution: &Tensor,
    class: usize,
    perturbations: &[Tensor],
    normalize: bool,
    batch: usize,
) -> Result<f32> {
    let device = &model.device;
    let input = input.to_device(device)?.to_dtype(DType::F32)?;
    let attribution = attribution.to_device(device)?.to_dtype(DType::F32)?;
    if input.dims()[1..] != *attribution.dims() || perturbations.is_empty() || batch == 0 {
        return Err(Error::InvalidArgument(format!(
            "infidelity takes an attribution shaped as the input ({:?}), got {:?}, and at least \
             one perturbation",
            &input.dims()[1..],
            attribution.dims()
        )));
    }
    // f(x) − f(x − I) subtracts nearby logits and cancels most of their digits: the direct
    // pass, which rounds as PyTorch's does (BatchNorm apart, no Winograd), not the fastest.
    let logit = |x: &Tensor| -> Result<Vec<f64>> {
        let logits = model.logits_by(x, Convolutions::Direct)?;
        let classes = logits.dim(1)?;
        if class >= classes {
            return Err(Error::InvalidArgument(format!(
                "class {class} is beyond the model's {classes} outputs"
            )));
        }
        Ok(logits
            .narrow(1, class, 1)?
            .flatten_all()?
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?)
    };
    let before = logit(&input)?[0];
    // Σ a·I and f(x) − f(x − I) for each perturbation.
    let mut predicted = Vec::with_capacity(perturbations.len());
    let mut changes = Vec::with_capacity(perturbations.len());
    for chunk in perturbations.chunks(batch) {
        let noise = Tensor::cat(chunk, 0)?.to_device(device)?;
        let perturbed = input.broadcast_sub(&noise)?;
        changes.extend(logit(&perturbed)?.into_iter().map(|after| before - after));
        predicted.extend(
            noise
                .broadcast_mul(&attribution.unsqueeze(0)?)?
                .flatten_from(1)?
                .sum(1)?
                .to_device(&Device::Cpu)?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?,
        );
    }
    let n = perturbations.len() as f64;
    let value = if normalize {
        let a: f64 = predicted.iter().map(|p| p * p).sum();
        let b: f64 = predicted.iter().zip(&changes).map(|(p, d)| p * d).sum();
        let c: f64 = changes.iter().map(|d| d * d).sum();
        // Captum's safe_div: β is 0 where the map predicts no change at all.
        let beta = if a == 0.0 { 0.0 } else { b / a };
        (beta * beta * a - 2.0 * beta * b + c) / n
    } else {
        predicted
            .iter()
            .zip(&changes)
            .map(|(p, d)| (p - d).powi(2))
            .sum::<f64>()
            / n
    };
    Ok(value as f32)
}
