//! Times each node's forward step (convolutions summed directly) and backward step (the
//! gradient) on its own, summed by op class, to see where a pass spends its time:
//! `cargo run --release -p convlens-models --example layer_times -- SPEC BATCH [CLASS] [REPEATS]
//! [fastest]` (CLASS: only that op class, e.g. `MaxPool2d`, each of its nodes listed; each median
//! of REPEATS runs, 5 by default; `fastest`: forward steps by `Convolutions::Fastest`).

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::{Device, Tensor};
use convlens_models::graph::BackwardRule;
use convlens_models::ops::Convolutions;
use convlens_models::{LoadOptions, Model};

/// The median milliseconds of `repeats` runs of `f`, after one run to warm it.
fn median_ms(
    repeats: usize,
    f: &dyn Fn() -> candle_core::Result<()>,
) -> Result<f64, Box<dyn std::error::Error>> {
    f()?;
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    convlens_models::process::prepare();
    let args: Vec<String> = std::env::args().collect();
    let spec = args.get(1).map_or("random:resnet18", String::as_str);
    let batch: usize = args.get(2).map_or(Ok(8), |s| s.parse())?;
    let only = args.get(3).filter(|c| c.as_str() != "all");
    let repeats: usize = args.get(4).map_or(Ok(5), |s| s.parse())?;
    let convolutions = match args.get(5).map(String::as_str) {
        Some("fastest") => Convolutions::Fastest,
        _ => Convolutions::Direct,
    };
    let device = Device::Cpu;
    let model = Model::load(spec, &LoadOptions::default(), &device)?;
    let x = Tensor::randn(0f32, 1f32, (batch, 3, 224, 224), &device)?;
    let trace = model.graph.forward(&x, None)?;
    let mut by_class: BTreeMap<&str, (f64, f64, usize)> = BTreeMap::new();
    for (id, node) in model.graph.nodes().iter().enumerate().skip(1) {
        let class = node.op.class_name();
        if only.is_some_and(|o| o != class) {
            continue;
        }
        let inputs = node
            .inputs
            .iter()
            .map(|&i| trace.get(i).ok_or("an input the full trace lacks"))
            .collect::<Result<Vec<&Tensor>, _>>()?;
        let output = trace.get(id).ok_or("an output the full trace lacks")?;
        let signal = output.randn_like(0.0, 1.0)?;
        let forward = median_ms(repeats, &|| {
            node.op.forward_by(&inputs, convolutions).map(drop)
        })?;
        let backward = median_ms(repeats, &|| {
            node.op
                .backward(&inputs, output, &signal, BackwardRule::Gradient)
                .map(drop)
        })?;
        if only.is_some() {
            println!(
                "{id:4} {:?} -> {:?}: forward {forward:7.2} ms, backward {backward:7.2} ms",
                inputs.first().map(|t| t.dims()),
                output.dims()
            );
        }
        let entry = by_class.entry(class).or_default();
        entry.0 += forward;
        entry.1 += backward;
        entry.2 += 1;
    }
    let (mut forward, mut backward) = (0.0, 0.0);
    for (class, (f, b, count)) in &by_class {
        println!("{class:20} ×{count:3}: forward {f:7.2} ms, backward {b:7.2} ms");
        forward += f;
        backward += b;
    }
    println!("{spec} batch {batch}: forward {forward:.1} ms, backward {backward:.1} ms");
    Ok(())
}
