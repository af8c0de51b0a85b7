//! `nn.BatchNorm2d` in evaluation mode: a per-channel affine map from the running statistics.

use candle_core::{Result, Tensor};

/// A batch-normalization layer; fields as in PyTorch's state_dict.
#[derive(Debug)]
pub struct BatchNorm2d {
    /// Gamma.
    pub weight: Tensor,
    /// Beta.
    pub bias: Tensor,
    /// Running mean.
    pub running_mean: Tensor,
    /// Running variance.
    pub running_var: Tensor,
    /// Epsilon added to the variance.
    pub eps: f64,
    /// weight / sqrt(running_var + eps), shaped [1, C, 1, 1].
    scale: Tensor,
    /// bias - running_mean * scale, shaped [1, C, 1, 1].
    shift: Tensor,
}

impl BatchNorm2d {
    /// A layer from its parameters and statistics.
    pub fn new(
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
        eps: f64,
    ) -> Result<Self> {
        let scale = weight.div(&running_var.affine(1.0, eps)?.sqrt()?)?;
        let shift = bias.sub(&running_mean.mul(&scale)?)?;
        Ok(BatchNorm2d {
            scale: scale.reshape((1, (), 1, 1))?,
            shift: shift.reshape((1, (), 1, 1))?,
            weight,
            bias,
            running_mean,
            running_var,
            eps,
        })
    }

    /// The normalized `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)
    }

    /// The gradient with respect to the input.
    pub fn input_gradient(&self, grad: &Tensor) -> Result<Tensor> {
        grad.broadcast_mul(&self.scale)
    }

    /// Number of parameters (gamma and beta; the statistics are buffers).
    pub fn param_count(&self) -> usize {
        self.weight.elem_count() + self.bias.elem_count()
    }
}
