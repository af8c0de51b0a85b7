//! The loop of the `lucid` preset, as Lucid's (and Lucent's) `render_vis` runs it: the image is
//! sigmoid(decorrelate(irfft(1/f · spectrum))), each step sees it through fresh random
//! transforms and normalized as the model expects, and Adam updates the spectrum.

use candle_core::{Device, Tensor};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use super::adam::Adam;
use super::color::ColorDecorrelation;
use super::fourier::FourierImage;
use super::gradient::Ascent;
use super::presets::FourierAdam;
use super::transforms::Warp;
use super::{Frame, Run, Trajectory};
use crate::input::Normalization;
use crate::progress::Progress;
use crate::Result;

/// The image side of the parameterization, with what maps the spectrum to pixels and back.
pub struct FourierParam {
    fourier: FourierImage,
    color: Option<ColorDecorrelation>,
    /// Per-channel mean and std of the model's normalization, [1, C, 1, 1].
    mean: Tensor,
    std: Tensor,
}

/// The pixels of a parameter, with what the backward pass needs.
pub struct Rendered {
    /// sigmoid(…), [B, C, S, S] in (0, 1).
    pub image: Tensor,
}

impl FourierParam {
    /// For `size`×`size` images of a model with `normalization`.
    pub fn new(
        size: usize,
        normalization: &Normalization,
        decorrelate: bool,
        device: &Device,
    ) -> Result<Self> {
        let c = normalization.channels;
        let color = if decorrelate && c == 3 {
            Some(ColorDecorrelation::new(device)?)
        } else {
            None
        };
        Ok(FourierParam {
            fourier: FourierImage::new(size, size, device)?,
            color,
            mean: Tensor::from_vec(normalization.mean[..c].to_vec(), (1, c, 1, 1), device)?,
            std: Tensor::from_vec(normalization.std[..c].to_vec(), (1, c, 1, 1), device)?,
        })
    }

    /// A random initial spectrum N(0, sd²) for `batch` images of `channels` channels.
    pub fn init(
        &self,
        batch: usize,
        channels: usize,
        sd: f64,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = self.fourier.param_shape(batch, channels);
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let data: Vec<f32> = (0..n)
            .map(|_| {
                let z: f64 = StandardNormal.sample(rng);
                (z * sd) as f32
            })
            .collect();
        Ok(Tensor::from_vec(data, shape, device)?)
    }

    /// The image of a spectrum.
    pub fn render(&self, spectrum: &Tensor) -> Result<Rendered> {
        let t = self.fourier.to_image(spectrum)?;
        let t = match &self.color {
            Some(color) => color.to_rgb(&t)?,
            None => t,
        };
        // sigmoid(t) = 1 / (1 + e^(−t)); e^(−t) = inf gives exactly 0.
        let image = t.neg()?.exp()?.affine(1.0, 1.0)?.recip()?;
        Ok(Rendered { image })
    }

    /// The signal on the spectrum for a signal on the image.
    pub fn backward(&self, rendered: &Rendered, grad_image: &Tensor) -> Result<Tensor> {
        let s = &rendered.image;
        let grad_t = grad_image.mul(&s.mul(&s.affine(-1.0, 1.0)?)?)?;
        let grad_t = match &self.color {
            Some(color) => color.backward(&grad_t)?,
            None => grad_t,
        };
        self.fourier.backward(&grad_t)
    }

    /// The network's input for pixels in [0, 1].
    pub fn normalize(&self, image: &Tensor) -> Result<Tensor> {
        Ok(image.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?)
    }

    /// The signal on the pixels for one on the network's input.
    pub fn normalize_backward(&self, grad_input: &Tensor) -> Result<Tensor> {
        Ok(grad_input.broadcast_div(&self.std)?)
    }
}

/// Runs the optimization from `spectrum` and returns the final spectrum, the history and the
/// frames.
#[allow(clippy::too_many_arguments)]
pub fn run(
    ascent: &Ascent,
    settings: &FourierAdam,
    param: &FourierParam,
    spectrum: Tensor,
    size: usize,
    rng: &mut ChaCha8Rng,
    run: &Run,
    progress: &dyn Progress,
) -> Result<(Tensor, Trajectory)> {
    let device = spectrum.device().clone();
    let transforms = &settings.transforms;
    let canvas = transforms.canvas_size(size);
    let mut adam = Adam::new(&spectrum, settings.lr)?;
    let mut spectrum = spectrum;
    let mut trajectory = Trajectory::default();
    for step in 0..run.steps {
        let rendered = param.render(&spectrum)?;
        if run.wants_frame(step) {
            trajectory.frames.push(Frame::new(step, &rendered.image)?);
        }
        let affine = transforms.sample(size, rng);
        let warp = Warp::new(
            &affine,
            (size, size),
            (canvas, canvas),
            transforms.pad,
            transforms.pad_value,
            &device,
        )?;
        let input = param.normalize(&warp.apply(&rendered.image)?)?;
        let result = ascent.gradient(&input)?;
        progress.step(step + 1, run.steps, &run.message(&result.values))?;
        trajectory.record(result.values, result.similarity);
        let grad_image = warp.backward(&param.normalize_backward(&result.gradient)?)?;
        let grad_spectrum = param.backward(&rendered, &grad_image)?;
        // Adam lowers a loss: the loss is minus the objective.
        spectrum = adam.step(&spectrum, &grad_spectrum.neg()?)?;
    }
    Ok((spectrum, trajectory))
}
