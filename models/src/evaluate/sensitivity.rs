//! Max-sensitivity (Yeh et al. 2019), as Captum's `captum.metrics.sensitivity_max` computes it:
//! the explanation is recomputed at inputs perturbed by uniform noise in [−radius, radius], and
//! the score is the largest change, ‖map(x + δ) − map(x)‖ / ‖map(x)‖ (Frobenius norms; a map of
//! norm 0 divides by 1). A robust explanation changes little: lower is better. (It judges the
//! explanation's stability, not its faithfulness to the model.)
//!
//! The perturbations are drawn on the host from ChaCha8 (stream 3 of the seed), so a seed gives
//! the same ones on every device.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::progress::Progress;
use crate::{Error, Result};

/// The ChaCha8 stream of the seed the perturbations come from.
const STREAM: u64 = 3;

/// `samples` perturbations uniform in [−radius, radius), each of `shape`.
pub fn sensitivity_perturbations(
    shape: &[usize],
    samples: usize,
    radius: f64,
    seed: u64,
    device: &Device,
) -> Result<Vec<Tensor>> {
    if !(radius > 0.0 && radius.is_finite()) || samples == 0 {
        return Err(Error::InvalidArgument(format!(
            "sensitivity needs at least one perturbation and a radius > 0 (got {samples} of \
             {radius})"
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(STREAM);
    let count: usize = shape.iter().product();
    let radius = radius as f32;
    (0..samples)
        .map(|_| {
            let values: Vec<f32> = (0..count)
                .map(|_| rng.random_range(-radius..radius))
                .collect();
            Ok(Tensor::from_vec(values, shape, device)?)
        })
        .collect()
}

/// The max-sensitivity of `explanation` (the map `explain` gives at `input`) under
/// `perturbations` (each shaped as `input`).
pub fn sensitivity_max(
    explain: &mut dyn FnMut(&Tensor) -> Result<Tensor>,
    input: &Tensor,
    explanation: &Tensor,
    perturbations: &[Tensor],
    progress: &dyn Progress,
) -> Result<f32> {
    if perturbations.is_empty() {
        return Err(Error::InvalidArgument(
            "sensitivity needs at least one perturbation".into(),
        ));
    }
    let norm = |t: &Tensor| -> Result<f64> {
        Ok(t.to_dtype(DType::F64)?
            .sqr()?
            .sum_all()?
            .to_device(&Device::Cpu)?
            .to_scalar::<f64>()?
            .sqrt())
    };
    let base = explanation.to_dtype(DType::F32)?;
    let scale = match norm(&base)? {
        0.0 => 1.0,
        n => n,
    };
    let mut worst = f64::NEG_INFINITY;
    for (i, delta) in perturbations.iter().enumerate() {
        progress.step(i, perturbations.len(), "sensitivity")?;
        let perturbed = input.add(&delta.to_device(input.device())?)?;
        let map = explain(&perturbed)?.to_dtype(DType::F32)?;
        if map.dims() != base.dims() {
            return Err(Error::InvalidArgument(format!(
                "the explanation of a perturbed input has shape {:?}, not {:?}",
                map.dims(),
                base.dims()
            )));
        }
        worst = worst.max(norm(&map.to_device(base.device())?.sub(&base)?)? / scale);
    }
    progress.step(perturbations.len(), perturbations.len(), "sensitivity")?;
    Ok(worst as f32)
}
