//! The shipped demo weights (`models/assets/efficientnet_lite0.safetensors`) against the
//! reference package's logits on the preprocessed chelsea photo (`tests/fixtures/demo`).

use std::collections::BTreeMap;
use std::path::PathBuf;

mod common;
use common::assert_close_on_device;

use candle_core::{Device, Tensor};
use convlens_models::arch::{self, ArchConfig};
use convlens_models::graph::WeightSource;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn efficientnet_lite0_demo_weights_match_reference_logits() {
    let device = convlens_models::device::device_from_env().unwrap();
    let tensors = candle_core::safetensors::load(
        root().join("assets/efficientnet_lite0.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let dict: BTreeMap<String, Tensor> = tensors.into_iter().collect();
    assert_eq!(dict.len(), 247, "tensor count of the demo weights");

    let arch = arch::find("efficientnet_lite0").unwrap();
    // Fails on any missing, unexpected or misshapen tensor.
    let graph = arch
        .build_graph(
            WeightSource::StateDict(dict),
            &ArchConfig::default(),
            &device,
        )
        .unwrap();

    let demo = root().join("../tests/fixtures/demo");
    let x = Tensor::read_npy(demo.join("chelsea_input.npy"))
        .unwrap()
        .to_device(&device)
        .unwrap();
    assert_eq!(x.dims(), &[1, 3, 224, 224]);
    let trace = graph.forward(&x, Some(&[])).unwrap();
    let got = trace.output().unwrap().to_device(&Device::Cpu).unwrap();

    let want = Tensor::read_npy(demo.join("chelsea_logits.npy")).unwrap();
    assert_close_on_device("efficientnet_lite0 demo logits", &got, &want);
}
