//! Judging one explanation on resnet18 at 224×224: deletion and insertion (RISE: 224 pixels a
//! step, 225 forward passes a curve, in batches of 16) and the confidence change, for one map.
//! `benches/peer/evaluate_peer.py` times RISE's own procedure in PyTorch (one copy a forward
//! pass, as published, and batched by 16 like convlens) and pytorch-grad-cam's
//! `CamMultImageConfidenceChange` on the same; docs/PERFORMANCE.md gives both and their ratio.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) each runs once on a 32×32 input, to
//! check that the bench works without costing CI minutes.

use candle_core::{Device, Tensor};
use convlens_models::device::device_from_env;
use convlens_models::evaluate::confidence::{cam_multiplier, confidence_change};
use convlens_models::evaluate::{causal_curve, CausalMetric, CausalOptions};
use convlens_models::progress::Silent;
use convlens_models::{LoadOptions, Model};
use criterion::{criterion_group, criterion_main, Criterion};

/// The input side: 224 when benchmarking, 32 when cargo runs the bench as a test.
fn input_size() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        224
    } else {
        32
    }
}

fn sync(device: &Device) {
    device.synchronize().expect("device synchronizes");
}

fn evaluate_bench(c: &mut Criterion) {
    let device = device_from_env().expect("device");
    let mut group = c.benchmark_group("evaluate");
    group.sample_size(10);
    let model = Model::load("random:resnet18", &LoadOptions::default(), &device).expect("model");
    let s = input_size();
    let x = Tensor::randn(0f32, 1f32, (1, 3, s, s), &device).expect("input");
    // A map at the layer, as Grad-CAM gives (7×7 for 224 px).
    let map = Tensor::rand(0f32, 1f32, (7, 7), &device).expect("map");
    let relevance =
        convlens_models::evaluate::relevance::pixel_relevance(&map, s, s).expect("relevance");
    group.bench_function("deletion+insertion/resnet18", |b| {
        b.iter(|| {
            for metric in [CausalMetric::Deletion, CausalMetric::Insertion] {
                let options = CausalOptions::new(metric);
                causal_curve(&model, &x, &relevance, 0, &options, &Silent).expect("curve");
            }
            sync(&device);
        })
    });
    let cam = cam_multiplier(&map, s, s).expect("cam");
    group.bench_function("confidence-change/resnet18", |b| {
        b.iter(|| {
            let v = confidence_change(&model, &x, &cam, 0).expect("change");
            sync(&device);
            v
        })
    });
    group.finish();
}

criterion_group!(benches, evaluate_bench);
criterion_main!(benches);
