//! Command-line parsing and dispatch to the subcommands.

mod activations;
mod choices;
mod client;
mod daemon;
mod deconv;
mod embed;
mod embed_rows;
mod evaluate;
mod evolve;
mod explain;
mod filters;
mod layers;
mod maximize;
mod merge;
mod neighbors;
mod npy_rows;
mod output;
mod parquet;
mod predict;
mod progress;
mod projector;
pub mod scope;
mod shard;
mod shell;
mod status;
mod top;
mod train_demo;
mod tui;
pub mod typo;
mod versions;

use clap::{Parser, Subcommand};
use convlens_models::device;

/// Look inside convolutional networks from the terminal.
#[derive(Parser, Debug)]
#[command(name = "convlens", version, about)]
pub struct Cli {
    /// Where to compute: cpu, cuda or cuda:N.
    #[arg(long, global = true, default_value = "cpu")]
    device: String,
    /// Compute in this process instead of through the daemon.
    #[arg(long, global = true)]
    no_daemon: bool,
    /// Show no progress (bars on a terminal, a line per stage otherwise).
    #[arg(short, long, global = true)]
    quiet: bool,
    /// The daemon's socket (default: $XDG_RUNTIME_DIR/convlens/daemon.sock).
    #[arg(long, global = true)]
    socket: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand, the terminal UI: `convlens [MODEL] [--images DIR] [--graphics G]`.
    #[command(flatten)]
    tui: tui::TuiArgs,
}

/// How to find and load the model, shared by every subcommand.
#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// Weights file (.safetensors, .pt/.pth/.ckpt), a torch.export program (.pt2), an ONNX
    /// export (.onnx), `demo`, or `random:ARCH`.
    pub model: String,
    /// Architecture (inferred from the weights when omitted).
    #[arg(long)]
    pub arch: Option<String>,
    /// Class names, one a line (ImageNet's by default for 1000 classes).
    #[arg(long)]
    pub labels: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub load: LoadFlags,
    /// Use version N of the checkpoint as the daemon kept it while watching it (`convlens
    /// versions MODEL` lists them).
    #[arg(long, value_name = "N")]
    pub at_version: Option<u64>,
}

/// How to load a model beyond its file: the program it binds to and preprocessing overrides
/// (every subcommand that takes a model, and the TUI).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct LoadFlags {
    /// A torch.export program (.pt2) to bind MODEL's weights to by state_dict key: any CNN
    /// trained in PyTorch (found beside MODEL when it is the only .pt2 there).
    #[arg(long, value_name = "PROGRAM")]
    pub graph: Option<std::path::PathBuf>,
    /// Input mean per channel, 0–1 pixel scale (`0.5` or `0.485,0.456,0.406`).
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub mean: Option<Vec<f32>>,
    /// Input standard deviation per channel, 0–1 pixel scale.
    #[arg(long, value_delimiter = ',', num_args = 1..)]
    pub std: Option<Vec<f32>>,
    /// Resize the shorter image side to this before the centre crop (default: the model's;
    /// for a program, crop × 256/224, or the crop itself below 64 pixels).
    #[arg(long, value_name = "PIXELS")]
    pub resize: Option<u32>,
}

