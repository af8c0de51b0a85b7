//! `convlens explain`: why the network said what it said, by any attribution or CAM method.

use std::io::Write;
use std::path::{Path, PathBuf};

use convlens_models::evolve::captioned;
use convlens_models::render::{figure, grid, ColorBar};
use convlens_shared::array::Png;
use convlens_shared::choices::{Baseline, Colormap, Method, MethodSelection};
use convlens_shared::defaults::explain as default;
use convlens_shared::methods::explain::{
    ExplainParams, ExplainResult, ExplanationData, ImageExplain,
};
use convlens_shared::region::RegionSpec;
use convlens_shared::target::TargetSpec;
use image::RgbImage;

use super::choices::{closed_set, names_parser};
use super::client::{Engine, EngineChoice, OnPartial};
use super::output;
use super::progress::Reporter;
use super::ModelArgs;

/// The longer side of a saved explanation, at least: the overlays come at the model's input
/// size (224 for ImageNet models), too small to read on a screen.
const PICTURE_SIZE: u32 = 448;

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
    /// Class to explain (default: the top-1 prediction): an index or a label, or several joined
    /// by `+` whose logits are summed (281+282, "tabby+tiger cat").
    #[arg(long)]
    target: Option<TargetSpec>,
    /// On a segmentation model: the pixels the class is summed over, x0,y0,x1,y1 (ends
    /// exclusive) or a mask image of the input's size (default: the pixels the model assigns to
    /// the class).
    #[arg(long)]
    region: Option<RegionSpec>,
    /// Instead of a class: explain the similarity (cosine) of the image's code to this
    /// reference image's.
    #[arg(long)]
    target_image: Option<PathBuf>,
    /// The layer whose codes --target-image compares (default: the pooled code before the
    /// classifier).
    #[arg(long, requires = "target_image")]
    target_layer: Option<String>,
    /// SmoothGrad and GradientShap samples; DeepLiftShap and GradientShap's noise baselines.
    #[arg(long, default_value_t = default::SAMPLES)]
    samples: usize,
    /// SmoothGrad and GradientShap noise as a fraction of the input's range.
    #[arg(long, default_value_t = default::NOISE)]
    noise: f64,
    /// Seed for SmoothGrad's noise, noise baselines and GradientShap's draws.
    #[arg(long, default_value_t = default::SEED)]
    seed: u64,
    /// Integrated Gradients steps.
    #[arg(long, default_value_t = default::STEPS)]
    steps: usize,
    /// Baseline of Integrated Gradients and DeepLift (the Shapley methods: its distribution).
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
    /// CAMs: project the weighted activations on their first principal component instead of
    /// summing them over the channels (pytorch-grad-cam's eigen_smooth).
    #[arg(long, default_value_t = default::EIGEN_SMOOTH)]
    eigen_smooth: bool,
    /// CAMs: the mean of the CAMs of six flipped and scaled copies of the input, at its
    /// resolution and in [0, 1] (pytorch-grad-cam's aug_smooth; six times the work).
    #[arg(long, default_value_t = default::AUG_SMOOTH)]
    aug_smooth: bool,
    /// RISE's random masks.
    #[arg(long, default_value_t = default::RISE_MASKS)]
    rise_masks: usize,
    /// RISE's grid: cells per side.
    #[arg(long, default_value_t = default::RISE_CELLS)]
    rise_cells: usize,
    /// RISE's probability of keeping a cell.
    #[arg(long, default_value_t = default::RISE_KEEP)]
    rise_keep: f64,
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
    /// The saved or drawn picture's longer side, at least (the overlays are enlarged to it).
    #[arg(long, value_name = "PIXELS", default_value_t = PICTURE_SIZE)]
    size: u32,
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
        target: args.target.clone(),
        // A mask image is read by the daemon: its path as the daemon sees it.
        region: args.region.as_ref().map(|r| match r {
            RegionSpec::Mask(path) => RegionSpec::Mask(engine.path_arg(Path::new(path))),
            other => other.clone(),
        }),
        target_image: args.target_image.as_deref().map(|p| engine.path_arg(p)),
        target_layer: args.target_layer.clone(),
        samples: args.samples,
        noise: args.noise,
        seed: args.seed,
        steps: args.steps,
        baseline: args.baseline,
        window: args.window,
        stride: args.stride,
        batch: args.batch,
        eigen_smooth: args.eigen_smooth,
        aug_smooth: args.aug_smooth,
        rise_masks: args.rise_masks,
        rise_cells: args.rise_cells,
        rise_keep: args.rise_keep,
        cmap: args.cmap,
        alpha: args.alpha,
        map: args.npy.is_some(),
        render: args.output.is_some() || show,
        work_done_token: None,
        partial_result_token: None,
    };
    let about = About {
        model: args.model.model.clone(),
        version: 0,
        cmap: args.cmap,
        size: args.size,
        complete: true,
    };
    // With several methods, each one's line (and the -o grid so far) as it is done, cheap
    // methods first; the final grid is in display order.
    let mut so_far = ExplainResult::default();
    let mut on_partial = |piece: ExplainResult, bar: Option<&Reporter>| {
        let write = || {
            for skipped in &piece.skipped {
                eprintln!("{}: skipped: {}", skipped.method, skipped.error);
            }
            if !args.json {
                let mut out = std::io::stdout().lock();
                for e in &piece.explanations {
                    let _ = writeln!(out, "{}", line(e));
                }
                let _ = out.flush();
            }
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
        so_far.version = piece.version;
        so_far.photo = so_far.photo.take().or(piece.photo);
        so_far.explanations.extend(piece.explanations);
        so_far
            .explanations
            .sort_by_key(|e| MethodSelection::display_rank(e.method));
        so_far.skipped.extend(piece.skipped);
        if let Some(path) = &args.output {
            let about = About {
                version: so_far.version,
                complete: false,
                ..about.clone()
            };
            match picture(&so_far.photo, &None, &so_far.explanations, &about) {
                Ok(picture) => {
                    if let Err(e) = output::replace_picture(&picture, path) {
                        eprintln!("warning: {e}");
                    }
                }
                Err(e) => eprintln!("warning: the grid so far: {e}"),
            }
        }
    };
    let partial = args.method == MethodSelection::All;
    let result = engine.request_partially::<ImageExplain>(
        &params,
        true,
        partial.then_some(&mut on_partial as OnPartial<'_, ImageExplain>),
    )?;
    // What the partial results already said is not said again.
    let told = |m: Method| partial && so_far.explanations.iter().any(|e| e.method == m);
    for skipped in &result.skipped {
        if !(partial && so_far.skipped.iter().any(|s| s.method == skipped.method)) {
            eprintln!("{}: skipped: {}", skipped.method, skipped.error);
        }
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
    let about = About {
        version: result.version,
        ..about
    };
    let picture = if params.render {
        Some(picture(
            &result.photo,
            &result.segmentation,
            explanations,
            &about,
        )?)
    } else {
        None
    };
    if let (Some(path), Some(picture)) = (&args.output, &picture) {
        output::replace_picture(picture, path)?;
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
        for e in explanations.iter().filter(|e| !told(e.method)) {
            writeln!(out, "{}", line(e))?;
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

/// One explanation as a line: method, class, probability, logit, layer, IG's delta, flatness.
fn line(e: &ExplanationData) -> String {
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
    let flat = if e.flat {
        " (a flat map: every value equal, nothing to show)"
    } else {
        ""
    };
    format!(
        "{}: class {} ({label}), p {:.3}, logit {:.3}{layer}{delta}{flat}",
        e.method, e.class, e.prob, e.logit
    )
}

fn names(explanations: &[ExplanationData]) -> String {
    explanations
        .iter()
        .map(|e| e.method.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One overlay, or the photo then every overlay in a grid (each tile named), made a figure:
/// enlarged to `size` on its longer side, captioned with what it shows (model and version,
/// method, class, layer), a colour bar with its scale below. A segmentation model's classes
/// go beside the overlays.
fn picture(
    photo: &Option<Png>,
    segmentation: &Option<Png>,
    explanations: &[ExplanationData],
    about: &About,
) -> anyhow::Result<RgbImage> {
    let tiles = explanations
        .iter()
        .filter_map(|e| e.overlay.as_ref().map(|o| (e, o)))
        .map(|(e, o)| Ok((e, output::decode_png(o)?)))
        .collect::<anyhow::Result<Vec<(&ExplanationData, RgbImage)>>>()?;
    let segmentation = segmentation
        .as_ref()
        .map(|s| {
            let caption = "classes, region outlined";
            anyhow::Ok(captioned(&output::decode_png(s)?, caption))
        })
        .transpose()?;
    let bar = |low: &str, high: &str| ColorBar {
        cmap: about.cmap,
        low: low.into(),
        high: high.into(),
    };
    if let [(e, tile)] = tiles.as_slice() {
        // As the overlay was drawn: a map at a layer ([h, w]) min-max scaled, one in input space
        // (guided Grad-CAM's included) scaled as Captum does.
        let (low, high) = if e.shape.len() == 2 {
            ("min", "max of the map")
        } else {
            ("0 (photo shows)", "98th pct of |attribution|")
        };
        let flat = if e.flat {
            " (a flat map: nothing to show)"
        } else {
            ""
        };
        let lines = vec![
            format!(
                "{}: class {} {}, p {:.2}, logit {:.2}{flat}",
                e.method,
                e.class,
                e.label.as_deref().unwrap_or_default(),
                e.prob,
                e.logit
            ),
            about.model_line(e.layer.as_deref()),
        ];
        let tile = match segmentation {
            Some(s) => grid(&[s, captioned(tile, e.method.name())], 2, 4),
            None => tile.clone(),
        };
        return Ok(figure(&tile, &lines, Some(&bar(low, high)), about.size));
    }
    let photo = photo
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no method applied"))?;
    let mut named = vec![captioned(&output::decode_png(photo)?, "photo")];
    named.extend(segmentation);
    named.extend(tiles.iter().map(|(e, t)| {
        let name = if e.flat {
            format!("{} (flat)", e.method.name())
        } else {
            e.method.name().to_string()
        };
        captioned(t, &name)
    }));
    let first = tiles.first().map(|(e, _)| *e);
    let lines = vec![
        match first {
            Some(e) => format!(
                "{} methods{} on class {} {}, p {:.2}",
                tiles.len(),
                if about.complete { "" } else { " so far" },
                e.class,
                e.label.as_deref().unwrap_or_default(),
                e.prob
            ),
            None => "no method applied".into(),
        },
        about.model_line(None),
    ];
    Ok(figure(
        &grid(&named, 7, 4),
        &lines,
        Some(&bar("low", "high (each map its own scale)")),
        about.size,
    ))
}

/// What a figure's caption says beyond the explanation itself.
#[derive(Clone)]
struct About {
    /// The model as given.
    model: String,
    /// The version that answered.
    version: u64,
    /// The overlays' colormap.
    cmap: Colormap,
    /// The figure's longer side, at least.
    size: u32,
    /// Whether every method is in (else the grid so far, while the others run).
    complete: bool,
}

impl About {
    /// `demo v1, layer _swish#2`.
    fn model_line(&self, layer: Option<&str>) -> String {
        let layer = layer.map(|l| format!(", layer {l}")).unwrap_or_default();
        format!("{} v{}{layer}", self.model, self.version)
    }
}

/// What `--json` prints of an explanation: the protocol's fields without the map and overlay
/// (`classes` only when several are summed).
fn summary(e: &ExplanationData) -> serde_json::Value {
    let mut value = serde_json::json!({
        "method": e.method,
        "class": e.class,
        "label": e.label,
        "prob": e.prob,
        "logit": e.logit,
        "layer": e.layer,
        "shape": e.shape,
        "convergenceDelta": e.convergence_delta,
        "flat": e.flat,
    });
    if !e.classes.is_empty() {
        value["classes"] = serde_json::json!(e.classes);
    }
    value
}
