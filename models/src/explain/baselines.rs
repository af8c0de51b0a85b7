//! The reference inputs that Integrated Gradients, DeepLift and the Shapley methods compare the
//! input with: one baseline, or a distribution of them.

use candle_core::Tensor;

use super::gradients::noisy_copies;
use super::{Baseline, ExplainOptions};
use crate::Result;

/// The baseline input [1, C, H, W] of `options.baseline`.
pub(crate) fn baseline(x: &Tensor, options: &ExplainOptions) -> Result<Tensor> {
    baselines(x, options, 1)
}

/// The baselines the Shapley methods (DeepLiftShap, GradientShap) average over, [B, C, H, W]:
/// zeros or the blurred input (one baseline), or `--samples` noise images.
pub(crate) fn baseline_distribution(x: &Tensor, options: &ExplainOptions) -> Result<Tensor> {
    baselines(x, options, options.samples)
}

/// `count` baselines of `options.baseline`; zeros and the blur are one image whatever `count`.
fn baselines(x: &Tensor, options: &ExplainOptions, count: usize) -> Result<Tensor> {
    match options.baseline {
        Baseline::Zero => Ok(x.zeros_like()?),
        Baseline::Blur => Ok(super::resize::blur(x, 10.0)?),
        Baseline::Noise => {
            let lo = x.min_all()?.to_scalar::<f32>()?;
            let hi = x.max_all()?.to_scalar::<f32>()?;
            // The first of them is the one baseline: the noise comes from one stream.
            let noisy = noisy_copies(
                &x.zeros_like()?,
                &ExplainOptions {
                    samples: count,
                    noise: 1.0,
                    ..options.clone()
                },
            )?;
            // Gaussian noise squashed into the input's range.
            Ok(noisy
                .tanh()?
                .affine(f64::from(hi - lo) / 2.0, f64::from(hi + lo) / 2.0)?)
        }
    }
}
