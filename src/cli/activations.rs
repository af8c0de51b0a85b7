//! `convlens activations`: every channel's feature map of a layer on one image, as a tile grid
//! (the deepvis view), with per-channel numbers.

use std::io::Write;
use std::path::PathBuf;

use convlens_models::units::ChannelStats;
use convlens_shared::choices::{ActivationScale, Colormap};
use convlens_shared::defaults::activations as default;
use convlens_shared::methods::activations::{ActivationsParams, UnitActivations};

use super::choices::closed_set;
use super::client::{Engine, EngineChoice};
use super::output;
use super::ModelArgs;

/// Arguments of `convlens activations`.
#[derive(clap::Args, Debug)]
pub struct ActivationsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The image (or preprocessed .npy).
    image: PathBuf,
    /// The layer (a leaf path, or a module path standing for its output).
    #[arg(long)]
    layer: String,
    /// Write the grid of maps as a PNG here.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Write the raw maps [C, H, W] (float32) here.
    #[arg(long)]
    npy: Option<PathBuf>,
    /// Print per-channel mean, max, argmax and fraction active as JSON.
    #[arg(long)]
    json: bool,
    /// shared (one range for every tile) or per-tile (each map its own range).
    #[arg(long, value_parser = closed_set::<ActivationScale>(),
          default_value_t = default::SCALE)]
    scale: ActivationScale,
    /// The maps' colormap.
    #[arg(long, value_parser = closed_set::<Colormap>(),
          default_value_t = default::CMAP)]
    cmap: Colormap,
}

/// Computes the maps and writes what was asked for.
pub fn run(args: &ActivationsArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let show = !args.json && args.output.is_none() && args.npy.is_none();
    let params = ActivationsParams {
        model_id,
        image: engine.path_arg(&args.image),
        layer: args.layer.clone(),
        maps: args.npy.is_some(),
        render: args.output.is_some() || show,
        scale: args.scale,
        cmap: args.cmap,
    };
    let acts = engine.request::<UnitActivations>(&params, false)?;
    if let (Some(path), Some(maps)) = (&args.npy, &acts.maps) {
        output::write_array_npy(maps, path)?;
    }
    let picture = output::take_picture(acts.grid.as_ref(), args.output.as_deref())?;
    // The engine's numbers, as `--json` has always printed them.
    let channels: Vec<ChannelStats> = acts
        .channels
        .iter()
        .map(|c| ChannelStats {
            channel: c.channel,
            mean: c.mean,
            min: c.min,
            max: c.max,
            argmax: (c.argmax[0], c.argmax[1]),
            active_fraction: c.active_fraction,
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "layer": acts.layer,
            "shape": acts.shape,
            "channels": channels,
        });
        output::print_json!(&mut out, &value)?;
        return Ok(());
    }
    let [count, h, w] = acts.shape;
    let active = channels.iter().filter(|c| c.max > 0.0).count();
    writeln!(
        out,
        "{}: {count} channels of {h}x{w}; {active} active somewhere on this image",
        acts.layer
    )?;
    let mut strongest: Vec<_> = channels.iter().collect();
    strongest.sort_by(|a, b| b.max.total_cmp(&a.max));
    for c in strongest.iter().take(5) {
        writeln!(
            out,
            "  channel {:4}: max {:.4} at {:?}, mean {:.4}, {:.1}% of positions active",
            c.channel,
            c.max,
            c.argmax,
            c.mean,
            100.0 * c.active_fraction
        )?;
    }
    if let (true, Some(picture)) = (show, &picture) {
        output::show_inline(picture)?;
    }
    Ok(())
}
