//! The step size of the pixel-space presets: the toolbox's learning-rate rules (`constant` and
//! `progress`), with their learning rates carried over from CaffeNet to the model at hand.
//!
//! The toolbox's learning rates (the constant 100 of Table 1's rows 2 and 3, the cap of 100 of
//! row 1) are in CaffeNet's gradient units: d(fc8 logit)/d(raw pixel) of a net with
//! fully-connected layers on a 227-pixel input. A network that averages its last feature map over
//! all positions divides each pixel's effect on a logit by the number of positions (49 for the
//! demo model at 224 pixels), and one that reads normalized inputs scales it again, so the same
//! numbers barely move it (on the demo model at 224 pixels, row 2 holds a class logit at −0.04
//! for 750 steps).
//! [`StepScale::Calibrated`] multiplies every learning rate of a run by one factor per image,
//! fixed at the first step: the one that makes the reference rate (100) the step the progress
//! rule would take there (a linear gain of 2 on the objective). The progress rule itself is
//! already free of units and is unchanged.

use candle_core::{DType, Tensor};

use super::presets::LearningRate;
use crate::Result;

/// How the toolbox's learning rates are applied to the model being optimized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepScale {
    /// As given.
    AsGiven,
    /// Multiplied by `desired_progress / (‖g₀‖² · reference_lr)` per image, `g₀` being the
    /// gradient at the starting image.
    Calibrated {
        /// The toolbox's learning rate that the calibration maps onto the progress step.
        reference_lr: f64,
        /// The linear gain that step makes at the starting image.
        desired_progress: f64,
    },
}

/// The learning rates of a run, per image.
pub struct StepSize {
    rule: LearningRate,
    calibration: StepScale,
    /// The calibration factor of each image, [B, 1, 1, 1]; set at the first step.
    scale: Option<Tensor>,
}

/// ‖g‖² per image, [B, 1, 1, 1].
fn norm_sq(grad: &Tensor) -> Result<Tensor> {
    Ok(grad.sqr()?.sum_keepdim((1, 2, 3))?)
}

impl StepSize {
    /// The step size of `rule` with `calibration`.
    pub fn new(rule: LearningRate, calibration: StepScale) -> Self {
        StepSize {
            rule,
            calibration,
            scale: None,
        }
    }

    /// The calibration factor of each image, fixed by the first gradient seen. An image whose
    /// first gradient is zero (or not finite) keeps the rates as given.
    fn scale(&mut self, grad: &Tensor) -> Result<Tensor> {
        if let Some(scale) = &self.scale {
            return Ok(scale.clone());
        }
        let scale = match self.calibration {
            StepScale::AsGiven => Tensor::ones((grad.dim(0)?, 1, 1, 1), DType::F32, grad.device())?,
            StepScale::Calibrated {
                reference_lr,
                desired_progress,
            } => {
                let factors = norm_sq(grad)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .into_iter()
                    .map(|n| {
                        let f = desired_progress / (n as f64 * reference_lr);
                        if f.is_finite() && f > 0.0 {
                            f as f32
                        } else {
                            1.0
                        }
                    })
                    .collect::<Vec<_>>();
                let b = factors.len();
                Tensor::from_vec(factors, (b, 1, 1, 1), grad.device())?
            }
        };
        self.scale = Some(scale.clone());
        Ok(scale)
    }

    /// The learning rate of each image for this step's gradient `grad` [B, C, H, W], [B, 1, 1, 1].
    pub fn rates(&mut self, grad: &Tensor) -> Result<Tensor> {
        let scale = self.scale(grad)?;
        Ok(match self.rule {
            LearningRate::Constant(lr) => scale.affine(lr, 0.0)?,
            LearningRate::Progress {
                max_lr,
                desired_progress,
            } => {
                // desired / ‖g‖², capped; a zero gradient gets the cap (and moves nothing).
                let cap = scale.affine(max_lr, 0.0)?;
                norm_sq(grad)?
                    .recip()?
                    .affine(desired_progress, 0.0)?
                    .clamp(0f32, f32::MAX)?
                    .minimum(&cap)?
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn grads() -> Tensor {
        // Image 0: ‖g‖² = 4 (two entries of 1, one of √2); image 1: ‖g‖² = 0.01.
        let s2 = 2f32.sqrt();
        let data = vec![1.0, 1.0, s2, 0.0, 0.1, 0.0, 0.0, 0.0];
        Tensor::from_vec(data, (2, 1, 2, 2), &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    fn close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn as_given_keeps_the_toolbox_rates() {
        let mut constant = StepSize::new(LearningRate::Constant(100.0), StepScale::AsGiven);
        close(&values(&constant.rates(&grads()).unwrap()), &[100.0, 100.0]);
        let mut progress = StepSize::new(
            LearningRate::Progress {
                max_lr: 100.0,
                desired_progress: 2.0,
            },
            StepScale::AsGiven,
        );
        // 2/4 = 0.5 under the cap; 2/0.01 = 200 capped at 100.
        close(&values(&progress.rates(&grads()).unwrap()), &[0.5, 100.0]);
    }

    #[test]
    fn calibration_makes_the_reference_rate_the_first_progress_step() {
        let calibrated = StepScale::Calibrated {
            reference_lr: 100.0,
            desired_progress: 2.0,
        };
        let mut constant = StepSize::new(LearningRate::Constant(100.0), calibrated);
        // lr 100 becomes 2/‖g₀‖²: 0.5 and 200.
        close(&values(&constant.rates(&grads()).unwrap()), &[0.5, 200.0]);
        // Fixed at the first step: a later, larger gradient does not change it.
        let later = grads().affine(10.0, 0.0).unwrap();
        close(&values(&constant.rates(&later).unwrap()), &[0.5, 200.0]);

        // A cap of 100 becomes the same calibrated rate; the progress step is unchanged.
        let mut progress = StepSize::new(
            LearningRate::Progress {
                max_lr: 100.0,
                desired_progress: 2.0,
            },
            calibrated,
        );
        close(&values(&progress.rates(&grads()).unwrap()), &[0.5, 200.0]);
        // With a gradient 10× larger: 2/400 = 0.005 and 2/1 = 2, both under their caps.
        close(&values(&progress.rates(&later).unwrap()), &[0.005, 2.0]);
    }

    #[test]
    fn a_zero_first_gradient_keeps_the_rates_as_given() {
        let zero = Tensor::zeros((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        let mut constant = StepSize::new(
            LearningRate::Constant(100.0),
            StepScale::Calibrated {
                reference_lr: 100.0,
                desired_progress: 2.0,
            },
        );
        close(&values(&constant.rates(&zero).unwrap()), &[100.0]);
    }
}
