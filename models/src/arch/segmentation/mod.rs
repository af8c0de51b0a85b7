//! torchvision's semantic segmentation networks (`torchvision.models.segmentation`): FCN,
//! DeepLabV3 and Lite R-ASPP. Each one's output is dense: a logit per class and pixel
//! [N, classes, H, W], upsampled to the input's size (torchvision's `{"out": …}`, without the
//! auxiliary head); explain targets a class summed over a region of it.

mod deeplabv3;
mod fcn;
mod lraspp;

use super::resnet::{resnet_features, Block};
use super::{ArchConfig, Architecture};
use crate::graph::{GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::ops::{CoordinateMode, Op, Resize, ResizeMode, ResizeTarget};
use crate::Result;

/// `nn.BatchNorm2d`'s default epsilon, which every head here keeps.
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

/// The backbone of FCN and DeepLabV3: torchvision's `resnet50(replace_stride_with_dilation=
/// [False, True, True])` up to `layer4`, under `backbone`; its output and channels.
fn dilated_resnet50(b: &mut GraphBuilder, config: &ArchConfig) -> Result<(NodeId, usize)> {
    b.scope("backbone", |b| {
        resnet_features(
            b,
            config.in_channels,
            Block::Bottleneck,
            [3, 4, 6, 3],
            [false, true, true],
        )
    })
}

/// `F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)`: how every
/// head here returns to the input's (or a tap's) resolution.
fn upsample_like(b: &mut GraphBuilder, name: &str, x: NodeId, like: NodeId) -> NodeId {
    let upsample = Resize {
        mode: ResizeMode::Linear,
        coordinates: CoordinateMode::PytorchHalfPixel,
        target: ResizeTarget::LikeSecondInput,
    };
    b.push(name, Op::Resize(upsample), &[x, like])
}

/// Whether `name` is one of these architectures (their classes are VOC's by default).
pub fn is_segmentation(name: &str) -> bool {
    ARCHITECTURES.iter().any(|a| a.name == name)
}

/// FCN-ResNet50, DeepLabV3-ResNet50 and LR-ASPP-MobileNetV3-Large.
pub static ARCHITECTURES: [Architecture; 3] = [
    Architecture {
        name: "fcn_resnet50",
        build: fcn::fcn_resnet50,
        classifier: "classifier.4.weight",
        stem: "backbone.conv1.weight",
        normalization: Normalization::IMAGENET,
    },
    Architecture {
        name: "deeplabv3_resnet50",
        build: deeplabv3::deeplabv3_resnet50,
        classifier: "classifier.4.weight",
        stem: "backbone.conv1.weight",
        normalization: Normalization::IMAGENET,
    },
    Architecture {
        name: "lraspp_mobilenet_v3_large",
        build: lraspp::lraspp_mobilenet_v3_large,
        classifier: "classifier.high_classifier.weight",
        stem: "backbone.0.0.weight",
        normalization: Normalization::IMAGENET,
    },
];
