//! The input gradient of a convolution as a matrix product and a column-to-image fold.
//!
//! Correlating the zero-dilated output gradient with the flipped kernel (the textbook transposed
//! convolution) spends s² of its work on zeros at stride s, and candle's im2col for it grows with
//! the kernel area times the *output* gradient's channels: for a 7×7 stride-2 stem with 3 input
//! channels that is a 52 441 × 3 136 column matrix for a 3-column result. Here, as in PyTorch's
//! CPU and CUDA kernels, the gradient is first multiplied by the transposed weight
//! (`cols = Wᵀ · g`, [C·kh·kw, oh·ow] per image), then each kernel tap's rows are added into the
//! input at their strided positions (col2im). candle has no col2im, so the fold is written with
//! its ops (strided placement by pad and reshape, then adds), which keeps it on every device.

use candle_core::{Result, Tensor};

use super::strided::place_strided;

/// The gradient with respect to the padded input [N, C, hp, wp] of an ungrouped convolution with
/// kernel `weight_t` ([C·kh·kw, O], the transposed, flattened weight), given the output
/// gradient `grad` [N, O, oh, ow].
pub fn conv_input_gradient_by_gemm(
    grad: &Tensor,
    weight_t: &Tensor,
    kernel: (usize, usize),
    stride: usize,
    dilation: usize,
    padded: (usize, usize),
) -> Result<Tensor> {
    let (n, o, oh, ow) = grad.dims4()?;
    let (kh, kw) = kernel;
    let (hp, wp) = padded;
    let rows = weight_t.dim(0)?;
    let c = rows / (kh * kw);
    let cols = weight_t
        .broadcast_left(n)?
        .matmul(&grad.reshape((n, o, oh * ow))?)?
        .reshape((n, c, kh, kw, oh, ow))?;
    let mut total: Option<Tensor> = None;
    for i in 0..kh {
        // Taps of one kernel row land on the same input rows: fold along the width first, then
        // place the row once.
        let mut row: Option<Tensor> = None;
        for j in 0..kw {
            let tap = cols
                .narrow(2, i, 1)?
                .narrow(3, j, 1)?
                .reshape((n, c, oh, ow))?;
            let placed = place_strided(&tap, 3, j * dilation, stride, wp)?;
            row = Some(match row {
                Some(acc) => acc.add(&placed)?,
                None => placed,
            });
        }
        let Some(row) = row else { continue };
        let placed = place_strided(&row, 2, i * dilation, stride, hp)?;
        total = Some(match total {
            Some(acc) => acc.add(&placed)?,
            None => placed,
        });
    }
    match total {
        Some(t) => Ok(t),
        None => Tensor::zeros((n, c, hp, wp), grad.dtype(), grad.device()),
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use crate::ops::{Conv2d, Padding};

    /// ⟨conv(x), g⟩ = ⟨x, ∂conv/∂x · g⟩ for a bias-free convolution: the input gradient is the
    /// adjoint of the forward map.
    fn check_adjoint(c: usize, o: usize, k: usize, stride: usize, dilation: usize, pad: usize) {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1f32, (o, c, k, k), &dev).unwrap();
        let conv = Conv2d::new(w, None, stride, Padding::symmetric(pad), dilation, 1);
        let x = Tensor::randn(0f32, 1f32, (2, c, 13, 11), &dev).unwrap();
        let y = conv.forward(&x).unwrap();
        let g = Tensor::randn(0f32, 1f32, y.dims(), &dev).unwrap();
        let gx = conv.input_gradient(&x, &g).unwrap();
        assert_eq!(gx.dims(), x.dims());
        let lhs = y
            .mul(&g)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let rhs = x
            .mul(&gx)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let scale = lhs.abs().max(rhs.abs()).max(1.0);
        assert!(
            (lhs - rhs).abs() / scale < 1e-4,
            "c={c} o={o} k={k} s={stride} d={dilation} p={pad}: {lhs} vs {rhs}"
        );
    }

    #[test]
    fn strided_input_gradient_is_the_adjoint_of_the_convolution() {
        check_adjoint(3, 8, 7, 2, 1, 3);
        check_adjoint(4, 5, 3, 2, 1, 1);
        check_adjoint(4, 5, 1, 2, 1, 0);
        check_adjoint(2, 3, 3, 3, 2, 2);
        check_adjoint(5, 4, 4, 2, 1, 0);
    }
}
