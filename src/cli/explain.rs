//! `convlens explain`: why the network said what it said, by any attribution or CAM method.

use std::io::Write;
use std::path::PathBuf;

use convlens_models::render::grid;
use convlens_shared::array::Png;
use convlens_shared::choices::{Baseline, Colormap, MethodSelection};
use convlens_shared::defaults::explain as default;
use convlens_shared::methods::explain::{ExplainParams, ExplanationData, ImageExplain};
use image::RgbImage;

use super::choices::{closed_set, names_parser};
use super::client::{Engine, EngineChoice};
use super::output;
use super::ModelArgs;

/// Arguments of `convlens explain`.
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The image (or preprocessed .npy).
    image: PathBuf,
    /// The method (`all`: every one, in this order).
    #[arg(long, value_parser = names_parser::<MethodSelection>(MethodSelection::names(), &[]),
          default_value_t = MethodSelection::One(default::METHOD))]
    method: MethodSelection,
    /// Layer for the CAM family (default: the last spatial layer before the head).
    #[arg(long)]
    layer: Option<String>,
    /// Class to explain (default: the top-1 prediction).
    #[arg(long)]
    target: Option<usize>,
    /// SmoothGrad samples.
    #[arg(long, default_value_t = default::SAMPLES)]
    samples: usize,
    /// SmoothGrad noise as a fraction of the input's range.
    #[arg(long, default_value_t = default::NOISE)]
    noise: f64,
    /// Seed for SmoothGrad's noise.
    #[arg(long, default_value_t = default::SEED)]
    seed: u64,
    /// Integrated Gradients steps.
    #[arg(long, default_value_t = default::STEPS)]
    steps: usize,
    /// Integrated Gradients baseline.
    #[arg(long, value_parser = closed_set::<Baseline>(),
          default_value_t = default::BASELINE)]
    baseline: Baseline,
    /// Occlusion window (pixels, square).
    #[arg(long, default_value_t = default::WINDOW)]
    window: usize,
    /// Occlusion stride.
    #[arg(long, default_value_t = default::STRIDE)]
    stride: usize,
    /// Inputs per batch for IG steps, occluded copies and CAM masks.
    #[arg(long, default_value_t = default::BATCH)]
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
    /// The overlays' colormap.
    #[arg(long, value_parser = closed_set::<Colormap>(),
          default_value_t = default::CMAP)]
    cmap: Colormap,
    /// Weight of the heat map over the photo.
    #[arg(long, default_value_t = default::ALPHA)]
    alpha: f32,
}

/// Runs the explanation and writes what was asked for.
pub fn run(args: &ExplainArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let show = !args.json && args.output.is_none() && args.npy.is_none();
    let params = ExplainParams {
        model_id,
        image: engine.path_arg(&args.image),
        method: args.method,
        layer: args.layer.clone(),
        target: args.target,
        samples: args.samples,
        noise: args.noise,
        seed: args.seed,
        steps: args.steps,
        baseline: args.baseline,
        window: args.window,
        stride: args.stride,
        batch: args.batch,
        cmap: args.cmap,
        alpha: args.alpha,
        map: args.npy.is_some(),
        render: args.output.is_some() || show,
        work_done_token: None,
    };
    let result = engine.request::<ImageExplain>(&params, true)?;
    for skipped in &result.skipped {
        eprintln!("{}: skipped: {}", skipped.method, skipped.error);
    }
    let explanations = &result.explanations;
    let mut out = std::io::stdout().lock();
    if let Some(path) = &args.npy {
        let map = explanations
            .first()
            .and_then(|e| e.map.as_ref())
            .ok_or_else(|| anyhow::anyhow!("no method applied"))?;
        output::write_array_npy(map, path)?;
    }
    let picture = if params.render {
        Some(picture(&result.photo, explanations)?)
    } else {
        None
    };
    if let (Some(path), Some(picture)) = (&args.output, &picture) {
        output::save_picture(picture, path)?;
    }
    if args.json {
        let records: Vec<serde_json::Value> = explanations.iter().map(summary).collect();
        let value = if records.len() == 1 {
            records.into_iter().next().unwrap_or_default()
        } else {
            serde_json::Value::Array(records)
        };
        output::print_json!(&mut out, &value)?;
    } else {
        for e in explanations {
            let label = e.label.clone().unwrap_or_default();
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
                e.method, e.class, e.logit
            )?;
        }
        if args.method == MethodSelection::All {
            writeln!(
                out,
                "grid: the photo, then {} in that order",
                names(explanations)
            )?;
        }
        if let (true, Some(picture)) = (show, &picture) {
            output::show_inline(picture)?;
        }
    }
    Ok(())
}

fn names(explanations: &[ExplanationData]) -> String {
    explanations
        .iter()
        .map(|e| e.method.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One overlay, or the photo then every overlay in a grid.
fn picture(photo: &Option<Png>, explanations: &[ExplanationData]) -> anyhow::Result<RgbImage> {
    let tiles = explanations
        .iter()
        .filter_map(|e| e.overlay.as_ref())
        .map(output::decode_png)
        .collect::<anyhow::Result<Vec<RgbImage>>>()?;
    if tiles.len() == 1 {
        return Ok(tiles
            .into_iter()
            .next()
            .unwrap_or_else(|| RgbImage::new(1, 1)));
    }
    let photo = photo
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no method applied"))?;
    let mut with_photo = vec![output::decode_png(photo)?];
    with_photo.extend(tiles);
    Ok(grid(&with_photo, 7, 4))
}

fn summary(e: &ExplanationData) -> serde_json::Value {
    serde_json::json!({
        "method": e.method,
        "class": e.class,
        "label": e.label,
        "logit": e.logit,
        "layer": e.layer,
        "shape": e.shape,
        "convergenceDelta": e.convergence_delta,
    })
}
