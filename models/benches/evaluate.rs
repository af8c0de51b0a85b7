//! Judging one explanation on resnet18 at 224×224: deletion and insertion (RISE: 224 pixels a
//! step, 225 forward passes a curve, in batches of 16), the confidence change, ROAD combined
//! (both orders at the percentiles 10..90: 18 imputations, 18 copies) and infidelity (10
//! perturbations), for one map.
//! `benches/peer/evaluate_peer.py` times RISE's own procedure in PyTorch (one copy a forward
//! pass, as published, and batched by 16 like convlens) and pytorch-grad-cam's
//! `CamMultImageConfidenceChange` on the same; docs/PERFORMANCE.md gives both and their ratio.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) each runs once on a 32×32 input, to
//! check that the bench works without costing CI minutes.

use candle_core::Tensor;
use convlens_models::device::device_from_env;
use convlens_models::evaluate::confidence::{cam_multiplier, confidence_change};
use convlens_models::evaluate::infidelity::{infidelity, infidelity_perturbations};
use convlens_models::evaluate::relevance::input_attribution;
use convlens_models::evaluate::road::{road, road_combined, RoadOptions, RoadOrder};
use convlens_models::evaluate::{causal_curve, CausalMetric, CausalOptions};
use convlens_models::progress::Silent;
use convlens_models::{LoadOptions, Model};
use criterion::{criterion_group, Criterion};

mod common;
use common::{input_size, sync};

fn evaluate_bench(c: &mut Criterion) {
    let device = device_from_env().expect("device");
    let mut group = c.benchmark_group("evaluate");
    group.sample_size(10);
    let model = Model::load("random:resnet18", &LoadOptions::default(), &device).expect("model");
    let s = input_size(32);
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
    group.bench_function("road-combined/resnet18", |b| {
        b.iter(|| {
            let options = RoadOptions::default();
            let most = road(
                &model,
                &x,
                &cam,
                0,
                RoadOrder::MostRelevantFirst,
                &options,
                &Silent,
            )
            .expect("morf");
            let least = road(
                &model,
                &x,
                &cam,
                0,
                RoadOrder::LeastRelevantFirst,
                &options,
                &Silent,
            )
            .expect("lerf");
            sync(&device);
            road_combined(&most, &least)
        })
    });
    let attribution = input_attribution(&map, 3, s, s).expect("attribution");
    group.bench_function("infidelity/resnet18", |b| {
        b.iter(|| {
            let noise = infidelity_perturbations(x.dims(), 10, 0.003, 0, &device).expect("noise");
            let v = infidelity(&model, &x, &attribution, 0, &noise, true, 16).expect("infidelity");
            sync(&device);
            v
        })
    });
    group.finish();
}

criterion_group!(benches, evaluate_bench);

fn main() {
    // What `convlens` does first: candle's idle workers sleep, freed memory is held for reuse.
    convlens_models::process::prepare();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
