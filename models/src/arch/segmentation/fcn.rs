//! `torchvision.models.segmentation.fcn`: FCN (Long et al. 2015) on a ResNet-50 whose last two
//! stages dilate instead of striding.

use super::{dilated_resnet50, upsample_like, BN_EPS};
use crate::arch::ArchConfig;
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::Result;

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
pub(super) fn fcn_resnet50(b: &mut GraphBuilder, config: &ArchConfig) -> Result<NodeId> {
    let input = b.input();
    let (x, channels) = dilated_resnet50(b, config)?;
    let x = fcn_head(b, x, channels, config.num_classes)?;
    Ok(upsample_like(b, "upsample", x, input))
}
