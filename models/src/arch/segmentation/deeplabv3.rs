//! `torchvision.models.segmentation.deeplabv3`: DeepLabV3 (Chen et al. 2017) on a ResNet-50
//! whose last two stages dilate instead of striding, with atrous spatial pyramid pooling.

use super::{dilated_resnet50, upsample_like, BN_EPS};
use crate::arch::ArchConfig;
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::Result;

/// `ASPP`'s width.
const ASPP_CHANNELS: usize = 256;
/// `DeepLabHead`'s `atrous_rates`.
const ATROUS_RATES: [usize; 3] = [12, 24, 36];

/// A convolution without bias, BatchNorm and ReLU at `index`, `index + 1`, `index + 2` of the
/// current scope (`nn.Sequential` numbering).
fn conv_bn_relu(b: &mut GraphBuilder, index: usize, x: NodeId, spec: ConvSpec) -> Result<NodeId> {
    let out = spec.out_channels;
    let x = b.conv2d(&index.to_string(), x, spec)?;
    let x = b.batch_norm(&(index + 1).to_string(), x, out, BN_EPS)?;
    Ok(b.relu(&(index + 2).to_string(), x))
}

/// `ASPP.forward`: a 1×1 branch, one 3×3 branch per atrous rate, the pooled branch
/// (`ASPPPooling`: global average, 1×1 convolution, upsampled back), concatenated and
/// projected to 256 channels.
fn aspp(b: &mut GraphBuilder, x: NodeId, channels: usize) -> Result<NodeId> {
    let mut branches = Vec::new();
    b.scope("convs", |b| {
        let one = ConvSpec::new(channels, ASPP_CHANNELS, 1);
        branches.push(b.scope(0, |b| conv_bn_relu(b, 0, x, one))?);
        for (i, rate) in ATROUS_RATES.into_iter().enumerate() {
            let spec = ConvSpec::new(channels, ASPP_CHANNELS, 3)
                .padding(rate)
                .dilation(rate);
            branches.push(b.scope(i + 1, |b| conv_bn_relu(b, 0, x, spec))?);
        }
        let pooled = b.scope(ATROUS_RATES.len() + 1, |b| {
            let pooled = b.adaptive_avg_pool("0", x, (1, 1));
            let spec = ConvSpec::new(channels, ASPP_CHANNELS, 1);
            let pooled = conv_bn_relu(b, 1, pooled, spec)?;
            Ok(upsample_like(b, "upsample", pooled, x))
        })?;
        branches.push(pooled);
        Ok(())
    })?;
    let x = b.concat("cat", &branches);
    b.scope("project", |b| {
        let spec = ConvSpec::new(branches.len() * ASPP_CHANNELS, ASPP_CHANNELS, 1);
        let x = conv_bn_relu(b, 0, x, spec)?;
        Ok(b.dropout("3", x))
    })
}

/// `DeepLabHead`: ASPP, a 3×3 convolution, BatchNorm, ReLU and a 1×1 convolution to the
/// classes.
fn deeplab_head(
    b: &mut GraphBuilder,
    x: NodeId,
    channels: usize,
    classes: usize,
) -> Result<NodeId> {
    b.scope("classifier", |b| {
        let x = b.scope(0, |b| aspp(b, x, channels))?;
        let spec = ConvSpec::new(ASPP_CHANNELS, ASPP_CHANNELS, 3).padding(1);
        let x = conv_bn_relu(b, 1, x, spec)?;
        b.conv2d("4", x, ConvSpec::new(ASPP_CHANNELS, classes, 1).bias(true))
    })
}

/// `DeepLabV3.forward` with a ResNet-50 backbone (`deeplabv3_resnet50`, no auxiliary head):
/// the backbone's `layer4`, the head, then upsampled to the input's size as FCN is.
pub(super) fn deeplabv3_resnet50(b: &mut GraphBuilder, config: &ArchConfig) -> Result<NodeId> {
    let input = b.input();
    let (x, channels) = dilated_resnet50(b, config)?;
    let x = deeplab_head(b, x, channels, config.num_classes)?;
    Ok(upsample_like(b, "upsample", x, input))
}
