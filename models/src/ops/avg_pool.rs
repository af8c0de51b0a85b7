//! `nn.AvgPool2d` with PyTorch's divisor rules (`count_include_pad`, ceil-mode overhang).

use candle_core::{Result, Tensor};

use super::pool::PoolWindow;

/// An average-pooling layer.
#[derive(Debug, Clone)]
pub struct AvgPool2d {
    /// The window.
    pub window: PoolWindow,
    /// Count padded zeros in the divisor (PyTorch's default).
    pub count_include_pad: bool,
}

impl AvgPool2d {
    /// Per-output divisor, [1, 1, oh, ow]: the window's cells inside the input (or inside the
    /// padded input with `count_include_pad`), as PyTorch counts them.
    fn divisor(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let r = self.window.resolve(h, w);
        let padded = if self.count_include_pad {
            // Padding counts as cells; only the ceil-mode overhang past it does not.
            let (t, b, l, rr) = self.window.padding;
            let inside = Tensor::ones((1, 1, h + t + b, w + l + rr), x.dtype(), x.device())?;
            let fit = |x: Tensor, dim: usize, want: usize| -> Result<Tensor> {
                let have = x.dim(dim)?;
                if have >= want {
                    x.narrow(dim, 0, want)
                } else {
                    x.pad_with_zeros(dim, 0, want - have)
                }
            };
            fit(fit(inside, 2, r.padded.0)?, 3, r.padded.1)?
        } else {
            let ones = Tensor::ones((1, 1, h, w), x.dtype(), x.device())?;
            self.window.pad(&ones, 0.0)?
        };
        self.sum_windows(&self.window, &padded, r.out)
    }

    fn sum_windows(
        &self,
        window: &PoolWindow,
        padded: &Tensor,
        out: (usize, usize),
    ) -> Result<Tensor> {
        let (kh, kw) = window.kernel;
        let mut total = window.window_element(padded, out, 0, 0)?;
        for i in 0..kh {
            for j in 0..kw {
                if i + j > 0 {
                    total = total.add(&window.window_element(padded, out, i, j)?)?;
                }
            }
        }
        Ok(total)
    }

    /// The pooled `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let r = self.window.resolve(h, w);
        let padded = self.window.pad(x, 0.0)?;
        let sums = self.sum_windows(&self.window, &padded, r.out)?;
        sums.broadcast_div(&self.divisor(x)?)
    }

    /// The signal at the input: each output's signal shared equally over its window.
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let r = self.window.resolve(h, w);
        let share = grad.broadcast_div(&self.divisor(x)?)?;
        let (kh, kw) = self.window.kernel;
        let mut total: Option<Tensor> = None;
        for i in 0..kh {
            for j in 0..kw {
                let placed = self.window.place_element(&share, r.padded, i, j)?;
                total = Some(match total {
                    None => placed,
                    Some(t) => t.add(&placed)?,
                });
            }
        }
        match total {
            Some(t) => self.window.unpad(&t, h, w),
            None => candle_core::bail!("average pooling with an empty window"),
        }
    }
}
