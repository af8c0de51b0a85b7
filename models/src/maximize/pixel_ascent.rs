//! The pixel-space loop of the `none` and `yosinski1..4` presets, step for step as
//! deep-visualization-toolbox's `GradientOptimizer._optimize`, on a batch, keeping each image's
//! best step as the toolbox keeps `best_xx`.

use candle_core::{DType, Device, Tensor};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::gradient::Ascent;
use super::presets::{PixelAscent, Start};
use super::regularizers::{
    clip_range, clip_small_contribution, clip_small_norm, l2_decay, GaussianBlur,
};
use super::step_size::StepSize;
use super::{Frame, Run, Trajectory};
use crate::input::Normalization;
use crate::progress::Progress;
use crate::Result;

/// The toolbox's pixel units: x = 255·(pixel − mean), so the network's input is x/(255·std).
pub struct PixelSpace {
    /// 1/(255·std) per channel, [1, C, 1, 1].
    to_input: Tensor,
    /// 255·mean per channel, [1, C, 1, 1].
    mean255: Tensor,
    /// Lowest and highest valid x per channel, [1, C, 1, 1].
    lo: Tensor,
    hi: Tensor,
}

fn per_channel(values: impl Iterator<Item = f32>, device: &Device) -> Result<Tensor> {
    let v: Vec<f32> = values.collect();
    let c = v.len();
    Ok(Tensor::from_vec(v, (1, c, 1, 1), device)?)
}

impl PixelSpace {
    /// The units of a model with `normalization`.
    pub fn new(normalization: &Normalization, device: &Device) -> Result<Self> {
        let c = normalization.channels;
        let mean = &normalization.mean[..c];
        let std = &normalization.std[..c];
        Ok(PixelSpace {
            to_input: per_channel(std.iter().map(|s| 1.0 / (255.0 * s)), device)?,
            mean255: per_channel(mean.iter().map(|m| 255.0 * m), device)?,
            lo: per_channel(mean.iter().map(|m| -255.0 * m), device)?,
            hi: per_channel(mean.iter().map(|m| 255.0 * (1.0 - m)), device)?,
        })
    }

    /// The network's input for pixels `x`.
    pub fn input(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_mul(&self.to_input)?)
    }

    /// The image in [0, 1] for pixels `x`.
    pub fn image(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.broadcast_add(&self.mean255)?.affine(1.0 / 255.0, 0.0)?)
    }

    /// `x` clipped to valid pixels.
    pub fn clip(&self, x: &Tensor) -> Result<Tensor> {
        clip_range(x, &self.lo, &self.hi)
    }

    /// The gradient with respect to the pixels for one with respect to the input.
    pub fn gradient(&self, grad_input: &Tensor) -> Result<Tensor> {
        Ok(grad_input.broadcast_mul(&self.to_input)?)
    }
}

/// The starting pixels [B, C, S, S].
pub fn start(
    start: Start,
    shape: (usize, usize, usize, usize),
    rng: &mut ChaCha8Rng,
    device: &Device,
) -> Result<Tensor> {
    Ok(match start {
        Start::Mean => Tensor::zeros(shape, DType::F32, device)?,
        Start::MeanPlusNoise(sd) => {
            let n = shape.0 * shape.1 * shape.2 * shape.3;
            let data: Vec<f32> = (0..n)
                .map(|_| {
                    let z: f64 = StandardNormal.sample(rng);
                    (z * sd) as f32
                })
                .collect();
            Tensor::from_vec(data, shape, device)?
        }
    })
}

/// Each image of a batch at the step where its objective was highest so far (the first such
/// step on a tie, as the toolbox's strict `>`).
struct BestSoFar {
    values: Vec<f32>,
    x: Option<Tensor>,
}

impl BestSoFar {
    fn new(batch: usize) -> Self {
        BestSoFar {
            values: vec![f32::NEG_INFINITY; batch],
            x: None,
        }
    }

    /// Takes the images of `x` whose `values` beat their best.
    fn update(&mut self, x: &Tensor, values: &[f32]) -> Result<()> {
        let better: Vec<u8> = values
            .iter()
            .zip(&self.values)
            .map(|(v, best)| u8::from(v > best))
            .collect();
        for (best, v) in self.values.iter_mut().zip(values) {
            if v > best {
                *best = *v;
            }
        }
        self.x = Some(match &self.x {
            None => x.clone(),
            Some(kept) => {
                let b = better.len();
                let mask =
                    Tensor::from_vec(better, (b, 1, 1, 1), x.device())?.broadcast_as(x.shape())?;
                mask.where_cond(x, kept)?
            }
        });
        Ok(())
    }
}

/// Runs `steps` steps from `x0` (already clipped) and returns each image's best pixels (the
/// objective measured on the image as is), the history and the frames.
pub fn run(
    ascent: &Ascent,
    settings: &PixelAscent,
    space: &PixelSpace,
    x0: Tensor,
    run: &Run,
    progress: &dyn Progress,
) -> Result<(Tensor, Trajectory)> {
    let (batch, _, h, w) = x0.dims4()?;
    let blur = if settings.blur_every > 0 && settings.blur_width > 0.0 {
        Some(GaussianBlur::new(settings.blur_width, h, w, x0.device())?)
    } else {
        None
    };
    let mut step_size = StepSize::new(settings.learning_rate, settings.step_scale);
    let mut best = BestSoFar::new(batch);
    let mut x = x0;
    let mut trajectory = Trajectory::default();
    for step in 0..run.steps {
        x = space.clip(&x)?;
        if run.wants_frame(step) {
            trajectory.frames.push(Frame::new(step, &space.image(&x)?)?);
        }
        let result = ascent.gradient(&space.input(&x)?)?;
        progress.step(step + 1, run.steps, &run.message(&result.values))?;
        best.update(&x, &result.values)?;
        trajectory.record(result.values, result.similarity);
        if step + 1 == run.steps {
            // The toolbox's last iteration only measures.
            break;
        }
        let grad = space.gradient(&result.gradient)?;
        let lr = step_size.rates(&grad)?;
        x = x.add(&grad.broadcast_mul(&lr)?)?;
        if settings.decay > 0.0 {
            x = l2_decay(&x, settings.decay)?;
        }
        if let Some(blur) = &blur {
            if step.is_multiple_of(settings.blur_every) {
                x = blur.apply(&x)?;
            }
        }
        if settings.small_norm_percentile > 0.0 {
            x = clip_small_norm(&x, settings.small_norm_percentile)?;
        }
        if settings.small_contribution_percentile > 0.0 {
            x = clip_small_contribution(&x, &grad, settings.small_contribution_percentile)?;
        }
    }
    Ok((best.x.unwrap_or(x), trajectory))
}
