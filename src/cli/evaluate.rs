//! `convlens evaluate`: how faithful each method's explanation is, by deletion, insertion, the
//! confidence change, ROAD, infidelity and max-sensitivity (the daemon's `image/evaluate`),
//! over images or folders: a table of methods × metrics (mean ± standard deviation over the
//! images), or one row per image, method and metric as JSON or CSV.

use std::io::Write;
use std::path::{Path, PathBuf};

use convlens_models::render::curves::{render_curves, Panel, Series};
use convlens_shared::choices::{MethodSelection, Metric};
use convlens_shared::defaults::evaluate as evaluate_default;
use convlens_shared::defaults::explain as default;
use convlens_shared::methods::evaluate::{EvaluateParams, FolderEvaluate, ImageEvaluate, Score};
use convlens_shared::methods::explain::ExplainParams;
use convlens_shared::methods::explain::Skipped;
use convlens_shared::methods::model::ModelId;
use convlens_shared::target::TargetSpec;

use super::choices::{closed_set, names_parser};
use super::client::{Engine, EngineChoice};
use super::output;
use super::ModelArgs;

/// Arguments of `convlens evaluate`.
#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images (or preprocessed .npy), or folders of them (searched recursively).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// The methods to score, comma-separated (`all`: every one that applies).
    #[arg(long, value_delimiter = ',',
          value_parser = names_parser::<MethodSelection>(MethodSelection::names(), &[]),
          default_values_t = [MethodSelection::One(default::METHOD)])]
    method: Vec<MethodSelection>,
    /// The metrics, comma-separated (`randomization-spearman` and `randomization-ssim`, the
    /// model-randomization sanity check, only when named: they explain the image again for every
    /// block of the network).
    #[arg(long, value_delimiter = ',', value_parser = closed_set::<Metric>(),
          default_values_t = evaluate_default::METRICS.to_vec())]
    metric: Vec<Metric>,
    /// Layer for the CAM family (default: the last spatial layer before the head).
    #[arg(long)]
    layer: Option<String>,
    /// Class to explain and score, by index or label (default: each image's top-1 prediction).
    #[arg(long)]
    target: Option<TargetSpec>,
    /// Pixels removed or added per step of deletion and insertion (default: the input's
    /// width, as RISE's 224 for 224×224).
    #[arg(long)]
    step: Option<usize>,
    /// ROAD's percentiles of the map, comma-separated, each in [0, 100).
    #[arg(long, value_delimiter = ',', default_values_t = evaluate_default::ROAD_PERCENTILES.to_vec())]
    road_percentiles: Vec<f64>,
    /// The standard deviation of the noise ROAD's linear imputation adds (normalized input
    /// units; 0: none).
    #[arg(long, default_value_t = evaluate_default::ROAD_NOISE)]
    road_noise: f64,
    /// Perturbations for infidelity and max-sensitivity.
    #[arg(long, default_value_t = evaluate_default::PERTURBATIONS)]
    perturbations: usize,
    /// The standard deviation of infidelity's Gaussian perturbations (normalized input units).
    #[arg(long, default_value_t = evaluate_default::INFIDELITY_NOISE)]
    infidelity_noise: f64,
    /// Infidelity of the map as it is, not scaled by its best fit first (Captum's
    /// `normalize=False`; maps of different scales then do not compare).
    #[arg(long)]
    infidelity_unnormalized: bool,
    /// The radius of max-sensitivity's uniform perturbations (normalized input units).
    #[arg(long, default_value_t = evaluate_default::SENSITIVITY_RADIUS)]
    sensitivity_radius: f64,
    /// The seed of ROAD's noise, of the perturbations (and of SmoothGrad's noise).
    #[arg(long, default_value_t = default::SEED)]
    seed: u64,
    /// Inputs per forward pass (the curves' copies, and the methods' batches).
    #[arg(long, default_value_t = default::BATCH)]
    batch: usize,
    /// Print one row per image, method and metric as JSON: `{"image", "method", "metric",
    /// "value"}`.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the same rows as CSV: `image,method,metric,value`.
    #[arg(long)]
    csv: bool,
    /// Draw the deletion and insertion curves (each method's mean over the images) to this PNG.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
}

/// One score of one image.
struct Row {
    image: String,
    method: String,
    metric: Metric,
    value: f32,
    curve: Vec<f32>,
}

