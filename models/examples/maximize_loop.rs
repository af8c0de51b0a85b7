//! Times activation-maximization steps on the demo model, to compare two builds in
//! alternation: `cargo run --release -p convlens-models --example maximize_loop -- PRESET
//! IMAGES ROUNDS`; each round runs 2 and 12 steps at 224 px, and the median over the rounds of
//! (12-step time − 2-step time) / 10 is printed as one step's time (the setup cancels).

use std::time::Instant;

use candle_core::Device;
use convlens_models::maximize::{maximize, MaximizeOptions, Objective, Preset};
use convlens_models::progress::Silent;
use convlens_models::{LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    convlens_models::process::prepare();
    let args: Vec<String> = std::env::args().collect();
    let preset: Preset = args.get(1).map_or("lucid", String::as_str).parse()?;
    let images: usize = args.get(2).map_or(Ok(4), |s| s.parse())?;
    let rounds: usize = args.get(3).map_or(Ok(3), |s| s.parse())?;
    let model = Model::load("demo", &LoadOptions::default(), &Device::Cpu)?;
    let run = |steps: usize| -> Result<f64, Box<dyn std::error::Error>> {
        let options = MaximizeOptions {
            objective: Objective::Class(309),
            preset,
            steps: Some(steps),
            size: Some(224),
            images,
            diversity_weight: 0.0,
            ..Default::default()
        };
        let t = Instant::now();
        maximize(&model, &options, &Silent)?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    let mut steps = Vec::new();
    for _ in 0..rounds.max(1) {
        let short = run(2)?;
        let long = run(12)?;
        steps.push((long - short) / 10.0);
    }
    steps.sort_by(f64::total_cmp);
    println!(
        "{} batch {images}: one step {:.1} ms (median of {} rounds)",
        preset.name(),
        steps[steps.len() / 2],
        steps.len()
    );
    Ok(())
}
