//! Image preprocessing against torchvision's (PIL decode, Resize(256), CenterCrop(224), ToTensor,
//! normalization), from tests/fixtures/make_demo_assets.py.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use convlens_models::input::{load_input, Normalization, Preprocess};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn chelsea_preprocessed_like_torchvision() {
    let pre = Preprocess::standard(Normalization::LITE);
    let got = load_input(
        &root().join("models/assets/photos/chelsea.jpg"),
        &pre,
        &Device::Cpu,
    )
    .unwrap();
    let want = Tensor::read_npy(root().join("tests/fixtures/demo/chelsea_input.npy")).unwrap();
    assert_eq!(got.dims(), want.dims());
    // In 0-255 pixel units: (x * 128 + 127).
    let diff = got
        .sub(&want)
        .unwrap()
        .abs()
        .unwrap()
        .affine(128.0, 0.0)
        .unwrap();
    let max = diff.max_all().unwrap().to_scalar::<f32>().unwrap();
    let mean = diff.mean_all().unwrap().to_scalar::<f32>().unwrap();
    let exact = diff
        .lt(0.5f32)
        .unwrap()
        .to_dtype(candle_core::DType::F32)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    eprintln!("max diff {max} levels, mean {mean}, exact fraction {exact}");
    // The resize is Pillow's to the bit; what remains is the JPEG decoder (the image crate's
    // IDCT vs libjpeg-turbo's), which moves about 1% of decoded values by up to 3 levels.
    assert!(max <= 3.01, "max difference {max} pixel levels");
    assert!(
        exact >= 0.98,
        "only {exact} of the values equal torchvision's"
    );
}
