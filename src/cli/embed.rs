//! `convlens embed`: the CNN code of every image under a folder (cached), and its t-SNE or PCA
//! map as a CSV and a picture. Also the folder options that `top` and `neighbors` share.

use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use convlens_models::progress::FnProgress;
use convlens_models::represent::cache::default_cache_dir;
use convlens_models::represent::map_render::{render_grid, render_scatter};
use convlens_models::represent::pca::pca;
use convlens_models::represent::tsne::{tsne, TsneOptions};
use convlens_models::represent::{summarize_folder, FolderSummary, SummaryOptions};
use convlens_models::Model;
use indicatif::{ProgressBar, ProgressStyle};

use super::ModelArgs;

/// How a folder is read and summarized (shared by `embed`, `top` and `neighbors`).
#[derive(clap::Args, Debug)]
pub struct FolderArgs {
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Input size: images are resized (shorter side to ⌈S·256/224⌉) and centre-cropped to S×S
    /// (the model's own preprocessing, 256/224 for ImageNet models, when omitted).
    #[arg(long)]
    pub size: Option<u32>,
    /// Cache folder for codes ($CONVLENS_CACHE_DIR, else ~/.cache/convlens).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Neither read nor write the cache.
    #[arg(long)]
    pub no_cache: bool,
}

impl FolderArgs {
    /// Applies `--size` to the model's preprocessing.
    pub fn configure(&self, model: &mut Model) -> anyhow::Result<()> {
        if let Some(size) = self.size {
            if size < 8 {
                anyhow::bail!("--size {size} is too small (at least 8 pixels)");
            }
            model.preprocess.crop = size;
            model.preprocess.resize = (size * 256).div_ceil(224);
        }
        Ok(())
    }

    /// The summary options for `layer`.
    pub fn options(&self, layer: Option<String>) -> SummaryOptions {
        SummaryOptions {
            layer,
            batch: self.batch,
            cache_dir: if self.no_cache {
                None
            } else {
                self.cache.clone().or_else(default_cache_dir)
            },
        }
    }
}

/// A progress bar on stderr (hidden when stderr is not a terminal), with items per second.
pub fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// Runs `f` with a progress bar that it reports to, clearing the bar afterwards.
pub fn with_progress<T>(
    f: impl FnOnce(&dyn convlens_models::progress::Progress) -> convlens_models::Result<T>,
) -> anyhow::Result<T> {
    let bar = progress_bar();
    let progress = FnProgress(|done: usize, total: usize, message: &str| {
        if bar.length() != Some(total as u64) {
            bar.set_length(total as u64);
            bar.reset_eta();
        }
        bar.set_position(done as u64);
        bar.set_message(message.to_string());
        Ok(())
    });
    let result = f(&progress);
    bar.finish_and_clear();
    Ok(result?)
}

/// Summarizes the folder, with a progress bar, and says on stderr what was skipped.
pub fn summarize(
    model: &Model,
    dir: &Path,
    folder: &FolderArgs,
    layer: Option<String>,
) -> anyhow::Result<FolderSummary> {
    let options = folder.options(layer);
    let summary = with_progress(|p| summarize_folder(model, dir, &options, p))?;
    let mut err = std::io::stderr().lock();
    for s in &summary.skipped {
        writeln!(err, "skipped {}: {}", s.path.display(), s.reason)?;
    }
    Ok(summary)
}

/// Which map of the codes to make.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// t-SNE (exact up to 1000 images, Barnes–Hut beyond).
    Tsne,
    /// The first two principal components.
    Pca,
    /// No map.
    None,
}

