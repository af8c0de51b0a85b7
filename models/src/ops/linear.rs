//! `nn.Linear`: y = x Wᵀ + b.

use candle_core::{Result, Tensor};

/// A fully connected layer; fields as in PyTorch's state_dict.
#[derive(Debug)]
pub struct Linear {
    /// [out_features, in_features].
    pub weight: Tensor,
    /// [out_features], when present.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// The layer's output for `x` [N, in_features].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// The signal at the input.
    pub fn input_gradient(&self, grad: &Tensor) -> Result<Tensor> {
        grad.matmul(&self.weight)
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.weight.elem_count() + self.bias.as_ref().map_or(0, Tensor::elem_count)
    }
}
