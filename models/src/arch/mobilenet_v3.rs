//! torchvision's MobileNetV3 small and large (`torchvision.models.mobilenetv3`), with
//! `SqueezeExcitation` from `torchvision.ops.misc`.

use super::head::{classifier, Reference, Step};
use super::mobilenet_v2::{conv_norm_act, make_divisible};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::ops::Activation;
use crate::Result;

const BN_EPS: f64 = 0.001;

/// One row of the inverted-residual setting (`InvertedResidualConfig`, width 1.0, dilation 1).
#[derive(Clone, Copy)]
struct Bneck {
    input_channels: usize,
    kernel: usize,
    expanded_channels: usize,
    out_channels: usize,
    use_se: bool,
    use_hs: bool,
    stride: usize,
}

/// `bneck_conf(input, kernel, expanded, out, use_se, "RE" | "HS", stride, 1)`.
const fn bneck(
    input: usize,
    kernel: usize,
    expanded: usize,
    out: usize,
    use_se: bool,
    hs: bool,
    stride: usize,
) -> Bneck {
    Bneck {
        input_channels: input,
        kernel,
        expanded_channels: expanded,
        out_channels: out,
        use_se,
        use_hs: hs,
        stride,
    }
}

const RE: bool = false;
const HS: bool = true;

const LARGE: [Bneck; 15] = [
    bneck(16, 3, 16, 16, false, RE, 1),
    bneck(16, 3, 64, 24, false, RE, 2),
    bneck(24, 3, 72, 24, false, RE, 1),
    bneck(24, 5, 72, 40, true, RE, 2),
    bneck(40, 5, 120, 40, true, RE, 1),
    bneck(40, 5, 120, 40, true, RE, 1),
    bneck(40, 3, 240, 80, false, HS, 2),
    bneck(80, 3, 200, 80, false, HS, 1),
    bneck(80, 3, 184, 80, false, HS, 1),
    bneck(80, 3, 184, 80, false, HS, 1),
    bneck(80, 3, 480, 112, true, HS, 1),
    bneck(112, 3, 672, 112, true, HS, 1),
    bneck(112, 5, 672, 160, true, HS, 2),
    bneck(160, 5, 960, 160, true, HS, 1),
    bneck(160, 5, 960, 160, true, HS, 1),
];

const SMALL: [Bneck; 11] = [
    bneck(16, 3, 16, 16, true, RE, 2),
    bneck(16, 3, 72, 24, false, RE, 2),
    bneck(24, 3, 88, 24, false, RE, 1),
    bneck(24, 5, 96, 40, true, HS, 2),
    bneck(40, 5, 240, 40, true, HS, 1),
    bneck(40, 5, 240, 40, true, HS, 1),
    bneck(40, 5, 120, 48, true, HS, 1),
    bneck(48, 5, 144, 48, true, HS, 1),
    bneck(48, 5, 288, 96, true, HS, 2),
    bneck(96, 5, 576, 96, true, HS, 1),
    bneck(96, 5, 576, 96, true, HS, 1),
];

/// `SqueezeExcitation.forward`: `scale_activation(fc2(activation(fc1(avgpool(x))))) * x`.
pub(super) fn squeeze_excitation(
    b: &mut GraphBuilder,
    x: NodeId,
    input_channels: usize,
    squeeze_channels: usize,
    activation: Activation,
    scale_activation: Activation,
) -> Result<NodeId> {
    let scale = b.adaptive_avg_pool("avgpool", x, (1, 1));
    let fc1 = ConvSpec::new(input_channels, squeeze_channels, 1).bias(true);
    let scale = b.conv2d("fc1", scale, fc1)?;
    let scale = b.activation("activation", scale, activation);
    let fc2 = ConvSpec::new(squeeze_channels, input_channels, 1).bias(true);
    let scale = b.conv2d("fc2", scale, fc2)?;
    let scale = b.activation("scale_activation", scale, scale_activation);
    Ok(b.mul("mul", scale, x))
}

/// `InvertedResidual.forward`: `block(x)`, plus `x` when the shape is kept. With `dilation` 2
/// the depthwise convolution dilates instead of striding, as torchvision's does for a row
/// whose `dilation > 1`.
fn inverted_residual(
    b: &mut GraphBuilder,
    x: NodeId,
    cnf: Bneck,
    dilation: usize,
) -> Result<NodeId> {
    let activation = Some(if cnf.use_hs {
        Activation::HardSwish
    } else {
        Activation::Relu
    });
    let exp = cnf.expanded_channels;
    let result = b.scope("block", |b| {
        let mut y = x;
        let mut index = 0;
        // expand
        if exp != cnf.input_channels {
            let spec = ConvSpec::new(cnf.input_channels, exp, 1);
            y = conv_norm_act(b, index, y, spec, BN_EPS, activation)?;
            index += 1;
        }
        // depthwise
        let stride = if dilation > 1 { 1 } else { cnf.stride };
        let spec = ConvSpec::new(exp, exp, cnf.kernel)
            .stride(stride)
            .dilation(dilation)
            .groups(exp);
        y = conv_norm_act(b, index, y, spec, BN_EPS, activation)?;
        index += 1;
        if cnf.use_se {
            let squeeze = make_divisible((exp / 4) as f64, 8);
            y = b.scope(index, |b| {
                squeeze_excitation(
                    b,
                    y,
                    exp,
                    squeeze,
                    Activation::Relu,
                    Activation::TORCH_HARDSIGMOID,
                )
            })?;
            index += 1;
        }
        // project
        let spec = ConvSpec::new(exp, cnf.out_channels, 1);
        conv_norm_act(b, index, y, spec, BN_EPS, None)
    })?;
    if cnf.stride == 1 && cnf.input_channels == cnf.out_channels {
        Ok(b.add("add", result, x))
    } else {
        Ok(result)
    }
}

