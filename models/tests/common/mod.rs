//! What the reference tests share: the device under test, the closeness check, scratch folders.

#![allow(dead_code)] // Each test file uses its own subset.

use std::path::PathBuf;

use candle_core::{Device, Tensor};

/// The device under test (`CONVLENS_DEVICE`, the CPU by default).
pub fn device() -> Device {
    convlens_models::device::device_from_env().unwrap()
}

/// 1e-4 relative on the CPU; 1e-3 on a GPU, whose convolutions sum in other orders.
pub fn device_tolerance() -> f32 {
    if device().is_cpu() {
        1e-4
    } else {
        1e-3
    }
}

/// `t`'s values as bit patterns, flattened (for comparisons to the bit).
pub fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

/// max|got − want| ≤ tol · max|want|, on the CPU, with a message naming `what`.
pub fn assert_close(what: &str, got: &Tensor, want: &Tensor, tol: f32) {
    let got = got.to_device(&Device::Cpu).unwrap();
    let want = want.to_device(&Device::Cpu).unwrap();
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let diff = got.sub(&want).unwrap().abs().unwrap().max_all().unwrap();
    let scale = want.abs().unwrap().max_all().unwrap();
    let (diff, scale) = (
        diff.to_scalar::<f32>().unwrap(),
        scale.to_scalar::<f32>().unwrap(),
    );
    assert!(scale > 0.0, "{what}: the reference is all zeros");
    assert!(
        diff <= tol * scale,
        "{what}: max abs diff {diff:e} exceeds {tol:e} x {scale:e}"
    );
}

/// [`assert_close`] at the device's tolerance.
pub fn assert_close_on_device(what: &str, got: &Tensor, want: &Tensor) {
    assert_close(what, got, want, device_tolerance());
}

/// A scratch folder removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh folder per call: tests run in parallel and some of them damage their copy.
    pub fn new(tag: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("convlens-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The folder of make_explain.py's fixtures.
pub fn explain_fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/explain")
}

/// A model of make_explain.py's fixtures and its input [1, 3, 64, 64] on the device under test:
/// the demo with its committed input, or a torchvision architecture with synthetic weights and
/// the synthetic input.
pub fn explain_fixture_model(name: &str) -> (convlens_models::Model, Tensor) {
    use convlens_models::{LoadOptions, Model};
    if name == "demo" {
        let model = Model::load("demo", &LoadOptions::default(), &device()).unwrap();
        let x = Tensor::read_npy(explain_fixtures().join("demo/input.npy"))
            .unwrap()
            .to_device(&device())
            .unwrap();
        (model, x)
    } else {
        let model = Model::load(
            &format!("random:{name}"),
            &LoadOptions::default(),
            &device(),
        )
        .unwrap();
        let x = convlens_models::weights::synthetic::synthetic_tensor(
            "input",
            &[1, 3, 64, 64],
            0,
            &device(),
        )
        .unwrap();
        (model, x)
    }
}
