//! `convlens predict`: the top-K classes for each image.

use std::io::Write;
use std::path::PathBuf;

use convlens_shared::methods::predict::{ImagePredict, PredictParams};

use super::client::{Engine, EngineChoice};
use super::output;
use super::ModelArgs;

/// Arguments of `convlens predict`.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images (PNG, JPEG, WebP, BMP) or preprocessed .npy tensors.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many classes to show.
    #[arg(long, default_value_t = convlens_shared::defaults::predict::TOP)]
    top: usize,
    /// Print JSON: [{"image", "top": [{"class", "label", "prob"}]}].
    #[arg(long)]
    json: bool,
    /// Write the raw logits, float32 [N, classes], to this .npy file.
    #[arg(long)]
    npy: Option<PathBuf>,
}

/// Prints the predictions.
pub fn run(args: &PredictArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let params = PredictParams {
        model_id,
        images: args.images.iter().map(|p| engine.path_arg(p)).collect(),
        top: args.top,
        logits: args.npy.is_some(),
    };
    let result = engine.request::<ImagePredict>(&params, false)?;
    let mut out = std::io::stdout().lock();
    if let (Some(path), Some(logits)) = (&args.npy, &result.logits) {
        output::write_array_npy(logits, path)?;
    }
    if args.json {
        let records: Vec<serde_json::Value> = args
            .images
            .iter()
            .zip(&result.predictions)
            .map(|(p, t)| serde_json::json!({"image": p.display().to_string(), "top": t.top}))
            .collect();
        output::print_json!(&mut out, &records)?;
        return Ok(());
    }
    for (path, prediction) in args.images.iter().zip(&result.predictions) {
        writeln!(out, "{}", path.display())?;
        for c in &prediction.top {
            writeln!(
                out,
                "  {:>6.2}%  {:>4}  {}",
                c.prob * 100.0,
                c.class,
                c.label
            )?;
        }
    }
    Ok(())
}
