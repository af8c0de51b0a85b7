//! Class activation maps at a layer: CAM, Grad-CAM, Grad-CAM++, XGrad-CAM, HiRes-CAM, Layer-CAM,
//! element-wise Grad-CAM, Eigen-CAM, Eigen-Grad-CAM, KPCA-CAM and guided Grad-CAM, as
//! pytorch-grad-cam computes them per layer (after the method's ReLU, before upsampling and
//! normalization), with its `eigen_smooth` option.

use candle_core::{Tensor, D};

use super::kernel_pca::kernel_projection;
use super::layer::gap_linear_head;
use super::perturbation_cam::{ablation_cam, score_cam};
use super::resize::scale_cam;
use super::{Context, ExplainOptions, Method};
use crate::graph::{BackwardRule, NodeId};
use crate::{Error, Result};

/// The CAM of `options.method` at `layer`: [h, w], or [C, H, W] for guided Grad-CAM.
pub(crate) fn class_activation_map(
    ctx: &Context,
    layer: NodeId,
    options: &ExplainOptions,
) -> Result<Tensor> {
    let graph = &ctx.model.graph;
    let activations = ctx
        .trace
        .get(layer)
        .ok_or_else(|| Error::InvalidArgument("the forward pass lost the layer's output".into()))?;
    if activations.rank() != 4 {
        return Err(Error::InvalidArgument(format!(
            "layer `{}` has no spatial output (shape {:?}); CAMs need a [N, C, H, W] layer",
            graph.name(layer),
            activations.dims()
        )));
    }
    let a = activations;
    let gradients = || -> Result<Tensor> {
        let signal = ctx.target_signal(1)?;
        graph.backward(
            ctx.trace,
            graph.output_id(),
            &signal,
            layer,
            BackwardRule::Gradient,
        )
    };
    // pytorch-grad-cam's `get_cam_image`: the activations weighted per channel (or per
    // position), then summed over the channels, or projected on their first principal
    // component with `eigen_smooth`.
    let reduce = |weighted: Tensor| -> Result<Tensor> {
        if options.eigen_smooth {
            eigen_projection(&weighted)
        } else {
            Ok(weighted.sum(1)?.squeeze(0)?)
        }
    };
    // Σ_k w_k A_k, weights [1, K] → [h, w].
    let weighted = |weights: &Tensor| -> Result<Tensor> {
        reduce(a.broadcast_mul(&weights.unsqueeze(2)?.unsqueeze(3)?)?)
    };
    let map = match options.method {
        Method::Cam => {
            let w = gap_linear_head(graph, layer)?;
            let rows = Tensor::new(
                ctx.classes.iter().map(|&c| c as u32).collect::<Vec<_>>(),
                w.device(),
            )?;
            weighted(&w.index_select(&rows, 0)?.sum_keepdim(0)?)?
        }
        Method::GradCam => weighted(&gradients()?.mean((2, 3))?)?,
        Method::HiResCam => reduce(gradients()?.mul(a)?)?,
        Method::LayerCam => reduce(gradients()?.relu()?.mul(a)?)?,
        Method::GradCamElementWise => reduce(gradients()?.mul(a)?.relu()?)?,
        Method::XGradCam => {
            let g = gradients()?;
            let sum_a = a.sum((2, 3))?;
            let w = g.mul(a)?.sum((2, 3))?.div(&sum_a.affine(1.0, 1e-7)?)?;
            weighted(&w)?
        }
        Method::GradCamPlusPlus => weighted(&gradcam_plus_plus_weights(a, &gradients()?)?)?,
        Method::EigenCam => eigen_projection(a)?,
        Method::EigenGradCam => eigen_projection(&gradients()?.mul(a)?)?,
        Method::KpcaCam => kernel_projection(a)?,
        Method::ScoreCam => weighted(&score_cam(ctx, a, options)?)?,
        Method::AblationCam => weighted(&ablation_cam(ctx, layer, a, options)?)?,
        Method::GuidedGradCam => {
            let cam = weighted(&gradients()?.mean((2, 3))?)?.relu()?;
            let (_, _, h, w) = ctx.input.dims4()?;
            // pytorch-grad-cam scales twice: min–max and resize, ReLU, then min–max again.
            let mask = scale_cam(&cam, h, w)?.relu()?;
            let mask = scale_cam(&mask, h, w)?;
            let guided = ctx
                .signal_at(ctx.input, 0, BackwardRule::Guided)?
                .squeeze(0)?;
            return Ok(guided.broadcast_mul(&mask)?);
        }
        other => {
            return Err(Error::InvalidArgument(format!(
                "`{}` is not a CAM method",
                other.name()
            )));
        }
    };
    Ok(map.relu()?)
}

