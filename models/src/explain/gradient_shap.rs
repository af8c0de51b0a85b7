//! GradientShap (Lundberg & Lee 2017, Captum's `GradientShap`): the gradient at random points
//! between noisy copies of the input and baselines drawn from a distribution, times the
//! difference, averaged — SmoothGrad over `InputBaselineXGradient`.

use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::gradients::noisy_copies;
use super::target::{check_classes, multi_hot};
use super::ExplainOptions;
use crate::graph::BackwardRule;
use crate::progress::Progress;
use crate::{Error, Model, Result};

/// GradientShap's random draws, one per sample: the noisy input, which baseline, and where on
/// the line from that baseline to the noisy input the gradient is taken.
#[derive(Debug, Clone)]
pub struct ShapDraws {
    /// The input with Gaussian noise, [samples, C, H, W].
    pub noisy_inputs: Tensor,
    /// The baseline each sample starts from (an index into the distribution).
    pub baseline_index: Vec<usize>,
    /// Each sample's point on its line, in [0, 1): `alpha · input + (1 − alpha) · baseline`.
    pub alphas: Vec<f32>,
}

impl ShapDraws {
    /// `options.samples` draws for `input` [1, C, H, W] among `baselines` baselines: the noise is
    /// SmoothGrad's for the same seed and noise level; the baselines and the points come from a
    /// second ChaCha8 stream of the seed.
    pub fn draw(input: &Tensor, baselines: usize, options: &ExplainOptions) -> Result<Self> {
        if baselines == 0 {
            return Err(Error::InvalidArgument(
                "GradientShap needs a baseline".into(),
            ));
        }
        let noisy_inputs = noisy_copies(input, options)?;
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(1);
        let baseline_index = (0..options.samples)
            .map(|_| rng.random_range(0..baselines))
            .collect();
        let alphas = (0..options.samples)
            .map(|_| rng.random::<f64>() as f32)
            .collect();
        Ok(ShapDraws {
            noisy_inputs,
            baseline_index,
            alphas,
        })
    }
}

/// GradientShap's attribution [C, H, W] for the sum of the `classes`' logits with `baselines`
/// [B, C, H, W] and the given draws, `batch` samples through the network at a time.
pub fn gradient_shap(
    model: &Model,
    classes: &[usize],
    baselines: &Tensor,
    draws: &ShapDraws,
    batch: usize,
    progress: &dyn Progress,
) -> Result<Tensor> {
    let samples = draws.noisy_inputs.dim(0)?;
    if samples == 0 || draws.alphas.len() != samples || draws.baseline_index.len() != samples {
        return Err(Error::InvalidArgument(format!(
            "GradientShap's draws disagree: {samples} noisy inputs, {} alphas, {} baselines",
            draws.alphas.len(),
            draws.baseline_index.len()
        )));
    }
    let count = baselines.dim(0)?;
    if let Some(i) = draws.baseline_index.iter().find(|&&i| i >= count) {
        return Err(Error::InvalidArgument(format!(
            "GradientShap's draw picks baseline {i} of {count}"
        )));
    }
    let device = baselines.device();
    let mut total: Option<Tensor> = None;
    let mut start = 0;
    while start < samples {
        let len = batch.max(1).min(samples - start);
        let x = draws.noisy_inputs.narrow(0, start, len)?;
        let index: Vec<u32> = draws.baseline_index[start..start + len]
            .iter()
            .map(|&i| i as u32)
            .collect();
        let base = baselines.index_select(&Tensor::new(index, device)?, 0)?;
        let alpha = Tensor::from_slice(&draws.alphas[start..start + len], (len, 1, 1, 1), device)?;
        // Captum's `_scale_input`: alpha · x + (1 − alpha) · baseline.
        let points = alpha
            .broadcast_mul(&x)?
            .add(&alpha.affine(-1.0, 1.0)?.broadcast_mul(&base)?)?;
        let trace = model
            .graph
            .forward_for_gradient(&points, &[model.graph.output_id()])?;
        let outputs = trace
            .output()
            .ok_or_else(|| Error::InvalidArgument("the network produced no output".into()))?
            .dim(1)?;
        check_classes(classes, outputs)?;
        let signal = multi_hot(len, outputs, classes, device)?;
        let g = model.graph.backward(
            &trace,
            model.graph.output_id(),
            &signal,
            0,
            BackwardRule::Gradient,
        )?;
        let part = x.sub(&base)?.mul(&g)?.sum_keepdim(0)?;
        total = Some(match total {
            Some(t) => t.add(&part)?,
            None => part,
        });
        start += len;
        progress.step(start, samples, "explain")?;
    }
    let total = total.ok_or_else(|| Error::InvalidArgument("no samples".into()))?;
    Ok(total.affine(1.0 / samples as f64, 0.0)?.squeeze(0)?)
}