/// A module's output and its channels.
pub(super) type Tap = (NodeId, usize);

/// `MobileNetV3.features`, large or small, in the current scope: the output of each of its
/// modules (the stem, one per row, the last 1×1 convolution) with its channels, and the last of
/// them again. `dilated` is torchvision's `_mobilenet_v3_conf(dilated=True)` (the segmentation
/// backbones): the last stage, from its strided row on, dilates by 2 instead of striding.
pub(super) fn mobilenet_v3_features(
    b: &mut GraphBuilder,
    in_channels: usize,
    large: bool,
    dilated: bool,
) -> Result<(Vec<Tap>, Tap)> {
    let setting: &[Bneck] = if large { &LARGE } else { &SMALL };
    let first = setting.first().map_or(16, |c| c.input_channels);
    let last_in = setting.last().map_or(first, |c| c.out_channels);
    let last_out = 6 * last_in;
    let last_stage = setting.iter().rposition(|c| c.stride > 1).unwrap_or(0);
    let x = b.input();
    let stem = ConvSpec::new(in_channels, first, 3).stride(2);
    let mut x = conv_norm_act(b, 0, x, stem, BN_EPS, Some(Activation::HardSwish))?;
    let mut outputs = vec![(x, first)];
    for (i, &cnf) in setting.iter().enumerate() {
        let dilation = if dilated && i >= last_stage { 2 } else { 1 };
        x = b.scope(i + 1, |b| inverted_residual(b, x, cnf, dilation))?;
        outputs.push((x, cnf.out_channels));
    }
    let head = ConvSpec::new(last_in, last_out, 1);
    let hardswish = Some(Activation::HardSwish);
    let x = conv_norm_act(b, setting.len() + 1, x, head, BN_EPS, hardswish)?;
    outputs.push((x, last_out));
    Ok((outputs, (x, last_out)))
}

/// Where torchvision's segmentation heads tap `MobileNetV3.features`: the indices of the stem,
/// of each row that strides (`_is_cn`) and of the last module.
pub(super) fn stage_indices(large: bool) -> Vec<usize> {
    let setting: &[Bneck] = if large { &LARGE } else { &SMALL };
    let strided = setting.iter().enumerate().filter(|(_, c)| c.stride > 1);
    let mut indices = vec![0];
    indices.extend(strided.map(|(i, _)| i + 1));
    indices.push(setting.len() + 1);
    indices
}

/// `MobileNetV3.forward`, large or small, with the classifier's hidden width `last_channel`.
fn mobilenet_v3(
    b: &mut GraphBuilder,
    config: &ArchConfig,
    large: bool,
    last_channel: usize,
) -> Result<NodeId> {
    let (_, (x, last_out)) = b.scope("features", |b| {
        mobilenet_v3_features(b, config.in_channels, large, false)
    })?;
    let x = b.adaptive_avg_pool("avgpool", x, (1, 1));
    let x = b.flatten("flatten", x);
    let head: &'static [Step] = match last_channel {
        1024 => &HEAD_1024,
        _ => &HEAD_1280,
    };
    classifier(
        b,
        "classifier",
        x,
        last_out,
        Reference::Sequential(head),
        config,
    )
}

/// MobileNetV3's `classifier` with a hidden width of `W`.
macro_rules! head {
    ($w:expr) => {
        [
            Step::Linear($w),
            Step::Act(Activation::HardSwish),
            Step::Dropout,
            Step::Classes,
        ]
    };
}

/// The small model's `classifier`.
static HEAD_1024: [Step; 4] = head!(1024);
/// The large model's `classifier`.
static HEAD_1280: [Step; 4] = head!(1280);

/// MobileNetV3 small and large.
pub static ARCHITECTURES: [Architecture; 2] = [
    Architecture {
        name: "mobilenet_v3_large",
        build: |b, c| mobilenet_v3(b, c, true, 1280),
        classifier: "classifier.3.weight",
        stem: "features.0.0.weight",
        normalization: Normalization::IMAGENET,
    },
    Architecture {
        name: "mobilenet_v3_small",
        build: |b, c| mobilenet_v3(b, c, false, 1024),
        classifier: "classifier.3.weight",
        stem: "features.0.0.weight",
        normalization: Normalization::IMAGENET,
    },
];
