//! A PyTorch run watched by the daemon with its program found beside the checkpoint (no
//! `--graph`): each rewrite is a version, and a kept version — loaded from the daemon's copy,
//! which has no program beside it — is still bound to the run's program and equals the engine on
//! that step's checkpoint.

mod daemon_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::Device;
use convlens_models::input::load_input;
use convlens_models::{LoadOptions, Model};
use convlens_shared::methods::history::{AtVersionParams, ModelAtVersion};
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::predict::{ImagePredict, PredictParams};
use daemon_support::{wait_for, Daemon};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run() -> PathBuf {
    root().join("tests/fixtures/export/train_run")
}

fn image() -> PathBuf {
    root().join("tests/fixtures/fashion_folder/bag/t00018.png")
}

/// The engine's logits of [`image`] for the checkpoint of `step`, bound to the run's program.
fn engine_logits(step: usize) -> Vec<f32> {
    let options = LoadOptions {
        graph: Some(run().join("model.pt2")),
        ..LoadOptions::default()
    };
    let ckpt = run().join(format!("step-{step:06}.pt"));
    let model = Model::load(ckpt.to_str().unwrap(), &options, &Device::Cpu).unwrap();
    let x = load_input(&image(), &model.preprocess, &Device::Cpu).unwrap();
    model
        .logits(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn write(dir: &Path, step: usize) {
    let temp = dir.join(".checkpoint.pt.tmp");
    std::fs::copy(run().join(format!("step-{step:06}.pt")), &temp).unwrap();
    std::fs::rename(&temp, dir.join("checkpoint.pt")).unwrap();
}

fn close(a: &[f32], b: &[f32]) -> bool {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-4 * scale)
}

#[test]
fn kept_versions_stay_bound_to_the_program_beside_the_checkpoint() {
    let d = Daemon::start("torchrun", &["--settle-ms", "100"]);
    let dir = d.scratch.path("run");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(run().join("model.pt2"), dir.join("model.pt2")).unwrap();
    write(&dir, 20);
    let c = d.client();
    let loaded = c
        .request::<ModelLoad>(&LoadParams {
            path: dir.join("checkpoint.pt").display().to_string(),
            watch: Some(true),
            ..Default::default()
        })
        .unwrap();
    let note = loaded.note.unwrap_or_default();
    assert!(
        note.contains("model.pt2"),
        "the daemon says it bound the program: {note}"
    );
    let id = loaded.model.model_id;
    write(&dir, 40);
    let (reloaded, seen) = wait_for(&c, "model/reloaded", Duration::from_secs(60), |_| true);
    assert!(reloaded.is_some(), "no reload: {seen:?}");
    let predict = |model: &str| {
        c.request::<ImagePredict>(&PredictParams {
            model_id: model.into(),
            images: vec![image().display().to_string()],
            top: 1,
            logits: true,
        })
        .unwrap()
        .logits
        .unwrap()
        .to_f32()
        .unwrap()
    };
    assert!(close(&predict(&id), &engine_logits(40)), "v2 is step 40");
    let v1 = c
        .request::<ModelAtVersion>(&AtVersionParams {
            model_id: id.clone(),
            version: 1,
        })
        .unwrap()
        .model
        .model_id;
    assert!(close(&predict(&v1), &engine_logits(20)), "v1 is step 20");
}
