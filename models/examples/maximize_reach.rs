//! How far each activation-maximization preset drives a class logit, a channel's mean and a
//! neuron on the demo model, at the presets' own step counts: prints the markdown table of
//! docs/GALLERY.md ("How far each preset drives its objective").
//!
//! `cargo run --release -p convlens-models --example maximize_reach -- [SIZE] [CLASS] [LAYER] [UNIT]`
//! (defaults 224, 1, `_blocks.10`, 5: the objectives of models/tests/maximize.rs).
//!
//! The scale of an objective is its size at the mean image (`Objective::scale_at_mean_image`:
//! the mean |logit| over classes for a class, the mean |activation| of the channel over
//! positions for a channel or a neuron). The gain is the end over the larger of the start and
//! that scale, as the tests measure it.

use candle_core::Device;
use convlens_models::maximize::{maximize, MaximizeOptions, Objective, Preset};
use convlens_models::progress::Silent;
use convlens_models::{LoadOptions, Model};

/// Any error, printed as is.
type AnyResult<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> AnyResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let size: usize = args.first().map_or(Ok(224), |s| s.parse())?;
    let class: usize = args.get(1).map_or(Ok(1), |s| s.parse())?;
    let layer = args.get(2).cloned().unwrap_or_else(|| "_blocks.10".into());
    let unit: usize = args.get(3).map_or(Ok(5), |s| s.parse())?;
    let model = Model::load("demo", &LoadOptions::default(), &Device::Cpu)?;
    let objectives = [
        Objective::Class(class),
        Objective::Channel {
            layer: layer.clone(),
            unit,
        },
        Objective::Neuron { layer, unit },
    ];
    println!("| objective | preset | steps | start | end | scale | end / max(start, scale) |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for objective in &objectives {
        let s = objective.scale_at_mean_image(&model, size)?;
        for &preset in Preset::ALL {
            let options = MaximizeOptions {
                objective: objective.clone(),
                preset,
                seed: 7,
                size: Some(size),
                ..Default::default()
            };
            let started = std::time::Instant::now();
            let result = maximize(&model, &options, &Silent)?;
            let (start, end) = (result.start_values[0], result.final_values[0]);
            eprintln!(
                "{} {}: {:.1} s",
                objective.describe(),
                preset.name(),
                started.elapsed().as_secs_f32()
            );
            println!(
                "| {} | `{}` | {} | {start:.2} | {end:.2} | {s:.3} | {:.1}× |",
                objective.describe(),
                preset.name(),
                result.steps,
                end / start.max(s)
            );
        }
    }
    Ok(())
}
