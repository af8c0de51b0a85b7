//! The CAMs that weigh channels by perturbing the network instead of by gradients: Score-CAM
//! (mask the input with each upsampled channel) and Ablation-CAM (zero each channel), as
//! pytorch-grad-cam computes them, batched.
//!
//! Both skip the forward passes whose answer is already known, exactly: Score-CAM runs one
//! pass per distinct channel (channels with the same activations, bit for bit, make the same
//! mask: the dead channels of a ReLU6 head, 832 of the demo's 1280 on the cat, all zero), and
//! Ablation-CAM none for a channel already at the ablation value everywhere (its ablated copy
//! is the network's own activations, scored as the original). Score-CAM's copies also skip
//! their first convolution where the network starts with one, by linearity (`masked_stem.rs`).

use candle_core::{DType, Device, Tensor};

use super::cam::softmax_last;
use super::masked_stem::{self, MaskedStem};
use super::resize::resize_bilinear;
use super::{Context, ExplainOptions};
use crate::graph::NodeId;
use crate::ops::Convolutions;
use crate::Result;

/// Score-CAM's channel weights [1, K]: softmax over channels of the target score of the input
/// masked by each channel's activation, upsampled (bilinear, align_corners) and min–max scaled.
pub(crate) fn score_cam(ctx: &Context, a: &Tensor, options: &ExplainOptions) -> Result<Tensor> {
    let groups = ChannelGroups::of(a)?;
    let device = a.device();
    let representatives = Tensor::new(groups.representatives.as_slice(), device)?;
    let distinct = a.index_select(&representatives, 1)?;
    let scores = distinct_scores(ctx, &distinct, options)?;
    let group_of = Tensor::new(groups.group_of.as_slice(), device)?;
    let scores = scores.index_select(&group_of, 0)?.unsqueeze(0)?;
    softmax_last(&scores)
}

/// Score-CAM's target scores [K'] of the input masked by each channel of `a` [1, K', h, w]:
/// the masks [`masked_stem`] can take through the first convolution by linearity go that way
/// when there are enough of them to pay for its basis convolutions, the rest (and all, where
/// it does not apply) as masked copies ([`copies_scores`], the reference).
fn distinct_scores(ctx: &Context, a: &Tensor, options: &ExplainOptions) -> Result<Tensor> {
    let (_, k, h, w) = a.dims4()?;
    let masks = Masks::of(ctx, a)?;
    let linear: Vec<usize> = (0..k)
        .filter(|&c| masked_stem::well_conditioned(masks.mins[c], masks.maxs[c]))
        .collect();
    let stem = if linear.len() >= STEM_PAYS_FROM_MASKS_PER_CELL * h * w {
        MaskedStem::new(&ctx.model.graph, ctx.input, (h, w))?
    } else {
        None
    };
    let Some(stem) = stem else {
        return copies_scores(ctx, &masks, &(0..k).collect::<Vec<_>>(), options, (0, k));
    };
    let rest: Vec<usize> = (0..k)
        .filter(|c| linear.binary_search(c).is_err())
        .collect();
    let maps = host_values(a)?;
    let cells = h * w;
    let batch = options.batch_size.max(1);
    let mut scores = vec![0f32; k];
    for (done, chunk) in linear.chunks(batch).enumerate() {
        let chunk_masks: Vec<(&[f32], (f32, f32))> = chunk
            .iter()
            .map(|&c| {
                let d = (masks.maxs[c] - masks.mins[c]) + 1e-8;
                (
                    &maps[c * cells..(c + 1) * cells],
                    (1.0 / d, -masks.mins[c] / d),
                )
            })
            .collect();
        let y = stem.outputs(&chunk_masks, ctx.input.device())?;
        let logits = ctx
            .model
            .graph
            .output_after(stem.output, &y, Convolutions::Fastest)?;
        let chunk_scores = host_values(&ctx.scores_of(&logits)?)?;
        for (&c, s) in chunk.iter().zip(chunk_scores) {
            scores[c] = s;
        }
        ctx.report((done * batch + chunk.len()).min(k), k)?;
    }
    if !rest.is_empty() {
        let rest_scores = host_values(&copies_scores(
            ctx,
            &masks,
            &rest,
            options,
            (linear.len(), k),
        )?)?;
        for (&c, s) in rest.iter().zip(rest_scores) {
            scores[c] = s;
        }
    }
    Ok(Tensor::new(scores, ctx.input.device())?)
}

/// [`masked_stem`] pays when a layer has at least this many masks per map cell to take through
/// it (resnet18's layer4: 512 masks of 49 cells; its basis convolutions cost a copy's stem each).
const STEM_PAYS_FROM_MASKS_PER_CELL: usize = 4;

