//! `convlens embed`: the CNN code of every image under a folder (cached), and its t-SNE or PCA
//! map as a CSV and a picture, computed by the daemon's `folder/embed`. Also the folder options
//! and path display that `top` and `neighbors` share.

use std::io::Write;
use std::path::{Path, PathBuf};

use convlens_models::represent::cache::default_cache_dir;
use convlens_shared::choices::MapKind;
use convlens_shared::defaults::folder as default;
use convlens_shared::methods::folder::{
    EmbedParams, EmbedResult, FolderEmbed, FolderPass, PassReport,
};

use super::choices::closed_set;
use super::client::{Engine, EngineChoice, OnPartial};
use super::embed_rows::{KeptRows, RowWriters};
use super::output::{self, OnFile};
use super::parquet;
use super::progress::Reporter;
use super::shard::{print_shard, Job, ShardArgs};
use super::ModelArgs;

/// How a folder is read and summarized (shared by `embed`, `top` and `neighbors`).
#[derive(clap::Args, Debug)]
pub struct FolderArgs {
    /// Images per forward pass.
    #[arg(long, default_value_t = default::BATCH)]
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
    /// Decode images in turn with the network instead of on a reader thread ahead of it (to
    /// measure what reading ahead gains).
    #[arg(long)]
    pub no_prefetch: bool,
}

impl Default for FolderArgs {
    /// The flags' defaults: the default batch, the model's size, the default cache.
    fn default() -> Self {
        FolderArgs {
            batch: default::BATCH,
            size: None,
            cache: None,
            no_cache: false,
            no_prefetch: false,
        }
    }
}

impl FolderArgs {
    /// The protocol's folder pass over `dir` at `layer`. The default cache folder is this
    /// process's (its `$CONVLENS_CACHE_DIR`), not the daemon's.
    pub fn pass(
        &self,
        engine: &Engine,
        dir: &Path,
        layer: Option<String>,
    ) -> anyhow::Result<FolderPass> {
        if let Some(size) = self.size {
            if size < 8 {
                anyhow::bail!("--size {size} is too small (at least 8 pixels)");
            }
        }
        let cache_dir = if self.no_cache {
            None
        } else {
            self.cache.clone().or_else(default_cache_dir)
        };
        Ok(FolderPass {
            folder: engine.path_arg(dir),
            layer,
            batch: self.batch,
            size: self.size,
            cache: !self.no_cache,
            cache_dir: cache_dir.map(|d| engine.path_arg(&d)),
            shard: None,
            from_shards: None,
            prefetch: !self.no_prefetch,
        })
    }
}

/// Puts the paths of a result back as the user typed the folder (the daemon is given absolute
/// paths).
pub struct Shown {
    absolute: String,
    given: String,
}

impl Shown {
    /// For the folder typed as `dir`, sent as `sent`.
    pub fn new(dir: &Path, sent: &str) -> Shown {
        Shown {
            absolute: sent.to_string(),
            given: dir.display().to_string(),
        }
    }

    /// `path` under the folder as typed.
    pub fn path(&self, path: &str) -> String {
        match path.strip_prefix(&self.absolute) {
            Some(rest) if self.absolute != self.given => format!("{}{rest}", self.given),
            _ => path.to_string(),
        }
    }

    /// Says on stderr which files of the pass were skipped, and why.
    pub fn report_skipped(&self, report: &PassReport) -> anyhow::Result<()> {
        let mut err = std::io::stderr().lock();
        for s in &report.skipped {
            writeln!(err, "skipped {}: {}", self.path(&s.path), s.reason)?;
        }
        Ok(())
    }

    /// The skipped files as `[{"path", "reason"}]`.
    pub fn skipped_json(&self, report: &PassReport) -> serde_json::Value {
        report
            .skipped
            .iter()
            .map(|s| serde_json::json!({"path": self.path(&s.path), "reason": s.reason}))
            .collect()
    }
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
    #[command(flatten)]
    outputs: EmbedOutputs,
    /// Draw the map to this PNG: a scatter coloured by predicted class, or with --grid the images
    /// snapped to a lattice.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Print a JSON summary (and the map) instead of text.
    #[arg(long)]
    json: bool,
    /// Write a Parquet table, one row per image: path, code (a fixed-size list), top-1 class,
    /// label and probability, and the map's x, y when one is made.
    #[arg(long, value_name = "FILE")]
    parquet: Option<PathBuf>,
    #[command(flatten)]
    shard: ShardArgs,
}

