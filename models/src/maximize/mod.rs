//! Activation maximization: synthesize an input that drives a class logit, a channel's mean
//! activation or one neuron as high as possible, with plain gradient ascent (Simonyan et al.
//! 2014), Yosinski et al.'s regularizers (2015) or Lucid's priors (Olah et al. 2017).
//!
//! Every step is one batched forward and backward pass of the network ([`crate::graph::Graph`])
//! plus a few tensor ops, all on the model's device; the images of a batch are optimized together
//! (and pushed apart by the diversity term when there are several).

pub mod adam;
pub mod color;
pub mod display;
pub mod diversity;
pub mod fourier;
mod fourier_adam;
mod gradient;
pub mod objective;
mod pixel_ascent;
pub mod presets;
pub mod regularizers;
pub mod step_size;
pub mod transforms;
mod warp_cpu;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use objective::Objective;
pub use presets::{recipe, Preset, Recipe};

use crate::explain::default_cam_layer;
use crate::progress::Progress;
use crate::{Error, Model, Result};
use gradient::Ascent;
use objective::BoundObjective;

/// The smallest image side accepted (the demo's stem and five stride-2 stages need 32).
pub const MIN_SIZE: usize = 32;

/// What to synthesize and how.
#[derive(Clone, Debug)]
pub struct MaximizeOptions {
    /// What to drive up.
    pub objective: Objective,
    /// The recipe.
    pub preset: Preset,
    /// Optimization steps (forward + backward passes); the preset's when `None`.
    pub steps: Option<usize>,
    /// Seed of the starting image and of the random transforms: same seed, same image.
    pub seed: u64,
    /// Image side in pixels; the model's crop (224 for the demo) when `None`.
    pub size: Option<usize>,
    /// How many images to optimize at once; with more than one, the diversity term pushes them
    /// apart.
    pub images: usize,
    /// Weight of the diversity term (Lucid's 1e2).
    pub diversity_weight: f64,
    /// Layer of the diversity term: the objective's layer for a channel or neuron, the last
    /// spatial layer for a class, when `None`.
    pub diversity_layer: Option<String>,
    /// Keep an image every this many steps (and the last one), for an animation.
    pub frame_every: Option<usize>,
}

impl Default for MaximizeOptions {
    /// The protocol's defaults (`convlens_shared::defaults::maximize`), for class 0.
    fn default() -> Self {
        use convlens_shared::defaults::maximize as default;
        MaximizeOptions {
            objective: Objective::Class(0),
            preset: default::PRESET,
            steps: None,
            seed: default::SEED,
            size: None,
            images: default::DIVERSITY,
            diversity_weight: default::DIVERSITY_WEIGHT,
            diversity_layer: None,
            frame_every: None,
        }
    }
}

/// The images of the batch at one step of the optimization.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The step (0 is the starting image; the last frame is the result).
    pub step: usize,
    /// The images in [0, 1], [B, C, S, S], on the CPU.
    pub images: Tensor,
}

impl Frame {
    fn new(step: usize, images: &Tensor) -> Result<Self> {
        Ok(Frame {
            step,
            images: images.to_device(&Device::Cpu)?.to_dtype(DType::F32)?,
        })
    }
}

/// The result of a run.
#[derive(Debug)]
pub struct Maximization {
    /// The objective, as asked.
    pub objective: Objective,
    /// The layer it was read at (the network's output for a class).
    pub layer: String,
    /// The preset.
    pub preset: Preset,
    /// Steps taken (forward + backward passes).
    pub steps: usize,
    /// The images in [0, 1], [B, C, S, S], on the model's device: the last step's for `lucid`,
    /// each image's best step for the pixel presets (the toolbox's `best_X`).
    pub images: Tensor,
    /// The same images as the network's input (normalized), [B, C, S, S].
    pub inputs: Tensor,
    /// The objective of each image at each step, as the optimizer saw it (through the random
    /// transforms, for `lucid`): `history[step][image]`.
    pub history: Vec<Vec<f32>>,
    /// The Gram similarity of the batch at each step, when the diversity term is on.
    pub similarity: Vec<f32>,
    /// The objective of each starting image, seen as is.
    pub start_values: Vec<f32>,
    /// The objective of each resulting image, seen as is.
    pub final_values: Vec<f32>,
    /// Snapshots for an animation, when asked for.
    pub frames: Vec<Frame>,
}

