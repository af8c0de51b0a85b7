//! Runs one model's forward pass (or input gradient) in a loop, for a profiler to sample:
//! `cargo run --release -p convlens-models --example forward_loop -- SPEC BATCH SECONDS [gradient]`.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use convlens_models::graph::BackwardRule;
use convlens_models::{LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    convlens_models::candle_pool::park_idle_workers();
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map_or("random:resnet50", String::as_str);
    let batch: usize = args.get(2).map_or(Ok(8), |s| s.parse())?;
    let seconds: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let gradient = args.get(4).is_some_and(|s| s == "gradient");
    let device = Device::Cpu;
    let model = Model::load(spec, &LoadOptions::default(), &device)?;
    let x = Tensor::randn(0f32, 1f32, (batch, 3, 224, 224), &device)?;
    let output = model.graph.output_id();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0;
    let mut times = Vec::new();
    while Instant::now() < end {
        let t = Instant::now();
        if gradient {
            let trace = model.graph.forward_for_gradient(&x, &[output])?;
            let y = trace.output().ok_or("no output")?;
            let signal = y.ones_like()?;
            model
                .graph
                .backward(&trace, output, &signal, 0, BackwardRule::Gradient)?;
        } else {
            model.logits(&x)?;
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        runs += 1;
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{spec} batch {batch}: {runs} runs, median {:.2} ms",
        times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
