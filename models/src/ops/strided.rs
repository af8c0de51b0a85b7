//! Strided gathers and scatters along one axis, built from candle's narrow/reshape/pad so that they
//! run on every device. Pooling windows and strided-convolution gradients are made from these.

use candle_core::{Result, Tensor};

/// `x[.., start + step * i, ..]` for `i` in `0..count` along `dim`.
///
/// Positions past the end of `x` are never read; `x` is padded with zeros to make the reshape legal.
pub fn take_strided(
    x: &Tensor,
    dim: usize,
    start: usize,
    count: usize,
    step: usize,
) -> Result<Tensor> {
    if step == 1 {
        return x.narrow(dim, start, count);
    }
    let needed = start + step * count;
    let len = x.dim(dim)?;
    let x = if len < needed {
        x.pad_with_zeros(dim, 0, needed - len)?
    } else {
        x.clone()
    };
    let window = x.narrow(dim, start, step * count)?;
    let mut split: Vec<usize> = window.dims().to_vec();
    split[dim] = count;
    split.insert(dim + 1, step);
    window
        .reshape(split)?
        .narrow(dim + 1, 0, 1)?
        .squeeze(dim + 1)
}

/// The adjoint of [`take_strided`]: a tensor of length `len` along `dim` holding `y[i]` at
/// `start + step * i` and zeros elsewhere.
pub fn place_strided(
    y: &Tensor,
    dim: usize,
    start: usize,
    step: usize,
    len: usize,
) -> Result<Tensor> {
    let count = y.dim(dim)?;
    let spread = if step == 1 {
        y.clone()
    } else {
        let mut merged: Vec<usize> = y.dims().to_vec();
        merged[dim] = count * step;
        y.unsqueeze(dim + 1)?
            .pad_with_zeros(dim + 1, 0, step - 1)?
            .reshape(merged)?
    };
    let placed_len = start + spread.dim(dim)?;
    let spread = spread.pad_with_zeros(dim, start, 0)?;
    if placed_len >= len {
        spread.narrow(dim, 0, len)
    } else {
        spread.pad_with_zeros(dim, 0, len - placed_len)
    }
}

/// Pads `x` along `dim` with `before` and `after` copies of `value`.
pub fn pad_with_value(
    x: &Tensor,
    dim: usize,
    before: usize,
    after: usize,
    value: f64,
) -> Result<Tensor> {
    if value == 0.0 {
        return x.pad_with_zeros(dim, before, after);
    }
    let mut parts = Vec::with_capacity(3);
    let mut shape: Vec<usize> = x.dims().to_vec();
    if before > 0 {
        shape[dim] = before;
        parts.push(Tensor::full(value as f32, shape.clone(), x.device())?.to_dtype(x.dtype())?);
    }
    parts.push(x.clone());
    if after > 0 {
        shape[dim] = after;
        parts.push(Tensor::full(value as f32, shape, x.device())?.to_dtype(x.dtype())?);
    }
    Tensor::cat(&parts, dim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn take_and_place_are_adjoint() {
        let x = Tensor::arange(0f32, 10., &Device::Cpu)
            .unwrap()
            .reshape((1, 10))
            .unwrap();
        let t = take_strided(&x, 1, 1, 4, 3).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![1., 4., 7., 0.]]);
        let t = take_strided(&x, 1, 1, 3, 3).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), vec![vec![1., 4., 7.]]);
        let p = place_strided(&t, 1, 1, 3, 10).unwrap();
        assert_eq!(
            p.to_vec2::<f32>().unwrap(),
            vec![vec![0., 1., 0., 0., 4., 0., 0., 7., 0., 0.]]
        );
        let p = place_strided(&t, 1, 1, 3, 8).unwrap();
        assert_eq!(p.dims(), &[1, 8]);
    }
}
