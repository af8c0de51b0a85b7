//! `nn.AdaptiveMaxPool2d`: the maximum of each of PyTorch's adaptive bins (start =
//! floor(i·H/out), end = ceil((i+1)·H/out)), one bin at a time with candle ops so that it runs on
//! any device; the backward pass routes each bin's signal to its first maximum in row-major
//! order, as PyTorch's recorded index does.

use candle_core::{DType, Result, Tensor};

/// One bin's values [N, C, rows·cols], its first row and column, its rows and columns.
type Bin = (Tensor, (usize, usize), (usize, usize));

/// An adaptive max-pooling layer.
#[derive(Debug, Clone, Copy)]
pub struct AdaptiveMaxPool2d {
    /// Output height and width.
    pub output_size: (usize, usize),
}

/// PyTorch's bin `i` of `out` over `size`: (start, length).
fn bin(i: usize, size: usize, out: usize) -> (usize, usize) {
    let start = i * size / out;
    let end = ((i + 1) * size).div_ceil(out);
    (start, (end - start).max(1))
}

impl AdaptiveMaxPool2d {
    fn check(&self, h: usize, w: usize) -> Result<()> {
        let (oh, ow) = self.output_size;
        if oh == 0 || ow == 0 || h == 0 || w == 0 {
            candle_core::bail!("adaptive max pooling of {h}x{w} to {oh}x{ow}");
        }
        Ok(())
    }

    /// Each bin of `x` as [N, C, bin_h·bin_w], with its start and size.
    fn bins(&self, x: &Tensor) -> Result<Vec<Bin>> {
        let (n, c, h, w) = x.dims4()?;
        self.check(h, w)?;
        let (oh, ow) = self.output_size;
        let mut out = Vec::with_capacity(oh * ow);
        for i in 0..oh {
            let (r0, rl) = bin(i, h, oh);
            for j in 0..ow {
                let (c0, cl) = bin(j, w, ow);
                let cell = x
                    .narrow(2, r0, rl)?
                    .narrow(3, c0, cl)?
                    .reshape((n, c, rl * cl))?;
                out.push((cell, (r0, c0), (rl, cl)));
            }
        }
        Ok(out)
    }

    /// The pooled `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, c, _, _) = x.dims4()?;
        let (oh, ow) = self.output_size;
        let maxima = self
            .bins(x)?
            .into_iter()
            .map(|(cell, _, _)| cell.max_keepdim(2))
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&maxima, 2)?.reshape((n, c, oh, ow))
    }

    /// The signal at the input: each bin's signal at its first maximum.
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let (_, ow) = self.output_size;
        let mut total = x.zeros_like()?;
        for (k, (cell, (r0, c0), (rl, cl))) in self.bins(x)?.into_iter().enumerate() {
            let (i, j) = (k / ow, k % ow);
            let len = rl * cl;
            // The first position holding the maximum: the smallest index among the maxima.
            let top = cell.max_keepdim(2)?;
            let positions = Tensor::arange(0u32, len as u32, x.device())?
                .to_dtype(DType::F32)?
                .reshape((1, 1, len))?;
            let big = Tensor::full(len as f32, (n, c, len), x.device())?;
            let is_max = cell.broadcast_eq(&top)?;
            let first = is_max
                .where_cond(&positions.broadcast_as((n, c, len))?, &big)?
                .min_keepdim(2)?;
            let one_hot = positions.broadcast_eq(&first)?.to_dtype(grad.dtype())?;
            let g = grad.narrow(2, i, 1)?.narrow(3, j, 1)?.reshape((n, c, 1))?;
            let routed = one_hot.broadcast_mul(&g)?.reshape((n, c, rl, cl))?;
            let placed =
                routed
                    .pad_with_zeros(2, r0, h - r0 - rl)?
                    .pad_with_zeros(3, c0, w - c0 - cl)?;
            total = total.add(&placed)?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    #[test]
    fn bins_overlap_as_pytorch_makes_them_and_ties_go_to_the_first() {
        // 1x1x3x3, output 2x2: bins rows [0,2) and [1,3), columns likewise.
        let x = Tensor::new(
            &[[[[1f32, 5., 2.], [3., 5., 0.], [4., 1., 6.]]]],
            &Device::Cpu,
        )
        .unwrap();
        let pool = AdaptiveMaxPool2d {
            output_size: (2, 2),
        };
        let y = pool.forward(&x).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [5., 5., 5., 6.]
        );
        let g = Tensor::new(&[[[[1f32, 10.], [100., 1000.]]]], &Device::Cpu).unwrap();
        let dx = pool
            .backward(&x, &g)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // Bins (0,0), (0,1) and (1,0) all reach their first 5: (0,1) for the top bins, (1,1) for
        // the lower-left one; (1,1) takes the 6.
        assert_eq!(dx, [0., 11., 0., 0., 100., 0., 0., 0., 1000.]);
    }
}