/// Each channel's upsampled map [K', H, W] and its minimum and maximum, from which its mask is
/// `(up − min) / (max − min + 1e-8)`, as pytorch-grad-cam scales it.
struct Masks {
    up: Tensor,
    mins: Vec<f32>,
    maxs: Vec<f32>,
}

impl Masks {
    fn of(ctx: &Context, a: &Tensor) -> Result<Masks> {
        let (_, k, _, _) = a.dims4()?;
        let (_, _, h, w) = ctx.input.dims4()?;
        let up = resize_bilinear(&a.squeeze(0)?, h, w, true)?; // [K, H, W]
        let flat = up.reshape((k, h * w))?;
        let mins = host_values(&flat.min_keepdim(1)?)?;
        let maxs = host_values(&flat.max_keepdim(1)?)?;
        Ok(Masks { up, mins, maxs })
    }
}

/// The target scores of the input masked by the channels `channels`, in batches, each a
/// masked copy of the input through the whole network; progress counted from `done` of `total`.
fn copies_scores(
    ctx: &Context,
    masks: &Masks,
    channels: &[usize],
    options: &ExplainOptions,
    (done, total): (usize, usize),
) -> Result<Tensor> {
    let device = masks.up.device();
    let mut scores = Vec::with_capacity(channels.len());
    let batch = options.batch_size.max(1);
    for (i, chunk) in channels.chunks(batch).enumerate() {
        let index: Vec<u32> = chunk.iter().map(|&c| c as u32).collect();
        let index = Tensor::new(index.as_slice(), device)?;
        let up = masks.up.index_select(&index, 0)?;
        let mins = Tensor::new(
            chunk.iter().map(|&c| masks.mins[c]).collect::<Vec<_>>(),
            device,
        )?
        .reshape((chunk.len(), 1, 1))?;
        let maxs = Tensor::new(
            chunk.iter().map(|&c| masks.maxs[c]).collect::<Vec<_>>(),
            device,
        )?
        .reshape((chunk.len(), 1, 1))?;
        let m = up
            .broadcast_sub(&mins)?
            .broadcast_div(&maxs.sub(&mins)?.affine(1.0, 1e-8)?)?
            .unsqueeze(1)?; // [len, 1, H, W]
        let masked = m.broadcast_mul(ctx.input)?;
        scores.push(ctx.target_scores(&masked)?);
        ctx.report((done + i * batch + chunk.len()).min(total), total)?;
    }
    Ok(Tensor::cat(&scores, 0)?)
}

/// A layer's channels grouped by their activations, bit for bit.
#[derive(Debug, PartialEq)]
struct ChannelGroups {
    /// The first channel of each group, in channel order.
    representatives: Vec<u32>,
    /// Each channel's group.
    group_of: Vec<u32>,
}

impl ChannelGroups {
    /// The groups of `a`'s [1, K, h, w] channels.
    fn of(a: &Tensor) -> Result<ChannelGroups> {
        let (_, k, h, w) = a.dims4()?;
        Ok(Self::from_channels(&host_values(a)?, k, h * w))
    }

    /// The groups of `k` channels of `size` values each, laid out one after the other.
    fn from_channels(values: &[f32], k: usize, size: usize) -> ChannelGroups {
        let mut first_of: std::collections::HashMap<Vec<u32>, u32> = Default::default();
        let mut representatives = Vec::new();
        let mut group_of = Vec::with_capacity(k);
        for channel in 0..k {
            let bits: Vec<u32> = values[channel * size..(channel + 1) * size]
                .iter()
                .map(|v| v.to_bits())
                .collect();
            let next = representatives.len() as u32;
            let group = *first_of.entry(bits).or_insert(next);
            if group == next {
                representatives.push(channel as u32);
            }
            group_of.push(group);
        }
        ChannelGroups {
            representatives,
            group_of,
        }
    }
}

