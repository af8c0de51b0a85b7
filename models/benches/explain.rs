//! Explanations of one 224×224 image on resnet18 and the demo model: Grad-CAM and its family
//! (Grad-CAM++, XGrad-CAM, Layer-CAM, Eigen-CAM), Score-CAM, saliency, guided backprop,
//! SmoothGrad (50 samples), Integrated Gradients (50 steps), occlusion (window 16, stride 8),
//! DeepLift and GradientShap (50 samples, the zero baseline), LRP's three composites, each with
//! convlens' defaults (batches of 16). `benches/peer/explain_peer.py` times Captum, pytorch-grad-cam and
//! zennit on the same; docs/PERFORMANCE.md gives both and their ratio.
//!
//! `CONVLENS_BENCH_METHODS=gradcam,saliency` limits the methods (Score-CAM and occlusion take
//! seconds per run on a CPU). Under `cargo test --all-targets` (no `--bench` argument) each
//! method runs once on a 64×64 input, to check that the bench works without costing CI minutes.

use candle_core::Tensor;
use convlens_models::device::device_from_env;
use convlens_models::explain::{explain, ExplainOptions, Method};
use convlens_models::{LoadOptions, Model};
use criterion::{criterion_group, BenchmarkId, Criterion};

mod common;
use common::{input_size, sync};

const METHODS: [&str; 16] = [
    "gradcam",
    "gradcam++",
    "xgradcam",
    "layercam",
    "eigencam",
    "scorecam",
    "saliency",
    "guided-backprop",
    "smoothgrad",
    "integrated-gradients",
    "occlusion",
    "deeplift",
    "gradient-shap",
    "lrp-epsilon-plus-flat",
    "lrp-epsilon-gamma-box",
    "lrp-epsilon-alpha2-beta1",
];

fn methods() -> Vec<&'static str> {
    match std::env::var("CONVLENS_BENCH_METHODS") {
        Ok(list) => METHODS
            .into_iter()
            .filter(|m| list.split(',').any(|w| w == *m))
            .collect(),
        Err(_) => METHODS.to_vec(),
    }
}

fn explain_bench(c: &mut Criterion) {
    let device = device_from_env().expect("device");
    let mut group = c.benchmark_group("explain");
    group.sample_size(10);
    for spec in ["random:resnet18", "demo"] {
        let model = Model::load(spec, &LoadOptions::default(), &device).expect("model loads");
        let name = spec.trim_start_matches("random:");
        let x = Tensor::randn(0f32, 1f32, (1, 3, input_size(64), input_size(64)), &device)
            .expect("input");
        for method in methods() {
            let options = ExplainOptions {
                method: method.parse::<Method>().expect("method"),
                ..Default::default()
            };
            group.bench_with_input(BenchmarkId::new(method, name), &x, |b, x| {
                b.iter(|| {
                    let e = explain(&model, x, &options).expect("explain");
                    sync(&device);
                    e
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, explain_bench);

fn main() {
    // What `convlens` does first: candle's idle workers sleep, freed memory is held for reuse.
    convlens_models::process::prepare();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
