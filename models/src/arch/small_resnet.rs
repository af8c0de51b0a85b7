//! `small-resnet`: a ResNet for 28×28 grayscale images (Fashion-MNIST) in the CIFAR style of He
//! et al. (a 3×3 stem, three stages of two basic blocks with 16, 32 and 64 channels, strides
//! 1, 2, 2), with torchvision's block and parameter names (`layer2.0.downsample.0`: a 1×1 conv
//! and BN where the shape changes) and a global average pool + Linear head, so that CAM applies.
//! Its PyTorch twin (`SmallResNet`) is in `tests/fixtures/make_train.py`.

use super::head::{classifier, Reference};
use super::{fashion_mnist, ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::Result;

/// The `--arch` name.
pub const NAME: &str = "small-resnet";

/// BatchNorm2d's default epsilon.
pub const BN_EPS: f64 = 1e-5;

/// The stem's output channels (`conv1`).
pub const STEM_CHANNELS: usize = 16;

/// Per stage (`layer1`, `layer2`, `layer3`): channels, stride of its first block.
pub const STAGES: [(usize, usize); 3] = [(16, 1), (32, 2), (64, 2)];

/// Basic blocks per stage.
pub const BLOCKS_PER_STAGE: usize = 2;

/// The input channels.
pub const IN_CHANNELS: usize = 1;

/// torchvision's `BasicBlock.forward`.
fn basic_block(
    b: &mut GraphBuilder,
    x: NodeId,
    inplanes: usize,
    planes: usize,
    stride: usize,
) -> Result<NodeId> {
    let spec = ConvSpec::new(inplanes, planes, 3).stride(stride).padding(1);
    let out = b.conv2d("conv1", x, spec)?;
    let out = b.batch_norm("bn1", out, planes, BN_EPS)?;
    let out = b.relu("relu", out);
    let out = b.conv2d("conv2", out, ConvSpec::new(planes, planes, 3).padding(1))?;
    let out = b.batch_norm("bn2", out, planes, BN_EPS)?;
    let identity = if stride != 1 || inplanes != planes {
        b.scope("downsample", |b| {
            let y = b.conv2d("0", x, ConvSpec::new(inplanes, planes, 1).stride(stride))?;
            b.batch_norm("1", y, planes, BN_EPS)
        })?
    } else {
        x
    };
    let out = b.add("add", out, identity);
    Ok(b.relu("relu", out))
}

/// `SmallResNet.forward`.
fn small_resnet(b: &mut GraphBuilder, config: &ArchConfig) -> Result<NodeId> {
    let x = b.input();
    let spec = ConvSpec::new(IN_CHANNELS, STEM_CHANNELS, 3).padding(1);
    let x = b.conv2d("conv1", x, spec)?;
    let x = b.batch_norm("bn1", x, STEM_CHANNELS, BN_EPS)?;
    let mut x = b.relu("relu", x);
    let mut inplanes = STEM_CHANNELS;
    for (stage, &(planes, stride)) in STAGES.iter().enumerate() {
        x = b.scope(format!("layer{}", stage + 1), |b| {
            let mut x = x;
            for i in 0..BLOCKS_PER_STAGE {
                let s = if i == 0 { stride } else { 1 };
                x = b.scope(i, |b| basic_block(b, x, inplanes, planes, s))?;
                inplanes = planes;
            }
            Ok(x)
        })?;
    }
    let x = b.adaptive_avg_pool("avgpool", x, (1, 1));
    let x = b.flatten("flatten", x);
    classifier(b, "fc", x, inplanes, Reference::Linear, config)
}

/// small-resnet.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: NAME,
    build: small_resnet,
    classifier: "fc.weight",
    stem: "conv1.weight",
    normalization: fashion_mnist::NORMALIZATION,
}];
