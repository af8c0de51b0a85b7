//! Time of one activation-maximization step on the demo model (EfficientNet-Lite0), per preset
//! family: `lucid` (Fourier parameter, decorrelated colour, random transforms, normalization,
//! forward + backward, Adam) and `yosinski3` (pixel ascent: forward + backward, decay, blur).
//!
//! Each benchmark runs `maximize` with a short and a long step count; one step is
//! (long − short) / (long steps − short steps), which cancels the setup (loading nothing, but
//! one forward pass of the starting image and one of the result). `benches/peer/
//! maximize_step.py` times the same Lucent step (torch-lucent's `param.image`, its standard
//! transforms, Adam at 0.05) on the same machine.
//!
//!     cargo bench -p convlens-models --bench maximize
//!     CONVLENS_DEVICE=cuda cargo bench -p convlens-models --features cuda --bench maximize
//!
//! Under `cargo test --all-targets` (no `--bench` argument) each benchmark runs once at 48
//! pixels and 1 or 2 steps, so that CI stays fast.

use convlens_models::device::device_from_env;
use convlens_models::maximize::{maximize, MaximizeOptions, Objective, Preset};
use convlens_models::progress::Silent;
use convlens_models::{LoadOptions, Model};
use criterion::{BenchmarkId, Criterion};

mod common;
use common::benchmarking;

fn bench(c: &mut Criterion) {
    let device = device_from_env().expect("device");
    let model = Model::load("demo", &LoadOptions::default(), &device).expect("demo loads");
    let (size, counts) = if benchmarking() {
        (224, [2usize, 12])
    } else {
        (48, [1, 2])
    };
    let mut group = c.benchmark_group("maximize");
    group.sample_size(10);
    for preset in [Preset::Lucid, Preset::Yosinski3] {
        for images in [1usize, 4] {
            for steps in counts {
                let options = MaximizeOptions {
                    objective: Objective::Class(309),
                    preset,
                    steps: Some(steps),
                    size: Some(size),
                    images,
                    // The diversity term is its own cost; these time the plain step at batch N.
                    diversity_weight: 0.0,
                    ..Default::default()
                };
                group.bench_with_input(
                    BenchmarkId::new(format!("{}/batch{images}", preset.name()), steps),
                    &options,
                    |b, options| {
                        b.iter(|| {
                            let result = maximize(&model, options, &Silent).expect("maximize");
                            device.synchronize().expect("sync");
                            result.final_values
                        })
                    },
                );
            }
        }
    }
    group.finish();
}

fn main() {
    // What `convlens` does first: candle's idle workers sleep, freed memory is held for reuse.
    convlens_models::process::prepare();
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
