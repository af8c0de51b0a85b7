//! FullGrad (Srinivas & Fleuret 2019) as pytorch-grad-cam computes it: the input-gradient term
//! |x · ∂y/∂x| plus, for every layer with a bias (convolutions with one, and BatchNorm, whose
//! bias is β − mean · γ / √(var + ε)), the bias-gradient term |b · ∂y/∂(layer output)|; each
//! channel of each term min–max scaled and resized to the input, all of them summed, the sum
//! min–max scaled.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Tensor, D};

use super::resize::{resize_bilinear, scale_cam};
use super::Context;
use crate::graph::{BackwardRule, Node};
use crate::ops::Op;
use crate::Result;

/// FullGrad's saliency [H, W] of the context's target, in [0, 1] at the input's resolution.
pub(crate) fn full_gradient(ctx: &Context) -> Result<Tensor> {
    let graph = &ctx.model.graph;
    let x = ctx.input;
    let (_, _, height, width) = x.dims4()?;
    let biases = layer_biases(graph.nodes())?;
    // A Mutex, not a RefCell: the steps run on rayon's pool and must be `Sync` (one at a time).
    let terms = Mutex::new(Vec::new());
    let step = |node: &Node, inputs: &[&Tensor], output: &Tensor, grad: &Tensor| {
        if let Some(bias) = biases.get(&node.name) {
            let term = channels_scaled_and_summed(&grad.broadcast_mul(bias)?.abs()?)?;
            terms
                .lock()
                .map_err(|_| candle_core::Error::Msg("FullGrad's terms poisoned".into()))?
                .push(term);
        }
        node.op
            .backward(inputs, output, grad, BackwardRule::Gradient)
    };
    let signal = ctx.target_signal(1)?;
    let input_gradient = graph.backward_by(ctx.trace, graph.output_id(), &signal, 0, &step)?;
    let mut total = channels_scaled_and_summed(&input_gradient.mul(x)?.abs()?)?;
    // Resizing is linear: the sum of a layer's resized channels is its summed channels resized.
    let terms = terms
        .into_inner()
        .map_err(|_| crate::Error::InvalidArgument("FullGrad's terms poisoned".into()))?;
    for term in terms {
        total = total.add(&resize_bilinear(&term, height, width, false)?)?;
    }
    Ok(scale_cam(&total, height, width)?)
}

/// The bias [1, C, 1, 1] of each convolution that has one and of each BatchNorm, by node name
/// (the layers pytorch-grad-cam's FullGrad reads).
fn layer_biases(nodes: &[Node]) -> Result<HashMap<String, Tensor>> {
    let mut biases = HashMap::new();
    for node in nodes {
        let bias = match &node.op {
            Op::Conv2d(c) => c.bias.clone(),
            Op::BatchNorm2d(bn) => {
                let scale = bn
                    .weight
                    .div(&bn.running_var.affine(1.0, bn.eps)?.sqrt()?)?;
                Some(bn.bias.sub(&bn.running_mean.mul(&scale)?)?)
            }
            _ => None,
        };
        if let Some(b) = bias {
            biases.insert(node.name.clone(), b.reshape((1, (), 1, 1))?);
        }
    }
    Ok(biases)
}

/// Each channel of `m` [1, C, h, w] min–max scaled (minimum subtracted, divided by 1e-7 plus the
/// maximum), summed over the channels: [h, w].
fn channels_scaled_and_summed(m: &Tensor) -> candle_core::Result<Tensor> {
    let (_, c, h, w) = m.dims4()?;
    let flat = m.reshape((c, h * w))?;
    let shifted = flat.broadcast_sub(&flat.min_keepdim(D::Minus1)?)?;
    let scaled = shifted.broadcast_div(&shifted.max_keepdim(D::Minus1)?.affine(1.0, 1e-7)?)?;
    scaled.sum(0)?.reshape((h, w))
}
