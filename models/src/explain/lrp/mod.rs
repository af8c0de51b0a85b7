//! Layer-wise relevance propagation (Bach et al. 2015) with zennit's composites: the relevance of
//! the target logit is sent back layer by layer, each convolution and fully connected layer
//! sharing it out by its rule, as zennit's `EpsilonPlusFlat`, `EpsilonGammaBox` and
//! `EpsilonAlpha2Beta1` assign them.
//!
//! The network is canonized first, as zennit's canonizers do: a BatchNorm that is the only reader
//! of a convolution's output is merged into it (the rule sees the merged layer) and passes the
//! relevance unchanged, and each residual sum shares the relevance in proportion to its terms
//! (zennit's `Sum` module under the `Norm` rule, which its ResNet canonizer puts in every block;
//! here every `Add` node, so the demo's skip connections get it too).
//!
//! The other ops, as zennit's composites map them: activations and BatchNorms pass the relevance
//! on (`Pass`); average pooling shares it in proportion to the inputs (`Norm`, here also for the
//! spatial means of networks that average without a pooling module); every other op passes its
//! gradient (max pooling to each window's maximum, reshapes and dropout unchanged).

mod layer;
mod rules;

use std::collections::HashMap;

use candle_core::Tensor;

use self::layer::AffineLayer;
use self::rules::{stabilize, Rule, STABILIZER};
use super::target::{check_classes, multi_hot};
use crate::explain::Method;
use crate::graph::{BackwardRule, Graph, Node, Trace};
use crate::input::Normalization;
use crate::ops::{BatchNorm2d, Op};
use crate::{Error, Model, Result};

/// A zennit composite: which rule each layer gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LrpComposite {
    /// LRP-flat at the first layer, z⁺ at the other convolutions, ε at fully connected layers.
    EpsilonPlusFlat,
    /// z^B (the input's box) at the first convolution, γ = 0.25 at the other convolutions, ε at
    /// fully connected layers.
    EpsilonGammaBox,
    /// α = 2, β = 1 at every convolution, ε at fully connected layers.
    EpsilonAlpha2Beta1,
}

impl LrpComposite {
    /// The composite an LRP method names (`None`: not an LRP method).
    pub fn of(method: Method) -> Option<LrpComposite> {
        match method {
            Method::LrpEpsilonPlusFlat => Some(LrpComposite::EpsilonPlusFlat),
            Method::LrpEpsilonGammaBox => Some(LrpComposite::EpsilonGammaBox),
            Method::LrpEpsilonAlpha2Beta1 => Some(LrpComposite::EpsilonAlpha2Beta1),
            _ => None,
        }
    }
}

/// zennit's ε for fully connected layers in every composite.
const EPSILON: f64 = 1e-6;
/// zennit's γ in `EpsilonGammaBox`.
const GAMMA: f64 = 0.25;

/// The relevance [C, H, W] at the input of the sum of the `classes`' logits under `composite`,
/// from a forward `trace` that kept every node's output (its input one image, [1, C, H, W]).
/// The relevance at the output is one at each class (zennit's one-hot output gradient).
/// `EpsilonGammaBox`'s box is the pixel range [0, 1] normalized as the model's inputs are.
pub fn lrp(
    model: &Model,
    trace: &Trace,
    classes: &[usize],
    composite: LrpComposite,
) -> Result<Tensor> {
    let graph = &model.graph;
    let input = trace
        .get(0)
        .ok_or_else(|| Error::InvalidArgument("LRP needs the forward pass's input".into()))?;
    let logits = trace
        .output()
        .ok_or_else(|| Error::InvalidArgument("the network produced no output".into()))?;
    if logits.rank() != 2 {
        return Err(Error::Shape {
            what: "LRP's network output".into(),
            expected: "[N, classes]".into(),
            found: format!("{:?}", logits.dims()),
        });
    }
    check_classes(classes, logits.dim(1)?)?;
    let plans = layer_rules(model, composite, input)?;
    let signal = multi_hot(input.dim(0)?, logits.dim(1)?, classes, input.device())?;
    let step = |node: &Node, inputs: &[&Tensor], output: &Tensor, relevance: &Tensor| {
        relevance_step(&plans, node, inputs, output, relevance)
    };
    let r = graph.backward_by(trace, graph.output_id(), &signal, 0, &step)?;
    Ok(r.squeeze(0)?)
}

