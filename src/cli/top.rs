//! `convlens top`: the images under a folder that excite each unit of a layer most (deepvis's top
//! 9), with the position of the maximum, and per-unit statistics over the folder, computed by the
//! daemon's `folder/top`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use convlens_shared::methods::folder::{FolderPass, FolderTop, TopParams, TopResult};

use convlens_models::represent::folder::list_images;

use super::client::{Engine, EngineChoice};
use super::embed::{FolderArgs, Shown, Written};
use super::shard::{print_shard, Job, ShardArgs};
use super::ModelArgs;
use super::{output, parquet};

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
    #[command(flatten)]
    ranking: TopRanking,
    #[command(flatten)]
    folder: FolderArgs,
    /// Print JSON: {"top": {...}, "stats": {...}}.
    #[arg(long)]
    json: bool,
    /// Draw the units' top images, cropped to the receptive field, one row per unit.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Write a Parquet table of the top images (unit, rank, path, value, y, x), and the units'
    /// statistics beside it in STEM-stats.parquet (unit, mean, max, active_fraction, dead).
    #[arg(long, value_name = "FILE")]
    parquet: Option<PathBuf>,
    #[command(flatten)]
    shard: ShardArgs,
}

/// Which units `top` ranks and how many images each (`merge` takes the same flags).
#[derive(clap::Args, Debug, Clone)]
pub struct TopRanking {
    /// Units to show (comma-separated); every unit when omitted.
    #[arg(long, value_delimiter = ',')]
    pub unit: Vec<usize>,
    /// Images per unit.
    #[arg(short = 'k', long = "per-unit", alias = "top", default_value_t = convlens_shared::defaults::folder::TOP_K)]
    pub k: usize,
    /// Tile size of the picture, in pixels.
    #[arg(long, default_value_t = convlens_shared::defaults::folder::TILE)]
    pub tile: u32,
}

impl TopRanking {
    /// The flags that differ from their defaults (for refusing them where nothing is ranked).
    pub fn given(&self) -> Vec<&'static str> {
        [
            (!self.unit.is_empty(), "--unit"),
            (
                self.k != convlens_shared::defaults::folder::TOP_K,
                "--per-unit",
            ),
            (
                self.tile != convlens_shared::defaults::folder::TILE,
                "--tile",
            ),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }
}

