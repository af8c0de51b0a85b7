//! The fastest forward pass (Winograd for 3×3 convolutions, BatchNorm folded into the
//! convolution before it, the activation after applied as the convolution writes) against the
//! direct one, on whole networks: the logits agree within float rounding, and the folds and
//! Winograd layers are really taken; the activations applied that way give the same bits as
//! their own pass, and so do the BatchNorms and activations a direct pass applies as its
//! convolutions write.

mod common;

use candle_core::Tensor;
use common::assert_close;
use convlens_models::graph::NodeId;
use convlens_models::ops::{Convolutions, Op};
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

#[test]
fn an_activation_applied_by_its_convolution_gives_the_bits_of_its_own_pass() {
    // (model, activations applied by the convolution before them), counted from the
    // architectures: resnet18's stem and the first convolution of each of 8 blocks (the second
    // is read by the residual sum); vgg16_bn's 13; the demo's stem, head, 15 expansions and 16
    // depthwise convolutions (ReLU6).
    for (spec, fused) in [
        ("random:resnet18", 9),
        ("random:vgg16_bn", 13),
        ("demo", 33),
    ] {
        let model = Model::load(spec, &LoadOptions::default(), &common::device()).unwrap();
        assert_eq!(model.graph.fused_activations(), fused, "{spec}");
        // Two images: resnet18's 3×3 planes go through the GEMM of several images.
        let x = convlens_models::weights::synthetic::synthetic_tensor(
            "input",
            &[2, 3, 96, 96],
            1,
            &common::device(),
        )
        .unwrap();
        // Keeping every BatchNorm's output leaves each activation a pass of its own.
        let norms: Vec<NodeId> = (0..model.graph.nodes().len())
            .filter(|&i| matches!(model.graph.nodes()[i].op, Op::BatchNorm2d(_)))
            .collect();
        let logits = |keep: &[NodeId]| -> Vec<u32> {
            let trace = model
                .graph
                .forward_by(&x, Some(keep), Convolutions::Fastest)
                .unwrap();
            common::bits(trace.output().unwrap())
        };
        assert_eq!(logits(&[]), logits(&norms), "{spec}");
    }
}

#[test]
fn a_direct_pass_that_chains_batch_norms_gives_the_bits_of_one_keeping_every_layer() {
    // (model, convolutions read by a BatchNorm alone): resnet18's 20, vgg16_bn's 13, the demo's
    // 49 (stem, head, and each block's expansion, depthwise and projection).
    for (spec, chained) in [
        ("random:resnet18", 20),
        ("random:vgg16_bn", 13),
        ("demo", 49),
    ] {
        let model = Model::load(spec, &LoadOptions::default(), &common::device()).unwrap();
        assert_eq!(model.graph.chained_batch_norms(), chained, "{spec}");
        let x = convlens_models::weights::synthetic::synthetic_tensor(
            "input",
            &[2, 3, 96, 96],
            2,
            &common::device(),
        )
        .unwrap();
        // Nothing kept: every chain runs as its convolution; every node kept: none does.
        let lean = model
            .graph
            .forward_by(&x, Some(&[]), Convolutions::Direct)
            .unwrap();
        let full = model.graph.forward(&x, None).unwrap();
        assert_eq!(
            common::bits(lean.output().unwrap()),
            common::bits(full.output().unwrap()),
            "{spec}"
        );
    }
}
