//! `nn.AdaptiveAvgPool2d`: PyTorch's bins (start = floor(i·H/out), end = ceil((i+1)·H/out)),
//! computed as two small matrix products so that it runs on any device and any size.

use candle_core::{Device, Result, Tensor};

/// An adaptive average-pooling layer.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveAvgPool2d {
    /// Output height and width.
    pub output_size: (usize, usize),
}

/// The [out, size] matrix averaging each of PyTorch's adaptive bins.
fn bin_matrix(size: usize, out: usize, device: &Device) -> Result<Tensor> {
    let mut m = vec![0f32; out * size];
    for i in 0..out {
        let start = i * size / out;
        let end = ((i + 1) * size).div_ceil(out);
        let count = (end - start).max(1) as f32;
        for j in start..end {
            m[i * size + j] = 1.0 / count;
        }
    }
    Tensor::from_vec(m, (out, size), device)
}

impl AdaptiveAvgPool2d {
    /// The pooled `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (oh, ow) = self.output_size;
        if (oh, ow) == (1, 1) {
            return x.mean_keepdim(3)?.mean_keepdim(2);
        }
        if (oh, ow) == (h, w) {
            return Ok(x.clone());
        }
        let rows = bin_matrix(h, oh, x.device())?.to_dtype(x.dtype())?;
        let cols = bin_matrix(w, ow, x.device())?.to_dtype(x.dtype())?;
        rows.broadcast_matmul(&x.contiguous()?)?
            .broadcast_matmul(&cols.t()?)
    }

    /// The signal at the input.
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let (oh, ow) = self.output_size;
        if (oh, ow) == (1, 1) {
            return grad
                .affine(1.0 / (h * w) as f64, 0.0)?
                .broadcast_as((n, c, h, w))?
                .contiguous();
        }
        if (oh, ow) == (h, w) {
            return Ok(grad.clone());
        }
        let rows = bin_matrix(h, oh, x.device())?.to_dtype(x.dtype())?;
        let cols = bin_matrix(w, ow, x.device())?.to_dtype(x.dtype())?;
        rows.t()?
            .broadcast_matmul(&grad.contiguous()?)?
            .broadcast_matmul(&cols)
    }
}