/// Ablation-CAM's channel weights [1, K]: (score − score with channel k ablated) / score, where
/// ablating sets the channel to 0 when the layer's minimum is 0, else to that minimum − 1e7.
pub(crate) fn ablation_cam(
    ctx: &Context,
    layer: NodeId,
    a: &Tensor,
    options: &ExplainOptions,
) -> Result<Tensor> {
    let (_, k, h, w) = a.dims4()?;
    let graph = &ctx.model.graph;
    let original = ctx.input_scores()?;
    let minimum = a.min_all()?.to_scalar::<f32>()?;
    let value = if minimum == 0.0 { 0.0 } else { minimum - 1e7 };
    // A channel already at the ablation value everywhere needs no pass: ablated, the
    // activations are the network's own, and its score is the original.
    let values = host_values(a)?;
    let ablated_channels: Vec<usize> = (0..k)
        .filter(|&c| {
            values[c * h * w..(c + 1) * h * w]
                .iter()
                .any(|&v| v != value)
        })
        .collect();
    let original_value = host_values(&original)?;
    let mut scores = vec![original_value.first().copied().unwrap_or_default(); k];
    let batch = options.batch_size.max(1);
    let n = ablated_channels.len();
    for (done, chunk) in ablated_channels.chunks(batch).enumerate() {
        let len = chunk.len();
        // keep[j, c] = 0 for the channel ablated in copy j.
        let mut keep = vec![1f32; len * k];
        for (j, &channel) in chunk.iter().enumerate() {
            keep[j * k + channel] = 0.0;
        }
        let keep = Tensor::from_vec(keep, (len, k, 1, 1), a.device())?;
        let fill = keep.affine(-f64::from(value), f64::from(value))?; // value where ablated
        let ablated = a.broadcast_mul(&keep)?.broadcast_add(&fill)?;
        let out = graph.forward_from(ctx.trace, layer, &ablated)?;
        let got = host_values(&ctx.scores_of(&out)?)?;
        for (&channel, score) in chunk.iter().zip(got) {
            scores[channel] = score;
        }
        ctx.report((done * batch + len).min(n), n)?;
    }
    let scores = Tensor::from_vec(scores, k, a.device())?.to_dtype(original.dtype())?;
    let scores = scores.unsqueeze(0)?;
    let original = original.unsqueeze(0)?;
    Ok(original.broadcast_sub(&scores)?.broadcast_div(&original)?)
}

/// `t`'s values on the host as f32, in row-major order.
fn host_values(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::ChannelGroups;
    use crate::ops::test_compare::{bits, max_rel};
    use crate::{LoadOptions, Model};

    #[test]
    fn channels_with_the_same_bits_share_a_group() {
        // Four channels of two values: 0 and 2 equal, 3 the negative zero of 1's zeros.
        let values = [1.0, 2.0, 0.0, 0.0, 1.0, 2.0, -0.0, 0.0];
        let groups = ChannelGroups::from_channels(&values, 4, 2);
        assert_eq!(groups.representatives, vec![0, 1, 3]);
        assert_eq!(groups.group_of, vec![0, 1, 0, 2]);
        let distinct = ChannelGroups::from_channels(&[1.0, 2.0, 3.0], 3, 1);
        assert_eq!(distinct.group_of, vec![0, 1, 2]);
    }

    #[test]
    fn score_cams_scores_by_the_stem_equal_the_masked_copies() {
        let dev = Device::Cpu;
        let model = Model::load("random:resnet18", &LoadOptions::default(), &dev).unwrap();
        let x = Tensor::randn(0f32, 1f32, (1, 3, 64, 64), &dev).unwrap();
        let options = crate::explain::ExplainOptions {
            method: crate::explain::Method::ScoreCam,
            target: Some(3usize.into()),
            ..Default::default()
        };
        let trace = model.graph.forward(&x, None).unwrap();
        let layer = model.graph.node_id("layer4").unwrap();
        // 40 of layer4's channels on a 2×2 map: 10 per cell, enough for the stem; one channel
        // made constant (its mask all zero) and one nearly so go as copies.
        let a = trace.get(layer).unwrap().narrow(1, 0, 40).unwrap();
        let mut values = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values[..4].fill(2.5);
        values[4..8].copy_from_slice(&[6.0, 6.0, 6.0, 6.000_001]);
        let a = Tensor::from_vec(values, a.shape(), &dev).unwrap();
        let ctx = crate::explain::Context {
            model: &model,
            input: &x,
            trace: &trace,
            classes: vec![3],
            progress: &crate::progress::Silent,
        };
        let masks = super::Masks::of(&ctx, &a).unwrap();
        let want = super::copies_scores(
            &ctx,
            &masks,
            &(0..40).collect::<Vec<_>>(),
            &options,
            (0, 40),
        )
        .unwrap();
        let got = super::distinct_scores(&ctx, &a, &options).unwrap();
        let error = max_rel(&got, &want);
        assert!(error < 1e-5, "{error}");
        assert_ne!(
            bits(&got),
            bits(&want),
            "the stem's path was taken (its rounding differs)"
        );
        // The constant and the nearly constant channels went as copies: the same bits.
        assert_eq!(bits(&got)[..2], bits(&want)[..2]);
    }
}
