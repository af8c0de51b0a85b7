//! `convlens explain`: why the network said what it said, by any attribution or CAM method.

use std::io::Write;
use std::path::PathBuf;

use candle_core::Device;
use convlens_models::explain::{
    explain, Baseline, ExplainOptions, Explanation, Method, MethodKind,
};
use convlens_models::input::load_input;
use convlens_models::render::{
    attribution_magnitude, cam_heat, grid, input_photo, overlay, Colormap,
};
use convlens_models::Model;
use image::RgbImage;

use super::ModelArgs;

/// Arguments of `convlens explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The image (or preprocessed .npy).
    image: PathBuf,
    /// gradient, saliency, input-x-gradient, smoothgrad, smoothgrad-sq, vargrad,
    /// integrated-gradients, guided-backprop, deconvnet, occlusion, cam, gradcam, gradcam++,
    /// xgradcam, hirescam, layercam, scorecam, ablationcam, eigencam, guided-gradcam, or all.
    #[arg(long, default_value = "gradcam")]
    method: String,
    /// Layer for the CAM family (default: the last spatial layer before the head).
    #[arg(long)]
    layer: Option<String>,
    /// Class to explain (default: the top-1 prediction).
    #[arg(long)]
    target: Option<usize>,
    /// SmoothGrad samples.
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// SmoothGrad noise as a fraction of the input's range.
    #[arg(long, default_value_t = 0.15)]
    noise: f64,
    /// Seed for SmoothGrad's noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Integrated Gradients steps.
    #[arg(long, default_value_t = 50)]
    steps: usize,
    /// Integrated Gradients baseline: zero, blur or noise.
    #[arg(long, default_value = "zero")]
    baseline: String,
    /// Occlusion window (pixels, square).
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Occlusion stride.
    #[arg(long, default_value_t = 8)]
    stride: usize,
    /// Inputs per batch for IG steps, occluded copies and CAM masks.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Write an overlay PNG here.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Write the raw map (float32, unnormalized) here.
    #[arg(long)]
    npy: Option<PathBuf>,
    /// Print JSON (class, score, layer, shape, convergence delta).
    #[arg(long)]
    json: bool,
    /// viridis, inferno, jet or gray.
    #[arg(long, default_value = "viridis")]
    cmap: String,
    /// Weight of the heat map over the photo.
    #[arg(long, default_value_t = 0.5)]
    alpha: f32,
}

/// Runs the explanation and writes what was asked for.
pub fn run(args: &ExplainArgs, device: &Device) -> anyhow::Result<()> {
    let model = args.model.load(device)?;
    let input = load_input(&args.image, &model.preprocess, device)?;
    let cmap = Colormap::from_name(&args.cmap)?;
    let methods = if args.method == "all" {
        Method::all()
    } else {
        vec![Method::from_name(&args.method)?]
    };
    let base = ExplainOptions {
        method: methods[0],
        target: args.target,
        layer: args.layer.clone(),
        samples: args.samples,
        noise: args.noise,
        seed: args.seed,
        steps: args.steps,
        baseline: Baseline::from_name(&args.baseline)?,
        window: args.window,
        stride: args.stride,
        batch_size: args.batch,
    };
    let photo = input_photo(
        &input,
        model.normalization().mean,
        model.normalization().std,
    )?;
    let mut explanations = Vec::new();
    for &method in &methods {
        let options = ExplainOptions {
            method,
            ..base.clone()
        };
        match explain(&model, &input, &options) {
            Ok(e) => explanations.push(e),
            // `all` skips what does not apply to this model (plain CAM without a GAP head).
            Err(e) if methods.len() > 1 => eprintln!("{}: skipped: {e}", method.name()),
            Err(e) => return Err(e.into()),
        }
    }
    let mut out = std::io::stdout().lock();
    if let Some(path) = &args.npy {
        let first = explanations
            .first()
            .ok_or_else(|| anyhow::anyhow!("no method applied"))?;
        first
            .map
            .to_device(&Device::Cpu)?
            .write_npy(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let tiles = explanations
        .iter()
        .map(|e| render(e, &photo, cmap, args.alpha))
        .collect::<anyhow::Result<Vec<RgbImage>>>()?;
    let picture = if tiles.len() == 1 {
        tiles
            .into_iter()
            .next()
            .unwrap_or_else(|| RgbImage::new(1, 1))
    } else {
        let mut with_photo = vec![photo.clone()];
        with_photo.extend(tiles);
        grid(&with_photo, 7, 4)
    };
    if let Some(path) = &args.output {
        picture
            .save(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    if args.json {
        let records: Vec<serde_json::Value> =
            explanations.iter().map(|e| summary(&model, e)).collect();
        let value = if records.len() == 1 {
            records.into_iter().next().unwrap_or_default()
        } else {
            serde_json::Value::Array(records)
        };
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        for e in &explanations {
            let label = model.labels.get(e.target).cloned().unwrap_or_default();
            let layer = e
                .layer
                .as_deref()
                .map(|l| format!(" at layer {l}"))
                .unwrap_or_default();
            let delta = e
                .convergence_delta
                .map(|d| format!(", convergence delta {d:.3e}"))
                .unwrap_or_default();
            writeln!(
                out,
                "{}: class {} ({label}), logit {:.3}{layer}{delta}",
                e.method.name(),
                e.target,
                e.score
            )?;
        }
        if methods.len() > 1 {
            writeln!(
                out,
                "grid: the photo, then {} in that order",
                names(&explanations)
            )?;
        }
        if args.output.is_none() && args.npy.is_none() {
            show_inline(&picture)?;
        }
    }
    Ok(())
}

fn names(explanations: &[Explanation]) -> String {
    explanations
        .iter()
        .map(|e| e.method.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The overlay of one explanation on the photo.
fn render(
    e: &Explanation,
    photo: &RgbImage,
    cmap: Colormap,
    alpha: f32,
) -> anyhow::Result<RgbImage> {
    let (w, h) = photo.dimensions();
    let heat = if e.method.kind() == MethodKind::Cam && e.map.rank() == 2 {
        cam_heat(&e.map, h as usize, w as usize)?
    } else {
        attribution_magnitude(&e.map)?
    };
    Ok(overlay(photo, &heat, cmap, alpha))
}

fn summary(model: &Model, e: &Explanation) -> serde_json::Value {
    serde_json::json!({
        "method": e.method.name(),
        "class": e.target,
        "label": model.labels.get(e.target),
        "logit": e.score,
        "layer": e.layer,
        "shape": e.map.dims(),
        "convergenceDelta": e.convergence_delta,
    })
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
