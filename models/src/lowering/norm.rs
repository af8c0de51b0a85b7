//! Batch normalization (evaluation form) from its parameters.

use candle_core::{DType, Tensor};

use super::{Lowered, Problem};
use crate::ops::BatchNorm2d;

/// A batch norm from its running statistics and (when affine) scale and shift, all of one size.
pub fn batch_norm(
    weight: Option<Tensor>,
    bias: Option<Tensor>,
    mean: Tensor,
    var: Tensor,
    eps: f64,
) -> Lowered<BatchNorm2d> {
    let channels = mean.elem_count();
    let fit = |t: &Tensor| t.dims() == [channels];
    if !fit(&mean)
        || !fit(&var)
        || !weight.as_ref().is_none_or(fit)
        || !bias.as_ref().is_none_or(fit)
    {
        return Err(Problem::Invalid(
            "batch norm parameters of different sizes".into(),
        ));
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Problem::Invalid(format!("batch norm epsilon {eps}")));
    }
    let tensor_error = |e: candle_core::Error| Problem::Invalid(e.to_string());
    let ones = Tensor::ones(channels, DType::F32, mean.device()).map_err(tensor_error)?;
    let weight = match weight {
        Some(w) => w,
        None => ones.clone(),
    };
    let bias = match bias {
        Some(b) => b,
        None => ones.zeros_like().map_err(tensor_error)?,
    };
    BatchNorm2d::new(weight, bias, mean, var, eps).map_err(tensor_error)
}
