//! Forward pass and input gradient of resnet18, resnet50 and the demo model at 224×224, batch 1
//! and 8. `benches/peer/torch_engine.py` times the same in PyTorch on the same machine;
//! docs/PERFORMANCE.md gives both and their ratio.

use candle_core::{DType, Device, Tensor};
use convlens_models::graph::BackwardRule;
use convlens_models::{device::device_from_env, LoadOptions, Model};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

mod common;
use common::sync;

fn models(device: &Device) -> Vec<(&'static str, Model)> {
    ["random:resnet18", "random:resnet50", "demo"]
        .into_iter()
        .map(|spec| {
            let model = Model::load(spec, &LoadOptions::default(), device).expect("model loads");
            (spec.trim_start_matches("random:"), model)
        })
        .collect()
}

fn engine(c: &mut Criterion) {
    let device = device_from_env().expect("device");
    let mut group = c.benchmark_group("engine");
    group.sample_size(10);
    for (name, model) in models(&device) {
        for batch in [1usize, 8] {
            let x = Tensor::randn(0f32, 1f32, (batch, 3, 224, 224), &device).expect("input");
            group.bench_with_input(
                BenchmarkId::new(format!("forward/{name}"), batch),
                &x,
                |b, x| {
                    b.iter(|| {
                        let y = model.logits(x).expect("forward");
                        sync(&device);
                        y
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("input_gradient/{name}"), batch),
                &x,
                |b, x| {
                    b.iter(|| {
                        let trace = model.graph.forward(x, None).expect("forward");
                        let out = trace.output().expect("output");
                        let signal = out
                            .ones_like()
                            .expect("signal")
                            .to_dtype(DType::F32)
                            .expect("f32");
                        let g = model
                            .graph
                            .backward(
                                &trace,
                                model.graph.output_id(),
                                &signal,
                                0,
                                BackwardRule::Gradient,
                            )
                            .expect("backward");
                        sync(&device);
                        g
                    })
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
