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
//!   nothing (what the daemon makes for a fresh image when no view asked anything of the one
//!   before: the case `predict_fresh` times), and the one keeping every node (what it makes
//!   when an explanation of the image before asked for them all).
//! - then, not a criterion case, one JSON line `fresh_image_shares`: the same parts timed
//!   interleaved round after round, and the shares of the forward pass that issue 15 bounds:
//!   decoding and preprocessing, and the daemon's own work (`predict_fresh` minus decoding
//!   minus the plain forward pass), and what keeping every node would add. The daemon's own
//!   work is also measured within each request: the daemon reports how long its decoding and
//!   its forward pass took (`convlens_daemon::timing`'s events, collected here), and the rest
//!   of the request's time is its own (`daemon_own_ms`, and its share of the daemon's own
//!   forward pass), free of the spread between two forward passes that the difference of
//!   medians above carries.
//!
//! The PyTorch peer is `benches/peer/warm_latency.py`. Under `cargo test --all-targets` (no
//! `--bench` argument) each case runs a few times only.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use convlens_shared::methods::explain::{ExplainParams, ImageExplain};
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::predict::{ImagePredict, PredictParams};
use convlens_shared::Client;
use criterion::{criterion_group, Criterion};

/// The daemon's timing events (`convlens_daemon::timing`): each part's name and milliseconds,
/// in the order they came.
#[derive(Clone, Default)]
struct TimedParts(Arc<Mutex<Vec<(String, f64)>>>);

impl TimedParts {
    /// Collects the daemon's timing events from now on (installed before the daemon starts, so
    /// that its own logging setup finds a subscriber in place and leaves it).
    fn install() -> TimedParts {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        use tracing_subscriber::Layer;
        let parts = TimedParts::default();
        let only_timing = tracing_subscriber::filter::Targets::new()
            .with_target(convlens_daemon::timing::TARGET, tracing::Level::DEBUG);
        let installed = tracing_subscriber::registry()
            .with(parts.clone().with_filter(only_timing))
            .try_init();
        assert!(
            installed.is_ok(),
            "a tracing subscriber was already installed"
        );
        parts
    }

    /// Takes the events collected so far: the total milliseconds of each of `decode` and
    /// `forward`.
    fn take(&self) -> (f64, f64) {
        let mut events = self.0.lock().expect("the timing events");
        let total = |name: &str| -> f64 {
            events
                .iter()
                .filter(|(part, _)| part == name)
                .map(|(_, ms)| ms)
                .sum()
        };
        let (decode, forward) = (
            total(convlens_daemon::timing::Part::Decode.name()),
            total(convlens_daemon::timing::Part::Forward.name()),
        );
        events.clear();
        (decode, forward)
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TimedParts {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        /// Reads an event's `part` and `ms` fields.
        #[derive(Default)]
        struct Fields {
            part: String,
            ms: f64,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "part" {
                    self.part = value.to_string();
                }
            }
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if field.name() == "ms" {
                    self.ms = value;
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0
            .lock()
            .expect("the timing events")
            .push((fields.part, fields.ms));
    }
}

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
    let parts = TimedParts::install();
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
    fresh_image_shares(
        &client, &predict, &file, &mut tick, &model, &photo, &parts, quick,
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The median of `samples` (seconds).
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples.get(samples.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A fresh image's parts timed interleaved, round after round (so that the machine's drift
/// between criterion's cases cannot move one part against another): a fresh `image/predict`
/// through the daemon, then in this process decoding and preprocessing, the forward pass
/// keeping every node (what the daemon runs for an image after an explanation of the one
/// before) and the one keeping nothing (what it runs here, no view having asked anything of
/// the image before). One JSON line: the medians, and the shares of the forward pass.
#[allow(clippy::too_many_arguments)]
fn fresh_image_shares(
    client: &Client,
    predict: &PredictParams,
    file: &std::fs::File,
    tick: &mut u64,
    model: &convlens_models::Model,
    photo: &std::path::Path,
    parts: &TimedParts,
    quick: bool,
) {
    let rounds = if quick { 2 } else { 40 };
    let timed = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let (mut fresh, mut decode, mut trace, mut forward) = (vec![], vec![], vec![], vec![]);
    // Within each request: the daemon's decoding, its forward pass, and the rest (its own).
    let (mut daemon_forward, mut own, mut own_share) = (vec![], vec![], vec![]);
    for _ in 0..rounds {
        *tick += 1;
        file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000 + *tick))
            .expect("mtime");
        parts.take();
        let request = timed(&mut || {
            client.request::<ImagePredict>(predict).expect("predict");
        });
        fresh.push(request);
        let (decoded_ms, forward_ms) = parts.take();
        assert!(
            forward_ms > 0.0,
            "a fresh image's request ran no timed forward pass"
        );
        let own_ms = request * 1e3 - decoded_ms - forward_ms;
        daemon_forward.push(forward_ms / 1e3);
        own.push(own_ms / 1e3);
        own_share.push(own_ms / forward_ms);
        let mut x = None;
        decode.push(timed(&mut || {
            x = Some(
                convlens_models::input::load_input(photo, &model.preprocess, &model.device)
                    .expect("the photo"),
            );
        }));
        let x = x.expect("decoded");
        trace.push(timed(&mut || {
            model.graph.forward(&x, None).expect("forward");
        }));
        forward.push(timed(&mut || {
            model.graph.forward(&x, Some(&[])).expect("forward");
        }));
    }
    let (fresh, decode, trace, forward) = (
        median(fresh),
        median(decode),
        median(trace),
        median(forward),
    );
    let (daemon_forward, own, own_share) = (median(daemon_forward), median(own), median(own_share));
    println!(
        "{{\"bench\": \"fresh_image_shares\", \"rounds\": {rounds}, \"predict_fresh_ms\": {:.2}, \
         \"decode_preprocess_ms\": {:.2}, \"forward_trace_ms\": {:.2}, \"forward_ms\": {:.2}, \
         \"decode_share_of_forward\": {:.3}, \"daemon_share_of_forward\": {:.3}, \
         \"trace_keeping_share_of_forward\": {:.3}, \"daemon_forward_ms\": {:.2}, \
         \"daemon_own_ms\": {:.2}, \"daemon_own_share_of_its_forward\": {:.3}}}",
        fresh * 1e3,
        decode * 1e3,
        trace * 1e3,
        forward * 1e3,
        decode / forward,
        (fresh - decode - forward) / forward,
        (trace - forward) / forward,
        daemon_forward * 1e3,
        own * 1e3,
        own_share
    );
}

criterion_group!(benches, warm_latency);

fn main() {
    // What `convlens` does first: candle's idle workers sleep, freed memory is held for reuse.
    convlens_models::process::prepare();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