/// pytorch-grad-cam's closed-form Grad-CAM++ weights [1, K].
fn gradcam_plus_plus_weights(a: &Tensor, g: &Tensor) -> Result<Tensor> {
    let g2 = g.sqr()?;
    let g3 = g2.mul(g)?;
    let sum_a = a.sum_keepdim((2, 3))?;
    let denominator = g2
        .affine(2.0, 0.0)?
        .add(&g3.broadcast_mul(&sum_a)?)?
        .affine(1.0, 1e-6)?;
    let alpha = g2.div(&denominator)?;
    let nonzero = g.ne(0f32)?.to_dtype(alpha.dtype())?;
    let alpha = alpha.mul(&nonzero)?;
    Ok(g.relu()?.mul(&alpha)?.sum((2, 3))?)
}

/// pytorch-grad-cam's `get_2d_projection`: the activations [h·w, K] centred over positions,
/// projected on their first right singular vector, with the sign LAPACK gives it (see
/// `leading_direction`).
fn eigen_projection(a: &Tensor) -> Result<Tensor> {
    let (_, k, h, w) = a.dims4()?;
    let r = a.squeeze(0)?.reshape((k, h * w))?.t()?.contiguous()?;
    let r = r.broadcast_sub(&r.mean_keepdim(0)?)?;
    let gram = r.matmul(&r.t()?)?;
    let u = leading_direction(&gram)?;
    // R v1 = s1 u1: the projection on the first right singular vector.
    let s = gram.matmul(&u)?.sqr()?.sum_all()?.sqrt()?.sqrt()?;
    let projection = u.broadcast_mul(&s)?;
    Ok(projection.reshape((h, w))?)
}

/// The unit eigenvector [n, 1] of the symmetric positive semi-definite `m` with the largest
/// eigenvalue, by power iteration. An eigenvector's sign is arbitrary; numpy's LAPACK (what
/// pytorch-grad-cam uses) returns the first left singular vector with its first entry negative
/// in most small cases (its LQ-then-bidiagonalisation path biases it so), and in every
/// reference fixture, so that is the sign chosen here. It is an emulation, not a rule of the
/// method: tests/fixtures/explain/README.md says more.
fn leading_direction(m: &Tensor) -> Result<Tensor> {
    let n = m.dim(0)?;
    // Centred activations put the all-ones vector in the null space, so start off it.
    let start: Vec<f32> = (0..n)
        .map(|i| 1.0 + (i as f32 * 0.618_034).fract())
        .collect();
    let mut v = Tensor::from_vec(start, (n, 1), m.device())?.to_dtype(m.dtype())?;
    for _ in 0..500 {
        let next = m.matmul(&v)?;
        let norm = next.sqr()?.sum_all()?.sqrt()?.affine(1.0, 1e-30)?;
        v = next.broadcast_div(&norm)?;
    }
    let first = v.get(0)?.get(0)?.to_scalar::<f32>()?;
    Ok(if first > 0.0 { v.neg()? } else { v })
}

/// Softmax over the last axis.
pub(crate) fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}
