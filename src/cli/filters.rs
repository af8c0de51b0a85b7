//! `convlens filters`: a convolution's kernels as a picture, with their norms and dead filters.

use std::io::Write;
use std::path::PathBuf;

use convlens_models::units::{FilterBank, FilterGridOptions, FilterStats, HostArray, KernelStats};
use convlens_shared::methods::filters::{FiltersParams, FiltersResult, LayerFilters};

use super::client::{Engine, EngineChoice};
use super::output::{self, host_array};
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
    #[arg(long, default_value_t = convlens_shared::defaults::filters::MAX_FILTERS)]
    max_filters: usize,
    /// Input channels drawn per filter of a deeper layer (the first ones).
    #[arg(long, default_value_t = convlens_shared::defaults::filters::MAX_INPUTS)]
    max_inputs: usize,
    /// A filter is dead when its norm is at most this fraction of the layer's median norm.
    #[arg(long, default_value_t = convlens_shared::defaults::filters::DEAD_RATIO)]
    dead_ratio: f32,
}

/// Shows the kernels and writes what was asked for.
pub fn run(args: &FiltersArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let show = !args.json && args.output.is_none() && args.npy.is_none();
    let params = FiltersParams {
        model_id,
        layer: args.layer.clone(),
        dead_ratio: args.dead_ratio,
        weights: args.npy.is_some(),
        render: args.output.is_some() || show,
        max_filters: args.max_filters,
        max_inputs: args.max_inputs,
    };
    let result = engine.request::<LayerFilters>(&params, false)?;
    let options = FilterGridOptions {
        max_filters: args.max_filters,
        max_inputs: args.max_inputs,
    };
    let bank = bank_of(&result)?;
    if let Some(path) = &args.npy {
        output::write_npy(&bank.weights.to_tensor()?, path)?;
    }
    let picture = output::take_picture(result.grid.as_ref(), args.output.as_deref())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let mut value = serde_json::to_value(&bank)?;
        if let Some(map) = value.as_object_mut() {
            map.remove("weights");
        }
        output::print_json!(&mut out, &value)?;
        return Ok(());
    }
    summarize(&mut out, &bank, options)?;
    if let (true, Some(picture)) = (show, &picture) {
        output::show_inline(picture)?;
    }
    Ok(())
}

/// The engine's filter bank from the answer (the kernel's values only when it was asked for;
/// its shape always, which the grid layout needs).
fn bank_of(r: &FiltersResult) -> anyhow::Result<FilterBank> {
    let weights = match &r.weights {
        Some(w) => host_array(w)?,
        None => HostArray {
            shape: vec![
                r.out_channels,
                r.in_channels / r.groups.max(1),
                r.kernel_size[0],
                r.kernel_size[1],
            ],
            data: Vec::new(),
        },
    };
    let s = &r.stats;
    Ok(FilterBank {
        layer: r.layer.clone(),
        out_channels: r.out_channels,
        in_channels: r.in_channels,
        groups: r.groups,
        kernel_size: (r.kernel_size[0], r.kernel_size[1]),
        stride: r.stride,
        dilation: r.dilation,
        padding: r.padding.clone(),
        rgb: r.rgb,
        stats: FilterStats {
            norm_min: s.norm_min,
            norm_median: s.norm_median,
            norm_mean: s.norm_mean,
            norm_max: s.norm_max,
            dead_ratio: s.dead_ratio,
            dead: s.dead.clone(),
            batch_norm_scaled: s.batch_norm_scaled,
        },
        filters: r
            .filters
            .iter()
            .map(|k| KernelStats {
                filter: k.filter,
                l2_norm: k.l2_norm,
                mean: k.mean,
                min: k.min,
                max: k.max,
                effective_norm: k.effective_norm,
                dead: k.dead,
            })
            .collect(),
        weights,
    })
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
