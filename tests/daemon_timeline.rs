//! A network watched while it learns, over the real binary: the daemon follows the checkpoint
//! `convlens train-demo` rewrites, reloads each version (none fails), lists them in order with
//! the trainer's metrics, and serves any kept one as a frozen model (`m1@1`) whose views equal
//! the engine's on the trainer's numbered copy of that step. Also: a PyTorch checkpoint (a nested
//! `{'model': state_dict, 'epoch': n}`) is picked up, and the history keeps only its budget.

mod daemon_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use convlens_models::train::checkpoint::numbered_name;
use convlens_models::units::conv_filters;
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::{LoadOptions, Model};
use convlens_shared::methods::filters::{FiltersParams, LayerFilters};
use convlens_shared::methods::history::{
    AtVersionParams, ModelAtVersion, ModelVersions, VersionsResult,
};
use convlens_shared::methods::lifecycle::{Exit, Shutdown};
use convlens_shared::methods::model::{LoadParams, ModelLoad, ModelRef};
use convlens_shared::methods::predict::{ImagePredict, PredictParams};
use convlens_shared::methods::NoParams;
use convlens_shared::{Client, Notification};
use daemon_support::{binary, wait_for, Daemon};
use serde_json::Value;

/// Training: checkpoints at steps 50, 100, 150 and 200 of one epoch of 1500 (batches of 2 of the
/// subset's 3 000 images), so none is written at an epoch's end between two of them; about 3 s
/// in a debug build on a quiet 2-core machine, a second or more between two checkpoints (the
/// daemon needs a few hundred milliseconds to see one settle and load it).
const STEPS: usize = 200;
const EVERY: usize = 50;
const BATCH: usize = 2;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test image of the committed Fashion-MNIST folder.
fn image() -> String {
    root()
        .join("tests/fixtures/fashion_folder/bag/t00018.png")
        .display()
        .to_string()
}

fn load(c: &Client, path: &Path) -> String {
    c.request::<ModelLoad>(&LoadParams {
        path: path.display().to_string(),
        watch: Some(true),
        ..Default::default()
    })
    .unwrap()
    .model
    .model_id
}

fn versions(c: &Client, model: &str) -> VersionsResult {
    c.request::<ModelVersions>(&ModelRef {
        model_id: model.into(),
    })
    .unwrap()
}

fn at_version(c: &Client, model: &str, version: u64) -> Result<String, String> {
    c.request::<ModelAtVersion>(&AtVersionParams {
        model_id: model.into(),
        version,
    })
    .map(|r| r.model.model_id)
    .map_err(|e| e.to_string())
}

/// The first convolution's kernel through `layer/filters`, with the version that answered.
fn first_kernel(c: &Client, model: &str) -> (u64, Vec<f32>) {
    let r = c
        .request::<LayerFilters>(&FiltersParams::new(model, None))
        .unwrap();
    (r.version, r.weights.unwrap().to_f32().unwrap())
}

/// The logits of [`image`] through `image/predict`, with the version that answered.
fn logits(c: &Client, model: &str) -> (u64, Vec<f32>) {
    let r = c
        .request::<ImagePredict>(&PredictParams {
            model_id: model.into(),
            images: vec![image()],
            top: 1,
            logits: true,
        })
        .unwrap();
    (r.version, r.logits.unwrap().to_f32().unwrap())
}

/// The engine's model of weight file `path`, loaded in this process.
fn engine(path: &Path) -> Model {
    Model::load(
        path.to_str().unwrap(),
        &LoadOptions::default(),
        &Device::Cpu,
    )
    .unwrap()
}

/// The first convolution's kernel of weight file `path`, from the engine.
fn engine_kernel(path: &Path) -> Vec<f32> {
    conv_filters(&engine(path).graph, None, 0.01)
        .unwrap()
        .weights
        .data
}

