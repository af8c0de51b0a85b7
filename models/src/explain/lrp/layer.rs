//! The layers LRP's rules act on: a convolution or a fully connected layer, with a BatchNorm
//! that follows it merged in (zennit's `MergeBatchNorm` canonizer), and copies of it with other
//! parameters (the rules' positive and negative halves).

use candle_core::{Result, Tensor};

use crate::ops::{BatchNorm2d, Conv2d, Linear, Op};

/// A convolution or fully connected layer, owning its (possibly merged) parameters.
#[derive(Debug)]
pub enum AffineLayer {
    /// A convolution.
    Conv(Conv2d),
    /// A fully connected layer.
    Linear(Linear),
}

impl AffineLayer {
    /// The layer computed by `op`, when it is a convolution or a fully connected layer.
    pub fn of(op: &Op) -> Option<AffineLayer> {
        match op {
            Op::Conv2d(c) => Some(AffineLayer::Conv(conv_like(
                c,
                c.weight.clone(),
                c.bias.clone(),
            ))),
            Op::Linear(l) => Some(AffineLayer::Linear(Linear {
                weight: l.weight.clone(),
                bias: l.bias.clone(),
            })),
            _ => None,
        }
    }

    /// This convolution followed by `bn`, as one convolution: each output channel's kernel and
    /// bias scaled by γ / √(var + ε), the bias shifted by β − mean · γ / √(var + ε) (zennit's
    /// `merge_batch_norm`). `None` for a fully connected layer.
    pub fn merged_with(&self, bn: &BatchNorm2d) -> Result<Option<AffineLayer>> {
        let AffineLayer::Conv(c) = self else {
            return Ok(None);
        };
        let scale = bn
            .weight
            .div(&bn.running_var.affine(1.0, bn.eps)?.sqrt()?)?;
        let weight = c.weight.broadcast_mul(&scale.reshape(((), 1, 1, 1))?)?;
        let bias = match &c.bias {
            Some(b) => b.sub(&bn.running_mean)?,
            None => bn.running_mean.neg()?,
        }
        .mul(&scale)?
        .add(&bn.bias)?;
        Ok(Some(AffineLayer::Conv(conv_like(c, weight, Some(bias)))))
    }

    /// The weight.
    pub fn weight(&self) -> &Tensor {
        match self {
            AffineLayer::Conv(c) => &c.weight,
            AffineLayer::Linear(l) => &l.weight,
        }
    }

    /// The bias, when the layer has one.
    pub fn bias(&self) -> Option<&Tensor> {
        match self {
            AffineLayer::Conv(c) => c.bias.as_ref(),
            AffineLayer::Linear(l) => l.bias.as_ref(),
        }
    }

    /// The same layer (geometry, stride, padding, groups) with other parameters.
    pub fn with_parameters(&self, weight: Tensor, bias: Option<Tensor>) -> AffineLayer {
        match self {
            AffineLayer::Conv(c) => AffineLayer::Conv(conv_like(c, weight, bias)),
            AffineLayer::Linear(_) => AffineLayer::Linear(Linear { weight, bias }),
        }
    }

    /// The layer's output for `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            AffineLayer::Conv(c) => c.forward(x),
            AffineLayer::Linear(l) => l.forward(x),
        }
    }

    /// The signal at an input shaped like `x` for the signal `grad` at the output (the
    /// transposed layer applied to `grad`).
    pub fn transposed(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        match self {
            AffineLayer::Conv(c) => c.input_gradient(x, grad),
            AffineLayer::Linear(l) => l.input_gradient(grad),
        }
    }
}

/// A convolution with `c`'s geometry and the given parameters.
fn conv_like(c: &Conv2d, weight: Tensor, bias: Option<Tensor>) -> Conv2d {
    Conv2d::new(weight, bias, c.stride, c.padding, c.dilation, c.groups)
}
