//! The model-randomization sanity check (Adebayo et al. 2018, "Sanity Checks for Saliency
//! Maps"), cascading: the layers are re-initialized from the output down, one group at a time
//! and cumulatively, and after each step the explanation of the same class is compared with the
//! trained model's. A map that stays alike while the weights it should explain are destroyed
//! does not explain the model.
//!
//! A group is a block of the network (`layer3.1`, `_blocks.7`) or a layer outside any block
//! (`conv1`, `fc`). Re-initialization is what a freshly built PyTorch layer holds (the layers'
//! `reset_parameters`, as Quantus' model-parameter randomisation does): convolution and fully
//! connected weights and biases uniform in ±1/√fan_in, BatchNorm, LayerNorm and GroupNorm back
//! to the identity (scale 1, shift 0, running mean 0 and variance 1). Draws come from ChaCha8
//! (stream 4 of the seed) on the host, so a seed gives the same weights on every device.
//!
//! Each step compares the absolute pixel relevance of the two maps (Quantus' default `abs`):
//! Spearman's rank correlation, and SSIM with both maps divided by their largest value.

use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::similarity::{spearman, ssim};
use crate::graph::{Graph, NodeId};
use crate::ops::{BatchNorm2d, Conv2d, GroupNorm, LayerNorm, Linear, Op};
use crate::progress::Progress;
use crate::{Model, Result};

/// The ChaCha8 stream of the seed the random weights come from.
const STREAM: u64 = 4;

/// One step of the cascade: every group from the output down to `layer` re-initialized.
#[derive(Clone, Debug, PartialEq)]
pub struct CascadeStep {
    /// The group re-initialized last.
    pub layer: String,
    /// Spearman's rank correlation of the map with the trained model's (absolute relevance).
    pub spearman: f32,
    /// Their structural similarity (absolute relevance, each divided by its largest value).
    pub ssim: f32,
}

/// The groups of layers with parameters, the last one in the network first: each group's name
/// and its nodes.
pub fn cascade_groups(graph: &Graph) -> Vec<(String, Vec<NodeId>)> {
    let mut groups: Vec<(String, Vec<NodeId>)> = Vec::new();
    for (id, node) in graph.nodes().iter().enumerate() {
        if !has_parameters(&node.op) {
            continue;
        }
        let group = group_of(&node.name);
        match groups.iter_mut().find(|(name, _)| *name == group) {
            Some((_, nodes)) => nodes.push(id),
            None => groups.push((group, vec![id])),
        }
    }
    groups.sort_by_key(|(_, nodes)| std::cmp::Reverse(nodes.iter().max().copied()));
    groups
}

/// The block a node belongs to: its first two path components when the second is an index
/// (`layer3.1.conv2` → `layer3.1`, `features.7` → `features.7`), else its first.
fn group_of(name: &str) -> String {
    let mut parts = name.split('.');
    let first = parts.next().unwrap_or(name);
    match parts.next() {
        Some(second) if second.parse::<usize>().is_ok() => format!("{first}.{second}"),
        _ => first.to_string(),
    }
}

fn has_parameters(op: &Op) -> bool {
    matches!(
        op,
        Op::Conv2d(_) | Op::Linear(_) | Op::BatchNorm2d(_) | Op::LayerNorm(_) | Op::GroupNorm(_)
    )
}