/// Scores every method on every image and prints the table or the rows.
pub fn run(args: &EvaluateArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    if args.batch == 0 || args.step == Some(0) {
        anyhow::bail!("--batch and --step must be at least 1");
    }
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let mut rows = Vec::new();
    // The randomization cascade's blocks, the output's first (the same for every image).
    let mut randomized_layers: Vec<String> = Vec::new();
    let report_skipped = |image: &str, skipped: &[Skipped]| {
        for s in skipped {
            eprintln!("{image}: {}: skipped: {}", s.method, s.error);
        }
    };
    let mut add_rows = |image: &str, scores: &[Score]| {
        rows.extend(scores.iter().map(|s| Row {
            image: image.to_string(),
            method: s.method.to_string(),
            metric: s.metric,
            value: s.value,
            curve: s.curve.clone(),
        }));
    };
    for (i, target) in args.images.iter().enumerate() {
        for &method in &args.method {
            let params = evaluate_params(args, model_id.clone(), engine.path_arg(target), method);
            if args.images.len() > 1 && !choice.quiet {
                eprintln!(
                    "[{}/{}] {} {method}",
                    i + 1,
                    args.images.len(),
                    target.display()
                );
            }
            if target.is_dir() {
                // The daemon sweeps the folder (`folder/evaluate`), with progress per image.
                let result = engine.request::<FolderEvaluate>(&params, true)?;
                for file in &result.skipped_files {
                    if file.reason.contains(&file.path) {
                        eprintln!("skipped: {}", file.reason);
                    } else {
                        eprintln!("{}: skipped: {}", file.path, file.reason);
                    }
                }
                if randomized_layers.is_empty() {
                    randomized_layers = result.randomized_layers.clone();
                }
                for scored in &result.images {
                    let shown = as_given(target, &params.explain.image, &scored.image);
                    report_skipped(&shown, &scored.skipped);
                    add_rows(&shown, &scored.scores);
                }
            } else {
                let result = engine.request::<ImageEvaluate>(&params, true)?;
                let shown = target.display().to_string();
                report_skipped(&shown, &result.skipped);
                if randomized_layers.is_empty() {
                    randomized_layers = result.randomized_layers.clone();
                }
                add_rows(&shown, &result.scores);
            }
        }
    }
    let images = rows
        .iter()
        .map(|r| r.image.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len();
    if let Some(path) = &args.output {
        output::save_picture(&render_curves(&curve_panels(&rows)), path)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let value: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let mut row = serde_json::json!({
                    "image": r.image, "method": r.method, "metric": r.metric, "value": r.value
                });
                // The randomization check's report: the similarity after each step.
                if is_randomization(r.metric) {
                    row["layers"] = serde_json::json!(randomized_layers);
                    row["curve"] = serde_json::json!(r.curve);
                }
                row
            })
            .collect();
        output::print_json!(&mut out, &value)?;
    } else if args.csv {
        writeln!(out, "image,method,metric,value")?;
        for r in &rows {
            writeln!(
                out,
                "{},{},{},{}",
                csv_cell(&r.image),
                r.method,
                r.metric,
                r.value
            )?;
        }
    } else {
        write_table(&mut out, &rows, &args.metric, images)?;
        for &metric in args.metric.iter().filter(|m| is_randomization(**m)) {
            write_cascade(&mut out, &rows, metric, &randomized_layers)?;
        }
    }
    Ok(())
}

/// Whether `metric` is the randomization sanity check's.
fn is_randomization(metric: Metric) -> bool {
    matches!(
        metric,
        Metric::RandomizationSpearman | Metric::RandomizationSsim
    )
}

