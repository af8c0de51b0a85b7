//! EfficientNet-Lite0 as PyPI `efficientnet-lite-pytorch` 0.1.0 builds it
//! (`efficientnet_lite_pytorch/model.py` and `utils.py`, a fork of lukemelas' `efficientnet_pytorch`).

use super::head::{classifier, Reference};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::ops::Activation;
use crate::Result;

/// `batch_norm_epsilon` of the global params.
const BN_EPS: f64 = 1e-3;

/// One decoded block string, `r{repeats}_k{kernel}_s{stride}_e{expand}_i{in}_o{out}` (no SE).
#[derive(Clone, Copy)]
struct BlockArgs {
    num_repeat: usize,
    kernel: usize,
    stride: usize,
    expand_ratio: usize,
    input_filters: usize,
    output_filters: usize,
}

/// The block args from their string fields.
const fn args(r: usize, k: usize, s: usize, e: usize, i: usize, o: usize) -> BlockArgs {
    BlockArgs {
        num_repeat: r,
        kernel: k,
        stride: s,
        expand_ratio: e,
        input_filters: i,
        output_filters: o,
    }
}

/// `efficientnet_lite()`'s blocks_args; Lite0's width and depth coefficients (1.0) change nothing.
const LITE0: [BlockArgs; 7] = [
    args(1, 3, 1, 1, 32, 16),
    args(2, 3, 2, 6, 16, 24),
    args(2, 5, 2, 6, 24, 40),
    args(3, 3, 2, 6, 40, 80),
    args(3, 5, 1, 6, 80, 112),
    args(4, 5, 2, 6, 112, 192),
    args(1, 3, 1, 6, 192, 320),
];

/// `MBConvBlock.forward` (eval: drop-connect is the identity; ReLU6 is the module `_swish`).
fn mbconv_block(b: &mut GraphBuilder, inputs: NodeId, a: BlockArgs) -> Result<NodeId> {
    let inp = a.input_filters;
    let oup = inp * a.expand_ratio;
    let mut x = inputs;
    if a.expand_ratio != 1 {
        x = b.conv2d("_expand_conv", x, ConvSpec::new(inp, oup, 1).same_padding())?;
        x = b.batch_norm("_bn0", x, oup, BN_EPS)?;
        x = b.activation("_swish", x, Activation::Relu6);
    }
    let dw = ConvSpec::new(oup, oup, a.kernel)
        .stride(a.stride)
        .groups(oup)
        .same_padding();
    x = b.conv2d("_depthwise_conv", x, dw)?;
    x = b.batch_norm("_bn1", x, oup, BN_EPS)?;
    x = b.activation("_swish", x, Activation::Relu6);
    let project = ConvSpec::new(oup, a.output_filters, 1).same_padding();
    x = b.conv2d("_project_conv", x, project)?;
    x = b.batch_norm("_bn2", x, a.output_filters, BN_EPS)?;
    if a.stride == 1 && inp == a.output_filters {
        x = b.add("add", x, inputs);
    }
    Ok(x)
}

/// `EfficientNet.forward`: `extract_features`, then pooling, flattening, dropout and `_fc`.
fn efficientnet_lite(
    b: &mut GraphBuilder,
    config: &ArchConfig,
    blocks_args: &[BlockArgs],
) -> Result<NodeId> {
    let stem_out = blocks_args.first().map_or(32, |a| a.input_filters);
    let head_in = blocks_args.last().map_or(stem_out, |a| a.output_filters);
    let head_out = 1280;
    let x = b.input();
    let x = b.conv2d(
        "_conv_stem",
        x,
        ConvSpec::new(config.in_channels, stem_out, 3)
            .stride(2)
            .same_padding(),
    )?;
    let x = b.batch_norm("_bn0", x, stem_out, BN_EPS)?;
    let mut x = b.activation("_swish", x, Activation::Relu6);
    let mut index = 0;
    for &block in blocks_args {
        for repeat in 0..block.num_repeat {
            let mut a = block;
            if repeat > 0 {
                a.input_filters = a.output_filters;
                a.stride = 1;
            }
            x = b.scope("_blocks", |b| b.scope(index, |b| mbconv_block(b, x, a)))?;
            index += 1;
        }
    }
    let x = b.conv2d(
        "_conv_head",
        x,
        ConvSpec::new(head_in, head_out, 1).same_padding(),
    )?;
    let x = b.batch_norm("_bn1", x, head_out, BN_EPS)?;
    let x = b.activation("_swish", x, Activation::Relu6);
    let x = b.adaptive_avg_pool("_avg_pooling", x, (1, 1));
    let x = b.flatten("view", x);
    let x = b.dropout("_dropout", x);
    classifier(b, "_fc", x, head_out, Reference::Linear, config)
}

/// EfficientNet-Lite0.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: "efficientnet_lite0",
    build: |b, c| efficientnet_lite(b, c, &LITE0),
    classifier: "_fc.weight",
    stem: "_conv_stem.weight",
    normalization: Normalization::LITE,
}];