/// What a loop records along the way.
#[derive(Default)]
pub(crate) struct Trajectory {
    history: Vec<Vec<f32>>,
    similarity: Vec<f32>,
    frames: Vec<Frame>,
}

impl Trajectory {
    fn record(&mut self, values: Vec<f32>, similarity: Option<f32>) {
        self.history.push(values);
        self.similarity.extend(similarity);
    }
}

/// What both loops need to know about the run.
pub(crate) struct Run {
    steps: usize,
    frame_every: Option<usize>,
}

impl Run {
    fn wants_frame(&self, step: usize) -> bool {
        self.frame_every
            .is_some_and(|every| step.is_multiple_of(every))
    }

    fn message(&self, values: &[f32]) -> String {
        let mean = values.iter().sum::<f32>() / values.len().max(1) as f32;
        format!("objective {mean:.3}")
    }
}

/// Synthesizes the images that maximize `options.objective`, reporting each step to `progress`
/// (which may cancel the run).
pub fn maximize(
    model: &Model,
    options: &MaximizeOptions,
    progress: &dyn Progress,
) -> Result<Maximization> {
    let recipe = presets::recipe(options.preset);
    let steps = options.steps.unwrap_or_else(|| recipe.steps());
    if steps == 0 {
        return Err(Error::InvalidArgument("steps must be at least 1".into()));
    }
    if options.images == 0 {
        return Err(Error::InvalidArgument(
            "the number of images (--diversity) must be at least 1".into(),
        ));
    }
    if options.frame_every == Some(0) {
        return Err(Error::InvalidArgument(
            "frames must be kept every 1 or more steps".into(),
        ));
    }
    let size = options.size.unwrap_or(model.preprocess.crop as usize);
    // A network made for small images (Fashion-MNIST's 28) may run below the usual minimum.
    let min_size = MIN_SIZE.min(model.preprocess.crop as usize);
    if size < min_size {
        return Err(Error::InvalidArgument(format!(
            "size {size} is too small: images need at least {min_size} pixels a side"
        )));
    }
    if let (Recipe::Fourier(settings), Some(sizes)) = (&recipe, model.graph.input_sizes()) {
        let canvas = settings.transforms.canvas_size(size);
        if sizes.iter().skip(2).any(|s| s.is_some_and(|s| s != canvas)) {
            let sizes: Vec<String> = sizes
                .iter()
                .map(|s| s.map_or("N".into(), |n| n.to_string()))
                .collect();
            return Err(Error::InvalidArgument(format!(
                "this network takes only inputs of [{}], and Lucid's \
                 transformation robustness runs it at {canvas}x{canvas} for {size}x{size} \
                 images: use a pixel preset (yosinski1..4, none), or export the network with \
                 dynamic height and width",
                sizes.join(", ")
            )));
        }
    }
    let device = &model.device;
    let normalization = model.normalization();
    let channels = normalization.channels;
    let batch = options.images;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let run = Run {
        steps,
        frame_every: options.frame_every,
    };
    match recipe {
        Recipe::Pixel(settings) => {
            let space = pixel_ascent::PixelSpace::new(&normalization, device)?;
            let x0 = pixel_ascent::start(
                settings.start,
                (batch, channels, size, size),
                &mut rng,
                device,
            )?;
            let x0 = space.clip(&x0)?;
            let (ascent, start_values) = bind(model, options, &space.input(&x0)?)?;
            let (x, trajectory) =
                pixel_ascent::run(&ascent, &settings, &space, x0, &run, progress)?;
            let images = space.image(&x)?;
            let inputs = space.input(&x)?;
            finish(
                model,
                options,
                &ascent,
                &run,
                images,
                inputs,
                trajectory,
                start_values,
            )
        }
        Recipe::Fourier(settings) => {
            let param = fourier_adam::FourierParam::new(
                size,
                &normalization,
                settings.decorrelate,
                device,
            )?;
            let spectrum = param.init(batch, channels, settings.init_sd, &mut rng, device)?;
            let start_input = param.normalize(&param.render(&spectrum)?.image)?;
            let (ascent, start_values) = bind(model, options, &start_input)?;
            let (spectrum, trajectory) = fourier_adam::run(
                &ascent, &settings, &param, spectrum, size, &mut rng, &run, progress,
            )?;
            let images = param.render(&spectrum)?.image;
            let inputs = param.normalize(&images)?;
            finish(
                model,
                options,
                &ascent,
                &run,
                images,
                inputs,
                trajectory,
                start_values,
            )
        }
    }
}