/// What `embed` writes besides its picture and JSON (`merge` takes the same flags).
#[derive(clap::Args, Debug, Clone)]
pub struct EmbedOutputs {
    /// Write the codes, float32 [N, D] in the order of the sorted paths, to this .npy file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write `path,x,y,top1_class,top1_prob` per image.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// The map to make for --csv and -o.
    #[arg(long, value_parser = closed_set::<MapKind>(),
          default_value_t = default::MAP)]
    pub map: MapKind,
    /// With -o: Karpathy's t-SNE grid of thumbnails instead of a scatter.
    #[arg(long)]
    pub grid: bool,
    /// Seed of the map's initialisation.
    #[arg(long, default_value_t = default::SEED)]
    pub seed: u64,
    /// t-SNE perplexity.
    #[arg(long, default_value_t = default::PERPLEXITY)]
    pub perplexity: f32,
    /// t-SNE iterations.
    #[arg(long, default_value_t = default::ITERATIONS)]
    pub iterations: usize,
    /// Threads for t-SNE: 1 gives the same map on every run; 0 uses every core.
    #[arg(long, default_value_t = default::THREADS)]
    pub threads: usize,
    /// The most images t-SNE maps: beyond, it maps every s-th image (said on stderr), since its
    /// cost grows faster than the folder; --map pca maps every image at any size.
    #[arg(long, value_name = "N", default_value_t = default::TSNE_MAX_POINTS)]
    pub tsne_max: usize,
    /// Write TensorBoard's embedding projector files to this folder (tensors.tsv, metadata.tsv,
    /// sprite.png, projector_config.pbtxt): `tensorboard --logdir DIR` shows the codes.
    #[arg(long, value_name = "DIR")]
    pub projector: Option<PathBuf>,
}

impl EmbedOutputs {
    /// The flags given that write something (a shard writes none of them).
    pub fn given(&self) -> Vec<&'static str> {
        [
            (self.out.is_some(), "--out"),
            (self.csv.is_some(), "--csv"),
            (self.projector.is_some(), "--projector"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }

    /// The map flags that differ from their defaults (for refusing them where no map is made).
    pub fn map_flags(&self) -> Vec<&'static str> {
        [
            (self.map != default::MAP, "--map"),
            (self.grid, "--grid"),
            (self.seed != default::SEED, "--seed"),
            (self.perplexity != default::PERPLEXITY, "--perplexity"),
            (self.iterations != default::ITERATIONS, "--iterations"),
            (self.threads != default::THREADS, "--threads"),
            (self.tsne_max != default::TSNE_MAX_POINTS, "--tsne-max"),
        ]
        .into_iter()
        .filter_map(|(given, flag)| given.then_some(flag))
        .collect()
    }
}

/// Embeds the folder and writes what was asked for (or, with --shard, the shard's file).
pub fn run(args: &EmbedArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let mut pass = args.folder.pass(&engine, &args.dir, args.layer.clone())?;
    let job = Job::new(
        "embed",
        &engine,
        &args.model,
        &args.dir,
        &pass,
        &args.folder,
    );
    let mut given = args.outputs.given();
    given.extend(args.output.is_some().then_some("-o"));
    given.extend(args.parquet.is_some().then_some("--parquet"));
    pass.shard = args.shard.run(&engine, &job, &given)?;
    let shown = Shown::new(&args.dir, &pass.folder);
    write(
        &engine,
        model_id,
        pass,
        &shown,
        &args.outputs,
        Written {
            picture: args.output.as_deref(),
            parquet: args.parquet.as_deref(),
            json: args.json,
        },
    )
}

/// The outputs `embed` and `top` both have (and `merge` passes on): the picture, the Parquet
/// table, JSON instead of text.
#[derive(Clone, Copy, Debug, Default)]
pub struct Written<'a> {
    /// `-o`.
    pub picture: Option<&'a Path>,
    /// `--parquet`.
    pub parquet: Option<&'a Path>,
    /// `--json`.
    pub json: bool,
}