/// The rule and the canonized layer of each convolution and fully connected node, by name.
fn layer_rules(
    model: &Model,
    composite: LrpComposite,
    input: &Tensor,
) -> Result<HashMap<String, (AffineLayer, Rule)>> {
    let graph = &model.graph;
    let nodes = graph.nodes();
    let first = nodes.iter().position(|n| match composite {
        LrpComposite::EpsilonPlusFlat => matches!(n.op, Op::Conv2d(_) | Op::Linear(_)),
        LrpComposite::EpsilonGammaBox => matches!(n.op, Op::Conv2d(_)),
        LrpComposite::EpsilonAlpha2Beta1 => false,
    });
    let mut plans = HashMap::new();
    for (id, node) in nodes.iter().enumerate() {
        let Some(layer) = AffineLayer::of(&node.op) else {
            continue;
        };
        let layer = match merged_batch_norm(graph, id) {
            Some(bn) => layer.merged_with(bn)?.unwrap_or(layer),
            None => layer,
        };
        let rule = if Some(id) == first {
            match composite {
                LrpComposite::EpsilonGammaBox => box_rule(model.normalization(), input)?,
                _ => Rule::Flat,
            }
        } else {
            match (&node.op, composite) {
                (Op::Linear(_), _) => Rule::Epsilon(EPSILON),
                (_, LrpComposite::EpsilonPlusFlat) => Rule::ZPlus,
                (_, LrpComposite::EpsilonGammaBox) => Rule::Gamma(GAMMA),
                (_, LrpComposite::EpsilonAlpha2Beta1) => Rule::AlphaBeta {
                    alpha: 2.0,
                    beta: 1.0,
                },
            }
        };
        plans.insert(node.name.clone(), (layer, rule));
    }
    Ok(plans)
}

/// The BatchNorm merged into node `id`: the one node reading its output, when that is a
/// BatchNorm.
fn merged_batch_norm(graph: &Graph, id: usize) -> Option<&BatchNorm2d> {
    match graph.consumers(id).as_slice() {
        [only] => match &graph.nodes()[*only].op {
            Op::BatchNorm2d(bn) => Some(bn),
            _ => None,
        },
        _ => None,
    }
}

/// LRP-z^B over the pixel range [0, 1] normalized as the model's inputs are: low = −mean / std,
/// high = (1 − mean) / std per channel.
fn box_rule(normalization: Normalization, input: &Tensor) -> Result<Rule> {
    let channels = input.dim(1)?;
    let per_channel = |pixel: f32| -> Vec<f32> {
        (0..channels)
            .map(|c| {
                let at = c.min(2);
                (pixel - normalization.mean[at]) / normalization.std[at]
            })
            .collect()
    };
    let tensor = |v: Vec<f32>| -> Result<Tensor> {
        Ok(Tensor::from_vec(v, (1, channels, 1, 1), input.device())?.to_dtype(input.dtype())?)
    };
    Ok(Rule::ZBox {
        low: tensor(per_channel(0.0))?,
        high: tensor(per_channel(1.0))?,
    })
}

/// One node's relevance step.
fn relevance_step(
    plans: &HashMap<String, (AffineLayer, Rule)>,
    node: &Node,
    inputs: &[&Tensor],
    output: &Tensor,
    relevance: &Tensor,
) -> candle_core::Result<Vec<Tensor>> {
    match (&node.op, inputs) {
        (Op::Conv2d(_) | Op::Linear(_), [x]) => match plans.get(&node.name) {
            Some((layer, rule)) => Ok(vec![rule.relevance(layer, x, relevance)?]),
            None => candle_core::bail!("no LRP rule for `{}`", node.name),
        },
        (Op::Activation(_) | Op::BatchNorm2d(_), [_]) => Ok(vec![relevance.clone()]),
        (
            Op::Add
            | Op::AvgPool2d(_)
            | Op::AdaptiveAvgPool2d(_)
            | Op::SpatialMean
            | Op::ReduceMean(_),
            _,
        ) => {
            let s = relevance.div(&stabilize(output, STABILIZER)?)?;
            let grads = node
                .op
                .backward(inputs, output, &s, BackwardRule::Gradient)?;
            inputs
                .iter()
                .zip(grads)
                .map(|(x, g)| x.broadcast_mul(&g))
                .collect()
        }
        _ => node
            .op
            .backward(inputs, output, relevance, BackwardRule::Gradient),
    }
}
