//! End to end through the binary: `convlens train-demo` on the committed Fashion-MNIST subset
//! writes atomically renamed checkpoints and their metrics, its loss falls, its checkpoints load
//! back through `Model::load` as the architecture trained and score what the metrics say; a
//! missing data folder gives one clear message saying how to get the data.

use std::path::{Path, PathBuf};

use candle_core::{Device, D};
use convlens_models::train::FashionMnist;
use convlens_models::{LoadOptions, Model};

mod cli_support;
use cli_support::{convlens, root};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlens-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn metrics(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn train_demo(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train-demo",
        "--data",
        "tests/fixtures/fashion-mnist",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = convlens(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn train_demo_writes_checkpoints_whose_loss_falls_and_that_load_back() {
    let out = scratch("vgg");
    let run = train_demo(
        &out,
        &[
            "--steps",
            "30",
            "--every",
            "10",
            "--batch-size",
            "32",
            "--eval-images",
            "200",
        ],
    );
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("step 30 (epoch 1)"), "{stdout}");
    assert!(stdout.contains("test accuracy after 30 steps"), "{stdout}");

    // The layout: numbered copies, the latest checkpoint, metrics beside each, the history, and
    // no temporary file left behind.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "checkpoint.json",
            "checkpoint.safetensors",
            "metrics.jsonl",
            "step-000010.json",
            "step-000010.safetensors",
            "step-000020.json",
            "step-000020.safetensors",
            "step-000030.json",
            "step-000030.safetensors",
        ]
    );
    let history: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let steps: Vec<u64> = history
        .iter()
        .map(|m| m["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [10, 20, 30]);
    let last = metrics(&out.join("checkpoint.json"));
    assert_eq!(last, metrics(&out.join("step-000030.json")));
    assert_eq!(last, history[2]);
    assert_eq!(last["arch"], "small-vgg");
    assert_eq!(last["checkpoint"], "step-000030.safetensors");
    assert_eq!(last["test_images"], 200);
    assert_eq!(last["steps_per_epoch"], 93);

    // The loss falls: the mean of steps 21..30 is well below that of steps 1..10.
    let first_loss = history[0]["loss"].as_f64().unwrap();
    let last_loss = history[2]["loss"].as_f64().unwrap();
    assert!(
        last_loss < 0.8 * first_loss,
        "loss {first_loss} -> {last_loss}"
    );

    // The latest checkpoint is the last numbered one, and loads as small-vgg.
    assert_eq!(
        std::fs::read(out.join("checkpoint.safetensors")).unwrap(),
        std::fs::read(out.join("step-000030.safetensors")).unwrap()
    );
    let path = out.join("checkpoint.safetensors");
    let model = Model::load(
        path.to_str().unwrap(),
        &LoadOptions::default(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(model.arch, "small-vgg");
    assert_eq!(model.labels[7], "Sneaker");

    // The engine scores the checkpoint as the trainer did on the same 200 test images.
    let data = FashionMnist::load(&root().join("tests/fixtures/fashion-mnist")).unwrap();
    let test = data.test.first(200);
    let logits = model
        .logits(&test.images_tensor(&Device::Cpu).unwrap())
        .unwrap();
    let predicted: Vec<u32> = logits.argmax(D::Minus1).unwrap().to_vec1().unwrap();
    let right = predicted
        .iter()
        .zip(&test.labels)
        .filter(|(p, l)| **p == u32::from(**l))
        .count();
    let reported = last["test_accuracy"].as_f64().unwrap() * 200.0;
    assert!(
        (right as f64 - reported).abs() <= 1.0,
        "engine: {right}/200 right, trainer: {reported}"
    );
    assert!(right > 60, "{right}/200 after 30 steps");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn train_demo_trains_small_resnet_too() {
    let out = scratch("resnet");
    train_demo(
        &out,
        &[
            "--arch",
            "small-resnet",
            "--steps",
            "4",
            "--every",
            "2",
            "--batch-size",
            "16",
            "--eval-images",
            "32",
        ],
    );
    let last = metrics(&out.join("checkpoint.json"));
    assert_eq!(last["arch"], "small-resnet");
    assert_eq!(last["step"], 4);
    let path = out.join("step-000002.safetensors");
    let model = Model::load(
        path.to_str().unwrap(),
        &LoadOptions::default(),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(model.arch, "small-resnet");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_missing_data_folder_says_how_to_get_fashion_mnist() {
    let missing = std::env::temp_dir().join("convlens-no-fashion-mnist-here");
    let out = scratch("missing");
    let run = convlens(&[
        "train-demo",
        "--data",
        missing.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(
        stderr.contains("apt-get install dataset-fashion-mnist"),
        "{stderr}"
    );
    assert!(stderr.contains("tests/fixtures/fashion-mnist"), "{stderr}");
    assert!(!out.exists(), "nothing is written when there is no data");
}
