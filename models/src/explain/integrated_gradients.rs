//! Integrated Gradients (Sundararajan et al. 2017) as Captum computes it: Gauss–Legendre steps
//! on the straight path from the baseline, batched, with the completeness gap.

use candle_core::Tensor;

use super::baselines::baseline;
use super::gauss_legendre::gauss_legendre;
use super::{Context, ExplainOptions};
use crate::graph::BackwardRule;
use crate::{Error, Result};

/// IG's attribution [C, H, W] and its convergence delta Σattr − (F(x) − F(baseline)).
pub(crate) fn integrated_gradients(
    ctx: &Context,
    options: &ExplainOptions,
) -> Result<(Tensor, f32)> {
    if options.steps == 0 {
        return Err(Error::InvalidArgument("--steps must be at least 1".into()));
    }
    let x = ctx.input;
    let base = baseline(x, options)?;
    let diff = x.sub(&base)?;
    let (nodes, weights) = gauss_legendre(options.steps);
    // Captum: alphas = (1 + node) / 2, step sizes = weight / 2.
    let alphas: Vec<f32> = nodes.iter().map(|n| (0.5 * (1.0 + n)) as f32).collect();
    let steps: Vec<f32> = weights.iter().map(|w| (0.5 * w) as f32).collect();
    let device = x.device();
    let batch = options.batch_size.max(1);
    let mut total: Option<Tensor> = None;
    let mut start = 0;
    while start < alphas.len() {
        let len = batch.min(alphas.len() - start);
        let a = Tensor::from_slice(&alphas[start..start + len], (len, 1, 1, 1), device)?;
        let points = a.broadcast_mul(&diff)?.broadcast_add(&base)?;
        let grads = ctx.signal_at(&points, 0, BackwardRule::Gradient)?;
        let w = Tensor::from_slice(&steps[start..start + len], (len, 1, 1, 1), device)?;
        let part = grads.broadcast_mul(&w)?.sum_keepdim(0)?;
        total = Some(match total {
            Some(t) => t.add(&part)?,
            None => part,
        });
        start += len;
        ctx.report(start, alphas.len())?;
    }
    let total = total.ok_or_else(|| Error::InvalidArgument("no steps".into()))?;
    let attribution = total.mul(&diff)?;
    let ends = ctx
        .target_scores(&Tensor::cat(&[x, &base], 0)?)?
        .to_vec1::<f32>()?;
    let sum = attribution.sum_all()?.to_scalar::<f32>()?;
    let delta = sum - (ends[0] - ends[1]);
    Ok((attribution.squeeze(0)?, delta))
}
