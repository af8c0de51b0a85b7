//! `convlens deconv`: Zeiler & Fergus' deconvnet reconstructions of units of a layer (or their
//! guided-backprop projections), cropped to each unit's receptive field.

use std::io::Write;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use convlens_models::graph::BackwardRule;
use convlens_models::input::load_input;
use convlens_models::progress::FnProgress;
use convlens_models::render::input_photo;
use convlens_models::units::{
    reconstruct, render_reconstructions, DeconvOptions, Reconstruction, UnitPosition, UnitSelection,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::filters::{save_png, show_inline};
use super::ModelArgs;

/// Arguments of `convlens deconv`.
#[derive(clap::Args, Debug)]
pub struct DeconvArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The image (or preprocessed .npy).
    image: PathBuf,
    /// The layer (a leaf path, or a module path standing for its output).
    #[arg(long)]
    layer: String,
    /// The unit (channel), or several separated by commas.
    #[arg(
        long,
        value_delimiter = ',',
        required_unless_present = "top",
        conflicts_with = "top"
    )]
    unit: Vec<usize>,
    /// Instead of --unit: the K units with the largest activation on this image.
    #[arg(long, value_name = "K")]
    top: Option<usize>,
    /// max: keep only the unit's strongest activation (the PNG crops its receptive field);
    /// all: keep the unit's whole map.
    #[arg(long, default_value = "max")]
    position: String,
    /// deconvnet, guided (guided backprop) or gradient (the exact gradient).
    #[arg(long, default_value = "deconvnet")]
    rule: String,
    /// Write the picture (photo and reconstruction side by side, per unit) here.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Write the raw signal at the input here: [3, H, W] for one unit, [K, 3, H, W] for several.
    #[arg(long)]
    npy: Option<PathBuf>,
    /// Side in pixels of the square each receptive-field crop is fitted into.
    #[arg(long, default_value_t = 160)]
    tile: u32,
    /// Print the units, kept positions, activations and receptive fields as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the projections and writes what was asked for.
pub fn run(args: &DeconvArgs, device: &Device) -> anyhow::Result<()> {
    let position = UnitPosition::from_name(&args.position)?;
    let rule = BackwardRule::from_name(&args.rule).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown rule `{}`; known: deconvnet, guided, gradient",
            args.rule
        )
    })?;
    let units = match args.top {
        Some(k) => UnitSelection::Strongest(k),
        None => UnitSelection::Units(args.unit.clone()),
    };
    let model = args.model.load(device)?;
    let input = load_input(&args.image, &model.preprocess, device)?;
    let options = DeconvOptions {
        layer: args.layer.clone(),
        units,
        position,
        rule,
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = FnProgress(|done: usize, total: usize, message: &str| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(message.to_string());
        Ok(())
    });
    let result = reconstruct(&model.graph, &input, &options, &progress);
    bar.finish_and_clear();
    let recs = result?;
    if let Some(path) = &args.npy {
        write_signals(&recs, path)?;
    }
    let norm = model.normalization();
    let photo = input_photo(&input, norm.mean, norm.std)?;
    let picture = render_reconstructions(&recs, &photo, args.tile.max(8))?;
    if let Some(path) = &args.output {
        save_png(&picture, path)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let summary: Vec<serde_json::Value> = recs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "layer": r.layer,
                    "unit": r.unit,
                    "position": r.position,
                    "rule": r.rule,
                    "location": r.location,
                    "activation": r.activation,
                    "receptiveField": r.receptive_field,
                    "shape": r.signal.shape,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
        return Ok(());
    }
    for r in &recs {
        let at = match (r.location, r.receptive_field) {
            (Some(loc), Some(rf)) => format!(
                " at {loc:?}, receptive field rows {}..{} columns {}..{} ({}x{} before clipping)",
                rf.top, rf.bottom, rf.left, rf.right, rf.size.0, rf.size.1
            ),
            _ => " (whole map)".into(),
        };
        let quiet = if r.activation <= 0.0 {
            "; the unit is not active on this image"
        } else if r.signal.data.iter().all(|&v| v == 0.0) {
            "; the projection is zero (a saturated ReLU6 passes nothing back under guided or gradient)"
        } else {
            ""
        };
        writeln!(
            out,
            "{} unit {}: activation {:.4}{at}{quiet}",
            r.layer, r.unit, r.activation
        )?;
    }
    if args.output.is_none() && args.npy.is_none() {
        show_inline(&picture)?;
    }
    Ok(())
}

/// The signals as one `.npy`: [3, H, W] for one unit, stacked [K, 3, H, W] for several.
fn write_signals(recs: &[Reconstruction], path: &std::path::Path) -> anyhow::Result<()> {
    let tensors = recs
        .iter()
        .map(|r| r.signal.to_tensor())
        .collect::<convlens_models::Result<Vec<Tensor>>>()?;
    let array = if tensors.len() == 1 {
        tensors[0].clone()
    } else {
        Tensor::stack(&tensors, 0)?
    };
    array
        .write_npy(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
