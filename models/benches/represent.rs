//! Representation benchmarks; `benches/peer/represent_peer.py` times the same in PyTorch and
//! scikit-learn on the same machine.
//!
//! - `embed/demo/B`: images per second for the folder pass (decode, preprocess to 224×224, forward
//!   pass, per-unit summary of the penultimate layer; no cache) of the bundled demo model over the
//!   first `CONVLENS_BENCH_IMAGES` (default 64) images of tests/fixtures/fashion_folder, at batch
//!   B = 1, 8, 32 (criterion).
//! - t-SNE seconds for `CONVLENS_BENCH_TSNE_SIZES` points (default `5000,20000`), 50-D, ten
//!   synthetic clusters (`synthetic_tensor`, the twin of tests/fixtures/synthetic.py, so the peer
//!   script maps the same points), one run each with 1 thread (reproducible) and every core,
//!   printed as JSON lines `{"bench": "tsne", "points", "threads", "seconds", "exact"}`. One run
//!   because a 20 000-point map takes tens of seconds, too long for criterion's ten samples.
//!
//! Under `cargo test --all-targets` (no `--bench` argument) the defaults shrink to 2 images and
//! 100 points. Quick check of the benchmark itself: `CONVLENS_BENCH_IMAGES=4 CONVLENS_BENCH_TSNE_SIZES=300 cargo bench -p
//! convlens-models --bench represent -- --warm-up-time 0.1 --measurement-time 0.1`.

use std::path::PathBuf;
use std::time::Instant;

use candle_core::Device;
use convlens_models::device::device_from_env;
use convlens_models::progress::Silent;
use convlens_models::represent::codes::summarize_files;
use convlens_models::represent::tsne::{tsne, TsneOptions};
use convlens_models::represent::SummaryOptions;
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::{LoadOptions, Model};
use criterion::{BenchmarkId, Criterion, Throughput};

mod common;
use common::benchmarking;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn images(count: usize) -> Vec<PathBuf> {
    let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fashion_folder");
    let mut files: Vec<PathBuf> = std::fs::read_to_string(folder.join("labels.csv"))
        .expect("labels.csv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .map(|p| folder.join(p))
        .collect();
    files.truncate(count);
    files
}

fn embed(c: &mut Criterion, device: &Device) {
    let model = Model::load("demo", &LoadOptions::default(), device).expect("demo model");
    let default = if benchmarking() { "64" } else { "2" };
    let count = env_list("CONVLENS_BENCH_IMAGES", default)
        .first()
        .copied()
        .unwrap_or(64);
    let files = images(count);
    let mut group = c.benchmark_group("embed");
    group.sample_size(10);
    group.throughput(Throughput::Elements(files.len() as u64));
    for (batch, prefetch) in [(1usize, true), (8, true), (32, true), (32, false)] {
        let options = SummaryOptions {
            layer: None,
            batch,
            cache_dir: None,
            preprocess: None,
            prefetch,
        };
        // `demo/32` reads ahead (the default); `demo-in-turn/32` decodes between forward passes.
        let name = if prefetch { "demo" } else { "demo-in-turn" };
        group.bench_with_input(BenchmarkId::new(name, batch), &options, |b, options| {
            b.iter(|| {
                let s = summarize_files(&model, &files, options, &Silent).expect("embed");
                device.synchronize().expect("sync");
                s
            })
        });
    }
    group.finish();
}

/// `n` points in 50-D around ten cluster centres, as represent_peer.py makes them.
pub fn cluster_points(n: usize) -> Vec<f32> {
    let cpu = Device::Cpu;
    let noise = synthetic_tensor("tsne_points", &[n, 50], 0, &cpu)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .expect("points");
    let centres = synthetic_tensor("tsne_centres", &[10, 50], 0, &cpu)
        .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
        .expect("centres");
    noise
        .chunks(50)
        .enumerate()
        .flat_map(|(i, row)| {
            let c = &centres[(i % 10) * 50..(i % 10 + 1) * 50];
            row.iter()
                .zip(c)
                .map(|(x, m)| x + 3.0 * m)
                .collect::<Vec<f32>>()
        })
        .collect()
}

fn tsne_timings(device: &Device) {
    let default = if benchmarking() { "5000,20000" } else { "100" };
    for n in env_list("CONVLENS_BENCH_TSNE_SIZES", default) {
        let points = cluster_points(n);
        for threads in [1usize, 0] {
            let options = TsneOptions {
                threads,
                ..TsneOptions::default()
            };
            let t0 = Instant::now();
            let map = tsne(&points, 50, &options, device, &Silent).expect("t-SNE");
            let seconds = t0.elapsed().as_secs_f64();
            println!(
                "{{\"bench\": \"tsne\", \"points\": {n}, \"threads\": \"{}\", \"seconds\": {seconds:.3}, \"exact\": {}}}",
                if threads == 0 { "all".to_string() } else { threads.to_string() },
                map.exact
            );
        }
    }
}

fn main() {
    // What `convlens` does first: candle's idle workers sleep, freed memory is held for reuse.
    convlens_models::process::prepare();
    let device = device_from_env().expect("device");
    let mut c = Criterion::default().configure_from_args();
    embed(&mut c, &device);
    c.final_summary();
    tsne_timings(&device);
}
