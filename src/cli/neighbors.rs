//! `convlens neighbors`: the images under a folder whose codes are closest to an image's (cosine
//! similarity).

use std::io::Write;
use std::path::PathBuf;

use candle_core::Device;
use convlens_models::progress::Silent;
use convlens_models::represent::codes::summarize_files;
use convlens_models::represent::neighbors::nearest_by_cosine;

use super::embed::{summarize, FolderArgs};
use super::ModelArgs;

/// Arguments of `convlens neighbors`.
#[derive(clap::Args, Debug)]
pub struct NeighborsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The folder of images (searched recursively).
    dir: PathBuf,
    /// The query image (inside the folder or not).
    image: PathBuf,
    /// How many neighbours.
    #[arg(short = 'k', long = "top", default_value_t = 8)]
    k: usize,
    /// The layer whose codes are compared (default: the penultimate layer).
    #[arg(long)]
    layer: Option<String>,
    #[command(flatten)]
    folder: FolderArgs,
    /// Print JSON: [{"path", "similarity"}].
    #[arg(long)]
    json: bool,
}

/// Prints the query's nearest neighbours in the folder.
pub fn run(args: &NeighborsArgs, device: &Device) -> anyhow::Result<()> {
    let mut model = args.model.load(device)?;
    args.folder.configure(&mut model)?;
    let summary = summarize(&model, &args.dir, &args.folder, args.layer.clone())?;
    let query = summarize_files(
        &model,
        std::slice::from_ref(&args.image),
        &args.folder.options(args.layer.clone()),
        &Silent,
    )?;
    if let Some(s) = query.skipped.first() {
        anyhow::bail!("{}: {}", s.path.display(), s.reason);
    }
    // The query itself, when it lies in the folder, is not its own neighbour.
    let query_path = std::fs::canonicalize(&args.image).ok();
    let exclude: Vec<usize> = summary
        .paths
        .iter()
        .enumerate()
        .filter(|(_, p)| query_path.is_some() && std::fs::canonicalize(p).ok() == query_path)
        .map(|(i, _)| i)
        .collect();
    let found = nearest_by_cosine(
        &summary.codes,
        summary.shape.units,
        query.code(0),
        args.k,
        &exclude,
        device,
    )?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let records: Vec<serde_json::Value> = found
            .iter()
            .map(|n| {
                serde_json::json!({
                    "path": summary.paths[n.index].display().to_string(),
                    "similarity": n.similarity,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "nearest to {} by cosine similarity of `{}` codes:",
        args.image.display(),
        summary.layer
    )?;
    for n in &found {
        writeln!(
            out,
            "  {:.4}  {}",
            n.similarity,
            summary.paths[n.index].display()
        )?;
    }
    Ok(())
}