/// Asks for the folder `pass` (a whole folder, a shard, or merged shards) and writes the
/// outputs: what `embed` and `merge` of an embed job share.
pub fn write(
    engine: &Engine,
    model_id: String,
    pass: FolderPass,
    shown: &Shown,
    outputs: &EmbedOutputs,
    written: Written,
) -> anyhow::Result<()> {
    let Written {
        picture,
        parquet,
        json,
    } = written;
    // The map is made only for what draws it.
    let wants_map = outputs.csv.is_some() || picture.is_some();
    let shard = pass.shard.clone();
    let mut params = EmbedParams::new(model_id, pass.folder.clone());
    params.pass = pass;
    params.map = if wants_map {
        outputs.map
    } else {
        MapKind::None
    };
    params.perplexity = outputs.perplexity;
    params.iterations = outputs.iterations;
    params.threads = outputs.threads;
    params.seed = outputs.seed;
    params.tsne_max = outputs.tsne_max;
    params.codes = outputs.out.is_some() || outputs.projector.is_some() || parquet.is_some();
    params.render = picture.map(|_| if outputs.grid { "grid" } else { "scatter" }.into());
    if let Some(run) = &shard {
        // A shard writes its file and nothing else.
        let result = engine.request::<FolderEmbed>(&params, true)?;
        shown.report_skipped(&result.report)?;
        return print_shard(run, &result.report, shown, json);
    }
    // The rows come as partial results and go to the files at once; only what is written at
    // the end (the CSV, the JSON's paths, the map's table) keeps them.
    let keep = outputs.csv.is_some() || json || (parquet.is_some() && wants_map);
    let mut writers = RowWriters::open(outputs, parquet, shown, keep)?;
    let mut on_rows = |piece: EmbedResult, _: Option<&Reporter>| writers.take(&piece);
    let result = engine.request_partially::<FolderEmbed>(
        &params,
        true,
        Some(&mut on_rows as OnPartial<'_, FolderEmbed>),
    )?;
    let report = &result.report;
    shown.report_skipped(report)?;
    let kept = writers
        .finish(report.units, result.version)?
        .unwrap_or_default();
    let n = report.images;
    if let (Some(mapped), Some(points)) = (&result.mapped, &result.points) {
        eprintln!(
            "t-SNE mapped {} of the {n} images (every {}th; --tsne-max sets how many, --map pca \
             maps every image)",
            points.len(),
            mapped.get(1).copied().unwrap_or(1)
        );
    }
    let mapped_rows: Vec<usize> = match &result.mapped {
        Some(rows) => rows.clone(),
        None => (0..result.points.as_ref().map_or(0, Vec::len)).collect(),
    };
    if let (Some(path), Some(points)) = (&outputs.csv, &result.points) {
        write_csv(path, &kept, points, &mapped_rows, shown)?;
    }
    if let (Some(path), Some(picture)) = (picture, &result.picture) {
        output::save_daemon_picture(picture, path)?;
    }
    if let (Some(path), Some(points)) = (parquet, &result.points) {
        let paths = mapped_rows
            .iter()
            .filter_map(|&r| kept.paths.get(r))
            .map(|p| shown.path(p))
            .collect();
        parquet::write_map(path, paths, points)?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        let paths: Vec<String> = kept.paths.iter().map(|p| shown.path(p)).collect();
        let value = serde_json::json!({
            "layer": report.layer,
            "dim": report.units,
            "images": n,
            "computed": report.computed,
            "cached": report.cached,
            "forwardPasses": report.forward_passes,
            "otherFiles": report.other_files,
            "skipped": shown.skipped_json(report),
            "cacheFile": report.cache_file,
            "paths": paths,
            "map": result.points,
            "mapped": result.mapped,
        });
        output::print_json!(&mut out, &value)?;
    } else {
        writeln!(
            out,
            "{n} images, layer `{}` ({} values per code): {} embedded, {} from the cache; {} skipped",
            report.layer,
            report.units,
            report.computed,
            report.cached,
            report.skipped.len()
        )?;
    }
    Ok(())
}

/// `path,x,y,top1_class,top1_prob` per image (`x`, `y` empty for an image the map left out).
fn write_csv(
    path: &Path,
    kept: &KeptRows,
    points: &[[f32; 2]],
    mapped_rows: &[usize],
    shown: &Shown,
) -> anyhow::Result<()> {
    let mut point_of: Vec<Option<[f32; 2]>> = vec![None; kept.paths.len()];
    for (&row, &p) in mapped_rows.iter().zip(points) {
        if let Some(slot) = point_of.get_mut(row) {
            *slot = Some(p);
        }
    }
    let mut text = String::from("path,x,y,top1_class,top1_prob\n");
    for (i, p) in kept.paths.iter().enumerate() {
        let name = shown.path(p);
        let name = if name.contains([',', '"', '\n']) {
            format!("\"{}\"", name.replace('"', "\"\""))
        } else {
            name
        };
        let (x, y) = match point_of[i] {
            Some([x, y]) => (x.to_string(), y.to_string()),
            None => (String::new(), String::new()),
        };
        text.push_str(&format!(
            "{name},{x},{y},{},{}\n",
            kept.top1_class[i], kept.top1_prob[i]
        ));
    }
    std::fs::write(path, text).on_file(path)
}
