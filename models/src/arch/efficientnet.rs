//! torchvision's EfficientNet-B0 (`torchvision.models.efficientnet`).

use super::head::{classifier, Reference, Step};
use super::mobilenet_v2::{conv_norm_act, make_divisible};
use super::mobilenet_v3::squeeze_excitation;
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::ops::{Activation, Op};
use crate::Result;

/// B0-B7 use `nn.BatchNorm2d`'s default eps (only the V2 models pass 1e-3).
const BN_EPS: f64 = 1e-5;

/// One stage of the setting (`MBConvConfig`, width and depth 1.0).
#[derive(Clone, Copy)]
struct Stage {
    expand_ratio: usize,
    kernel: usize,
    stride: usize,
    input_channels: usize,
    out_channels: usize,
    num_layers: usize,
}

/// `bneck_conf(expand_ratio, kernel, stride, input, out, layers)`.
const fn bneck(
    expand_ratio: usize,
    kernel: usize,
    stride: usize,
    input: usize,
    out: usize,
    layers: usize,
) -> Stage {
    Stage {
        expand_ratio,
        kernel,
        stride,
        input_channels: input,
        out_channels: out,
        num_layers: layers,
    }
}

const B0: [Stage; 7] = [
    bneck(1, 3, 1, 32, 16, 1),
    bneck(6, 3, 2, 16, 24, 2),
    bneck(6, 5, 2, 24, 40, 2),
    bneck(6, 3, 2, 40, 80, 3),
    bneck(6, 5, 1, 80, 112, 3),
    bneck(6, 5, 2, 112, 192, 4),
    bneck(6, 3, 1, 192, 320, 1),
];

/// `MBConv.forward`: `block(x)`, plus `stochastic_depth(...)` of it and `x` when the shape is kept.
fn mbconv(b: &mut GraphBuilder, x: NodeId, cnf: Stage) -> Result<NodeId> {
    let silu = Some(Activation::Silu);
    let expanded = make_divisible((cnf.input_channels * cnf.expand_ratio) as f64, 8);
    let result = b.scope("block", |b| {
        let mut y = x;
        let mut index = 0;
        // expand
        if expanded != cnf.input_channels {
            let spec = ConvSpec::new(cnf.input_channels, expanded, 1);
            y = conv_norm_act(b, index, y, spec, BN_EPS, silu)?;
            index += 1;
        }
        // depthwise
        let spec = ConvSpec::new(expanded, expanded, cnf.kernel)
            .stride(cnf.stride)
            .groups(expanded);
        y = conv_norm_act(b, index, y, spec, BN_EPS, silu)?;
        // squeeze and excitation
        let squeeze = (cnf.input_channels / 4).max(1);
        y = b.scope(index + 1, |b| {
            squeeze_excitation(
                b,
                y,
                expanded,
                squeeze,
                Activation::Silu,
                Activation::Sigmoid,
            )
        })?;
        // project
        let spec = ConvSpec::new(expanded, cnf.out_channels, 1);
        conv_norm_act(b, index + 2, y, spec, BN_EPS, None)
    })?;
    if cnf.stride == 1 && cnf.input_channels == cnf.out_channels {
        // StochasticDepth is the identity at evaluation.
        let result = b.push("stochastic_depth", Op::Identity, &[result]);
        Ok(b.add("add", result, x))
    } else {
        Ok(result)
    }
}

/// `EfficientNet.forward` for `setting`.
fn efficientnet(b: &mut GraphBuilder, config: &ArchConfig, setting: &[Stage]) -> Result<NodeId> {
    let first = setting.first().map_or(32, |c| c.input_channels);
    let last_in = setting.last().map_or(first, |c| c.out_channels);
    let last_out = 4 * last_in;
    let x = b.input();
    let x = b.scope("features", |b| {
        let stem = ConvSpec::new(config.in_channels, first, 3).stride(2);
        let mut x = conv_norm_act(b, 0, x, stem, BN_EPS, Some(Activation::Silu))?;
        for (i, &stage) in setting.iter().enumerate() {
            x = b.scope(i + 1, |b| {
                let mut x = x;
                for j in 0..stage.num_layers {
                    let mut cnf = stage;
                    if j > 0 {
                        cnf.input_channels = cnf.out_channels;
                        cnf.stride = 1;
                    }
                    x = b.scope(j, |b| mbconv(b, x, cnf))?;
                }
                Ok(x)
            })?;
        }
        let head = ConvSpec::new(last_in, last_out, 1);
        conv_norm_act(
            b,
            setting.len() + 1,
            x,
            head,
            BN_EPS,
            Some(Activation::Silu),
        )
    })?;
    let x = b.adaptive_avg_pool("avgpool", x, (1, 1));
    let x = b.flatten("flatten", x);
    let head = Reference::Sequential(&[Step::Dropout, Step::Classes]);
    classifier(b, "classifier", x, last_out, head, config)
}

/// EfficientNet-B0.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: "efficientnet_b0",
    build: |b, c| efficientnet(b, c, &B0),
    classifier: "classifier.1.weight",
    stem: "features.0.0.weight",
    normalization: Normalization::IMAGENET,
}];
