//! A watched checkpoint under rewriting: never served half-written, the old version answers
//! meanwhile, `model/reloaded` once it is whole (in-place chunked writes and atomic renames),
//! and `model/reloadFailed` with the old version still serving for a corrupt file.

mod daemon_support;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::{LoadOptions, Model};
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::predict::{ImagePredict, PredictParams, PredictResult};
use convlens_shared::Client;
use daemon_support::{wait_for, write_input, Daemon};

const ARCH: &str = "squeezenet1_1";

/// The bytes of a safetensors checkpoint of ARCH with synthetic weights for `seed`.
fn checkpoint(seed: u64) -> Vec<u8> {
    let model = Model::load(
        &format!("random:{ARCH}"),
        &LoadOptions::default(),
        &Device::Cpu,
    )
    .unwrap();
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
    let dir = daemon_support::Scratch::new("ckpt-bytes");
    let path = dir.path("w.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    std::fs::read(&path).unwrap()
}

fn predict(c: &Client, model: &str, image: &Path) -> PredictResult {
    c.request::<ImagePredict>(&PredictParams {
        model_id: model.into(),
        images: vec![image.display().to_string()],
        top: 3,
        logits: true,
    })
    .unwrap()
}

fn logits(r: &PredictResult) -> Vec<f32> {
    r.logits.as_ref().unwrap().to_f32().unwrap()
}

fn load(c: &Client, path: &Path) -> String {
    c.request::<ModelLoad>(&LoadParams {
        path: path.display().to_string(),
        arch: Some(ARCH.into()),
        ..Default::default()
    })
    .unwrap()
    .model
    .model_id
}

#[test]
fn a_rewritten_checkpoint_is_never_served_half_written() {
    let d = Daemon::start("ckpt", &[]);
    let (v1, v2, v3) = (checkpoint(1), checkpoint(2), checkpoint(3));
    let ckpt = d.scratch.path("run/checkpoint.safetensors");
    std::fs::create_dir_all(ckpt.parent().unwrap()).unwrap();
    std::fs::write(&ckpt, &v1).unwrap();
    let image = d.scratch.path("x.npy");
    write_input(&image, 64, 5);
    let c = d.client();
    let other = d.client();
    let model = load(&c, &ckpt);
    let first = predict(&c, &model, &image);
    assert_eq!(first.version, 1);
    let old = logits(&first);
    // References: the same weights loaded from copies that nobody rewrites.
    let refs = |bytes: &[u8], name: &str| {
        let p = d.scratch.path(name);
        std::fs::write(&p, bytes).unwrap();
        let id = load(&other, &p);
        logits(&predict(&other, &id, &image))
    };
    let (want2, want3) = (
        refs(&v2, "copy2.safetensors"),
        refs(&v3, "copy3.safetensors"),
    );
    assert_ne!(old, want2, "the versions differ");

    // In place, in small chunks over two seconds; the old weights answer meanwhile.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&ckpt)
        .unwrap();
    let chunk = v2.len().div_ceil(20);
    for part in v2.chunks(chunk) {
        f.write_all(part).unwrap();
        f.flush().unwrap();
        let during = predict(&c, &model, &image);
        assert_eq!(during.version, 1, "served before the file was whole");
        assert_eq!(
            logits(&during),
            old,
            "the old weights answer while it is written"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(f);
    let (reloaded, seen) = wait_for(&c, "model/reloaded", Duration::from_secs(30), |_| true);
    let reloaded = reloaded.expect("model/reloaded once the file is whole");
    assert!(
        seen.iter().all(|n| n.method != "model/reloadFailed"),
        "a file being written is not reported as failed: {seen:?}"
    );
    assert_eq!(reloaded.params["modelId"], model.as_str());
    assert_eq!(reloaded.params["version"], 2);
    let (other_heard, _) = wait_for(&other, "model/reloaded", Duration::from_secs(5), |_| true);
    assert!(other_heard.is_some(), "every client hears the reload");
    let after = predict(&c, &model, &image);
    assert_eq!((after.version, logits(&after)), (2, want2.clone()));

    // Atomic rename (torch.save to a temporary file, then rename).
    let tmp = d.scratch.path("run/.checkpoint.tmp");
    std::fs::write(&tmp, &v3).unwrap();
    std::fs::rename(&tmp, &ckpt).unwrap();
    let (reloaded, _) = wait_for(&c, "model/reloaded", Duration::from_secs(30), |_| true);
    assert_eq!(
        reloaded.expect("reloaded after a rename").params["version"],
        3
    );
    assert_eq!(logits(&predict(&c, &model, &image)), want3);

    // A corrupt file: reloadFailed, and version 3 still serves.
    let mut corrupt = v3.clone();
    corrupt.truncate(v3.len() / 2);
    std::fs::write(&ckpt, &corrupt).unwrap();
    let start = Instant::now();
    let (failed, seen) = wait_for(&c, "model/reloadFailed", Duration::from_secs(30), |_| true);
    let failed = failed.unwrap_or_else(|| panic!("model/reloadFailed: {seen:?}"));
    assert_eq!(failed.params["version"], 3);
    assert!(failed.params["error"]
        .as_str()
        .unwrap()
        .contains("checkpoint.safetensors"));
    let still = predict(&c, &model, &image);
    assert_eq!((still.version, logits(&still)), (3, want3));
    eprintln!("reloadFailed after {:?}", start.elapsed());
}
