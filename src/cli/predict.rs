//! `convlens predict`: the top-K classes for each image.

use std::path::PathBuf;

use std::io::Write;

use candle_core::{Device, Tensor};
use convlens_models::input::load_input;

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
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// Print JSON: [{"image", "top": [{"class", "label", "prob"}]}].
    #[arg(long)]
    json: bool,
    /// Write the raw logits, float32 [N, classes], to this .npy file.
    #[arg(long)]
    npy: Option<PathBuf>,
}

/// Prints the predictions.
pub fn run(args: &PredictArgs, device: &Device) -> anyhow::Result<()> {
    let model = args.model.load(device)?;
    let mut out = std::io::stdout().lock();
    let inputs = args
        .images
        .iter()
        .map(|p| load_input(p, &model.preprocess, device))
        .collect::<Result<Vec<Tensor>, _>>()?;
    let same_shape = inputs.windows(2).all(|w| w[0].dims() == w[1].dims());
    let logits = if same_shape {
        model.logits(&Tensor::cat(&inputs, 0)?)?
    } else {
        let rows = inputs
            .iter()
            .map(|x| model.logits(x))
            .collect::<Result<Vec<_>, _>>()?;
        Tensor::cat(&rows, 0)?
    };
    if let Some(path) = &args.npy {
        logits
            .to_device(&Device::Cpu)?
            .write_npy(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let top = model.top_k(&logits, args.top)?;
    if args.json {
        let records: Vec<serde_json::Value> = args
            .images
            .iter()
            .zip(&top)
            .map(|(p, t)| serde_json::json!({"image": p.display().to_string(), "top": t}))
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&records)?)?;
        return Ok(());
    }
    for (path, classes) in args.images.iter().zip(&top) {
        writeln!(out, "{}", path.display())?;
        for c in classes {
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
