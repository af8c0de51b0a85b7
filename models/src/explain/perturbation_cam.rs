//! The CAMs that weigh channels by perturbing the network instead of by gradients: Score-CAM
//! (mask the input with each upsampled channel) and Ablation-CAM (zero each channel), as
//! pytorch-grad-cam computes them, batched.

use candle_core::Tensor;

use super::cam::softmax_last;
use super::resize::resize_bilinear;
use super::{Context, ExplainOptions};
use crate::graph::NodeId;
use crate::Result;

/// Score-CAM's channel weights [1, K]: softmax over channels of the target score of the input
/// masked by each channel's activation, upsampled (bilinear, align_corners) and min–max scaled.
pub(crate) fn score_cam(ctx: &Context, a: &Tensor, options: &ExplainOptions) -> Result<Tensor> {
    let (_, k, _, _) = a.dims4()?;
    let (_, _, h, w) = ctx.input.dims4()?;
    let up = resize_bilinear(&a.squeeze(0)?, h, w, true)?; // [K, H, W]
    let flat = up.reshape((k, h * w))?;
    let mins = flat.min_keepdim(1)?.unsqueeze(2)?;
    let maxs = flat.max_keepdim(1)?.unsqueeze(2)?;
    let masks = up
        .broadcast_sub(&mins)?
        .broadcast_div(&maxs.sub(&mins)?.affine(1.0, 1e-8)?)?;
    let mut scores = Vec::with_capacity(k);
    let batch = options.batch_size.max(1);
    let mut start = 0;
    while start < k {
        let len = batch.min(k - start);
        let m = masks.narrow(0, start, len)?.unsqueeze(1)?; // [len, 1, H, W]
        let masked = m.broadcast_mul(ctx.input)?;
        scores.push(ctx.target_scores(&masked)?);
        start += len;
        ctx.report(start, k)?;
    }
    let scores = Tensor::cat(&scores, 0)?.unsqueeze(0)?;
    softmax_last(&scores)
}

/// Ablation-CAM's channel weights [1, K]: (score − score with channel k ablated) / score, where
/// ablating sets the channel to 0 when the layer's minimum is 0, else to that minimum − 1e7.
pub(crate) fn ablation_cam(
    ctx: &Context,
    layer: NodeId,
    a: &Tensor,
    options: &ExplainOptions,
) -> Result<Tensor> {
    let (_, k, _, _) = a.dims4()?;
    let graph = &ctx.model.graph;
    let original = ctx.target_scores(ctx.input)?;
    let minimum = a.min_all()?.to_scalar::<f32>()?;
    let value = if minimum == 0.0 { 0.0 } else { minimum - 1e7 };
    let mut scores = Vec::with_capacity(k);
    let batch = options.batch_size.max(1);
    let mut start = 0;
    while start < k {
        let len = batch.min(k - start);
        // keep[j, c] = 0 for the channel ablated in copy j.
        let mut keep = vec![1f32; len * k];
        for j in 0..len {
            keep[j * k + start + j] = 0.0;
        }
        let keep = Tensor::from_vec(keep, (len, k, 1, 1), a.device())?;
        let fill = keep.affine(-f64::from(value), f64::from(value))?; // value where ablated
        let ablated = a.broadcast_mul(&keep)?.broadcast_add(&fill)?;
        let out = graph.forward_from(ctx.trace, layer, &ablated)?;
        scores.push(ctx.scores_of(&out)?);
        start += len;
        ctx.report(start, k)?;
    }
    let scores = Tensor::cat(&scores, 0)?.unsqueeze(0)?;
    let original = original.unsqueeze(0)?;
    Ok(original.broadcast_sub(&scores)?.broadcast_div(&original)?)
}
