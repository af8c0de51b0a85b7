//! `convlens layers`: the module tree with output shapes and parameter counts.

use std::io::Write;

use convlens_models::graph::LayerInfo;
use convlens_shared::methods::model::{LayersParams, ModelLayers};

use super::client::{Engine, EngineChoice};
use super::output;
use super::ModelArgs;

/// Arguments of `convlens layers`.
#[derive(clap::Args, Debug)]
pub struct LayersArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Square input size the shapes are computed for (default: the model's own, 224 for the
    /// ImageNet models, 28 for small-vgg and small-resnet).
    #[arg(long)]
    input_size: Option<usize>,
    /// Print JSON instead of a tree.
    #[arg(long)]
    json: bool,
}

/// Prints the layer tree.
pub fn run(args: &LayersArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    let model_id = engine.load_model(&args.model)?;
    let tree = engine.request::<ModelLayers>(
        &LayersParams {
            model_id,
            input_size: args.input_size.unwrap_or(0),
        },
        false,
    )?;
    let layers: Vec<LayerInfo> = tree
        .layers
        .into_iter()
        .map(|l| LayerInfo {
            path: l.path,
            class_name: l.class_name,
            depth: l.depth,
            output_shape: l.output_shape,
            params: l.params,
            is_leaf: l.is_leaf,
            node: l.node,
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "arch": tree.arch,
            "inputSize": tree.input_size,
            "totalParams": tree.total_params,
            "layers": layers,
        });
        output::print_json!(&mut out, &value)?;
        return Ok(());
    }
    writeln!(
        out,
        "{} ({}), input 1x{}x{}x{}",
        tree.arch, args.model.model, tree.channels, tree.input_size, tree.input_size
    )?;
    for layer in &layers {
        let indent = "  ".repeat(layer.depth);
        let shape = format!("{:?}", layer.output_shape);
        let label = format!("{indent}{} ({})", layer.path, layer.class_name);
        writeln!(
            out,
            "{label:<56} {shape:<22} {:>12}",
            group_digits(layer.params)
        )?;
    }
    writeln!(out, "total parameters: {}", group_digits(tree.total_params))?;
    if layers.iter().any(|l| l.path.contains('#')) {
        writeln!(
            out,
            "(`name#k`: the k-th call of a module used more than once, such as one activation \
             module applied after two convolutions; every subcommand's --layer takes these names, \
             and a module path stands for its last layer)"
        )?;
    }
    Ok(())
}

/// 1234567 → "1,234,567".
fn group_digits(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
