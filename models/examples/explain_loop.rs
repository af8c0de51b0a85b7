//! Runs one explanation method in a loop, for a profiler to sample or to time two builds
//! against each other: `cargo run --release -p convlens-models --example explain_loop --
//! SPEC METHOD SECONDS`; prints the median time of one `explain` call on a 224×224 input.

use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use convlens_models::explain::{explain, ExplainOptions, Method};
use convlens_models::{LoadOptions, Model};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    convlens_models::process::prepare();
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map_or("random:resnet18", String::as_str);
    let method: Method = args.get(2).map_or("smoothgrad", String::as_str).parse()?;
    let seconds: u64 = args.get(3).map_or(Ok(10), |s| s.parse())?;
    let device = Device::Cpu;
    let model = Model::load(spec, &LoadOptions::default(), &device)?;
    let x = Tensor::randn(0f32, 1f32, (1, 3, 224, 224), &device)?;
    let options = ExplainOptions {
        method,
        ..Default::default()
    };
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut times = Vec::new();
    while Instant::now() < end || times.is_empty() {
        let t = Instant::now();
        explain(&model, &x, &options)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{spec} {method}: median {median:.1} ms over {} runs",
        times.len()
    );
    Ok(())
}
