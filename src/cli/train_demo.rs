//! `convlens train-demo`: trains small-vgg or small-resnet on Fashion-MNIST, writing a checkpoint
//! every N steps (see `convlens_models::train::checkpoint` for the folder's layout), so that a
//! network can be watched while it learns.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use convlens_models::progress::FnProgress;
use convlens_models::train::checkpoint::LATEST;
use convlens_models::train::dataset::DEBIAN_DIR;
use convlens_models::train::{
    train, CheckpointWriter, FashionMnist, Metrics, SmallArch, TrainConfig,
};
use indicatif::{ProgressBar, ProgressStyle};

/// The architectures `--arch` accepts.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ArchChoice {
    /// Five 3×3 conv + BN + ReLU layers, two max pools, global average pool, Linear.
    SmallVgg,
    /// A 3×3 stem, three stages of two basic blocks (16, 32, 64 channels), GAP, Linear.
    SmallResnet,
}

/// Arguments of `convlens train-demo`.
#[derive(clap::Args, Debug)]
pub struct TrainDemoArgs {
    /// The folder holding Fashion-MNIST's IDX files (train-images-idx3-ubyte.gz, ...).
    #[arg(long, default_value = DEBIAN_DIR)]
    pub data: PathBuf,
    /// Where checkpoints go: checkpoint.safetensors (latest, replaced atomically),
    /// step-NNNNNN.safetensors, their .json metrics, metrics.jsonl.
    #[arg(long, default_value = "convlens-train")]
    pub out: PathBuf,
    /// Write a checkpoint every N steps (and at the end of each epoch).
    #[arg(long, default_value_t = 200)]
    pub every: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// The architecture.
    #[arg(long, value_enum, default_value = "small-vgg")]
    pub arch: ArchChoice,
    /// Stop after this many steps.
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Peak learning rate of AdamW (decayed along a cosine to 0).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Evaluate on the first N test images at each checkpoint (all by default).
    #[arg(long)]
    pub eval_images: Option<usize>,
    /// Seeds the initial weights and the order of the images.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `convlens train-demo`.
pub fn run(args: &TrainDemoArgs, device: &candle_core::Device, quiet: bool) -> anyhow::Result<()> {
    let data = FashionMnist::load(&args.data)?;
    let arch = match args.arch {
        ArchChoice::SmallVgg => SmallArch::Vgg,
        ArchChoice::SmallResnet => SmallArch::Resnet,
    };
    let config = TrainConfig {
        arch,
        epochs: args.epochs,
        max_steps: args.steps,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        every: args.every,
        eval_images: args.eval_images,
        seed: args.seed,
        ..TrainConfig::default()
    };
    let writer = CheckpointWriter::create(&args.out)?;
    eprintln!(
        "training {} on {} images ({} test) from {}, checkpoints in {}",
        arch.name(),
        data.train.len(),
        data.test.len(),
        args.data.display(),
        args.out.display()
    );
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} steps · {per_sec} · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(500));
    let progress = FnProgress(|done: usize, total: usize, message: &str| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(message.to_string());
        Ok(())
    });
    let mut observer = |m: &Metrics| bar.suspend(|| println!("{}", describe(m)));
    let result = train(&config, &data, device, &writer, &mut observer, &progress);
    bar.finish_and_clear();
    let (_, summary) = result.context("training stopped")?;
    if let Some(last) = summary.history.last() {
        if let Some(accuracy) = last.test_accuracy {
            println!(
                "test accuracy after {} steps: {:.2} % on {} test images",
                last.step,
                accuracy * 100.0,
                last.test_images
            );
        }
    }
    println!("latest checkpoint: {}", args.out.join(LATEST).display());
    Ok(())
}

/// One line per checkpoint.
fn describe(m: &Metrics) -> String {
    let test = match m.test_accuracy {
        Some(a) => format!("test {:.2} % ({} images)", a * 100.0, m.test_images),
        None => "no test images".to_string(),
    };
    format!(
        "step {} (epoch {}): loss {:.4}, train {:.2} %, {test} → {}",
        m.step,
        m.epoch,
        m.loss,
        m.train_accuracy * 100.0,
        m.checkpoint
    )
}
