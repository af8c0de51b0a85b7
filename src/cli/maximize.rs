//! `convlens maximize`: synthesize an input that drives a class logit, a channel or one neuron
//! as high as possible (activation maximization), with a progress bar, and write it as a PNG,
//! an animated GIF of the optimization, and/or the network's input tensor.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Device;
use convlens_models::maximize::{
    maximize, picture_inputs, pictures, Frame, Maximization, MaximizeOptions, Objective, Preset,
    DEFAULT_DIVERSITY_WEIGHT,
};
use convlens_models::progress::FnProgress;
use convlens_models::render::grid;
use convlens_models::{ClassScore, Model};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, RgbImage};
use indicatif::{ProgressBar, ProgressStyle};

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
    /// none, yosinski1, yosinski2, yosinski3, yosinski4 or lucid.
    #[arg(long, default_value = "lucid")]
    preset: String,
    /// Optimization steps (default: the preset's, 500–1000).
    #[arg(long)]
    steps: Option<usize>,
    /// Seed of the starting image and the random transforms: same seed, same image.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image side in pixels (default: the model's input size).
    #[arg(long)]
    size: Option<usize>,
    /// Optimize this many images at once, pushed apart by Lucid's Gram-matrix diversity term.
    #[arg(long, default_value_t = 1)]
    diversity: usize,
    /// Weight of the diversity term.
    #[arg(long, default_value_t = DEFAULT_DIVERSITY_WEIGHT)]
    diversity_weight: f64,
    /// Layer of the diversity term (default: the objective's layer, or the last spatial layer
    /// for a class).
    #[arg(long)]
    diversity_layer: Option<String>,
    /// Write the image (a grid with --diversity) to this PNG.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
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

impl MaximizeArgs {
    fn objective(&self) -> anyhow::Result<Objective> {
        match (self.class, &self.layer, self.unit) {
            (Some(class), _, _) => Ok(Objective::Class(class)),
            (None, Some(layer), Some(unit)) if self.neuron => Ok(Objective::Neuron {
                layer: layer.clone(),
                unit,
            }),
            (None, Some(layer), Some(unit)) => Ok(Objective::Channel {
                layer: layer.clone(),
                unit,
            }),
            _ => anyhow::bail!("give --class C, or --layer L with --unit U"),
        }
    }
}

/// Runs the optimization and writes what was asked for.
pub fn run(args: &MaximizeArgs, device: &Device) -> anyhow::Result<()> {
    let model = args.model.load(device)?;
    let preset = Preset::from_name(&args.preset)?;
    let steps = match args.steps {
        Some(steps) => steps,
        None => preset.recipe()?.steps(),
    };
    let frame_every = match (&args.gif, args.frame_every) {
        (None, _) => None,
        (Some(_), Some(every)) => Some(every),
        (Some(_), None) => Some(steps.div_ceil(60).max(1)),
    };
    let options = MaximizeOptions {
        objective: args.objective()?,
        preset,
        steps: args.steps,
        seed: args.seed,
        size: args.size,
        images: args.diversity,
        diversity_weight: args.diversity_weight,
        diversity_layer: args.diversity_layer.clone(),
        frame_every,
    };
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix} [{bar:30}] {pos}/{len} steps, {msg} ({elapsed} elapsed, {eta} left)",
        )?
        .progress_chars("=> "),
    );
    bar.set_prefix(format!(
        "{} {}",
        preset.name(),
        options.objective.describe()
    ));
    let progress = FnProgress(|done: usize, _total: usize, message: &str| {
        bar.set_position(done as u64);
        bar.set_message(message.to_string());
        Ok(())
    });
    let result = maximize(&model, &options, &progress);
    bar.finish_and_clear();
    let result = result?;

    let tiles = pictures(&result.images)?;
    let picture = if tiles.len() == 1 {
        tiles[0].clone()
    } else {
        grid(&tiles, tiles.len().min(4), 4)
    };
    if let Some(path) = &args.output {
        picture
            .save(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.npy {
        let inputs = result.inputs.to_device(&Device::Cpu)?;
        let inputs = if inputs.dim(0)? == 1 {
            inputs.squeeze(0)?
        } else {
            inputs
        };
        inputs
            .write_npy(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.gif {
        write_gif(path, &result.frames)?;
    }
    // What the model makes of the pictures as saved (8-bit), seen as they are.
    let seen = model.top_k(&model.logits(&picture_inputs(&model, &tiles)?)?, 3)?;
    report(args, &model, &result, &seen)?;
    if args.output.is_none() && args.npy.is_none() && args.gif.is_none() && !args.json {
        show_inline(&picture)?;
    }
    Ok(())
}

fn report(
    args: &MaximizeArgs,
    model: &Model,
    result: &Maximization,
    seen: &[Vec<ClassScore>],
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let label = match &result.objective {
        Objective::Class(c) => model
            .labels
            .get(*c)
            .map(|l| format!(" ({l})"))
            .unwrap_or_default(),
        _ => String::new(),
    };
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
            "objective": result.objective.describe(),
            "layer": result.layer,
            "preset": result.preset.name(),
            "steps": result.steps,
            "seed": args.seed,
            "size": result.images.dim(3)?,
            "images": images,
            "history": result.history.iter().map(|v| v.iter().sum::<f32>() / v.len().max(1) as f32).collect::<Vec<f32>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} {}{label} at `{}`, {} steps:",
        result.preset.name(),
        result.objective.describe(),
        result.layer,
        result.steps
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

/// An animated GIF, one frame per kept step (the batch as a grid), looping.
fn write_gif(path: &Path, frames: &[Frame]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut encoder = GifEncoder::new_with_speed(std::io::BufWriter::new(file), 10);
    encoder.set_repeat(Repeat::Infinite)?;
    for frame in frames {
        let tiles = pictures(&frame.images)?;
        let picture: RgbImage = if tiles.len() == 1 {
            tiles[0].clone()
        } else {
            grid(&tiles, tiles.len().min(4), 4)
        };
        let rgba = image::DynamicImage::ImageRgb8(picture).to_rgba8();
        encoder.encode_frame(image::Frame::from_parts(
            rgba,
            0,
            0,
            Delay::from_numer_denom_ms(80, 1),
        ))?;
    }
    Ok(())
}

/// Prints `picture` in the terminal (kitty, iTerm2, sixel or half-blocks, as viuer finds).
fn show_inline(picture: &RgbImage) -> anyhow::Result<()> {
    let config = viuer::Config {
        absolute_offset: false,
        width: Some(48),
        ..Default::default()
    };
    viuer::print(&image::DynamicImage::ImageRgb8(picture.clone()), &config)
        .map_err(|e| anyhow::anyhow!("cannot draw in this terminal: {e}; use -o FILE.png"))?;
    Ok(())
}
