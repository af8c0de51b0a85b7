//! Warm request latency through the daemon: the demo model loaded, the same photo asked again,
//! over the real socket and protocol (a daemon on a thread of this process).
//!
//! - `predict_repeated`: `image/predict` of chelsea.jpg, answered from the activation cache.
//! - `predict_fresh`: the same with the photo's mtime bumped each time, so it is decoded,
//!   preprocessed and run again (what a warm PyTorch process does each time).
//! - `gradcam_repeated`: `image/explain` Grad-CAM, answered from the result cache.
//! - `gradcam_fresh`: Grad-CAM for a different class each time (computed, input cached; after
//!   the thousandth class the photo's mtime is bumped, so no answer comes from the result cache).
//!
//! - `decode_preprocess`, `forward`, `forward_trace`: the parts of a fresh image, in this
//!   process without the daemon: decoding and preprocessing the photo, the forward pass keeping
//!   nothing, and the one the daemon makes for a single image (every node's output kept for the
//!   views that follow). `predict_fresh` minus decoding and the forward is the daemon's own work.
//!
//! The PyTorch peer is `benches/peer/warm_latency.py`. Under `cargo test --all-targets` (no
//! `--bench` argument) each case runs a few times only.

use std::time::{Duration, SystemTime};

use convlens_shared::methods::explain::{ExplainParams, ImageExplain};
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::predict::{ImagePredict, PredictParams};
use convlens_shared::Client;
use criterion::{criterion_group, criterion_main, Criterion};

/// The device of the in-process cases: the daemon's (`CONVLENS_DEVICE`, the CPU by default).
fn device() -> candle_core::Device {
    convlens_models::device::device_from_env().expect("the device")
}

/// Starts a daemon on a scratch socket and connects to it.
fn daemon() -> (Client, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("convlens-bench-{}", std::process::id()));
    let socket = dir.join("daemon.sock");
    let config = convlens_daemon::Config {
        socket: socket.clone(),
        device: std::env::var("CONVLENS_DEVICE").unwrap_or_else(|_| "cpu".into()),
        ..Default::default()
    };
    std::thread::spawn(move || convlens_daemon::run(config));
    for _ in 0..500 {
        if let Ok(c) = Client::connect(&socket) {
            return (c, dir);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the daemon did not start on {}", socket.display());
}

fn warm_latency(c: &mut Criterion) {
    let (client, dir) = daemon();
    let photo = dir.join("chelsea.jpg");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../models/assets/photos/chelsea.jpg"
        ),
        &photo,
    )
    .expect("the bundled photo");
    let model = client
        .request::<ModelLoad>(&LoadParams {
            path: "demo".into(),
            ..Default::default()
        })
        .expect("the demo loads")
        .model
        .model_id;
    let predict = PredictParams {
        model_id: model.clone(),
        images: vec![photo.display().to_string()],
        top: 5,
        logits: false,
    };
    let mut gradcam = ExplainParams::new(model, photo.display().to_string());
    gradcam.render = false;
    let quick = !std::env::args().any(|a| a == "--bench");
    let mut group = c.benchmark_group("daemon_warm");
    if quick {
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(1))
            .measurement_time(Duration::from_millis(10));
    } else {
        group
            .sample_size(30)
            .measurement_time(Duration::from_secs(10));
    }
    group.bench_function("predict_repeated", |b| {
        b.iter(|| client.request::<ImagePredict>(&predict).expect("predict"))
    });
    let file = std::fs::File::options()
        .write(true)
        .open(&photo)
        .expect("the copy");
    let mut tick = 0u64;
    group.bench_function("predict_fresh", |b| {
        b.iter(|| {
            tick += 1;
            file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + tick))
                .expect("mtime");
            client.request::<ImagePredict>(&predict).expect("predict")
        })
    });
    group.bench_function("gradcam_repeated", |b| {
        b.iter(|| client.request::<ImageExplain>(&gradcam).expect("gradcam"))
    });
    let mut class = 0usize;
    group.bench_function("gradcam_fresh", |b| {
        b.iter(|| {
            class = (class + 1) % 1000;
            if class == 0 {
                // Every class was asked: a new version of the photo, so the next thousand are
                // computed again rather than answered from the result cache.
                tick += 1;
                file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + tick))
                    .expect("mtime");
            }
            let params = ExplainParams {
                target: Some(class.into()),
                ..gradcam.clone()
            };
            client.request::<ImageExplain>(&params).expect("gradcam")
        })
    });
    let model = convlens_models::Model::load("demo", &Default::default(), &device())
        .expect("the demo loads in process");
    group.bench_function("decode_preprocess", |b| {
        b.iter(|| {
            convlens_models::input::load_input(&photo, &model.preprocess, &model.device)
                .expect("the photo")
        })
    });
    let x = convlens_models::input::load_input(&photo, &model.preprocess, &model.device)
        .expect("the photo");
    group.bench_function("forward", |b| {
        b.iter(|| model.graph.forward(&x, Some(&[])).expect("forward"))
    });
    group.bench_function("forward_trace", |b| {
        b.iter(|| model.graph.forward(&x, None).expect("forward"))
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, warm_latency);
criterion_main!(benches);
