//! `convlens deconv`: Zeiler & Fergus' deconvnet reconstructions of units of a layer (or their
//! guided-backprop projections), cropped to each unit's receptive field.

use std::io::Write;
use std::path::PathBuf;

use candle_core::Tensor;
use convlens_models::units::HostArray;
use convlens_shared::choices::{BackwardRule, UnitPosition};
use convlens_shared::defaults::deconv as default;
use convlens_shared::methods::deconv::{DeconvParams, UnitDeconv};

use super::choices::closed_set;
use super::client::{Engine, EngineChoice};
use super::output;
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
        required_unless_present = "strongest",
        conflicts_with = "strongest"
    )]
    unit: Vec<usize>,
    /// Instead of --unit: the K units with the largest activation on this image (`--top`, its
    /// old name, still works).
    #[arg(long, value_name = "K", alias = "top")]
    strongest: Option<usize>,
    /// max: keep only the unit's strongest activation (the PNG crops its receptive field);
    /// all: keep the unit's whole map.
    #[arg(long, value_parser = closed_set::<UnitPosition>(),
          default_value_t = default::POSITION)]
    position: UnitPosition,
    /// deconvnet (Zeiler & Fergus), guided (guided backprop) or gradient (the exact gradient).
    #[arg(long, value_parser = closed_set::<BackwardRule>(),
          default_value_t = default::RULE)]
    rule: BackwardRule,
    /// Write the picture (photo and reconstruction side by side, per unit) here.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Write the raw signal at the input here: [3, H, W] for one unit, [K, 3, H, W] for several.
    #[arg(long)]
    npy: Option<PathBuf>,
    /// Side in pixels of the square each receptive-field crop is fitted into.
    #[arg(long, default_value_t = default::TILE)]
    tile: u32,
    /// Print the units, kept positions, activations and receptive fields as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the projections and writes what was asked for.
pub fn run(args: &DeconvArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let show = !args.json && args.output.is_none() && args.npy.is_none();
    let params = DeconvParams {
        model_id,
        image: engine.path_arg(&args.image),
        layer: args.layer.clone(),
        units: if args.strongest.is_some() {
            Vec::new()
        } else {
            args.unit.clone()
        },
        top: args.strongest,
        position: args.position,
        rule: args.rule,
        // The text says when a projection is all zeros, and the JSON gives each one's shape.
        signals: true,
        render: args.output.is_some() || show,
        tile: args.tile,
        work_done_token: None,
    };
    let result = engine.request::<UnitDeconv>(&params, true)?;
    let recs = &result.reconstructions;
    let signals = recs
        .iter()
        .map(|r| {
            r.signal
                .as_ref()
                .map(output::host_array)
                .unwrap_or_else(|| Err(anyhow::anyhow!("the daemon sent no signal")))
        })
        .collect::<anyhow::Result<Vec<HostArray>>>()?;
    if let Some(path) = &args.npy {
        write_signals(&signals, path)?;
    }
    let picture = output::take_picture(result.picture.as_ref(), args.output.as_deref())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let summary: Vec<serde_json::Value> = recs
            .iter()
            .zip(&signals)
            .map(|(r, signal)| {
                serde_json::json!({
                    "layer": r.layer,
                    "unit": r.unit,
                    "position": r.position,
                    "rule": r.rule,
                    "location": r.location,
                    "activation": r.activation,
                    "receptiveField": r.receptive_field,
                    "shape": signal.shape,
                })
            })
            .collect();
        output::print_json!(&mut out, &summary)?;
        return Ok(());
    }
    for (r, signal) in recs.iter().zip(&signals) {
        let at = match (r.location, r.receptive_field) {
            (Some(loc), Some(rf)) => format!(
                " at ({}, {}), receptive field rows {}..{} columns {}..{} ({}x{} before clipping)",
                loc[0], loc[1], rf.top, rf.bottom, rf.left, rf.right, rf.size[0], rf.size[1]
            ),
            _ => " (whole map)".into(),
        };
        let quiet = if r.activation <= 0.0 {
            "; the unit is not active on this image"
        } else if signal.data.iter().all(|&v| v == 0.0) {
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
    if let (true, Some(picture)) = (show, &picture) {
        output::show_inline(picture)?;
    }
    Ok(())
}

/// The signals as one `.npy`: [3, H, W] for one unit, stacked [K, 3, H, W] for several.
fn write_signals(signals: &[HostArray], path: &std::path::Path) -> anyhow::Result<()> {
    let tensors = signals
        .iter()
        .map(HostArray::to_tensor)
        .collect::<convlens_models::Result<Vec<Tensor>>>()?;
    let array = match tensors.as_slice() {
        [one] => one.clone(),
        _ => Tensor::stack(&tensors, 0)?,
    };
    output::write_npy(&array, path)
}
