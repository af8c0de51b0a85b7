//! `nn.Linear`: y = x Wᵀ + b.

use candle_core::{Result, Tensor};

/// A fully connected layer; fields as in PyTorch's state_dict.
#[derive(Clone, Debug)]
pub struct Linear {
    /// [out_features, in_features].
    pub weight: Tensor,
    /// [out_features], when present.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// The layer's output for `x` [N, in_features], or `[…, in_features]` (a Linear applied to
    /// channels-last maps, as ConvNeXt does).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.rank() > 2 {
            let dims = x.dims();
            let (last, lead) = (dims[dims.len() - 1], &dims[..dims.len() - 1]);
            let y = self.forward(&x.reshape(((), last))?)?;
            let mut out = lead.to_vec();
            out.push(y.dim(1)?);
            return y.reshape(out);
        }
        let y = x.matmul(&self.weight.t()?)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// The signal at the input.
    pub fn input_gradient(&self, grad: &Tensor) -> Result<Tensor> {
        if grad.rank() > 2 {
            let dims = grad.dims();
            let (last, lead) = (dims[dims.len() - 1], &dims[..dims.len() - 1]);
            let g = grad.reshape(((), last))?.matmul(&self.weight)?;
            let mut out = lead.to_vec();
            out.push(g.dim(1)?);
            return g.reshape(out);
        }
        grad.matmul(&self.weight)
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.weight.elem_count() + self.bias.as_ref().map_or(0, Tensor::elem_count)
    }
}
