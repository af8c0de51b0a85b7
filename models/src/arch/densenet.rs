//! torchvision's DenseNet-121 (`torchvision.models.densenet`).

use super::head::{classifier, Reference};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::Result;

const BN_EPS: f64 = 1e-5;

/// The hyperparameters of a DenseNet-BC.
#[derive(Clone, Copy)]
struct Config {
    /// growth_rate (`k` in the paper).
    growth_rate: usize,
    /// Layers in each dense block.
    block_config: [usize; 4],
    /// num_init_features.
    num_init_features: usize,
    /// bn_size: the bottleneck has `bn_size * growth_rate` channels.
    bn_size: usize,
}

/// `_DenseLayer.forward` on the list of previous features (`bn_function`, then norm2, relu2, conv2).
fn dense_layer(
    b: &mut GraphBuilder,
    features: &[NodeId],
    in_features: usize,
    cfg: Config,
) -> Result<NodeId> {
    let width = cfg.bn_size * cfg.growth_rate;
    let x = b.concat("cat", features);
    let x = b.batch_norm("norm1", x, in_features, BN_EPS)?;
    let x = b.relu("relu1", x);
    let x = b.conv2d("conv1", x, ConvSpec::new(in_features, width, 1))?;
    let x = b.batch_norm("norm2", x, width, BN_EPS)?;
    let x = b.relu("relu2", x);
    b.conv2d(
        "conv2",
        x,
        ConvSpec::new(width, cfg.growth_rate, 3).padding(1),
    )
}

/// `_DenseBlock.forward`: each layer sees the concatenation of all earlier features.
fn dense_block(
    b: &mut GraphBuilder,
    x: NodeId,
    num_layers: usize,
    in_features: usize,
    cfg: Config,
) -> Result<NodeId> {
    let mut features = vec![x];
    for i in 0..num_layers {
        let channels = in_features + i * cfg.growth_rate;
        let new = b.scope(format!("denselayer{}", i + 1), |b| {
            dense_layer(b, &features, channels, cfg)
        })?;
        features.push(new);
    }
    Ok(b.concat("cat", &features))
}

/// `_Transition`: norm, relu, 1×1 conv, 2×2 average pool.
fn transition(
    b: &mut GraphBuilder,
    x: NodeId,
    in_features: usize,
    out_features: usize,
) -> Result<NodeId> {
    let x = b.batch_norm("norm", x, in_features, BN_EPS)?;
    let x = b.relu("relu", x);
    let x = b.conv2d("conv", x, ConvSpec::new(in_features, out_features, 1))?;
    Ok(b.avg_pool("pool", x, 2, 2))
}

/// `DenseNet.forward`: `features`, then F.relu, adaptive average pool, flatten, `classifier`.
fn densenet(b: &mut GraphBuilder, config: &ArchConfig, cfg: Config) -> Result<NodeId> {
    let x = b.input();
    let mut num_features = cfg.num_init_features;
    let x = b.scope("features", |b| {
        let x = b.conv2d(
            "conv0",
            x,
            ConvSpec::new(config.in_channels, num_features, 7)
                .stride(2)
                .padding(3),
        )?;
        let x = b.batch_norm("norm0", x, num_features, BN_EPS)?;
        let x = b.relu("relu0", x);
        let mut x = b.max_pool("pool0", x, 3, 2, 1, false);
        for (i, &num_layers) in cfg.block_config.iter().enumerate() {
            x = b.scope(format!("denseblock{}", i + 1), |b| {
                dense_block(b, x, num_layers, num_features, cfg)
            })?;
            num_features += num_layers * cfg.growth_rate;
            if i != cfg.block_config.len() - 1 {
                let out = num_features / 2;
                x = b.scope(format!("transition{}", i + 1), |b| {
                    transition(b, x, num_features, out)
                })?;
                num_features = out;
            }
        }
        b.batch_norm("norm5", x, num_features, BN_EPS)
    })?;
    let x = b.relu("relu", x);
    let x = b.adaptive_avg_pool("adaptive_avg_pool", x, (1, 1));
    let x = b.flatten("flatten", x);
    classifier(b, "classifier", x, num_features, Reference::Linear, config)
}

/// DenseNet-121's hyperparameters (`densenet121`).
const DENSENET121: Config = Config {
    growth_rate: 32,
    block_config: [6, 12, 24, 16],
    num_init_features: 64,
    bn_size: 4,
};

/// DenseNet-121.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: "densenet121",
    build: |b, c| densenet(b, c, DENSENET121),
    classifier: "classifier.weight",
    stem: "features.conv0.weight",
    normalization: Normalization::IMAGENET,
}];
