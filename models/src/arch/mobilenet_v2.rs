//! torchvision's MobileNetV2 (`torchvision.models.mobilenetv2`), with the `Conv2dNormActivation`
//! block (`torchvision.ops.misc`) and `_make_divisible` (`torchvision.models._utils`) that the
//! other mobile architectures share.

use std::fmt::Display;

use super::head::{classifier, Reference, Step};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::ops::Activation;
use crate::Result;

const BN_EPS: f64 = 1e-5;

/// `_make_divisible(v, divisor)`: `v` rounded to the nearest multiple of `divisor` (at least
/// `divisor`), rounded up a step when rounding down lost more than 10%.
pub(super) fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let mut new_v = divisor.max(((v + d / 2.0) as usize) / divisor * divisor);
    if (new_v as f64) < 0.9 * v {
        new_v += divisor;
    }
    new_v
}

/// `Conv2dNormActivation(spec, norm_layer=BatchNorm2d(eps), activation_layer)` named `name`:
/// conv `0` (padding `(k - 1) / 2`, no bias), BN `1`, and the activation `2` when there is one.
pub(super) fn conv_norm_act(
    b: &mut GraphBuilder,
    name: impl Display,
    x: NodeId,
    spec: ConvSpec,
    eps: f64,
    activation: Option<Activation>,
) -> Result<NodeId> {
    b.scope(name, |b| {
        let spec = spec.padding((spec.kernel - 1) / 2 * spec.dilation);
        let y = b.conv2d("0", x, spec)?;
        let y = b.batch_norm("1", y, spec.out_channels, eps)?;
        Ok(match activation {
            Some(a) => b.activation("2", y, a),
            None => y,
        })
    })
}

/// `InvertedResidual.forward`: `x + self.conv(x)` when the shape is kept, else `self.conv(x)`.
fn inverted_residual(
    b: &mut GraphBuilder,
    x: NodeId,
    inp: usize,
    oup: usize,
    stride: usize,
    expand_ratio: usize,
) -> Result<NodeId> {
    let hidden = inp * expand_ratio;
    let relu6 = Some(Activation::Relu6);
    let y = b.scope("conv", |b| {
        let mut y = x;
        let mut index = 0;
        if expand_ratio != 1 {
            // pw
            y = conv_norm_act(b, index, y, ConvSpec::new(inp, hidden, 1), BN_EPS, relu6)?;
            index += 1;
        }
        // dw
        let dw = ConvSpec::new(hidden, hidden, 3)
            .stride(stride)
            .groups(hidden);
        y = conv_norm_act(b, index, y, dw, BN_EPS, relu6)?;
        // pw-linear
        y = b.conv2d(&(index + 1).to_string(), y, ConvSpec::new(hidden, oup, 1))?;
        b.batch_norm(&(index + 2).to_string(), y, oup, BN_EPS)
    })?;
    if stride == 1 && inp == oup {
        Ok(b.add("add", x, y))
    } else {
        Ok(y)
    }
}

/// `MobileNetV2.forward` (width 1.0).
fn mobilenet_v2(b: &mut GraphBuilder, config: &ArchConfig) -> Result<NodeId> {
    // t, c, n, s
    const SETTING: [(usize, usize, usize, usize); 7] = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ];
    let last_channel = 1280;
    let x = b.input();
    let x = b.scope("features", |b| {
        let mut input_channel = 32;
        let stem = ConvSpec::new(config.in_channels, input_channel, 3).stride(2);
        let mut x = conv_norm_act(b, 0, x, stem, BN_EPS, Some(Activation::Relu6))?;
        let mut index = 1;
        for (t, c, n, s) in SETTING {
            let output_channel = make_divisible(c as f64, 8);
            for i in 0..n {
                let stride = if i == 0 { s } else { 1 };
                x = b.scope(index, |b| {
                    inverted_residual(b, x, input_channel, output_channel, stride, t)
                })?;
                input_channel = output_channel;
                index += 1;
            }
        }
        let head = ConvSpec::new(input_channel, last_channel, 1);
        conv_norm_act(b, index, x, head, BN_EPS, Some(Activation::Relu6))
    })?;
    let x = b.adaptive_avg_pool("adaptive_avg_pool2d", x, (1, 1));
    let x = b.flatten("flatten", x);
    let head = Reference::Sequential(&[Step::Dropout, Step::Classes]);
    classifier(b, "classifier", x, last_channel, head, config)
}

/// MobileNetV2.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: "mobilenet_v2",
    build: mobilenet_v2,
    classifier: "classifier.1.weight",
    stem: "features.0.0.weight",
    normalization: Normalization::IMAGENET,
}];
