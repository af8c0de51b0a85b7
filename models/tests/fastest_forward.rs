//! The fastest forward pass (Winograd for 3×3 convolutions, BatchNorm folded into the
//! convolution before it) against the direct one, on whole networks: the logits agree within
//! float rounding, and the folds and Winograd layers are really taken.

mod common;

use candle_core::Tensor;
use common::assert_close;
use convlens_models::ops::Convolutions;
use convlens_models::{LoadOptions, Model};

/// Logits by both passes, and the number of BatchNorms folded.
fn both(spec: &str, size: usize) -> (Tensor, Tensor, usize) {
    let model = Model::load(spec, &LoadOptions::default(), &common::device()).unwrap();
    let x = convlens_models::weights::synthetic::synthetic_tensor(
        "input",
        &[2, 3, size, size],
        0,
        &common::device(),
    )
    .unwrap();
    let direct = model.graph.forward(&x, Some(&[])).unwrap();
    let fastest = model
        .graph
        .forward_by(&x, Some(&[]), Convolutions::Fastest)
        .unwrap();
    (
        fastest.output().unwrap().clone(),
        direct.output().unwrap().clone(),
        model.graph.folded_batch_norms(),
    )
}

#[test]
fn the_fastest_pass_equals_the_direct_one() {
    // (model, input size, BatchNorms folded), counted from the architectures: resnet18's stem,
    // 16 block convolutions and 3 downsamples; vgg16_bn's 13 convolutions; GoogLeNet's 3 + 9 × 6
    // BasicConv2d; MobileNetV3-Small's stem, last convolution and 11 blocks of 3 (the first
    // without an expansion: 2; squeeze-excitation convolutions have no BatchNorm); DenseNet's
    // stem and the 1×1 → norm2 inside each of its 6 + 12 + 24 + 16 layers; the demo's stem, head and 16 blocks of 3 (the
    // first without an expansion: 2).
    for (spec, size, folds) in [
        ("random:resnet18", 96, 20),
        ("random:vgg16_bn", 64, 13),
        ("random:googlenet", 64, 57),
        ("random:mobilenet_v3_small", 64, 34),
        ("random:densenet121", 64, 59),
        ("demo", 96, 49),
    ] {
        let (fastest, direct, folded) = both(spec, size);
        assert_eq!(folded, folds, "{spec}: BatchNorms folded");
        assert_close(spec, &fastest, &direct, 1e-4);
    }
}