/// Arguments of `convlens embed`.
#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The folder of images (searched recursively).
    dir: PathBuf,
    /// The layer to take codes from (default: the penultimate layer, the input of the classifier).
    #[arg(long)]
    layer: Option<String>,
    #[command(flatten)]
    folder: FolderArgs,
    /// Write the codes, float32 [N, D] in the order of the sorted paths, to this .npy file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write `path,x,y,top1_class,top1_prob` per image.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// The map to make for --csv and -o.
    #[arg(long, value_enum, default_value = "tsne")]
    map: MapKind,
    /// Draw the map to this PNG: a scatter coloured by predicted class, or with --grid the images
    /// snapped to a lattice.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// With -o: Karpathy's t-SNE grid of thumbnails instead of a scatter.
    #[arg(long)]
    grid: bool,
    /// Seed of the map's initialisation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// t-SNE perplexity.
    #[arg(long, default_value_t = 30.0)]
    perplexity: f32,
    /// t-SNE iterations.
    #[arg(long, default_value_t = 1000)]
    iterations: usize,
    /// Threads for t-SNE: 1 gives the same map on every run; 0 uses every core.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Print a JSON summary (and the map) instead of text.
    #[arg(long)]
    json: bool,
}

/// Embeds the folder and writes what was asked for.
pub fn run(args: &EmbedArgs, device: &Device) -> anyhow::Result<()> {
    let mut model = args.model.load(device)?;
    args.folder.configure(&mut model)?;
    let summary = summarize(&model, &args.dir, &args.folder, args.layer.clone())?;
    let n = summary.len();
    let dim = summary.shape.units;
    if let Some(path) = &args.out {
        Tensor::from_slice(&summary.codes, (n, dim), &Device::Cpu)?
            .write_npy(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let wants_map = args.csv.is_some() || args.output.is_some();
    let points: Option<Vec<[f32; 2]>> = match (args.map, wants_map, n) {
        (MapKind::None, _, _) | (_, false, _) | (_, _, 0) => None,
        (MapKind::Pca, true, _) => {
            let p = pca(&summary.codes, dim, 2.min(dim).min(n), args.seed, device)?;
            Some(
                p.projected
                    .chunks(p.components)
                    .map(|c| [c[0], c.get(1).copied().unwrap_or(0.0)])
                    .collect(),
            )
        }
        (MapKind::Tsne, true, _) => {
            let options = TsneOptions {
                perplexity: args.perplexity,
                epochs: args.iterations,
                seed: args.seed,
                threads: args.threads,
                ..TsneOptions::default()
            };
            let map = with_progress(|p| tsne(&summary.codes, dim, &options, device, p))?;
            Some(map.points)
        }
    };
    if let (Some(path), Some(points)) = (&args.csv, &points) {
        write_csv(path, &summary, points)?;
    }
    if let (Some(path), Some(points)) = (&args.output, &points) {
        let img = if args.grid {
            let tile = (8192 / (n as f64).sqrt().ceil().max(1.0) as u32).clamp(8, 64);
            with_progress(|p| render_grid(points, &summary.paths, &model.preprocess, tile, p))?
        } else {
            let label = |c: u32| {
                model
                    .labels
                    .get(c as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("class {c}"))
            };
            render_scatter(points, &summary.top1_class, &label, 800)
        };
        img.save(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "layer": summary.layer,
            "dim": dim,
            "images": n,
            "computed": summary.computed,
            "cached": summary.cached,
            "forwardPasses": summary.forward_passes,
            "otherFiles": summary.other_files,
            "skipped": summary.skipped,
            "cacheFile": summary.cache_file,
            "paths": summary.paths,
            "map": points,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(
            out,
            "{n} images, layer `{}` ({dim} values per code): {} embedded, {} from the cache; {} skipped",
            summary.layer,
            summary.computed,
            summary.cached,
            summary.skipped.len()
        )?;
    }
    Ok(())
}

/// `path,x,y,top1_class,top1_prob` per image.
fn write_csv(path: &Path, summary: &FolderSummary, points: &[[f32; 2]]) -> anyhow::Result<()> {
    let mut text = String::from("path,x,y,top1_class,top1_prob\n");
    for (i, p) in summary.paths.iter().enumerate() {
        let name = p.display().to_string();
        let name = if name.contains([',', '"', '\n']) {
            format!("\"{}\"", name.replace('"', "\"\""))
        } else {
            name
        };
        text.push_str(&format!(
            "{name},{},{},{},{}\n",
            points[i][0], points[i][1], summary.top1_class[i], summary.top1_prob[i]
        ));
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
