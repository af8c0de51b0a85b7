//! Ops that combine several inputs: addition (residuals), multiplication (squeeze-excitation
//! gates), concatenation (Inception, DenseNet, Fire), all with NumPy-style broadcasting.

use candle_core::{Result, Shape, Tensor};

/// Sums `grad` over the axes along which `shape` was broadcast to `grad`'s shape.
pub fn sum_to_shape(grad: &Tensor, shape: &Shape) -> Result<Tensor> {
    if grad.shape() == shape {
        return Ok(grad.clone());
    }
    let target = shape.dims();
    let rank = grad.rank();
    let offset = rank - target.len();
    let mut g = grad.clone();
    for axis in (0..rank).rev() {
        let keep = axis >= offset && target[axis - offset] == grad.dim(axis)?;
        if !keep {
            g = g.sum_keepdim(axis)?;
        }
    }
    g.reshape(target)
}

/// Sum of the inputs (broadcast).
pub fn add_forward(inputs: &[&Tensor]) -> Result<Tensor> {
    let mut iter = inputs.iter();
    let Some(first) = iter.next() else {
        candle_core::bail!("add with no inputs")
    };
    let mut total = (*first).clone();
    for t in iter {
        total = total.broadcast_add(t)?;
    }
    Ok(total)
}

/// Product of two inputs (broadcast).
pub fn mul_forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.broadcast_mul(b)
}

/// Signals at the two factors of a product.
pub fn mul_backward(a: &Tensor, b: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
    let ga = sum_to_shape(&grad.broadcast_mul(b)?, a.shape())?;
    let gb = sum_to_shape(&grad.broadcast_mul(a)?, b.shape())?;
    Ok((ga, gb))
}

/// Signals at the concatenated inputs: `grad` cut along `dim`.
pub fn concat_backward(inputs: &[&Tensor], grad: &Tensor, dim: usize) -> Result<Vec<Tensor>> {
    let mut start = 0;
    let mut parts = Vec::with_capacity(inputs.len());
    for t in inputs {
        let len = t.dim(dim)?;
        parts.push(grad.narrow(dim, start, len)?);
        start += len;
    }
    Ok(parts)
}
