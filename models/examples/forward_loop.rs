//! Runs one model's forward pass (or input gradient) in a loop, for a profiler to sample:
//! `cargo run --release -p convlens-models --example forward_loop -- SPEC BATCH SECONDS [MODE]`,
//! MODE one of `fastest` (the logits' pass, the default), `direct` (the pass a gradient
//! follows) and `gradient` (that pass and the input gradient; the backward step's own median is
//! printed beside).

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use convlens_models::graph::BackwardRule;
use convlens_models::ops::Convolutions;
use convlens_models::{LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    convlens_models::process::prepare();
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map_or("random:resnet50", String::as_str);
    let batch: usize = args.get(2).map_or(Ok(8), |s| s.parse())?;
    let seconds: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let mode = args.get(4).map_or("fastest", String::as_str);
    if !["fastest", "direct", "gradient"].contains(&mode) {
        return Err(format!("unknown mode {mode}: fastest, direct or gradient").into());
    }
    let device = Device::Cpu;
    let model = Model::load(spec, &LoadOptions::default(), &device)?;
    let x = Tensor::randn(0f32, 1f32, (batch, 3, 224, 224), &device)?;
    let output = model.graph.output_id();
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut runs = 0;
    let mut times = Vec::new();
    let mut backward_times = Vec::new();
    while Instant::now() < end {
        let t = Instant::now();
        match mode {
            "gradient" => {
                let trace = model.graph.forward_for_gradient(&x, &[output])?;
                let y = trace.output().ok_or("no output")?;
                let signal = y.ones_like()?;
                let b = Instant::now();
                model
                    .graph
                    .backward(&trace, output, &signal, 0, BackwardRule::Gradient)?;
                backward_times.push(b.elapsed().as_secs_f64() * 1e3);
            }
            "direct" => {
                model.logits_by(&x, Convolutions::Direct)?;
            }
            _ => {
                model.logits(&x)?;
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
        runs += 1;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let backward = if backward_times.is_empty() {
        String::new()
    } else {
        format!(" (backward {:.2} ms)", median(&mut backward_times))
    };
    println!(
        "{spec} batch {batch} {mode}: {runs} runs, median {:.2} ms{backward}",
        median(&mut times)
    );
    Ok(())
}
