//! Adam (Kingma & Ba 2015) as `torch.optim.Adam` computes it, on one parameter tensor.

use candle_core::Tensor;

use crate::Result;

/// Adam's state for one parameter: the moment estimates and the step count.
#[derive(Debug)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the denominator.
    pub eps: f64,
    m: Tensor,
    v: Tensor,
    t: i32,
}

impl Adam {
    /// A fresh optimizer for a parameter shaped like `like`, with torch's default betas and eps.
    pub fn new(like: &Tensor, lr: f64) -> Result<Self> {
        Ok(Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: like.zeros_like()?,
            v: like.zeros_like()?,
            t: 0,
        })
    }

    /// One step that lowers a loss whose gradient is `grad`: returns the updated parameter.
    pub fn step(&mut self, param: &Tensor, grad: &Tensor) -> Result<Tensor> {
        self.t += 1;
        self.m = self
            .m
            .affine(self.beta1, 0.0)?
            .add(&grad.affine(1.0 - self.beta1, 0.0)?)?;
        self.v = self
            .v
            .affine(self.beta2, 0.0)?
            .add(&grad.sqr()?.affine(1.0 - self.beta2, 0.0)?)?;
        let bias1 = 1.0 - self.beta1.powi(self.t);
        let bias2 = 1.0 - self.beta2.powi(self.t);
        // torch: denom = sqrt(v) / sqrt(bias2) + eps; param -= lr / bias1 * m / denom.
        let denom = self.v.sqrt()?.affine(1.0 / bias2.sqrt(), self.eps)?;
        let update = self.m.div(&denom)?.affine(self.lr / bias1, 0.0)?;
        Ok(param.sub(&update)?)
    }
}
