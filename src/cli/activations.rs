//! `convlens activations`: every channel's feature map of a layer on one image, as a tile grid
//! (the deepvis view), with per-channel numbers.

use std::io::Write;
use std::path::PathBuf;

use candle_core::Device;
use convlens_models::input::load_input;
use convlens_models::render::Colormap;
use convlens_models::units::{layer_activations, render_activation_grid, ActivationScale};

use super::filters::{save_png, show_inline};
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
    #[arg(long, default_value = "shared")]
    scale: String,
    /// gray, viridis, inferno or jet.
    #[arg(long, default_value = "gray")]
    cmap: String,
}

/// Computes the maps and writes what was asked for.
pub fn run(args: &ActivationsArgs, device: &Device) -> anyhow::Result<()> {
    let scale = ActivationScale::from_name(&args.scale)?;
    let cmap = Colormap::from_name(&args.cmap)?;
    let model = args.model.load(device)?;
    let input = load_input(&args.image, &model.preprocess, device)?;
    let acts = layer_activations(&model.graph, &input, &args.layer)?;
    if let Some(path) = &args.npy {
        acts.maps.write_npy(path)?;
    }
    let picture = render_activation_grid(&acts, scale, cmap);
    if let Some(path) = &args.output {
        save_png(&picture, path)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "layer": acts.layer.name,
            "shape": [acts.layer.channels, acts.layer.height, acts.layer.width],
            "channels": acts.channels,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    let l = &acts.layer;
    let active = acts.channels.iter().filter(|c| c.max > 0.0).count();
    writeln!(
        out,
        "{}: {} channels of {}x{}; {active} active somewhere on this image",
        l.name, l.channels, l.height, l.width
    )?;
    let mut strongest: Vec<_> = acts.channels.iter().collect();
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
    if args.output.is_none() && args.npy.is_none() {
        show_inline(&picture)?;
    }
    Ok(())
}
