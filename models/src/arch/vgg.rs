//! torchvision's VGG-11/13/16/19, with and without batch norm (`torchvision.models.vgg`).

use super::head::{classifier, Reference, Step};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::ops::Activation;
use crate::Result;

const BN_EPS: f64 = 1e-5;

/// An entry of a VGG configuration: a 3×3 conv with that many output channels, or a max pool.
#[derive(Clone, Copy)]
enum Layer {
    /// `nn.Conv2d(in, v, kernel_size=3, padding=1)` (then BN if any) and ReLU.
    Conv(usize),
    /// `nn.MaxPool2d(kernel_size=2, stride=2)`.
    Pool,
}

use Layer::{Conv as C, Pool as M};

/// Configuration "A" (VGG-11).
#[rustfmt::skip]
const CFG_A: &[Layer] = &[C(64), M, C(128), M, C(256), C(256), M, C(512), C(512), M, C(512), C(512), M];
/// Configuration "B" (VGG-13).
#[rustfmt::skip]
const CFG_B: &[Layer] = &[C(64), C(64), M, C(128), C(128), M, C(256), C(256), M, C(512), C(512), M, C(512), C(512), M];
/// Configuration "D" (VGG-16).
#[rustfmt::skip]
const CFG_D: &[Layer] = &[
    C(64), C(64), M, C(128), C(128), M, C(256), C(256), C(256), M,
    C(512), C(512), C(512), M, C(512), C(512), C(512), M,
];
/// Configuration "E" (VGG-19).
#[rustfmt::skip]
const CFG_E: &[Layer] = &[
    C(64), C(64), M, C(128), C(128), M, C(256), C(256), C(256), C(256), M,
    C(512), C(512), C(512), C(512), M, C(512), C(512), C(512), C(512), M,
];

/// `make_layers(cfg, batch_norm)`: the `features` Sequential, its children numbered in order.
fn features(
    b: &mut GraphBuilder,
    x: NodeId,
    in_channels: usize,
    cfg: &[Layer],
    batch_norm: bool,
) -> Result<NodeId> {
    let mut x = x;
    let mut index = 0usize;
    let mut next = || {
        index += 1;
        (index - 1).to_string()
    };
    let mut in_channels = in_channels;
    for &layer in cfg {
        match layer {
            Layer::Pool => x = b.max_pool(&next(), x, 2, 2, 0, false),
            Layer::Conv(v) => {
                x = b.conv2d(
                    &next(),
                    x,
                    ConvSpec::new(in_channels, v, 3).padding(1).bias(true),
                )?;
                if batch_norm {
                    x = b.batch_norm(&next(), x, v, BN_EPS)?;
                }
                x = b.relu(&next(), x);
                in_channels = v;
            }
        }
    }
    Ok(x)
}

/// `VGG.forward`: `features`, `avgpool`, flatten, `classifier`.
fn vgg(
    b: &mut GraphBuilder,
    config: &ArchConfig,
    cfg: &[Layer],
    batch_norm: bool,
) -> Result<NodeId> {
    let x = b.input();
    let x = b.scope("features", |b| {
        features(b, x, config.in_channels, cfg, batch_norm)
    })?;
    let x = b.adaptive_avg_pool("avgpool", x, (7, 7));
    let x = b.flatten("flatten", x);
    classifier(b, "classifier", x, 512 * 7 * 7, HEAD, config)
}

/// VGG's `classifier`.
const HEAD: Reference = Reference::Sequential(&[
    Step::Linear(4096),
    Step::Act(Activation::Relu),
    Step::Dropout,
    Step::Linear(4096),
    Step::Act(Activation::Relu),
    Step::Dropout,
    Step::Classes,
]);

macro_rules! vgg_arch {
    ($name:literal, $cfg:expr, $bn:expr) => {
        Architecture {
            name: $name,
            build: |b, c| vgg(b, c, $cfg, $bn),
            classifier: "classifier.6.weight",
            stem: "features.0.weight",
            normalization: Normalization::IMAGENET,
        }
    };
}

/// VGG-11, 13, 16 and 19, then the same with batch norm.
pub static ARCHITECTURES: [Architecture; 8] = [
    vgg_arch!("vgg11", CFG_A, false),
    vgg_arch!("vgg13", CFG_B, false),
    vgg_arch!("vgg16", CFG_D, false),
    vgg_arch!("vgg19", CFG_E, false),
    vgg_arch!("vgg11_bn", CFG_A, true),
    vgg_arch!("vgg13_bn", CFG_B, true),
    vgg_arch!("vgg16_bn", CFG_D, true),
    vgg_arch!("vgg19_bn", CFG_E, true),
];
