//! `nn.BatchNorm2d` in evaluation mode: a per-channel affine map from the running statistics.

use std::sync::OnceLock;

use candle_core::{Result, Tensor};

use super::pointwise_cpu::channel_affine;

/// A batch-normalization layer; fields as in PyTorch's state_dict.
#[derive(Clone, Debug)]
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
    /// `scale` and `shift` as host vectors for the CPU fast path, made on first use.
    host: OnceLock<(Vec<f32>, Vec<f32>)>,
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
            host: OnceLock::new(),
        })
    }

    /// `scale` and `shift` as f32 vectors.
    fn host(&self) -> Result<&(Vec<f32>, Vec<f32>)> {
        if let Some(h) = self.host.get() {
            return Ok(h);
        }
        let as_vec = |t: &Tensor| {
            t.flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()
        };
        let h = (as_vec(&self.scale)?, as_vec(&self.shift)?);
        Ok(self.host.get_or_init(|| h))
    }

    /// [`BatchNorm2d::scale_and_shift`] as f32 values, one per channel: what its CPU pass
    /// multiplies and adds (and a convolution's [`super::epilogue::Epilogue`] with it).
    pub fn host_scale_and_shift(&self) -> Result<(&[f32], &[f32])> {
        let (scale, shift) = self.host()?;
        Ok((scale, shift))
    }

    /// The per-channel scale `weight / sqrt(running_var + eps)` and shift
    /// `bias − running_mean · scale`, each shaped [1, C, 1, 1]: the layer is `x · scale + shift`.
    pub fn scale_and_shift(&self) -> (&Tensor, &Tensor) {
        (&self.scale, &self.shift)
    }

    /// The normalized `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if super::cpu_slice::is_cpu_f32(x) {
            let (scale, shift) = self.host()?;
            if let Some(y) = channel_affine(x, scale, Some(shift))? {
                return Ok(y);
            }
        }
        x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)
    }

    /// The gradient with respect to the input.
    pub fn input_gradient(&self, grad: &Tensor) -> Result<Tensor> {
        if super::cpu_slice::is_cpu_f32(grad) {
            if let Some(g) = channel_affine(grad, &self.host()?.0, None)? {
                return Ok(g);
            }
        }
        grad.broadcast_mul(&self.scale)
    }

    /// Number of parameters (gamma and beta; the statistics are buffers).
    pub fn param_count(&self) -> usize {
        self.weight.elem_count() + self.bias.elem_count()
    }
}
