//! `convlens evolve`: one view (first-layer filters, a Grad-CAM of an image, a unit's map) in
//! every checkpoint of a training run, as an animated GIF or a strip of frames.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Device;
use convlens_models::evolve::{
    encode_gif, evolve, find_checkpoints, strip, Evolution, EvolveOptions, View,
};
use convlens_models::progress::FnProgress;
use convlens_shared::choices::{Colormap, Method};
use convlens_shared::defaults::explain as default;
use indicatif::{ProgressBar, ProgressStyle};

use super::choices::closed_set;
use super::output::{self, OnFile};

/// Arguments of `convlens evolve`.
#[derive(clap::Args, Debug)]
pub struct EvolveArgs {
    /// Checkpoints: glob patterns (quote them, e.g. 'runs/step-*.safetensors') or files; ordered
    /// by the step number in their names, else by modification time.
    #[arg(required = true, value_name = "MODEL_GLOB")]
    checkpoints: Vec<String>,
    /// Architecture of every checkpoint (inferred from each when omitted).
    #[arg(long)]
    arch: Option<String>,
    /// A torch.export program (.pt2) every checkpoint is bound to by state_dict key.
    #[arg(long, value_name = "PROGRAM")]
    graph: Option<PathBuf>,
    /// What to show: filters (a convolution's kernels), cam (a class activation map of --image)
    /// or unit (unit --unit of layer --layer on --image).
    #[arg(long, default_value = "filters")]
    what: String,
    /// The image for cam and unit.
    #[arg(long)]
    image: Option<PathBuf>,
    /// The layer: a convolution for filters (default: the first), the CAM layer for cam
    /// (default: the last spatial layer), required for unit.
    #[arg(long)]
    layer: Option<String>,
    /// The unit (channel) for unit.
    #[arg(long)]
    unit: Option<usize>,
    /// The method for cam (any `explain` method).
    #[arg(long, value_parser = closed_set::<Method>(),
          default_value_t = default::METHOD)]
    method: Method,
    /// The class for cam (default: the last checkpoint's top-1), the same in every frame.
    #[arg(long)]
    target: Option<usize>,
    /// Write an animated GIF (`.gif`) or a horizontal strip (any other image extension) here.
    #[arg(short = 'o', long)]
    output: Option<PathBuf>,
    /// Milliseconds each GIF frame is shown.
    #[arg(long, default_value_t = 500)]
    delay: u32,
    /// Print each checkpoint's path, step and number (filter norm mean, map max, unit max) as JSON.
    #[arg(long)]
    json: bool,
    /// The colormap (cam and unit).
    #[arg(long, value_parser = closed_set::<Colormap>(),
          default_value_t = default::CMAP)]
    cmap: Colormap,
    /// Filters drawn (the first ones).
    #[arg(long, default_value_t = 64)]
    max_filters: usize,
    /// Leave the step / name caption off the frames.
    #[arg(long)]
    no_caption: bool,
}

/// Computes the view in every checkpoint and writes what was asked for.
pub fn run(args: &EvolveArgs, device: &Device, quiet: bool) -> anyhow::Result<()> {
    let options = EvolveOptions {
        view: View::from_name(&args.what)?,
        arch: args.arch.clone(),
        graph: args.graph.clone(),
        image: args.image.clone(),
        layer: args.layer.clone(),
        unit: args.unit,
        method: args.method,
        target: args.target,
        cmap: args.cmap,
        max_filters: args.max_filters,
        captions: !args.no_caption,
    };
    let list = find_checkpoints(&args.checkpoints)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(list.checkpoints.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} checkpoints")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = FnProgress(|done: usize, total: usize, message: &str| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(message.to_string());
        Ok(())
    });
    let result = evolve(&list, &options, device, &progress);
    bar.finish_and_clear();
    let evolution = result?;
    if let Some(path) = &args.output {
        write_output(&evolution, path, args.delay)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        output::print_json!(&mut out, &evolution)?;
        return Ok(());
    }
    summarize(&mut out, &evolution)?;
    if args.output.is_none() {
        output::show_inline(&strip(&evolution.frames))?;
    }
    Ok(())
}

/// A GIF when `path` ends in `.gif`, else the strip in the format its extension names.
fn write_output(evolution: &Evolution, path: &Path, delay_ms: u32) -> anyhow::Result<()> {
    let is_gif = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gif"));
    if is_gif {
        let bytes = encode_gif(&evolution.frames, delay_ms)?;
        std::fs::write(path, bytes).on_file(path)
    } else {
        output::save_picture(&strip(&evolution.frames), path)
    }
}

fn summarize(out: &mut impl Write, e: &Evolution) -> anyhow::Result<()> {
    let what = match e.view {
        View::Filters => format!(
            "filters of {}",
            e.layer.as_deref().unwrap_or("the first convolution")
        ),
        View::Cam => format!(
            "{} of class {} ({}) at {}",
            e.method.as_deref().unwrap_or("cam"),
            e.target.map_or_else(|| "?".into(), |t| t.to_string()),
            e.target_label.as_deref().unwrap_or("?"),
            e.layer.as_deref().unwrap_or("?")
        ),
        View::Unit => format!(
            "unit {} of {}",
            e.unit.map_or_else(|| "?".into(), |u| u.to_string()),
            e.layer.as_deref().unwrap_or("?")
        ),
    };
    writeln!(
        out,
        "{what} in {} checkpoints of {} ({})",
        e.versions.len(),
        e.arch,
        e.order_reason
    )?;
    match (e.view, e.scale) {
        (View::Filters, Some(s)) => writeln!(
            out,
            "one colour scale for every frame: mid-gray = 0, black/white = ∓{:.4}",
            s.max
        )?,
        (View::Unit, Some(s)) => writeln!(
            out,
            "one colour scale for every frame: {:.4} to {:.4}",
            s.min, s.max
        )?,
        _ => writeln!(
            out,
            "each frame scaled on its own (as `convlens explain` draws it); map_max compares them"
        )?,
    }
    for v in &e.versions {
        writeln!(
            out,
            "  {:>12}  {} {:.4}  {}",
            v.label,
            e.summary_name,
            v.summary,
            v.path.display()
        )?;
    }
    for s in &e.skipped {
        writeln!(out, "  skipped {}: {}", s.path.display(), s.error)?;
    }
    Ok(())
}