/// `op` as PyTorch builds it before training.
fn reinitialized(op: &Op, rng: &mut ChaCha8Rng) -> Result<Op> {
    let uniform = |like: &Tensor, bound: f64, rng: &mut ChaCha8Rng| -> Result<Tensor> {
        let values: Vec<f32> = (0..like.elem_count())
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect();
        Ok(Tensor::from_vec(values, like.shape(), like.device())?.to_dtype(like.dtype())?)
    };
    Ok(match op {
        Op::Conv2d(c) => {
            let fan_in = c.weight.elem_count() / c.out_channels().max(1);
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            let weight = uniform(&c.weight, bound, rng)?;
            let bias = c
                .bias
                .as_ref()
                .map(|b| uniform(b, bound, rng))
                .transpose()?;
            Op::Conv2d(Conv2d::new(
                weight, bias, c.stride, c.padding, c.dilation, c.groups,
            ))
        }
        Op::Linear(l) => {
            let bound = 1.0 / (l.weight.dim(1)?.max(1) as f64).sqrt();
            let weight = uniform(&l.weight, bound, rng)?;
            let bias = l
                .bias
                .as_ref()
                .map(|b| uniform(b, bound, rng))
                .transpose()?;
            Op::Linear(Linear { weight, bias })
        }
        Op::BatchNorm2d(bn) => Op::BatchNorm2d(BatchNorm2d::new(
            bn.weight.ones_like()?,
            bn.bias.zeros_like()?,
            bn.running_mean.zeros_like()?,
            bn.running_var.ones_like()?,
            bn.eps,
        )?),
        Op::LayerNorm(n) => Op::LayerNorm(LayerNorm {
            axes: n.axes,
            weight: n.weight.as_ref().map(Tensor::ones_like).transpose()?,
            bias: n.bias.as_ref().map(Tensor::zeros_like).transpose()?,
            eps: n.eps,
        }),
        Op::GroupNorm(n) => Op::GroupNorm(GroupNorm {
            groups: n.groups,
            weight: n.weight.as_ref().map(Tensor::ones_like).transpose()?,
            bias: n.bias.as_ref().map(Tensor::zeros_like).transpose()?,
            eps: n.eps,
        }),
        other => other.clone(),
    })
}

/// The cascade on `model`: `relevance(model)` is the pixel relevance [H, W] of the explanation
/// under test for a model (the trained one's is `original`); each step re-initializes one more
/// group and compares. Returns one step per group, the output's first.
pub fn cascading_randomization(
    model: &Model,
    original: &Tensor,
    relevance: &mut dyn FnMut(&Model) -> Result<Tensor>,
    seed: u64,
    progress: &dyn Progress,
) -> Result<Vec<CascadeStep>> {
    let reference = scaled_magnitude(original)?;
    let groups = cascade_groups(&model.graph);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(STREAM);
    let mut replaced: Vec<(NodeId, Op)> = Vec::new();
    let mut steps = Vec::with_capacity(groups.len());
    for (i, (group, nodes)) in groups.iter().enumerate() {
        progress.step(i, groups.len(), "randomization")?;
        for &id in nodes {
            replaced.push((id, reinitialized(&model.graph.nodes()[id].op, &mut rng)?));
        }
        let randomized = model.with_graph(model.graph.with_ops_replaced(replaced.clone())?);
        let map = scaled_magnitude(&relevance(&randomized)?)?;
        steps.push(CascadeStep {
            layer: group.clone(),
            spearman: spearman(&reference, &map)?,
            ssim: ssim(&reference, &map, 1.0)?,
        });
    }
    progress.step(groups.len(), groups.len(), "randomization")?;
    Ok(steps)
}

/// |r| divided by its largest value (all zeros stays zeros).
fn scaled_magnitude(r: &Tensor) -> Result<Tensor> {
    let magnitude = r.to_dtype(DType::F32)?.abs()?;
    let top = magnitude.max_all()?.to_scalar::<f32>()?;
    if top > 0.0 {
        Ok(magnitude.affine(1.0 / f64::from(top), 0.0)?)
    } else {
        Ok(magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_group_by_block() {
        assert_eq!(group_of("layer3.1.conv2"), "layer3.1");
        assert_eq!(group_of("features.7"), "features.7");
        assert_eq!(group_of("_blocks.12._bn1"), "_blocks.12");
        assert_eq!(group_of("fc"), "fc");
        assert_eq!(group_of("_conv_stem"), "_conv_stem");
    }
}
