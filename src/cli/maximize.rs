//! `convlens maximize`: synthesize an input that drives a class logit, a channel or one neuron
//! as high as possible (activation maximization), with a progress bar, and write it as a PNG,
//! an animated GIF of the optimization, and/or the network's input tensor.

use std::io::Write;
use std::path::{Path, PathBuf};

use convlens_models::maximize::{pictures, recipe};
use convlens_models::render::grid;
use convlens_shared::choices::Preset;
use convlens_shared::defaults::maximize as default;
use convlens_shared::methods::maximize::{MaximizeParams, MaximizeResult, UnitMaximize};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, RgbImage};

use super::choices::closed_set;
use super::client::{Engine, EngineChoice};
use super::output::{self, OnFile};
use super::ModelArgs;

/// Arguments of `convlens maximize`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["class", "layer"])))]
pub struct MaximizeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Maximize the logit of this class.
    #[arg(long, conflicts_with_all = ["layer", "unit", "neuron"])]
    class: Option<usize>,
    /// Maximize a channel of this layer (`convlens layers MODEL` lists them).
    #[arg(long, requires = "unit")]
    layer: Option<String>,
    /// The channel of --layer.
    #[arg(long, requires = "layer")]
    unit: Option<usize>,
    /// Maximize the channel's centre neuron instead of its mean.
    #[arg(long, requires = "layer")]
    neuron: bool,
    /// The preset: no prior (none), Yosinski et al.'s four rows, or Lucid's priors.
    #[arg(long, value_parser = closed_set::<Preset>(),
          default_value_t = default::PRESET)]
    preset: Preset,
    /// Optimization steps (default: the preset's, 500–1000).
    #[arg(long)]
    steps: Option<usize>,
    /// Seed of the starting image and the random transforms: same seed, same image.
    #[arg(long, default_value_t = default::SEED)]
    seed: u64,
    /// Image side in pixels (default: the model's input size).
    #[arg(long)]
    size: Option<usize>,
    /// Optimize this many images at once, pushed apart by Lucid's Gram-matrix diversity term.
    #[arg(long, default_value_t = default::DIVERSITY)]
    diversity: usize,
    /// Weight of the diversity term.
    #[arg(long, default_value_t = default::DIVERSITY_WEIGHT)]
    diversity_weight: f64,
    /// Layer of the diversity term (default: the objective's layer, or the last spatial layer
    /// for a class).
    #[arg(long)]
    diversity_layer: Option<String>,
    /// Write the image (a grid with --diversity) to this PNG.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Show and save the image as the deep-visualization-toolbox shows its results: the
    /// deviation from the mean image stretched to the full range around mid-gray (the pixel
    /// presets stay within a few levels of the mean). --npy, --json and the --gif frames are of
    /// the image itself.
    #[arg(long)]
    stretch: bool,
    /// Write an animated GIF of the optimization here.
    #[arg(long)]
    gif: Option<PathBuf>,
    /// Steps between GIF frames (default: about 60 frames in all).
    #[arg(long)]
    frame_every: Option<usize>,
    /// Write the final input tensor (normalized, float32 [3, H, W]; [N, 3, H, W] with
    /// --diversity N) here.
    #[arg(long)]
    npy: Option<PathBuf>,
    /// Print JSON (objective at the start and the end, the model's top classes for the image).
    #[arg(long)]
    json: bool,
}

