//! `nn.MaxPool2d`, whose backward pass routes the signal through the switches (the first maximum
//! of each window, in row-major order, as PyTorch picks it).

use candle_core::{Result, Tensor};

use super::pool::PoolWindow;
use super::strided::{place_strided, take_strided};

/// A max-pooling layer.
#[derive(Debug, Clone)]
pub struct MaxPool2d {
    /// The window.
    pub window: PoolWindow,
}

impl MaxPool2d {
    /// The pooled `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.window.dilation == (1, 1) && super::max_pool_cpu::applies(x) {
            return super::max_pool_cpu::forward(&self.window, x);
        }
        self.forward_by_candle(x)
    }

    /// [`MaxPool2d::forward`] by candle ops (every device; the CPU fast path is checked
    /// against it).
    pub fn forward_by_candle(&self, x: &Tensor) -> Result<Tensor> {
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
        if self.window.dilation == (1, 1)
            && super::max_pool_cpu::applies(x)
            && super::max_pool_cpu::applies(grad)
        {
            return super::max_pool_cpu::backward(&self.window, x, y, grad);
        }
        self.backward_by_candle(x, y, grad)
    }

    /// [`MaxPool2d::backward`] by candle ops (every device; the CPU fast path is checked
    /// against it).
    pub fn backward_by_candle(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let r = self.window.resolve(h, w);
        let padded = self.window.pad(x, f64::NEG_INFINITY)?;
        let (kh, kw) = self.window.kernel;
        let (sh, sw) = self.window.stride;
        let (dh, dw) = self.window.dilation;
        let mut unclaimed = y.ones_like()?;
        let mut total: Option<Tensor> = None;
        for i in 0..kh {
            // The taps of one window row land on the same input rows: fold them along the width,
            // then place the row once (k fewer full-size placements than tap by tap).
            let rows = take_strided(&padded, 2, i * dh, r.out.0, sh)?;
            let mut row: Option<Tensor> = None;
            for j in 0..kw {
                let element = take_strided(&rows, 3, j * dw, r.out.1, sw)?;
                let is_max = element.eq(y)?.to_dtype(grad.dtype())?.mul(&unclaimed)?;
                unclaimed = unclaimed.sub(&is_max)?;
                let placed = place_strided(&grad.mul(&is_max)?, 3, j * dw, sw, r.padded.1)?;
                row = Some(match row {
                    None => placed,
                    Some(t) => t.add(&placed)?,
                });
            }
            let Some(row) = row else { continue };
            let placed = place_strided(&row, 2, i * dh, sh, r.padded.0)?;
            total = Some(match total {
                None => placed,
                Some(t) => t.add(&placed)?,
            });
        }
        match total {
            Some(t) => self.window.unpad(&t, h, w),
            None => candle_core::bail!("max pooling with an empty window"),
        }
    }
}
