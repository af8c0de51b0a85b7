//! torchvision's SqueezeNet 1.0 and 1.1 (`torchvision.models.squeezenet`).

use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::Result;

/// The SqueezeNet version.
#[derive(Clone, Copy)]
enum Version {
    /// SqueezeNet 1.0.
    V1_0,
    /// SqueezeNet 1.1.
    V1_1,
}

/// `Fire.forward` with `Fire(inplanes, squeeze_planes, expand1x1_planes, expand3x3_planes)`.
fn fire(b: &mut GraphBuilder, x: NodeId, planes: [usize; 4]) -> Result<NodeId> {
    let [inplanes, squeeze, e1, e3] = planes;
    let x = b.conv2d("squeeze", x, ConvSpec::new(inplanes, squeeze, 1).bias(true))?;
    let x = b.relu("squeeze_activation", x);
    let a = b.conv2d("expand1x1", x, ConvSpec::new(squeeze, e1, 1).bias(true))?;
    let a = b.relu("expand1x1_activation", a);
    let c = b.conv2d(
        "expand3x3",
        x,
        ConvSpec::new(squeeze, e3, 3).padding(1).bias(true),
    )?;
    let c = b.relu("expand3x3_activation", c);
    Ok(b.concat("cat", &[a, c]))
}

/// SqueezeNet 1.0's `features`.
fn features_1_0(b: &mut GraphBuilder, x: NodeId, in_channels: usize) -> Result<NodeId> {
    let x = b.conv2d(
        "0",
        x,
        ConvSpec::new(in_channels, 96, 7).stride(2).bias(true),
    )?;
    let x = b.relu("1", x);
    let x = b.max_pool("2", x, 3, 2, 0, true);
    let x = b.scope(3, |b| fire(b, x, [96, 16, 64, 64]))?;
    let x = b.scope(4, |b| fire(b, x, [128, 16, 64, 64]))?;
    let x = b.scope(5, |b| fire(b, x, [128, 32, 128, 128]))?;
    let x = b.max_pool("6", x, 3, 2, 0, true);
    let x = b.scope(7, |b| fire(b, x, [256, 32, 128, 128]))?;
    let x = b.scope(8, |b| fire(b, x, [256, 48, 192, 192]))?;
    let x = b.scope(9, |b| fire(b, x, [384, 48, 192, 192]))?;
    let x = b.scope(10, |b| fire(b, x, [384, 64, 256, 256]))?;
    let x = b.max_pool("11", x, 3, 2, 0, true);
    b.scope(12, |b| fire(b, x, [512, 64, 256, 256]))
}

/// SqueezeNet 1.1's `features`.
fn features_1_1(b: &mut GraphBuilder, x: NodeId, in_channels: usize) -> Result<NodeId> {
    let x = b.conv2d(
        "0",
        x,
        ConvSpec::new(in_channels, 64, 3).stride(2).bias(true),
    )?;
    let x = b.relu("1", x);
    let x = b.max_pool("2", x, 3, 2, 0, true);
    let x = b.scope(3, |b| fire(b, x, [64, 16, 64, 64]))?;
    let x = b.scope(4, |b| fire(b, x, [128, 16, 64, 64]))?;
    let x = b.max_pool("5", x, 3, 2, 0, true);
    let x = b.scope(6, |b| fire(b, x, [128, 32, 128, 128]))?;
    let x = b.scope(7, |b| fire(b, x, [256, 32, 128, 128]))?;
    let x = b.max_pool("8", x, 3, 2, 0, true);
    let x = b.scope(9, |b| fire(b, x, [256, 48, 192, 192]))?;
    let x = b.scope(10, |b| fire(b, x, [384, 48, 192, 192]))?;
    let x = b.scope(11, |b| fire(b, x, [384, 64, 256, 256]))?;
    b.scope(12, |b| fire(b, x, [512, 64, 256, 256]))
}

/// `SqueezeNet.forward`: `features`, `classifier`, flatten.
fn squeezenet(b: &mut GraphBuilder, config: &ArchConfig, version: Version) -> Result<NodeId> {
    let x = b.input();
    let x = b.scope("features", |b| match version {
        Version::V1_0 => features_1_0(b, x, config.in_channels),
        Version::V1_1 => features_1_1(b, x, config.in_channels),
    })?;
    let x = b.scope("classifier", |b| {
        let x = b.dropout("0", x);
        let x = b.conv2d("1", x, ConvSpec::new(512, config.num_classes, 1).bias(true))?;
        let x = b.relu("2", x);
        Ok(b.adaptive_avg_pool("3", x, (1, 1)))
    })?;
    Ok(b.flatten("flatten", x))
}

macro_rules! squeezenet_arch {
    ($name:literal, $version:expr) => {
        Architecture {
            name: $name,
            build: |b, c| squeezenet(b, c, $version),
            classifier: "classifier.1.weight",
            stem: "features.0.weight",
            normalization: Normalization::IMAGENET,
        }
    };
}

/// SqueezeNet 1.0 and 1.1.
pub static ARCHITECTURES: [Architecture; 2] = [
    squeezenet_arch!("squeezenet1_0", Version::V1_0),
    squeezenet_arch!("squeezenet1_1", Version::V1_1),
];
