//! The input-space methods by name: gradient, saliency, input × gradient, SmoothGrad and its
//! variants, guided backprop and deconvnet (one backward pass, or a batch of them, to the input)
//! here; Integrated Gradients, DeepLift, GradientShap, LRP, FullGrad, occlusion and RISE in
//! their own files.

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::baselines::{baseline, baseline_distribution};
use super::deeplift::deeplift;
use super::gradient_shap::{gradient_shap, ShapDraws};
use super::lrp::{lrp, LrpComposite};
use super::rise::{rise, RiseMasks};
use super::{fullgrad, integrated_gradients, occlusion, Context, ExplainOptions, Method};
use crate::graph::BackwardRule;
use crate::{Error, Result};

/// An input-space map for `options.method`, with IG's convergence delta and SmoothGrad's noisy
/// inputs where they apply.
pub(crate) fn attribute(
    ctx: &Context,
    options: &ExplainOptions,
) -> Result<(Tensor, Option<f32>, Option<Tensor>)> {
    let x = ctx.input;
    let at_input = |rule| -> Result<Tensor> { Ok(ctx.signal_at(x, 0, rule)?.squeeze(0)?) };
    let map = match options.method {
        Method::Gradient => at_input(BackwardRule::Gradient)?,
        Method::Saliency => at_input(BackwardRule::Gradient)?.abs()?,
        Method::InputXGradient => at_input(BackwardRule::Gradient)?.mul(&x.squeeze(0)?)?,
        Method::GuidedBackprop => at_input(BackwardRule::Guided)?,
        Method::Deconvnet => at_input(BackwardRule::Deconvnet)?,
        Method::SmoothGrad | Method::SmoothGradSq | Method::VarGrad => {
            let noisy = noisy_copies(x, options)?;
            let map = smooth(ctx, &noisy, options)?;
            return Ok((map, None, Some(noisy)));
        }
        Method::IntegratedGradients => {
            let (map, delta) = integrated_gradients::integrated_gradients(ctx, options)?;
            return Ok((map, Some(delta), None));
        }
        Method::Occlusion => occlusion::occlusion(ctx, options)?,
        Method::FullGrad => fullgrad::full_gradient(ctx)?,
        Method::LrpEpsilonPlusFlat | Method::LrpEpsilonGammaBox | Method::LrpEpsilonAlpha2Beta1 => {
            let composite = LrpComposite::of(options.method).ok_or_else(|| {
                Error::InvalidArgument(format!("`{}` is no LRP composite", options.method))
            })?;
            lrp(ctx.model, ctx.trace, &ctx.classes, composite)?
        }
        Method::DeepLift | Method::DeepLiftShap => {
            let baselines = if options.method == Method::DeepLift {
                baseline(x, options)?
            } else {
                baseline_distribution(x, options)?
            };
            let (map, delta) = deeplift(
                ctx.model,
                x,
                &ctx.classes,
                &baselines,
                options.batch_size,
                ctx.progress,
            )?;
            return Ok((map, Some(delta), None));
        }
        Method::Rise => {
            let (_, _, height, width) = x.dims4()?;
            let masks = RiseMasks::draw(
                options.rise_masks,
                options.rise_cells,
                options.rise_keep,
                height,
                width,
                options.seed,
            )?;
            let map = rise(
                ctx.model,
                x,
                &ctx.classes,
                &masks,
                options.rise_keep,
                options.batch_size,
                ctx.progress,
            )?;
            return Ok((map, None, None));
        }
        Method::GradientShap => {
            let baselines = baseline_distribution(x, options)?;
            let draws = ShapDraws::draw(x, baselines.dim(0)?, options)?;
            let map = gradient_shap(
                ctx.model,
                &ctx.classes,
                &baselines,
                &draws,
                options.batch_size,
                ctx.progress,
            )?;
            return Ok((map, None, None));
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "`{}` is not an input-space method",
                other.name()
            )))
        }
    };
    Ok((map, None, None))
}

/// `samples` copies of `x` [1, C, H, W] with Gaussian noise of σ = noise · (max − min), drawn on
/// the CPU from ChaCha8 seeded with `seed` (so a seed gives the same noise on every device).
pub fn noisy_copies(x: &Tensor, options: &ExplainOptions) -> Result<Tensor> {
    if options.samples == 0 {
        return Err(Error::InvalidArgument(
            "--samples must be at least 1".into(),
        ));
    }
    let lo = x.min_all()?.to_scalar::<f32>()?;
    let hi = x.max_all()?.to_scalar::<f32>()?;
    let sigma = options.noise * f64::from(hi - lo);
    let per = x.elem_count();
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let noise: Vec<f32> = (0..per * options.samples)
        .map(|_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            (z * sigma) as f32
        })
        .collect();
    let mut shape = x.dims().to_vec();
    shape[0] = options.samples;
    let noise = Tensor::from_vec(noise, shape, x.device())?;
    Ok(noise.broadcast_add(x)?)
}

/// SmoothGrad (mean gradient), SmoothGrad² (mean squared gradient) or VarGrad (variance) over
/// the noisy copies, in batches.
fn smooth(ctx: &Context, noisy: &Tensor, options: &ExplainOptions) -> Result<Tensor> {
    let n = noisy.dim(0)?;
    let mut sum: Option<Tensor> = None;
    let mut sum_sq: Option<Tensor> = None;
    let batch = options.batch_size.max(1);
    let mut start = 0;
    while start < n {
        let len = batch.min(n - start);
        let g = ctx.signal_at(&noisy.narrow(0, start, len)?, 0, BackwardRule::Gradient)?;
        let s = g.sum(0)?;
        let s2 = g.sqr()?.sum(0)?;
        sum = Some(match sum {
            Some(acc) => acc.add(&s)?,
            None => s,
        });
        sum_sq = Some(match sum_sq {
            Some(acc) => acc.add(&s2)?,
            None => s2,
        });
        start += len;
        ctx.report(start, n)?;
    }
    let (Some(sum), Some(sum_sq)) = (sum, sum_sq) else {
        return Err(Error::InvalidArgument("no samples".into()));
    };
    let mean = sum.affine(1.0 / n as f64, 0.0)?;
    let mean_sq = sum_sq.affine(1.0 / n as f64, 0.0)?;
    Ok(match options.method {
        Method::SmoothGradSq => mean_sq,
        Method::VarGrad => mean_sq.sub(&mean.sqr()?)?,
        _ => mean,
    })
}
