//! Occlusion (Zeiler & Fergus 2014) as Captum's `Occlusion` computes it: a square window over all
//! channels slid with a stride, set to the baseline 0; each pixel gets the mean drop in the
//! target logit over the windows that cover it. The occluded copies run in batches.

use candle_core::Tensor;

use super::{Context, ExplainOptions};
use crate::{Error, Result};

/// Window (start, end) along an axis of `size`, as Captum places them: ceil((size − window) /
/// stride) + 1 windows, the last one cut at the border when the stride does not divide evenly.
fn spans(size: usize, window: usize, stride: usize) -> Vec<(usize, usize)> {
    let count = (size - window).div_ceil(stride) + 1;
    (0..count)
        .map(|i| (i * stride, (i * stride + window).min(size)))
        .collect()
}

/// The occlusion map [C, H, W].
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
    let positions: Vec<((usize, usize), (usize, usize))> = ys
        .iter()
        .flat_map(|&y| xs.iter().map(move |&x| (y, x)))
        .collect();
    let device = x.device();
    let original = ctx.target_scores(x)?.to_vec1::<f32>()?[0];
    // Window masks are built on the CPU (1 outside, 0 inside) and sent with each batch.
    let mut drops = Vec::with_capacity(positions.len());
    for chunk in positions.chunks(options.batch_size.max(1)) {
        let mut mask = vec![1f32; chunk.len() * h * w];
        for (k, &((y0, y1), (x0, x1))) in chunk.iter().enumerate() {
            for y in y0..y1 {
                for xx in x0..x1 {
                    mask[k * h * w + y * w + xx] = 0.0;
                }
            }
        }
        let mask = Tensor::from_vec(mask, (chunk.len(), 1, h, w), device)?;
        let occluded = mask.broadcast_mul(x)?;
        let scores = ctx.target_scores(&occluded)?.to_vec1::<f32>()?;
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
