//! The named recipes: plain gradient ascent (Simonyan et al. 2014), the four regularized
//! settings of Yosinski et al. 2015 (Table 1), and Lucid's "better priors" (Olah et al. 2017).

use super::step_size::StepScale;
use super::transforms::TransformRobustness;

/// A named set of optimization settings (`convlens_shared::choices`): `none` (plain gradient
/// ascent on the pixels with a little L2 decay, from the mean image: Simonyan et al. 2014),
/// `yosinski1`–`yosinski4` (Yosinski et al. 2015, Table 1), `lucid` (Fourier parameterization
/// with 1/f scaling, decorrelated colour, transformation robustness, Adam at 0.05, 512 steps:
/// Lucid's `render_vis` defaults).
pub use convlens_shared::choices::Preset;

/// How the pixel-space presets pick their step size (deep-visualization-toolbox's `lr_policy`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LearningRate {
    /// A fixed step size.
    Constant(f64),
    /// `min(max_lr, desired_progress / ‖grad‖²)`: the step that would raise a linear objective
    /// by `desired_progress`, capped.
    Progress {
        /// The cap.
        max_lr: f64,
        /// The objective gain aimed at per step.
        desired_progress: f64,
    },
}

/// Where the pixel-space presets start, in mean-subtracted 0–255 pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Start {
    /// The mean image (zeros).
    Mean,
    /// The mean plus Gaussian noise of this standard deviation (the toolbox's `mean_plus_rand`,
    /// σ = 10).
    MeanPlusNoise(f64),
}

/// Gradient ascent on the pixels with Yosinski's regularizers, in the toolbox's units (mean-
/// subtracted 0–255 pixels, as Caffe's input): each step clips to the valid range, runs the
/// network, then `x += lr·grad; x *= 1 − decay`, blurs every `blur_every` steps, and zeroes the
/// pixels of small norm and of small contribution. The last step only measures; the result is
/// each image at its best step (the toolbox's `best_X`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PixelAscent {
    /// θ_decay: L2 decay per step.
    pub decay: f64,
    /// θ_b_width: Gaussian blur σ in pixels (0: none).
    pub blur_width: f64,
    /// θ_b_every: blur every this many steps (0: never).
    pub blur_every: usize,
    /// θ_n_pct: zero the pixels whose norm is below this percentile (0: off).
    pub small_norm_percentile: f64,
    /// θ_c_pct: zero the pixels whose contribution is below this percentile (0: off).
    pub small_contribution_percentile: f64,
    /// Step size rule.
    pub learning_rate: LearningRate,
    /// How the rule's learning rates carry over from CaffeNet to the model.
    pub step_scale: StepScale,
    /// Steps (forward + backward passes).
    pub steps: usize,
    /// Starting image.
    pub start: Start,
}

/// Lucid's recipe: the image is sigmoid(decorrelate(irfft(1/f · spectrum))), optimized by Adam
/// through random transforms.
#[derive(Clone, Debug, PartialEq)]
pub struct FourierAdam {
    /// Adam's learning rate.
    pub lr: f64,
    /// Steps.
    pub steps: usize,
    /// Standard deviation of the initial spectrum.
    pub init_sd: f64,
    /// Whether colours go through Lucid's decorrelation matrix.
    pub decorrelate: bool,
    /// The random transforms of each step.
    pub transforms: TransformRobustness,
}

/// A preset's settings.
#[derive(Clone, Debug, PartialEq)]
pub enum Recipe {
    /// Pixel-space gradient ascent (none, yosinski1–4).
    Pixel(PixelAscent),
    /// Lucid.
    Fourier(FourierAdam),
}

/// The preset's settings.
///
/// The Yosinski rows are the toolbox's command lines for Table 1 (its README, "Reproducing
/// paper results"), with their learning-rate rules and iteration counts; they start from
/// the mean plus N(0, 10) noise, the toolbox's default. Their learning rates (given for
/// CaffeNet) are calibrated to the model at the first step ([`StepScale::Calibrated`]: lr
/// 100 becomes the step that gains 2 there). `none` has no blur and no clipping;
/// Simonyan et al. give no λ and no step size, so it takes row 3's decay (1e-4) and row 4's
/// "progress" step (each step aims at +2 on the objective): the constant step of 100 that the
/// toolbox calibrated for CaffeNet's raw pixels leaves the demo model at the mean image
/// (its logit gradient there is too small to move 224-pixel images in 500 steps).
pub fn recipe(preset: Preset) -> Recipe {
    let pixel = |decay, blur_width, blur_every, norm, contribution, lr, steps| {
        Recipe::Pixel(PixelAscent {
            decay,
            blur_width,
            blur_every,
            small_norm_percentile: norm,
            small_contribution_percentile: contribution,
            learning_rate: lr,
            step_scale: StepScale::Calibrated {
                reference_lr: 100.0,
                desired_progress: 2.0,
            },
            steps,
            start: Start::MeanPlusNoise(10.0),
        })
    };
    let progress = |max_lr| LearningRate::Progress {
        max_lr,
        desired_progress: 2.0,
    };
    match preset {
        Preset::None => Recipe::Pixel(PixelAscent {
            decay: 1e-4,
            blur_width: 0.0,
            blur_every: 0,
            small_norm_percentile: 0.0,
            small_contribution_percentile: 0.0,
            learning_rate: progress(1e8),
            step_scale: StepScale::AsGiven,
            steps: 500,
            start: Start::Mean,
        }),
        Preset::Yosinski1 => pixel(0.0, 0.5, 4, 50.0, 0.0, progress(100.0), 500),
        Preset::Yosinski2 => pixel(0.3, 0.0, 0, 20.0, 0.0, LearningRate::Constant(100.0), 750),
        Preset::Yosinski3 => pixel(1e-4, 1.0, 4, 0.0, 0.0, LearningRate::Constant(100.0), 1000),
        Preset::Yosinski4 => pixel(0.0, 0.5, 4, 0.0, 90.0, progress(1e8), 1000),
        Preset::Lucid => Recipe::Fourier(FourierAdam {
            lr: 0.05,
            steps: 512,
            init_sd: 0.01,
            decorrelate: true,
            transforms: TransformRobustness::lucid(),
        }),
    }
}

impl Recipe {
    /// The recipe's number of steps.
    pub fn steps(&self) -> usize {
        match self {
            Recipe::Pixel(p) => p.steps,
            Recipe::Fourier(f) => f.steps,
        }
    }
}