/// Runs the optimization and writes what was asked for.
pub fn run(args: &MaximizeArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    if args.class.is_none() && (args.layer.is_none() || args.unit.is_none()) {
        anyhow::bail!("give --class C, or --layer L with --unit U");
    }
    let steps = match args.steps {
        Some(steps) => steps,
        None => recipe(args.preset).steps(),
    };
    let frame_every = match (&args.gif, args.frame_every) {
        (None, _) => None,
        (Some(_), Some(every)) => Some(every),
        (Some(_), None) => Some(steps.div_ceil(60).max(1)),
    };
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let params = MaximizeParams {
        model_id,
        class: args.class,
        layer: args.layer.clone(),
        unit: args.unit,
        neuron: args.neuron,
        preset: args.preset,
        steps: args.steps,
        seed: args.seed,
        size: args.size,
        diversity: args.diversity,
        diversity_weight: args.diversity_weight,
        diversity_layer: args.diversity_layer.clone(),
        frame_every,
        // 8-bit frames are what a GIF holds, at a fraction of the bytes of float arrays.
        frame_pictures: true,
        // The pictures are drawn here from `images`, exactly as the daemon would; the stretched
        // display copies need the model's mean, so the daemon draws those.
        render: args.stretch,
        stretch: args.stretch,
        inputs: args.npy.is_some(),
        top: default::TOP,
        work_done_token: None,
    };
    let result = engine.request::<UnitMaximize>(&params, true)?;

    let tiles = if args.stretch {
        result
            .pictures
            .iter()
            .map(output::decode_png)
            .collect::<anyhow::Result<Vec<_>>>()?
    } else {
        pictures(&output::tensor(&result.images)?)?
    };
    let picture = grid_of(tiles);
    if let Some(path) = &args.output {
        output::save_picture(&picture, path)?;
    }
    if let (Some(path), Some(inputs)) = (&args.npy, &result.inputs) {
        let inputs = output::tensor(inputs)?;
        let inputs = if inputs.dim(0)? == 1 {
            inputs.squeeze(0)?
        } else {
            inputs
        };
        output::write_npy(&inputs, path)?;
    }
    if let Some(path) = &args.gif {
        write_gif(path, &result)?;
    }
    report(args, &result)?;
    if args.output.is_none() && args.npy.is_none() && args.gif.is_none() && !args.json {
        output::show_inline(&picture)?;
    }
    Ok(())
}

/// One picture, or a batch's as a grid.
fn grid_of(tiles: Vec<RgbImage>) -> RgbImage {
    match <[RgbImage; 1]>::try_from(tiles) {
        Ok([one]) => one,
        Err(tiles) => grid(&tiles, tiles.len().min(4), 4),
    }
}

fn report(args: &MaximizeArgs, result: &MaximizeResult) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let label = result
        .label
        .as_ref()
        .map(|l| format!(" ({l})"))
        .unwrap_or_default();
    let seen = &result.top;
    if args.json {
        let images: Vec<serde_json::Value> = (0..seen.len())
            .map(|i| {
                serde_json::json!({
                    "start": result.start_values.get(i),
                    "final": result.final_values.get(i),
                    "top": seen[i],
                })
            })
            .collect();
        let value = serde_json::json!({
            "objective": result.objective,
            "layer": result.layer,
            "preset": result.preset,
            "steps": result.steps,
            "seed": args.seed,
            "size": result.images.shape.get(3),
            "images": images,
            "history": result.history.iter().map(|v| v.iter().sum::<f32>() / v.len().max(1) as f32).collect::<Vec<f32>>(),
        });
        output::print_json!(&mut out, &value)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} {}{label} at `{}`, {} steps:",
        result.preset, result.objective, result.layer, result.steps
    )?;
    for (i, top) in seen.iter().enumerate() {
        let classes: Vec<String> = top
            .iter()
            .map(|c| format!("{} {} {:.3}", c.class, c.label, c.prob))
            .collect();
        writeln!(
            out,
            "  image {i}: objective {:.3} -> {:.3}; the model sees {}",
            result.start_values.get(i).copied().unwrap_or(f32::NAN),
            result.final_values.get(i).copied().unwrap_or(f32::NAN),
            classes.join(", ")
        )?;
    }
    Ok(())
}

/// An animated GIF, one frame per kept step (the batch as a grid), looping. It is encoded in
/// memory and then written, so that a failed write is an error naming the file rather than a
/// flush lost when a buffered encoder is dropped.
fn write_gif(path: &Path, result: &MaximizeResult) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut bytes, 10);
        encoder.set_repeat(Repeat::Infinite)?;
        for frame in &result.frames {
            let tiles = match &frame.images {
                Some(images) => pictures(&output::tensor(images)?)?,
                None => frame
                    .pictures
                    .iter()
                    .map(output::decode_png)
                    .collect::<anyhow::Result<Vec<_>>>()?,
            };
            let rgba = image::DynamicImage::ImageRgb8(grid_of(tiles)).to_rgba8();
            encoder.encode_frame(image::Frame::from_parts(
                rgba,
                0,
                0,
                Delay::from_numer_denom_ms(80, 1),
            ))?;
        }
    }
    std::fs::write(path, bytes).on_file(path)
}
