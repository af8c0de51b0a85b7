//! `small-vgg`: a VGG-style network for 28×28 grayscale images (Fashion-MNIST) with a global
//! average pool and a single Linear layer as its head, so that CAM applies to its last conv
//! block. Its PyTorch twin (`SmallVGG`) is in `tests/fixtures/make_train.py`:
//!
//! ```text
//! features = Sequential(Conv2d(1, 32, 3, padding=1, bias=False), BatchNorm2d(32), ReLU(),
//!                       Conv2d(32, 32, ...), BatchNorm2d(32), ReLU(), MaxPool2d(2),
//!                       Conv2d(32, 64, ...), BatchNorm2d(64), ReLU(),
//!                       Conv2d(64, 64, ...), BatchNorm2d(64), ReLU(), MaxPool2d(2),
//!                       Conv2d(64, 128, ...), BatchNorm2d(128), ReLU())
//! avgpool = AdaptiveAvgPool2d(1); flatten; fc = Linear(128, num_classes)
//! ```

use super::head::{classifier, Reference};
use super::{fashion_mnist, ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::Result;

/// The `--arch` name.
pub const NAME: &str = "small-vgg";

/// BatchNorm2d's default epsilon.
pub const BN_EPS: f64 = 1e-5;

/// An entry of `features`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layer {
    /// `Conv2d(in, v, 3, padding=1, bias=False)`, `BatchNorm2d(v)`, `ReLU()`: three children.
    Conv(usize),
    /// `MaxPool2d(2)`: one child.
    Pool,
}

/// The `features` configuration.
pub const FEATURES: [Layer; 7] = [
    Layer::Conv(32),
    Layer::Conv(32),
    Layer::Pool,
    Layer::Conv(64),
    Layer::Conv(64),
    Layer::Pool,
    Layer::Conv(128),
];

/// The channels of the last conv block (the input of `fc`).
pub const HEAD_CHANNELS: usize = 128;

/// The input channels.
pub const IN_CHANNELS: usize = 1;

/// `SmallVGG.forward`: `features`, `avgpool`, flatten, `fc`.
fn small_vgg(b: &mut GraphBuilder, config: &ArchConfig) -> Result<NodeId> {
    let x = b.input();
    let x = b.scope("features", |b| {
        let mut x = x;
        let mut index = 0usize;
        let mut in_channels = IN_CHANNELS;
        for layer in FEATURES {
            match layer {
                Layer::Pool => {
                    x = b.max_pool(&index.to_string(), x, 2, 2, 0, false);
                    index += 1;
                }
                Layer::Conv(v) => {
                    let spec = ConvSpec::new(in_channels, v, 3).padding(1);
                    x = b.conv2d(&index.to_string(), x, spec)?;
                    x = b.batch_norm(&(index + 1).to_string(), x, v, BN_EPS)?;
                    x = b.relu(&(index + 2).to_string(), x);
                    index += 3;
                    in_channels = v;
                }
            }
        }
        Ok(x)
    })?;
    let x = b.adaptive_avg_pool("avgpool", x, (1, 1));
    let x = b.flatten("flatten", x);
    classifier(b, "fc", x, HEAD_CHANNELS, Reference::Linear, config)
}

/// small-vgg.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: NAME,
    build: small_vgg,
    classifier: "fc.weight",
    stem: "features.0.weight",
    normalization: fashion_mnist::NORMALIZATION,
}];
