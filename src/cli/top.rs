//! `convlens top`: the images under a folder that excite each unit of a layer most (deepvis's top
//! 9), with the position of the maximum, and per-unit statistics over the folder.

use std::io::Write;
use std::path::PathBuf;

use candle_core::Device;
use convlens_models::represent::codes::resolve_layer;
use convlens_models::represent::top_units::top_images;
use convlens_models::represent::unit_grid::render_top_grid;
use convlens_models::represent::unit_stats::unit_stats;

use super::embed::{summarize, with_progress, FolderArgs};
use super::ModelArgs;

/// Arguments of `convlens top`.
#[derive(clap::Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The folder of images (searched recursively).
    dir: PathBuf,
    /// The layer whose units are ranked.
    #[arg(long)]
    layer: String,
    /// Units to show (comma-separated); every unit when omitted.
    #[arg(long, value_delimiter = ',')]
    unit: Vec<usize>,
    /// Images per unit.
    #[arg(short = 'k', long = "top", default_value_t = 9)]
    k: usize,
    #[command(flatten)]
    folder: FolderArgs,
    /// Print JSON: {"top": {...}, "stats": {...}}.
    #[arg(long)]
    json: bool,
    /// Draw the units' top images, cropped to the receptive field, one row per unit.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Tile size of the picture, in pixels.
    #[arg(long, default_value_t = 64)]
    tile: u32,
}

/// Ranks the folder's images for the layer's units and prints (or draws) them.
pub fn run(args: &TopArgs, device: &Device) -> anyhow::Result<()> {
    let mut model = args.model.load(device)?;
    args.folder.configure(&mut model)?;
    let (layer_id, _) = resolve_layer(&model, Some(&args.layer))?;
    // One pass keeps every unit's maxima (in the cache too), so any unit can be ranked at once.
    let summary = summarize(&model, &args.dir, &args.folder, Some(args.layer.clone()))?;
    let units = (!args.unit.is_empty()).then_some(args.unit.as_slice());
    let top = top_images(&summary, args.k, units)?;
    let stats = unit_stats(&summary);
    if let Some(path) = &args.output {
        let img = with_progress(|p| render_top_grid(&model, layer_id, &top, args.tile, p))?;
        img.save(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "images": summary.len(),
            "computed": summary.computed,
            "cached": summary.cached,
            "skipped": summary.skipped,
            "top": top,
            "stats": stats,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "layer `{}`: {} units at {}×{} positions, {} images ({} embedded, {} from the cache)",
        top.layer,
        top.shape.units,
        top.shape.height,
        top.shape.width,
        summary.len(),
        summary.computed,
        summary.cached
    )?;
    for unit in &top.units {
        let s = &stats.units[unit.unit];
        writeln!(
            out,
            "unit {}: mean {:.4}, max {:.4}, active on {:.1}% of images",
            unit.unit,
            s.mean,
            s.max,
            100.0 * s.active_fraction
        )?;
        for (rank, e) in unit.top.iter().enumerate() {
            writeln!(
                out,
                "  {:>2}. {:>10.4} at ({}, {})  {}",
                rank + 1,
                e.value,
                e.y,
                e.x,
                e.path.display()
            )?;
        }
    }
    if units.is_none() {
        writeln!(
            out,
            "dead units (never active): {}",
            if stats.dead.is_empty() {
                "none".to_string()
            } else {
                format!(
                    "{} ({})",
                    stats.dead.len(),
                    stats
                        .dead
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        )?;
    }
    Ok(())
}