impl LoadFlags {
    /// These flags as `model/load` parameters for `path` (`graph` made absolute by `absolute`).
    pub fn params(
        &self,
        path: String,
        absolute: impl Fn(&std::path::Path) -> String,
    ) -> convlens_shared::methods::model::LoadParams {
        convlens_shared::methods::model::LoadParams {
            path,
            graph: self.graph.as_deref().map(absolute),
            mean: self.mean.clone(),
            std: self.std.clone(),
            resize: self.resize,
            ..Default::default()
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The layer tree with output shapes and parameter counts.
    // Class names play no part in a layer tree or in filters: --labels is hidden there.
    #[command(mut_arg("labels", |a| a.hide(true)))]
    Layers(layers::LayersArgs),
    /// Top-K classes for images.
    Predict(predict::PredictArgs),
    /// Attribution maps and class activation maps for a prediction.
    Explain(explain::ExplainArgs),
    /// How faithful each method's explanation is: deletion and insertion curves (RISE), as a
    /// table over images, or JSON / CSV rows.
    Evaluate(evaluate::EvaluateArgs),
    /// A convolution's kernels as a picture, with norms and dead filters.
    #[command(mut_arg("labels", |a| a.hide(true)))]
    Filters(filters::FiltersArgs),
    /// Every channel's feature map of a layer on an image.
    Activations(activations::ActivationsArgs),
    /// Deconvnet (or guided-backprop) reconstructions of units, cropped to their receptive field.
    Deconv(deconv::DeconvArgs),
    /// The CNN code of every image under a folder (cached), with a t-SNE or PCA map.
    Embed(embed::EmbedArgs),
    /// The images under a folder that excite each unit of a layer most, and unit statistics.
    Top(top::TopArgs),
    /// Put together the shards of an embed or top job (--shard), writing what the unsharded
    /// command writes with the same flags.
    Merge(merge::MergeArgs),
    /// The images under a folder closest to an image in code space.
    Neighbors(neighbors::NeighborsArgs),
    /// Synthesize an input that maximizes a class, a channel or a neuron (Lucid, Yosinski, plain).
    Maximize(maximize::MaximizeArgs),
    /// Train small-vgg or small-resnet on Fashion-MNIST, writing a checkpoint every N steps.
    TrainDemo(train_demo::TrainDemoArgs),
    /// One view (filters, Grad-CAM, a unit's map) across a run's checkpoints, as a GIF or strip.
    Evolve(evolve::EvolveArgs),
    /// Keep models loaded and serve clients on a Unix socket (docs/PROTOCOL.md).
    Daemon(daemon::DaemonArgs),
    /// The running daemon's models, memory, watches and queue.
    Status(status::StatusArgs),
    /// The versions of a watched checkpoint the daemon kept, with their metrics.
    Versions(versions::VersionsArgs),
    /// A shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(shell::CompletionsArgs),
    /// The man page (roff) on stdout: `convlens man | man -l -`.
    Man,
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let Some(command) = cli.command else {
        return tui::run(&cli.tui, &cli.device, cli.socket.clone());
    };
    let choice = client::EngineChoice {
        device: cli.device.clone(),
        no_daemon: cli.no_daemon,
        quiet: cli.quiet,
        socket: cli
            .socket
            .clone()
            .unwrap_or_else(convlens_shared::paths::default_socket),
    };
    // Every subcommand but `evolve` and `train-demo` goes through the daemon (or the engine in
    // this process with --no-daemon), which opens the device itself; those two open it here.
    let device = || device::parse_device(&cli.device);
    match &command {
        Command::Layers(args) => layers::run(args, &choice),
        Command::Predict(args) => predict::run(args, &choice),
        Command::Explain(args) => explain::run(args, &choice),
        Command::Evaluate(args) => evaluate::run(args, &choice),
        Command::Filters(args) => filters::run(args, &choice),
        Command::Activations(args) => activations::run(args, &choice),
        Command::Deconv(args) => deconv::run(args, &choice),
        Command::Maximize(args) => maximize::run(args, &choice),
        Command::Embed(args) => embed::run(args, &choice),
        Command::Top(args) => top::run(args, &choice),
        Command::Neighbors(args) => neighbors::run(args, &choice),
        Command::Merge(args) => merge::run(args, &choice),
        Command::Daemon(args) => daemon::run(args, &cli.device, choice.socket),
        Command::Status(args) => status::run(args, &choice.socket),
        Command::Versions(args) => versions::run(args, &choice),
        Command::Evolve(args) => evolve::run(args, &device()?, cli.quiet),
        Command::TrainDemo(args) => train_demo::run(args, &device()?, cli.quiet),
        Command::Completions(args) => shell::completions(args),
        Command::Man => shell::man(),
    }
}
