//! torchvision's GoogLeNet (Inception v1, `torchvision.models.googlenet`), with
//! `transform_input=False`; the auxiliary classifiers are not used at evaluation.

use super::head::{classifier, Reference};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::Result;

/// `BasicConv2d`'s batch norm epsilon.
const BN_EPS: f64 = 0.001;

/// `BasicConv2d(in, out, kernel_size, stride, padding)` named `name`: conv (no bias), bn, F.relu.
fn basic_conv(b: &mut GraphBuilder, name: &str, x: NodeId, spec: ConvSpec) -> Result<NodeId> {
    b.scope(name, |b| {
        let x = b.conv2d("conv", x, spec)?;
        let x = b.batch_norm("bn", x, spec.out_channels, BN_EPS)?;
        Ok(b.relu("relu", x))
    })
}

/// `Inception(in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)` named `name`:
/// the four branches concatenated (the concat is the block's last node).
fn inception(b: &mut GraphBuilder, name: &str, x: NodeId, channels: [usize; 7]) -> Result<NodeId> {
    let [in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj] = channels;
    b.scope(name, |b| {
        let branch1 = basic_conv(b, "branch1", x, ConvSpec::new(in_channels, ch1x1, 1))?;
        let branch2 = b.scope("branch2", |b| {
            let y = basic_conv(b, "0", x, ConvSpec::new(in_channels, ch3x3red, 1))?;
            basic_conv(b, "1", y, ConvSpec::new(ch3x3red, ch3x3, 3).padding(1))
        })?;
        let branch3 = b.scope("branch3", |b| {
            let y = basic_conv(b, "0", x, ConvSpec::new(in_channels, ch5x5red, 1))?;
            // A 3×3 conv where the paper has 5×5: torchvision's known quirk (pytorch/vision#906).
            basic_conv(b, "1", y, ConvSpec::new(ch5x5red, ch5x5, 3).padding(1))
        })?;
        let branch4 = b.scope("branch4", |b| {
            let y = b.max_pool("0", x, 3, 1, 1, true);
            basic_conv(b, "1", y, ConvSpec::new(in_channels, pool_proj, 1))
        })?;
        Ok(b.concat("cat", &[branch1, branch2, branch3, branch4]))
    })
}

/// `GoogLeNet._forward` at evaluation (no auxiliary outputs).
fn googlenet(b: &mut GraphBuilder, config: &ArchConfig) -> Result<NodeId> {
    b.ignore_unused("aux1.");
    b.ignore_unused("aux2.");
    let x = b.input();
    let x = basic_conv(
        b,
        "conv1",
        x,
        ConvSpec::new(config.in_channels, 64, 7)
            .stride(2)
            .padding(3),
    )?;
    let x = b.max_pool("maxpool1", x, 3, 2, 0, true);
    let x = basic_conv(b, "conv2", x, ConvSpec::new(64, 64, 1))?;
    let x = basic_conv(b, "conv3", x, ConvSpec::new(64, 192, 3).padding(1))?;
    let x = b.max_pool("maxpool2", x, 3, 2, 0, true);

    let x = inception(b, "inception3a", x, [192, 64, 96, 128, 16, 32, 32])?;
    let x = inception(b, "inception3b", x, [256, 128, 128, 192, 32, 96, 64])?;
    let x = b.max_pool("maxpool3", x, 3, 2, 0, true);

    let x = inception(b, "inception4a", x, [480, 192, 96, 208, 16, 48, 64])?;
    let x = inception(b, "inception4b", x, [512, 160, 112, 224, 24, 64, 64])?;
    let x = inception(b, "inception4c", x, [512, 128, 128, 256, 24, 64, 64])?;
    let x = inception(b, "inception4d", x, [512, 112, 144, 288, 32, 64, 64])?;
    let x = inception(b, "inception4e", x, [528, 256, 160, 320, 32, 128, 128])?;
    let x = b.max_pool("maxpool4", x, 2, 2, 0, true);

    let x = inception(b, "inception5a", x, [832, 256, 160, 320, 32, 128, 128])?;
    let x = inception(b, "inception5b", x, [832, 384, 192, 384, 48, 128, 128])?;

    let x = b.adaptive_avg_pool("avgpool", x, (1, 1));
    let x = b.flatten("flatten", x);
    let x = b.dropout("dropout", x);
    classifier(b, "fc", x, 1024, Reference::Linear, config)
}

/// GoogLeNet.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: "googlenet",
    build: googlenet,
    classifier: "fc.weight",
    stem: "conv1.conv.weight",
    normalization: Normalization::IMAGENET,
}];