/// Ranks the folder's images for the layer's units and prints (or draws) them (or, with
/// --shard, writes the shard's file).
pub fn run(args: &TopArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    // One pass keeps every unit's maxima (in the cache too), so any unit can be ranked at once.
    let mut pass = args
        .folder
        .pass(&engine, &args.dir, Some(args.layer.clone()))?;
    let job = Job::new("top", &engine, &args.model, &args.dir, &pass, &args.folder);
    let given: Vec<&str> = [
        (args.output.is_some(), "-o"),
        (args.parquet.is_some(), "--parquet"),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect();
    pass.shard = args.shard.run(&engine, &job, &given)?;
    let shown = Shown::new(&args.dir, &pass.folder);
    write(
        &engine,
        model_id,
        pass,
        &shown,
        &args.ranking,
        Written {
            picture: args.output.as_deref(),
            parquet: args.parquet.as_deref(),
            json: args.json,
        },
    )
}

/// Asks for the folder `pass` (a whole folder, a shard, or merged shards) and writes the
/// rankings and statistics: what `top` and `merge` of a top job share.
pub fn write(
    engine: &Engine,
    model_id: String,
    pass: FolderPass,
    shown: &Shown,
    ranking: &TopRanking,
    written: Written,
) -> anyhow::Result<()> {
    let Written {
        picture,
        parquet,
        json,
    } = written;
    let layer = pass.layer.clone().unwrap_or_default();
    let shard = pass.shard.clone();
    let folder = PathBuf::from(&pass.folder);
    let mut params = TopParams::new(model_id, pass.folder.clone(), layer);
    params.pass = pass;
    params.units = ranking.unit.clone();
    params.k = ranking.k;
    params.render = picture.is_some();
    params.tile = ranking.tile;
    let result = engine.request::<FolderTop>(&params, true)?;
    let report = &result.report;
    shown.report_skipped(report)?;
    if let Some(run) = &shard {
        return print_shard(run, report, shown, json);
    }
    if let (Some(path), Some(picture)) = (picture, &result.picture) {
        output::save_daemon_picture(picture, path)?;
    }
    if let Some(path) = parquet {
        parquet::write_top(path, &result, shown)?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "layer": report.layer,
            "images": report.images,
            "computed": report.computed,
            "cached": report.cached,
            "skipped": shown.skipped_json(report),
            "top": top_json(&result, ranking.k, shown, &image_indices(&folder, &result, shown)),
            "stats": stats_json(&result),
        });
        output::print_json!(&mut out, &value)?;
        return Ok(());
    }
    writeln!(
        out,
        "layer `{}`: {} units at {}×{} positions, {} images ({} embedded, {} from the cache)",
        report.layer,
        report.units,
        report.positions[0],
        report.positions[1],
        report.images,
        report.computed,
        report.cached
    )?;
    for unit in &result.units {
        if let Some(s) = result.stats.get(unit.unit) {
            writeln!(
                out,
                "unit {}: mean {:.4}, max {:.4}, active on {:.1}% of images",
                unit.unit,
                s.mean,
                s.max,
                100.0 * s.active_fraction
            )?;
        }
        for (rank, e) in unit.top.iter().enumerate() {
            writeln!(
                out,
                "  {:>2}. {:>10.4} at ({}, {})  {}",
                rank + 1,
                e.value,
                e.position[0],
                e.position[1],
                shown.path(&e.path)
            )?;
        }
    }
    if ranking.unit.is_empty() {
        writeln!(
            out,
            "dead units (never active): {}",
            if result.dead.is_empty() {
                "none".to_string()
            } else {
                format!(
                    "{} ({})",
                    result.dead.len(),
                    result
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

/// The rankings as `convlens top --json` has always printed them (the engine's `TopUnits`).
fn top_json(
    result: &TopResult,
    k: usize,
    shown: &Shown,
    indices: &HashMap<String, usize>,
) -> serde_json::Value {
    let report = &result.report;
    let units: Vec<serde_json::Value> = result
        .units
        .iter()
        .map(|u| {
            let top: Vec<serde_json::Value> = u
                .top
                .iter()
                .map(|e| {
                    let path = shown.path(&e.path);
                    serde_json::json!({
                        "image": indices.get(&path),
                        "path": path,
                        "value": e.value,
                        "y": e.position[0],
                        "x": e.position[1],
                    })
                })
                .collect();
            serde_json::json!({"unit": u.unit, "top": top})
        })
        .collect();
    serde_json::json!({
        "layer": report.layer,
        "shape": {
            "units": report.units,
            "height": report.positions[0],
            "width": report.positions[1],
        },
        "k": k,
        "units": units,
    })
}

/// The statistics as `convlens top --json` has always printed them (the engine's `UnitStats`).
fn stats_json(result: &TopResult) -> serde_json::Value {
    let units: Vec<serde_json::Value> = result
        .stats
        .iter()
        .map(|s| {
            serde_json::json!({
                "unit": s.unit,
                "mean": s.mean,
                "max": s.max,
                "active_fraction": s.active_fraction,
            })
        })
        .collect();
    serde_json::json!({
        "layer": result.report.layer,
        "images": result.report.images,
        "units": units,
        "dead": result.dead,
    })
}

/// Each image's index among the images of the pass (the folder's images, sorted, without the
/// skipped ones), as the engine numbers them, by path as shown.
fn image_indices(folder: &Path, result: &TopResult, shown: &Shown) -> HashMap<String, usize> {
    let skipped: Vec<String> = result
        .report
        .skipped
        .iter()
        .map(|s| shown.path(&s.path))
        .collect();
    list_images(folder)
        .map(|listing| listing.images)
        .unwrap_or_default()
        .iter()
        .map(|p| shown.path(&p.display().to_string()))
        .filter(|p| !skipped.contains(p))
        .enumerate()
        .map(|(i, p)| (p, i))
        .collect()
}
