//! Occlusion (Zeiler & Fergus 2014) as Captum's `Occlusion` computes it: a square window over all
//! channels slid with a stride, set to the baseline 0; each pixel gets the mean drop in the
//! target logit over the windows that cover it. The occluded copies run in batches, by
//! incremental inference ([`crate::graph::Graph::forward_boxed_copies`]: each copy recomputes
//! only the cone of its window from the input's trace); [`OcclusionPasses::Full`], which runs every
//! copy through the whole network, is the reference it is tested against.

use candle_core::{DType, Tensor};

use super::{Context, ExplainOptions};
use crate::graph::BoxedCopies;
use crate::{Error, Result};

/// How occlusion's copies go through the network. Both give the same map; the full passes are
/// the reference the incremental ones are tested against and benchmarked beside.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OcclusionPasses {
    /// Only what each window changes, recomputed from the input's trace (the default).
    #[default]
    Incremental,
    /// Each copy through the whole network.
    Full,
}

/// An occlusion window: its rows and its columns, each (start, end).
type Window = ((usize, usize), (usize, usize));

/// Window (start, end) along an axis of `size`, as Captum places them: ceil((size − window) /
/// stride) + 1 windows, the last one cut at the border when the stride does not divide evenly.
fn spans(size: usize, window: usize, stride: usize) -> Vec<(usize, usize)> {
    let count = (size - window).div_ceil(stride) + 1;
    (0..count)
        .map(|i| (i * stride, (i * stride + window).min(size)))
        .collect()
}

/// The occlusion map [C, H, W], its copies run as `options.occlusion_passes` says.
pub(crate) fn occlusion(ctx: &Context, options: &ExplainOptions) -> Result<Tensor> {
    let x = ctx.input;
    let (_, c, h, w) = x.dims4()?;
    let (win, stride) = (options.window, options.stride);
    if win == 0 || stride == 0 || win > h || win > w {
        return Err(Error::InvalidArgument(format!(
            "occlusion window {win} with stride {stride} does not fit a {h}x{w} input"
        )));
    }
    let ys = spans(h, win, stride);
    let xs = spans(w, win, stride);
    let positions: Vec<Window> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| (y, x)))
        .collect();
    let device = x.device();
    let original = ctx.input_scores()?.to_dtype(DType::F32)?.to_vec1::<f32>()?[0];
    let mut drops = Vec::with_capacity(positions.len());
    for chunk in positions.chunks(options.batch_size.max(1)) {
        let scores = match options.occlusion_passes {
            OcclusionPasses::Full => ctx.target_scores(&occluded_copies(x, chunk)?)?,
            OcclusionPasses::Incremental => {
                let logits = ctx
                    .model
                    .graph
                    .forward_boxed_copies(ctx.trace, occluded_boxes(x, chunk, win)?)?;
                ctx.scores_of(&logits)?
            }
        };
        let scores = scores.to_vec1::<f32>()?;
        drops.extend(scores.into_iter().map(|s| original - s));
        ctx.report(drops.len(), positions.len())?;
    }
    let mut total = vec![0f32; h * w];
    let mut count = vec![0f32; h * w];
    for (&((y0, y1), (x0, x1)), d) in positions.iter().zip(drops) {
        for y in y0..y1 {
            for xx in x0..x1 {
                total[y * w + xx] += d;
                count[y * w + xx] += 1.0;
            }
        }
    }
    let map: Vec<f32> = total
        .iter()
        .zip(&count)
        .map(|(t, n)| if *n > 0.0 { t / n } else { 0.0 })
        .collect();
    let plane = Tensor::from_vec(map, (1, h, w), device)?;
    Ok(plane.repeat((c, 1, 1))?)
}

/// Each position's occluded copy of `x` [1, C, H, W], whole: [positions, C, H, W]. The window
/// masks are built on the CPU (1 outside, 0 inside) and sent with the batch.
fn occluded_copies(x: &Tensor, positions: &[Window]) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let mut mask = vec![1f32; positions.len() * h * w];
    for (k, &((y0, y1), (x0, x1))) in positions.iter().enumerate() {
        for y in y0..y1 {
            for xx in x0..x1 {
                mask[k * h * w + y * w + xx] = 0.0;
            }
        }
    }
    let mask = Tensor::from_vec(mask, (positions.len(), 1, h, w), x.device())?;
    Ok(mask.to_dtype(x.dtype())?.broadcast_mul(x)?)
}

/// Each position's occluded copy of `x` as a box of `win`×`win` (a window cut at the border
/// is held in a box moved back inside the input, the rest of the box the input's own values).
fn occluded_boxes(x: &Tensor, positions: &[Window], win: usize) -> Result<BoxedCopies> {
    let (_, _, h, w) = x.dims4()?;
    let mut origins = Vec::with_capacity(positions.len());
    let mut mask = vec![1f32; positions.len() * win * win];
    let mut pieces = Vec::with_capacity(positions.len());
    for (k, &((y0, y1), (x0, x1))) in positions.iter().enumerate() {
        let (by, bx) = (y0.min(h - win), x0.min(w - win));
        for y in y0..y1 {
            for xx in x0..x1 {
                mask[k * win * win + (y - by) * win + (xx - bx)] = 0.0;
            }
        }
        pieces.push(x.narrow(2, by, win)?.narrow(3, bx, win)?);
        origins.push((by, bx));
    }
    let mask = Tensor::from_vec(mask, (positions.len(), 1, win, win), x.device())?;
    let patches = Tensor::cat(&pieces, 0)?.broadcast_mul(&mask.to_dtype(x.dtype())?)?;
    Ok(BoxedCopies { patches, origins })
}