/// The randomization check's report for `metric`: a row per step of the cascade (the block
/// re-initialized last), a column per method, the similarity's mean over the images.
fn write_cascade(
    out: &mut impl Write,
    rows: &[Row],
    metric: Metric,
    layers: &[String],
) -> anyhow::Result<()> {
    let mut methods: Vec<&str> = Vec::new();
    for r in rows.iter().filter(|r| r.metric == metric) {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    if methods.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "\n{metric} after re-initializing each block and all above it (1: the map unchanged):"
    )?;
    let width = layers.iter().map(String::len).max().unwrap_or(5).max(5);
    let column = methods.iter().map(|m| m.len()).max().unwrap_or(6).max(7);
    write!(out, "{:width$}", "block")?;
    for m in &methods {
        write!(out, "  {m:>column$}")?;
    }
    writeln!(out)?;
    for (step, layer) in layers.iter().enumerate() {
        write!(out, "{layer:width$}")?;
        for &method in &methods {
            let values: Vec<f64> = rows
                .iter()
                .filter(|r| r.method == method && r.metric == metric)
                .filter_map(|r| r.curve.get(step).map(|&v| f64::from(v)))
                .collect();
            let mean = if values.is_empty() {
                "-".to_string()
            } else {
                format!("{:.3}", values.iter().sum::<f64>() / values.len() as f64)
            };
            write!(out, "  {mean:>column$}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A panel per metric that has curves, a line per method: the mean curve over the images
/// (those of the first image's length).
fn curve_panels(rows: &[Row]) -> Vec<Panel> {
    let mut metrics: Vec<Metric> = Vec::new();
    let mut methods: Vec<&str> = Vec::new();
    let drawn = |r: &&Row| {
        matches!(r.metric, Metric::Deletion | Metric::Insertion) || is_randomization(r.metric)
    };
    for r in rows.iter().filter(drawn) {
        if !metrics.contains(&r.metric) {
            metrics.push(r.metric);
        }
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    metrics
        .into_iter()
        .map(|metric| {
            let series = methods
                .iter()
                .map(|&method| {
                    let mine: Vec<&Row> = rows
                        .iter()
                        .filter(|r| r.method == method && r.metric == metric)
                        .collect();
                    let len = mine.first().map_or(0, |r| r.curve.len());
                    let same: Vec<&&Row> = mine.iter().filter(|r| r.curve.len() == len).collect();
                    let values = (0..len)
                        .map(|i| same.iter().map(|r| r.curve[i]).sum::<f32>() / same.len() as f32)
                        .collect();
                    Series {
                        label: method.to_string(),
                        values,
                    }
                })
                .collect();
            let title = if is_randomization(metric) {
                format!("{metric} vs blocks re-initialized")
            } else {
                format!("{metric}: probability vs fraction of pixels")
            };
            Panel { title, series }
        })
        .collect()
}

/// The request for `method` on `image` (a file or a folder) with the command's flags.
fn evaluate_params(
    args: &EvaluateArgs,
    model_id: ModelId,
    image: String,
    method: MethodSelection,
) -> EvaluateParams {
    let mut explain = ExplainParams::new(model_id, image);
    explain.method = method;
    explain.layer = args.layer.clone();
    explain.target = args.target.clone();
    explain.batch = args.batch;
    explain.seed = args.seed;
    // No overlay is shown: none is drawn.
    explain.render = false;
    EvaluateParams {
        step: args.step,
        road_percentiles: args.road_percentiles.clone(),
        road_noise: args.road_noise,
        perturbations: args.perturbations,
        infidelity_noise: args.infidelity_noise,
        infidelity_normalize: !args.infidelity_unnormalized,
        sensitivity_radius: args.sensitivity_radius,
        ..EvaluateParams::new(explain, args.metric.clone())
    }
}

/// An image of a folder the daemon named (`sent` the folder as sent, `scored` the image's path
/// under it) as the user gave the folder: `photos/cat.jpg`, not an absolute path.
fn as_given(folder: &Path, sent: &str, scored: &str) -> String {
    match Path::new(scored).strip_prefix(sent) {
        Ok(rest) => folder.join(rest).display().to_string(),
        Err(_) => scored.to_string(),
    }
}

/// Methods down, metrics across: mean ± standard deviation over the images (the deviation
/// only with several images).
fn write_table(
    out: &mut impl Write,
    rows: &[Row],
    metrics: &[Metric],
    images: usize,
) -> anyhow::Result<()> {
    let mut methods: Vec<&str> = Vec::new();
    for r in rows {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    let width = methods.iter().map(|m| m.len()).max().unwrap_or(6).max(6);
    write!(out, "{:width$}", "method")?;
    for m in metrics {
        write!(out, "  {:>17}", m.to_string())?;
    }
    writeln!(out)?;
    for method in methods {
        write!(out, "{method:width$}")?;
        for &metric in metrics {
            let values: Vec<f64> = rows
                .iter()
                .filter(|r| r.method == method && r.metric == metric)
                .map(|r| f64::from(r.value))
                .collect();
            write!(out, "  {:>17}", summary(&values))?;
        }
        writeln!(out)?;
    }
    let direction: Vec<&str> = metrics
        .iter()
        .map(|m| match m {
            Metric::Deletion => "deletion: area, lower is more faithful",
            Metric::Insertion => "insertion: area, higher is more faithful",
            Metric::ConfidenceChange => "confidence-change: higher is more faithful",
            Metric::RoadMorf => "road-morf: lower is more faithful",
            Metric::RoadLerf => "road-lerf: higher is more faithful",
            Metric::RoadCombined => "road-combined: higher is more faithful",
            Metric::Infidelity => "infidelity: lower is more faithful",
            Metric::SensitivityMax => "sensitivity-max: lower is more robust",
            Metric::RandomizationSpearman => {
                "randomization-spearman: mean over the cascade, lower passes"
            }
            Metric::RandomizationSsim => "randomization-ssim: mean over the cascade, lower passes",
        })
        .collect();
    writeln!(
        out,
        "({images} image{}; {})",
        if images == 1 { "" } else { "s" },
        direction.join("; ")
    )?;
    Ok(())
}

/// `mean ± std` (the sample deviation), or the one value.
fn summary(values: &[f64]) -> String {
    match values.len() {
        0 => "-".into(),
        1 => format!("{:.4}", values[0]),
        n => {
            let mean = values.iter().sum::<f64>() / n as f64;
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            format!("{mean:.4} ± {:.4}", var.sqrt())
        }
    }
}

/// A CSV cell, quoted when it must be.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_summary_is_the_mean_and_sample_deviation() {
        assert_eq!(summary(&[]), "-");
        assert_eq!(summary(&[0.25]), "0.2500");
        assert_eq!(summary(&[1.0, 3.0]), "2.0000 ± 1.4142");
    }

    #[test]
    fn a_folders_images_are_shown_under_the_folder_as_given() {
        let shown = as_given(
            Path::new("photos"),
            "/home/me/photos",
            "/home/me/photos/a/cat.jpg",
        );
        assert_eq!(
            shown,
            Path::new("photos").join("a/cat.jpg").display().to_string()
        );
        assert_eq!(as_given(Path::new("x"), "/a", "/b/c.jpg"), "/b/c.jpg");
    }
}
