//! `convlens filters`: a convolution's kernels as a picture, with their norms and dead filters.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Device;
use convlens_models::units::{conv_filters, render_filter_grid, FilterBank, FilterGridOptions};
use image::RgbImage;

use super::ModelArgs;

/// Arguments of `convlens filters`.
#[derive(clap::Args, Debug)]
pub struct FiltersArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The Conv2d layer (default: the first convolution, drawn as RGB tiles).
    #[arg(long)]
    layer: Option<String>,
    /// Write the grid of kernels as a PNG here.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Write the raw kernel [out, in/groups, kh, kw] (float32) here.
    #[arg(long)]
    npy: Option<PathBuf>,
    /// Print the layer's kernel statistics as JSON.
    #[arg(long)]
    json: bool,
    /// Filters drawn (the first ones; the statistics cover all).
    #[arg(long, default_value_t = 64)]
    max_filters: usize,
    /// Input channels drawn per filter of a deeper layer (the first ones).
    #[arg(long, default_value_t = 32)]
    max_inputs: usize,
    /// A filter is dead when its norm is at most this fraction of the layer's median norm.
    #[arg(long, default_value_t = 0.01)]
    dead_ratio: f32,
}

/// Shows the kernels and writes what was asked for.
pub fn run(args: &FiltersArgs, device: &Device) -> anyhow::Result<()> {
    let model = args.model.load(device)?;
    let bank = conv_filters(&model.graph, args.layer.as_deref(), args.dead_ratio)?;
    let options = FilterGridOptions {
        max_filters: args.max_filters,
        max_inputs: args.max_inputs,
    };
    if let Some(path) = &args.npy {
        bank.weights.write_npy(path)?;
    }
    let picture = render_filter_grid(&bank, options);
    if let Some(path) = &args.output {
        save_png(&picture, path)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&bank)?;
        if let Some(map) = value.as_object_mut() {
            map.remove("weights");
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    summarize(&mut out, &bank, options)?;
    if args.output.is_none() && args.npy.is_none() {
        show_inline(&picture)?;
    }
    Ok(())
}

fn summarize(
    out: &mut impl Write,
    bank: &FilterBank,
    options: FilterGridOptions,
) -> anyhow::Result<()> {
    let s = &bank.stats;
    writeln!(
        out,
        "{}: {} filters of {}x{}x{} ({} groups), stride {}, padding {}",
        bank.layer,
        bank.out_channels,
        bank.in_channels / bank.groups.max(1),
        bank.kernel_size.0,
        bank.kernel_size.1,
        bank.groups,
        bank.stride,
        bank.padding
    )?;
    let which = if s.batch_norm_scaled {
        "norms (scaled by the BatchNorm that follows)"
    } else {
        "norms"
    };
    writeln!(
        out,
        "{which}: min {:.4}, median {:.4}, mean {:.4}, max {:.4}",
        s.norm_min, s.norm_median, s.norm_mean, s.norm_max
    )?;
    writeln!(
        out,
        "dead (norm <= {} x median): {} {:?}",
        s.dead_ratio,
        s.dead.len(),
        s.dead
    )?;
    let layout = bank.grid_layout(options);
    let shown = layout.tiles.iter().map(|t| t.0).max().map_or(0, |f| f + 1);
    let how = if bank.rgb {
        "RGB tiles, one per filter"
    } else if bank.in_channels / bank.groups.max(1) == 1 {
        "gray tiles, one per filter"
    } else {
        "gray tiles, a row per filter, a column per input channel"
    };
    writeln!(
        out,
        "picture: filters 0..{shown} as {how}; each filter scaled by its largest |w| (mid-gray = 0)"
    )?;
    Ok(())
}

/// Writes `picture` as a PNG, naming the file in any error.
pub(super) fn save_png(picture: &RgbImage, path: &Path) -> anyhow::Result<()> {
    picture
        .save(path)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Prints `picture` in the terminal (kitty, iTerm2, sixel or half-blocks, as viuer finds).
pub(super) fn show_inline(picture: &RgbImage) -> anyhow::Result<()> {
    let config = viuer::Config {
        absolute_offset: false,
        width: Some(64),
        ..Default::default()
    };
    viuer::print(&image::DynamicImage::ImageRgb8(picture.clone()), &config)
        .map_err(|e| anyhow::anyhow!("cannot draw in this terminal: {e}; use -o FILE.png"))?;
    Ok(())
}
