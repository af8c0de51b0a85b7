//! Forward pass and input gradient of resnet18, resnet50 and the demo model at 224×224, batch 1
//! and 8. `benches/peer/torch_engine.py` times the same in PyTorch on the same machine;
//! docs/PERFORMANCE.md gives both and their ratio.
//!
//! Before them, one JSON line per model: the convolutions' achieved GFLOP/s in a batch-8 forward
//! pass (each Conv2d node timed alone on its traced input, best of 3), beside the sgemm peak of
//! the same GEMM library (the `gemm` crate, called as the convolutions call it) on a 1024³
//! product and on a resnet's layer4 product at batch 16.
//!
//! Then one JSON line per model and batch: the forward pass by the fastest convolutions
//! (Winograd where it pays) and by the direct sum, timed alternately (medians of 15 rounds each),
//! so that the machine's drift between criterion's cases does not enter their ratio.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use convlens_models::graph::BackwardRule;
use convlens_models::ops::Op;
use convlens_models::{device::device_from_env, LoadOptions, Model};
use criterion::{criterion_group, BenchmarkId, Criterion};

mod common;
use common::{benchmarking, input_size, sync};

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
            // The same pass with every convolution summed directly (no Winograd): what a pass
            // that a gradient follows runs.
            group.bench_with_input(
                BenchmarkId::new(format!("forward_direct/{name}"), batch),
                &x,
                |b, x| {
                    b.iter(|| {
                        let y = model.graph.forward(x, Some(&[])).expect("forward");
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
                        let trace = model
                            .graph
                            .forward_for_gradient(x, &[model.graph.output_id()])
                            .expect("forward");
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

/// The best of `runs` timings of `f`, in seconds.
fn best_of(runs: usize, device: &Device, mut f: impl FnMut()) -> f64 {
    (0..runs.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            sync(device);
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

/// GFLOP/s of an [m, k]·[k, n] product: on the CPU by the `gemm` crate, called as the
/// convolutions call it (row-major, every rayon thread; candle's matmul over the same crate
/// measured half of that on an AVX-512 machine); on a GPU by candle's matmul.
fn sgemm_gflops(device: &Device, (m, k, n): (usize, usize, usize), runs: usize) -> f64 {
    if !device.is_cpu() {
        let a = Tensor::randn(0f32, 1f32, (m, k), device).expect("lhs");
        let b = Tensor::randn(0f32, 1f32, (k, n), device).expect("rhs");
        let t = best_of(runs, device, || {
            a.matmul(&b).expect("matmul");
        });
        return 2.0 * (m * k * n) as f64 / t / 1e9;
    }
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0f32; m * n];
    let parallelism = match rayon::current_num_threads() {
        1 => gemm::Parallelism::None,
        threads => gemm::Parallelism::Rayon(threads),
    };
    let t = best_of(runs, device, || {
        // SAFETY: row-major [m, k]·[k, n] into [m, n], strides and lengths as allocated above.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        }
    });
    2.0 * (m * k * n) as f64 / t / 1e9
}

/// Prints the convolutions' achieved GFLOP/s beside the sgemm peak (not a criterion bench:
/// one JSON line per model).
fn convolution_throughput(_: &mut Criterion) {
    let device = device_from_env().expect("device");
    let (runs, size) = if benchmarking() {
        (3, 224)
    } else {
        (1, input_size(32))
    };
    let scale = if benchmarking() { 1 } else { 8 };
    let square = 1024 / scale;
    let peak = sgemm_gflops(&device, (square, square, square), runs);
    let layer4 = sgemm_gflops(&device, (512 / scale, 4608 / scale, 784 / scale), runs);
    for (name, model) in models(&device) {
        let x = Tensor::randn(0f32, 1f32, (8, 3, size, size), &device).expect("input");
        let trace = model.graph.forward(&x, None).expect("forward");
        let (mut flops, mut seconds) = (0f64, 0f64);
        for (id, node) in model.graph.nodes().iter().enumerate() {
            let Op::Conv2d(conv) = &node.op else { continue };
            let input = trace.get(node.inputs[0]).expect("traced input");
            let output = trace.get(id).expect("traced output");
            let (kh, kw) = conv.kernel_size();
            let per_output = 2 * kh * kw * conv.in_channels() / conv.groups.max(1);
            flops += (output.elem_count() * per_output) as f64;
            seconds += best_of(runs, &device, || {
                conv.forward(input).expect("convolution");
            });
        }
        println!(
            "{{\"bench\": \"conv_throughput\", \"model\": \"{name}\", \"batch\": 8, \"size\": {size}, \
             \"conv_ms\": {:.1}, \"conv_gflops\": {:.1}, \"sgemm_1024_gflops\": {peak:.1}, \
             \"sgemm_layer4_gflops\": {layer4:.1}}}",
            seconds * 1e3,
            flops / seconds / 1e9
        );
    }
}

/// The median of `samples`.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Prints the forward pass by the fastest convolutions beside the direct sum, timed alternately
/// (not a criterion bench: one JSON line per model and batch).
fn forward_interleaved(_: &mut Criterion) {
    let device = device_from_env().expect("device");
    let (rounds, size) = if benchmarking() {
        (15, 224)
    } else {
        (1, input_size(32))
    };
    for (name, model) in models(&device) {
        for batch in [1usize, 8] {
            let x = Tensor::randn(0f32, 1f32, (batch, 3, size, size), &device).expect("input");
            let (mut fastest, mut direct) = (vec![], vec![]);
            for _ in 0..rounds {
                fastest.push(best_of(1, &device, || {
                    model.logits(&x).expect("forward");
                }));
                direct.push(best_of(1, &device, || {
                    model.graph.forward(&x, Some(&[])).expect("forward");
                }));
            }
            let (fastest, direct) = (median(fastest), median(direct));
            println!(
                "{{\"bench\": \"forward_interleaved\", \"model\": \"{name}\", \"batch\": {batch}, \
                 \"size\": {size}, \"rounds\": {rounds}, \"fastest_ms\": {:.2}, \"direct_ms\": {:.2}, \
                 \"direct_over_fastest\": {:.2}}}",
                fastest * 1e3,
                direct * 1e3,
                direct / fastest
            );
        }
    }
}

criterion_group!(benches, convolution_throughput, forward_interleaved, engine);

fn main() {
    // What `convlens` does first: candle's idle workers sleep, freed memory is held for reuse.
    convlens_models::process::prepare();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
