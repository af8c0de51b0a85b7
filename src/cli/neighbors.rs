//! `convlens neighbors`: the images under a folder whose codes are closest to an image's (cosine
//! similarity), computed by the daemon's `folder/neighbors`.

use std::io::Write;
use std::path::PathBuf;

use convlens_shared::methods::folder::{FolderNeighbors, NeighborsParams};

use super::client::{Engine, EngineChoice};
use super::embed::{FolderArgs, Shown};
use super::output;
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
    #[arg(short = 'k', long = "count", alias = "top", default_value_t = convlens_shared::defaults::folder::NEIGHBORS_K)]
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
pub fn run(args: &NeighborsArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let pass = args.folder.pass(&engine, &args.dir, args.layer.clone())?;
    let shown = Shown::new(&args.dir, &pass.folder);
    let mut params =
        NeighborsParams::new(model_id, pass.folder.clone(), engine.path_arg(&args.image));
    params.pass = pass;
    params.k = args.k;
    let result = engine.request::<FolderNeighbors>(&params, true)?;
    shown.report_skipped(&result.report)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let records: Vec<serde_json::Value> = result
            .neighbors
            .iter()
            .map(|n| {
                serde_json::json!({
                    "path": shown.path(&n.path),
                    "similarity": n.similarity,
                })
            })
            .collect();
        output::print_json!(&mut out, &records)?;
        return Ok(());
    }
    writeln!(
        out,
        "nearest to {} by cosine similarity of `{}` codes:",
        args.image.display(),
        result.report.layer
    )?;
    for n in &result.neighbors {
        writeln!(out, "  {:.4}  {}", n.similarity, shown.path(&n.path))?;
    }
    Ok(())
}