/// Waits until `path` exists (at most `timeout`).
fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(Instant::now() < deadline, "{} never came", path.display());
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `model/reloaded` and `model/reloadFailed` notifications seen until `done` holds or
/// `timeout` passes.
fn reload_notifications(
    c: &Client,
    timeout: Duration,
    mut done: impl FnMut(&[Notification]) -> bool,
) -> Vec<Notification> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    while Instant::now() < deadline && !done(&seen) {
        if let Some(n) = c.next_notification(Duration::from_millis(50)) {
            if n.method.starts_with("model/reload") {
                seen.push(n);
            }
        }
    }
    seen
}

fn cli(socket: &Path, args: &[&str]) -> std::process::Output {
    Command::new(binary())
        .arg("--socket")
        .arg(socket)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

#[test]
fn the_daemon_follows_a_training_run_version_by_version() {
    let scratch = daemon_support::Scratch::new("timeline-history");
    let history = scratch.path("history");
    let mut d = Daemon::start(
        "timeline",
        &[
            "--settle-ms",
            "100",
            "--history-dir",
            history.to_str().unwrap(),
        ],
    );
    let out = d.scratch.path("run");
    let ckpt = out.join("checkpoint.safetensors");
    let c = d.client();
    let started = Instant::now();
    let mut trainer = Command::new(binary())
        .args([
            "train-demo",
            "--data",
            "tests/fixtures/fashion-mnist",
            "--out",
        ])
        .arg(&out)
        .args(["--steps", &STEPS.to_string(), "--every", &EVERY.to_string()])
        .args(["--batch-size", &BATCH.to_string(), "--eval-images", "20"])
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Version 1: the first checkpoint, loaded (and watched) as soon as it is there.
    wait_for_file(&ckpt, Duration::from_secs(120));
    let model = load(&c, &ckpt);
    let status = trainer.wait().unwrap();
    let trained = started.elapsed();
    let mut stderr = String::new();
    if let Some(mut e) = trainer.stderr.take() {
        std::io::Read::read_to_string(&mut e, &mut stderr).unwrap();
    }
    assert!(status.success(), "train-demo failed: {stderr}");
    let checkpoints = STEPS / EVERY;

    // One reload per later checkpoint, in order, none failed.
    let seen = reload_notifications(&c, Duration::from_secs(60), |seen| {
        seen.len() >= checkpoints - 1
    });
    let failed: Vec<&Notification> = seen
        .iter()
        .filter(|n| n.method == "model/reloadFailed")
        .collect();
    assert!(failed.is_empty(), "reloads failed: {failed:?}");
    let reloaded: Vec<u64> = seen
        .iter()
        .map(|n| {
            assert_eq!(n.params["modelId"], model.as_str());
            n.params["version"].as_u64().unwrap()
        })
        .collect();
    let expected: Vec<u64> = (2..=checkpoints as u64).collect();
    assert_eq!(
        reloaded, expected,
        "one model/reloaded per checkpoint after the first ({checkpoints} in {trained:?})"
    );

    // The versions, in order, each with the metrics the trainer wrote for its step.
    let history_lines: Vec<Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<u64> = history_lines
        .iter()
        .map(|m| m["step"].as_u64().unwrap())
        .collect();
    let want_steps: Vec<u64> = (1..=checkpoints as u64).map(|i| i * EVERY as u64).collect();
    assert_eq!(steps, want_steps, "the trainer's checkpoints");
    let listed = versions(&c, &model);
    assert_eq!(listed.model_id, model);
    let numbers: Vec<u64> = listed.versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, (1..=checkpoints as u64).collect::<Vec<_>>());
    for (v, metrics) in listed.versions.iter().zip(&history_lines) {
        assert!(v.kept, "version {} is kept", v.version);
        assert_eq!(v.source, ckpt.display().to_string());
        assert_eq!(
            v.metrics.as_ref(),
            Some(metrics),
            "version {}'s metrics",
            v.version
        );
        let numbered = out.join(numbered_name(metrics["step"].as_u64().unwrap() as usize));
        assert_eq!(v.bytes, std::fs::metadata(&numbered).unwrap().len());
    }
    assert!(listed
        .versions
        .windows(2)
        .all(|w| w[0].loaded_at <= w[1].loaded_at));
    let last = checkpoints as u64;

    // A view at version 1 (frozen: m1@1) differs from the same view at the last version, and
    // each equals the engine on the trainer's numbered copy of that step.
    let frozen = at_version(&c, &model, 1).unwrap();
    assert_eq!(frozen, format!("{model}@1"));
    let (v1, kernel1) = first_kernel(&c, &frozen);
    let (vn, kernel_n) = first_kernel(&c, &model);
    assert_eq!((v1, vn), (1, last));
    assert_ne!(kernel1, kernel_n, "the first layer's filters moved");
    let first_file = out.join(numbered_name(EVERY));
    let last_file = out.join(numbered_name(STEPS));
    assert_eq!(kernel1, engine_kernel(&first_file));
    assert_eq!(kernel_n, engine_kernel(&last_file));
    let (_, logits1) = logits(&c, &frozen);
    let (_, logits_n) = logits(&c, &model);
    assert_ne!(logits1, logits_n, "the predictions moved");
    // A frozen id works in any method without model/atVersion first.
    let (v2, kernel2) = first_kernel(&c, &format!("{model}@2"));
    assert_eq!(v2, 2);
    assert_eq!(kernel2, engine_kernel(&out.join(numbered_name(2 * EVERY))));

    // The CLI: `versions` lists them; `--at-version` runs a subcommand on one; with
    // --no-daemon it says why it cannot.
    let ckpt_arg = ckpt.to_str().unwrap();
    let listing = cli(d.socket.as_path(), &["versions", ckpt_arg]);
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.status.success(), "{listing:?}");
    assert!(text.contains(&format!("{checkpoints} versions")), "{text}");
    for step in &want_steps {
        assert!(text.contains(&format!(" {step} ")), "step {step} in {text}");
    }
    let image_arg = image();
    let predict = |extra: &[&str]| {
        let mut args = vec!["predict", ckpt_arg, image_arg.as_str()];
        args.extend_from_slice(extra);
        cli(d.socket.as_path(), &args)
    };
    let at_first = predict(&["--at-version", "1"]);
    let at_last = predict(&["--at-version", &last.to_string()]);
    assert!(at_first.status.success(), "{at_first:?}");
    assert!(at_last.status.success(), "{at_last:?}");
    assert_ne!(at_first.stdout, at_last.stdout, "the CLI at two versions");
    let local = predict(&["--at-version", "1", "--no-daemon"]);
    let err = String::from_utf8_lossy(&local.stderr);
    assert!(!local.status.success());
    assert!(
        err.contains("--at-version 1") && err.contains("daemon"),
        "{err}"
    );

    // The kept copies are in the history folder of the daemon's process.
    let mine = history.join(d.child.id().to_string());
    let copies = std::fs::read_dir(&mine).unwrap().count();
    assert_eq!(copies, checkpoints);

    // ... and go when the daemon exits.
    c.request::<Shutdown>(&NoParams {}).unwrap();
    c.notify::<Exit>(&NoParams {}).unwrap();
    assert!(
        d.wait_exit(Duration::from_secs(20)).is_some(),
        "the daemon exits"
    );
    assert!(!mine.exists(), "{} is removed at exit", mine.display());
}

