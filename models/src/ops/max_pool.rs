//! `nn.MaxPool2d`, whose backward pass routes the signal through the switches (the first maximum
//! of each window, in row-major order, as PyTorch picks it).

use candle_core::{Result, Tensor};

use super::pool::PoolWindow;

/// A max-pooling layer.
#[derive(Debug, Clone)]
pub struct MaxPool2d {
    /// The window.
    pub window: PoolWindow,
}

impl MaxPool2d {
    /// The pooled `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let r = self.window.resolve(h, w);
        let padded = self.window.pad(x, f64::NEG_INFINITY)?;
        let (kh, kw) = self.window.kernel;
        let mut best: Option<Tensor> = None;
        for i in 0..kh {
            for j in 0..kw {
                let element = self.window.window_element(&padded, r.out, i, j)?;
                best = Some(match best {
                    None => element,
                    Some(b) => b.maximum(&element)?,
                });
            }
        }
        match best {
            Some(b) => Ok(b),
            None => candle_core::bail!("max pooling with an empty window"),
        }
    }

    /// The signal at the input: each output's signal goes to its window's first maximum.
    pub fn backward(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let r = self.window.resolve(h, w);
        let padded = self.window.pad(x, f64::NEG_INFINITY)?;
        let (kh, kw) = self.window.kernel;
        let mut unclaimed = y.ones_like()?;
        let mut total: Option<Tensor> = None;
        for i in 0..kh {
            for j in 0..kw {
                let element = self.window.window_element(&padded, r.out, i, j)?;
                let is_max = element.eq(y)?.to_dtype(grad.dtype())?.mul(&unclaimed)?;
                unclaimed = unclaimed.sub(&is_max)?;
                let placed = self
                    .window
                    .place_element(&grad.mul(&is_max)?, r.padded, i, j)?;
                total = Some(match total {
                    None => placed,
                    Some(t) => t.add(&placed)?,
                });
            }
        }
        match total {
            Some(t) => self.window.unpad(&t, h, w),
            None => candle_core::bail!("max pooling with an empty window"),
        }
    }
}