/// Binds the objective (and the diversity layer) with a forward pass of the starting input, and
/// returns the objective of each starting image.
fn bind<'a>(
    model: &'a Model,
    options: &MaximizeOptions,
    start_input: &Tensor,
) -> Result<(Ascent<'a>, Vec<f32>)> {
    let graph = &model.graph;
    let trace = graph.forward(start_input, None)?;
    let bound = BoundObjective::bind(&options.objective, graph, &trace)?;
    let diversity = if options.images > 1 && options.diversity_weight != 0.0 {
        let node = match (&options.diversity_layer, &options.objective) {
            (Some(layer), _) => graph.node_id(layer)?,
            (None, Objective::Class(_)) => default_cam_layer(graph)?,
            (None, _) => bound.node,
        };
        let dims = trace
            .get(node)
            .map(|t| t.dims().to_vec())
            .unwrap_or_default();
        if node == 0 || dims.len() != 4 {
            return Err(Error::InvalidArgument(format!(
                "the diversity term needs a layer with channels and positions ([N, C, H, W]); `{}` gives {dims:?}",
                graph.name(node)
            )));
        }
        Some((node, options.diversity_weight))
    } else {
        None
    };
    let ascent = Ascent::new(graph, bound, diversity);
    let start_values = ascent.values(&trace)?;
    Ok((ascent, start_values))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    model: &Model,
    options: &MaximizeOptions,
    ascent: &Ascent,
    run: &Run,
    images: Tensor,
    inputs: Tensor,
    mut trajectory: Trajectory,
    start_values: Vec<f32>,
) -> Result<Maximization> {
    let final_values = ascent.evaluate(&inputs)?;
    let steps = run.steps;
    if run.frame_every.is_some() && trajectory.frames.last().is_none_or(|f| f.step != steps) {
        trajectory.frames.push(Frame::new(steps, &images)?);
    }
    Ok(Maximization {
        objective: options.objective.clone(),
        layer: model.graph.name(ascent.node()).to_string(),
        preset: options.preset,
        steps,
        images,
        inputs,
        history: trajectory.history,
        similarity: trajectory.similarity,
        start_values,
        final_values,
        frames: trajectory.frames,
    })
}

/// The 8-bit pictures of images in [0, 1] [B, C, S, S] (grayscale shown as gray RGB).
pub fn pictures(images: &Tensor) -> Result<Vec<image::RgbImage>> {
    let x = images.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let (b, c, h, w) = x.dims4()?;
    let data = x.flatten_all()?.to_vec1::<f32>()?;
    let plane = h * w;
    Ok((0..b)
        .map(|i| {
            let base = i * c * plane;
            image::RgbImage::from_fn(w as u32, h as u32, |px, py| {
                let at = py as usize * w + px as usize;
                image::Rgb(std::array::from_fn(|ch| {
                    let src = if c == 1 { 0 } else { ch.min(c - 1) };
                    let v = data[base + src * plane + at];
                    (v * 255.0).round().clamp(0.0, 255.0) as u8
                }))
            })
        })
        .collect())
}

/// The network's input for 8-bit pictures (what a saved PNG gives back), [B, C, S, S].
pub fn picture_inputs(model: &Model, pictures: &[image::RgbImage]) -> Result<Tensor> {
    let inputs = pictures
        .iter()
        .map(|p| {
            model
                .preprocess
                .normalize(&image::DynamicImage::ImageRgb8(p.clone()), &model.device)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::stack(&inputs, 0)?)
}