/// The bytes of a small-vgg safetensors checkpoint with synthetic weights for `seed`.
fn synthetic_checkpoint(seed: u64, path: &Path) {
    let model = Model::load("random:small-vgg", &LoadOptions::default(), &Device::Cpu).unwrap();
    let tensors: HashMap<String, Tensor> = model
        .graph
        .parameters()
        .iter()
        .map(|(name, shape)| {
            (
                name.clone(),
                synthetic_tensor(name, shape, seed, &Device::Cpu).unwrap(),
            )
        })
        .collect();
    candle_core::safetensors::save(&tensors, path).unwrap();
}

/// Renames `from` onto `to` (as `torch.save` to a temporary file then a rename does) and waits
/// for the daemon's `model/reloaded` of `version`.
fn rewrite(c: &Client, from: &Path, to: &Path, version: u64) {
    let tmp = to.with_file_name(".checkpoint.tmp");
    std::fs::copy(from, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
    let (n, seen) = wait_for(c, "model/reloaded", Duration::from_secs(30), |n| {
        n.params["version"] == version
    });
    assert!(n.is_some(), "version {version} reloaded: {seen:?}");
}

#[test]
fn a_pytorch_checkpoint_is_picked_up_and_the_history_keeps_its_budget() {
    let scratch = daemon_support::Scratch::new("timeline-budget");
    let history = scratch.path("history");
    let d = Daemon::start(
        "timeline-budget",
        &[
            "--settle-ms",
            "100",
            "--history-versions",
            "2",
            "--history-dir",
            history.to_str().unwrap(),
        ],
    );
    let c = d.client();
    let fixtures = root().join("tests/fixtures/train");
    let torch = fixtures.join("torch_small_vgg_checkpoint.pt");
    let (seed3, seed4) = (
        scratch.path("seed3.safetensors"),
        scratch.path("seed4.safetensors"),
    );
    synthetic_checkpoint(3, &seed3);
    synthetic_checkpoint(4, &seed4);
    let run = d.scratch.path("run");
    std::fs::create_dir_all(&run).unwrap();
    // A PyTorch run's file name; the format is read from the bytes.
    let ckpt = run.join("checkpoint.pt");
    std::fs::copy(fixtures.join("rust_small_vgg.safetensors"), &ckpt).unwrap();
    let model = load(&c, &ckpt);

    let before = logits(&c, &model);
    // torch.save({'model': state_dict, 'epoch': n}) renamed onto it: reloaded, with the weights
    // the engine reads from that file, and it answers as the file loaded on its own does.
    rewrite(&c, &torch, &ckpt, 2);
    assert_eq!(first_kernel(&c, &model), (2, engine_kernel(&torch)));
    let reference = c
        .request::<ModelLoad>(&LoadParams {
            path: torch.display().to_string(),
            watch: Some(false),
            ..Default::default()
        })
        .unwrap()
        .model
        .model_id;
    let after = logits(&c, &model);
    assert_eq!(after, (2, logits(&c, &reference).1));
    assert_ne!(before.1, after.1);

    rewrite(&c, &seed3, &ckpt, 3);
    rewrite(&c, &seed4, &ckpt, 4);

    // Four versions listed, the two newest kept, none with metrics (no JSON beside).
    let listed = versions(&c, &model);
    let kept: Vec<(u64, bool)> = listed
        .versions
        .iter()
        .map(|v| (v.version, v.kept))
        .collect();
    assert_eq!(kept, [(1, false), (2, false), (3, true), (4, true)]);
    assert!(listed.versions.iter().all(|v| v.metrics.is_none()));
    let mine = history.join(d.child.id().to_string());
    assert_eq!(
        std::fs::read_dir(&mine).unwrap().count(),
        2,
        "copies on disk"
    );

    // A dropped version: a clear error naming it. A kept one: the engine's weights of its file.
    let gone = at_version(&c, &model, 2).unwrap_err();
    assert!(
        gone.contains("version 2") && gone.contains("no longer kept"),
        "{gone}"
    );
    let missing = at_version(&c, &model, 9).unwrap_err();
    assert!(missing.contains("no version 9"), "{missing}");
    let frozen = at_version(&c, &model, 3).unwrap();
    assert_eq!(first_kernel(&c, &frozen), (3, engine_kernel(&seed3)));
    assert_eq!(first_kernel(&c, &model), (4, engine_kernel(&seed4)));

    // Dropping version 3 (a fifth version) forgets its frozen model too.
    rewrite(&c, &torch, &ckpt, 5);
    let gone = at_version(&c, &model, 3).unwrap_err();
    assert!(gone.contains("version 3"), "{gone}");
    let err = c
        .request::<LayerFilters>(&FiltersParams::new(frozen.as_str(), None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("version 3") && err.contains("no longer kept"),
        "{err}"
    );
}
