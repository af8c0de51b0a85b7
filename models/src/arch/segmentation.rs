//! torchvision's semantic segmentation networks (`torchvision.models.segmentation`): FCN
//! (Long et al. 2015) on a ResNet-50 whose last two stages dilate instead of striding. The
//! network's output is dense: a logit per class and pixel [N, classes, H, W], upsampled to the
//! input's size; explain targets a class summed over a region of it.

use super::resnet::{resnet_features, Block};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::ops::{CoordinateMode, Op, Resize, ResizeMode, ResizeTarget};
use crate::Result;

const BN_EPS: f64 = 1e-5;

/// The Pascal VOC classes torchvision's segmentation weights predict, background first.
pub const VOC_CLASSES: [&str; 21] = [
    "__background__",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// `FCNHead`: a 3×3 convolution to a quarter of the channels, BatchNorm, ReLU, dropout, and a
/// 1×1 convolution to the classes.
fn fcn_head(b: &mut GraphBuilder, x: NodeId, channels: usize, classes: usize) -> Result<NodeId> {
    let inter = channels / 4;
    b.scope("classifier", |b| {
        let x = b.conv2d("0", x, ConvSpec::new(channels, inter, 3).padding(1))?;
        let x = b.batch_norm("1", x, inter, BN_EPS)?;
        let x = b.relu("2", x);
        let x = b.dropout("3", x);
        b.conv2d("4", x, ConvSpec::new(inter, classes, 1).bias(true))
    })
}

/// `FCN.forward` with a ResNet-50 backbone (`fcn_resnet50`, no auxiliary head): the backbone's
/// `layer4`, the head, then `F.interpolate(x, size=input.shape[-2:], mode="bilinear",
/// align_corners=False)`.
fn fcn_resnet50(b: &mut GraphBuilder, config: &ArchConfig) -> Result<NodeId> {
    let input = b.input();
    let (x, channels) = b.scope("backbone", |b| {
        resnet_features(
            b,
            config.in_channels,
            Block::Bottleneck,
            [3, 4, 6, 3],
            [false, true, true],
        )
    })?;
    let x = fcn_head(b, x, channels, config.num_classes)?;
    let upsample = Resize {
        mode: ResizeMode::Linear,
        coordinates: CoordinateMode::PytorchHalfPixel,
        target: ResizeTarget::LikeSecondInput,
    };
    Ok(b.push("upsample", Op::Resize(upsample), &[x, input]))
}

/// Whether `name` is one of these architectures (their classes are VOC's by default).
pub fn is_segmentation(name: &str) -> bool {
    ARCHITECTURES.iter().any(|a| a.name == name)
}

/// FCN-ResNet50.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: "fcn_resnet50",
    build: fcn_resnet50,
    classifier: "classifier.4.weight",
    stem: "backbone.conv1.weight",
    normalization: Normalization::IMAGENET,
}];
