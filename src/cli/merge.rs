//! `convlens merge DIR`: the shards of an `embed` or `top` job (`--shard I/N --shard-dir DIR`)
//! put together, written with the same output flags as the unsharded command, to the same
//! result: the rows are merged back into the folder's order before anything is computed from
//! them.

use std::path::{Path, PathBuf};

use convlens_models::represent::shard_read::shard_job;

use super::client::{Engine, EngineChoice};
use super::embed::{self, EmbedOutputs, FolderArgs, Shown, Written};
use super::shard::Job;
use super::top::{self, TopRanking};

/// Arguments of `convlens merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shard folder every shard wrote to (`--shard-dir`).
    shards: PathBuf,
    #[command(flatten)]
    embed: EmbedOutputs,
    #[command(flatten)]
    ranking: TopRanking,
    /// Draw the picture the command draws: embed's map (scatter, or --grid), top's units.
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// Print the JSON the command prints.
    #[arg(long)]
    json: bool,
    /// Write the command's Parquet table (embed's codes; top's images and statistics).
    #[arg(long, value_name = "FILE")]
    parquet: Option<PathBuf>,
}

/// Merges the shards and writes what was asked for.
pub fn run(args: &MergeArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let job: Job = serde_json::from_value(shard_job(&args.shards)?).map_err(|e| {
        anyhow::anyhow!(
            "{}: the shards' job is not one this convlens wrote: {e}",
            args.shards.display()
        )
    })?;
    let refuse = |flags: Vec<&str>, command: &str| -> anyhow::Result<()> {
        match flags.first() {
            Some(flag) => anyhow::bail!(
                "{flag}: the shards in {} are of `convlens {}`, which has no {flag} ({} takes it)",
                args.shards.display(),
                job.command,
                command
            ),
            None => Ok(()),
        }
    };
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&job.model_args())?;
    let folder = FolderArgs {
        size: job.size,
        ..FolderArgs::default()
    };
    let mut pass = folder.pass(&engine, Path::new(&job.folder), job.layer.clone())?;
    pass.from_shards = Some(engine.path_arg(&args.shards));
    let shown = Shown::new(Path::new(&job.folder_as_typed), &job.folder);
    let written = Written {
        picture: args.output.as_deref(),
        parquet: args.parquet.as_deref(),
        json: args.json,
    };
    match job.command.as_str() {
        "embed" => {
            refuse(args.ranking.given(), "top")?;
            embed::write(&engine, model_id, pass, &shown, &args.embed, written)
        }
        "top" => {
            let mut embed_only = args.embed.given();
            embed_only.extend(args.embed.map_flags());
            refuse(embed_only, "embed")?;
            top::write(&engine, model_id, pass, &shown, &args.ranking, written)
        }
        other => anyhow::bail!(
            "{}: shards of `{other}`, which this convlens cannot merge (embed and top)",
            args.shards.display()
        ),
    }
}
