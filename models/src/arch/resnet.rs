//! torchvision's ResNet-18/34/50/101/152 (`torchvision.models.resnet`).

use super::head::{classifier, Reference};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::Result;

const BN_EPS: f64 = 1e-5;

/// The residual block type of a ResNet.
#[derive(Clone, Copy)]
pub(super) enum Block {
    /// Two 3×3 convs (ResNet-18/34).
    Basic,
    /// 1×1, 3×3, 1×1 with expansion 4 (ResNet-50 and deeper).
    Bottleneck,
}

impl Block {
    fn expansion(self) -> usize {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }
}

/// `BasicBlock.forward`.
fn basic_block(
    b: &mut GraphBuilder,
    x: NodeId,
    inplanes: usize,
    planes: usize,
    stride: usize,
) -> Result<NodeId> {
    let out = b.conv2d(
        "conv1",
        x,
        ConvSpec::new(inplanes, planes, 3).stride(stride).padding(1),
    )?;
    let out = b.batch_norm("bn1", out, planes, BN_EPS)?;
    let out = b.relu("relu", out);
    let out = b.conv2d("conv2", out, ConvSpec::new(planes, planes, 3).padding(1))?;
    let out = b.batch_norm("bn2", out, planes, BN_EPS)?;
    let identity = downsample(b, x, inplanes, planes, stride)?;
    let out = b.add("add", out, identity);
    Ok(b.relu("relu", out))
}

/// `Bottleneck.forward` (stride on the 3×3 conv, as torchvision's ResNet v1.5), its 3×3 conv
/// dilated by `dilation` (padded as much).
fn bottleneck(
    b: &mut GraphBuilder,
    x: NodeId,
    inplanes: usize,
    planes: usize,
    stride: usize,
    dilation: usize,
) -> Result<NodeId> {
    let width = planes;
    let out = b.conv2d("conv1", x, ConvSpec::new(inplanes, width, 1))?;
    let out = b.batch_norm("bn1", out, width, BN_EPS)?;
    let out = b.relu("relu", out);
    let out = b.conv2d(
        "conv2",
        out,
        ConvSpec::new(width, width, 3)
            .stride(stride)
            .padding(dilation)
            .dilation(dilation),
    )?;
    let out = b.batch_norm("bn2", out, width, BN_EPS)?;
    let out = b.relu("relu", out);
    let out = b.conv2d("conv3", out, ConvSpec::new(width, planes * 4, 1))?;
    let out = b.batch_norm("bn3", out, planes * 4, BN_EPS)?;
    let identity = downsample(b, x, inplanes, planes * 4, stride)?;
    let out = b.add("add", out, identity);
    Ok(b.relu("relu", out))
}

/// The block's `downsample` branch (1×1 conv + BN) when the shape changes, else the input.
fn downsample(
    b: &mut GraphBuilder,
    x: NodeId,
    inplanes: usize,
    outplanes: usize,
    stride: usize,
) -> Result<NodeId> {
    if stride == 1 && inplanes == outplanes {
        return Ok(x);
    }
    b.scope("downsample", |b| {
        let y = b.conv2d("0", x, ConvSpec::new(inplanes, outplanes, 1).stride(stride))?;
        b.batch_norm("1", y, outplanes, BN_EPS)
    })
}

/// The ResNet layers before the pooling and the head (`conv1` … `layer4`), for `layers` blocks
/// per stage; `dilate[i]` replaces the stride of `layer{i+2}` by dilation, as torchvision's
/// `replace_stride_with_dilation` does (the segmentation backbones). Returns the output node and
/// its channels.
pub(super) fn resnet_features(
    b: &mut GraphBuilder,
    in_channels: usize,
    block: Block,
    layers: [usize; 4],
    dilate: [bool; 3],
) -> Result<(NodeId, usize)> {
    let x = b.input();
    let x = b.conv2d(
        "conv1",
        x,
        ConvSpec::new(in_channels, 64, 7).stride(2).padding(3),
    )?;
    let x = b.batch_norm("bn1", x, 64, BN_EPS)?;
    let x = b.relu("relu", x);
    let mut x = b.max_pool("maxpool", x, 3, 2, 1, false);
    let mut inplanes = 64;
    let mut dilation = 1;
    for (stage, &blocks) in layers.iter().enumerate() {
        let planes = 64 << stage;
        let mut stride = if stage == 0 { 1 } else { 2 };
        // torchvision's `_make_layer`: the first block keeps the dilation before this stage.
        let previous_dilation = dilation;
        if stage > 0 && dilate[stage - 1] {
            dilation *= stride;
            stride = 1;
        }
        x = b.scope(format!("layer{}", stage + 1), |b| {
            let mut x = x;
            for i in 0..blocks {
                let (s, d) = if i == 0 {
                    (stride, previous_dilation)
                } else {
                    (1, dilation)
                };
                x = b.scope(i, |b| match block {
                    Block::Basic if d > 1 => Err(crate::Error::Unsupported(
                        "BasicBlock does not support dilation (torchvision refuses it too)".into(),
                    )),
                    Block::Basic => basic_block(b, x, inplanes, planes, s),
                    Block::Bottleneck => bottleneck(b, x, inplanes, planes, s, d),
                })?;
                inplanes = planes * block.expansion();
            }
            Ok(x)
        })?;
    }
    Ok((x, inplanes))
}

/// `ResNet.forward` for `layers` blocks per stage.
fn resnet(
    b: &mut GraphBuilder,
    config: &ArchConfig,
    block: Block,
    layers: [usize; 4],
) -> Result<NodeId> {
    let (x, _) = resnet_features(b, config.in_channels, block, layers, [false; 3])?;
    let x = b.adaptive_avg_pool("avgpool", x, (1, 1));
    let x = b.flatten("flatten", x);
    let in_features = 512 * block.expansion();
    classifier(b, "fc", x, in_features, Reference::Linear, config)
}

macro_rules! resnet_arch {
    ($name:literal, $block:expr, $layers:expr) => {
        Architecture {
            name: $name,
            build: |b, c| resnet(b, c, $block, $layers),
            classifier: "fc.weight",
            stem: "conv1.weight",
            normalization: Normalization::IMAGENET,
        }
    };
}

/// ResNet-18, 34, 50, 101 and 152.
pub static ARCHITECTURES: [Architecture; 5] = [
    resnet_arch!("resnet18", Block::Basic, [2, 2, 2, 2]),
    resnet_arch!("resnet34", Block::Basic, [3, 4, 6, 3]),
    resnet_arch!("resnet50", Block::Bottleneck, [3, 4, 6, 3]),
    resnet_arch!("resnet101", Block::Bottleneck, [3, 4, 23, 3]),
    resnet_arch!("resnet152", Block::Bottleneck, [3, 8, 36, 3]),
];
