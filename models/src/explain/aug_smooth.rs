//! pytorch-grad-cam's `aug_smooth`: the CAM of six augmented copies of the input (flipped left to
//! right or not, times 0.9, 1 or 1.1: its default ttach transforms), each taken through
//! pytorch-grad-cam's whole pipeline (ReLU, min–max scaling and resize to the input, ReLU, min–max
//! again), turned back, and averaged. The map is [H, W] at the input's resolution, in [0, 1].

use candle_core::{Tensor, D};

use super::cam::class_activation_map;
use super::resize::scale_cam;
use super::{Context, ExplainOptions, Method};
use crate::graph::{BackwardRule, NodeId};
use crate::progress::{Progress, Stage};
use crate::Result;

/// The factors of ttach's `Multiply` in pytorch-grad-cam's default transforms, in its order.
const FACTORS: [f64; 3] = [0.9, 1.0, 1.1];

/// The augmentation-smoothed CAM of `options.method` at `layer`: [H, W], or [C, H, W] for guided
/// Grad-CAM (guided backprop times the smoothed Grad-CAM, as pytorch-grad-cam's example makes it).
pub(crate) fn augmentation_smoothed(
    ctx: &Context,
    layer: NodeId,
    options: &ExplainOptions,
) -> Result<Tensor> {
    let (_, _, h, w) = ctx.input.dims4()?;
    let guided = options.method == Method::GuidedGradCam;
    let cam_options = ExplainOptions {
        method: if guided {
            Method::GradCam
        } else {
            options.method
        },
        ..options.clone()
    };
    let count = 2 * FACTORS.len();
    let mut sum: Option<Tensor> = None;
    let mut index = 0;
    // ttach's product of the transforms' parameters: the flip varies slowest.
    for flip in [false, true] {
        for factor in FACTORS {
            let flipped = if flip {
                flip_width(ctx.input)?
            } else {
                ctx.input.clone()
            };
            let x = if factor == 1.0 {
                flipped
            } else {
                flipped.affine(factor, 0.0)?
            };
            // The untouched copy is the input itself: its forward pass is already made.
            let trace = if flip || factor != 1.0 {
                ctx.model.graph.forward(&x, None)?
            } else {
                ctx.trace.clone()
            };
            let stage = Stage {
                inner: ctx.progress,
                index,
                count,
                name: "augmented copy",
            };
            let copy = Context {
                model: ctx.model,
                input: &x,
                trace: &trace,
                classes: ctx.classes.clone(),
                progress: &stage,
            };
            let cam = class_activation_map(&copy, layer, &cam_options)?;
            // compute_cam_per_layer, then aggregate_multi_layers for one layer.
            let full = scale_cam(&scale_cam(&cam, h, w)?.relu()?, h, w)?;
            let back = if flip { flip_width(&full)? } else { full };
            sum = Some(match sum {
                Some(s) => s.add(&back)?,
                None => back,
            });
            index += 1;
            stage.step(1, 1, "done")?;
        }
    }
    let Some(sum) = sum else {
        return Err(crate::Error::InvalidArgument("no augmentation".into()));
    };
    let mean = sum.affine(1.0 / count as f64, 0.0)?;
    if guided {
        let gradients = ctx
            .signal_at(ctx.input, 0, BackwardRule::Guided)?
            .squeeze(0)?;
        return Ok(gradients.broadcast_mul(&mean)?);
    }
    Ok(mean)
}

/// `t` [..., w] mirrored left to right.
fn flip_width(t: &Tensor) -> Result<Tensor> {
    let w = t.dim(D::Minus1)?;
    let reversed: Vec<u32> = (0..w as u32).rev().collect();
    let index = Tensor::from_vec(reversed, w, t.device())?;
    Ok(t.index_select(&index, t.rank() - 1)?)
}
