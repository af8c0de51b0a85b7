//! Depthwise convolution (groups = in = out channels) as k² shifted multiply-adds.
//!
//! candle 0.11.1 runs a grouped convolution as one convolution per group, which for the
//! depthwise layers of MobileNets and EfficientNets means hundreds of tiny convolutions (and
//! kernel launches on a GPU). Summing the kernel's k² taps over strided views of the padded input
//! does the same arithmetic in k² whole-tensor operations, on any device.

use super::epilogue::Epilogue;
use candle_core::{Result, Tensor};

use super::strided::{place_strided, take_strided};

/// The output of a depthwise convolution of `padded` [N, C, Hp, Wp] (already padded) with
/// `weight` [C, 1, kh, kw], for an output of `out` = (oh, ow).
pub fn depthwise_forward(
    padded: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
    out: (usize, usize),
) -> Result<Tensor> {
    if super::depthwise_cpu::applies(padded) {
        let y = super::depthwise_cpu::forward(
            padded,
            weight,
            None,
            stride,
            dilation,
            (0, 0, 0, 0),
            Epilogue::default(),
        )?;
        let (_, _, oh, ow) = y.dims4()?;
        if (oh, ow) != out {
            candle_core::bail!(
                "depthwise output {oh}x{ow} is not the {}x{} asked for",
                out.0,
                out.1
            );
        }
        return Ok(y);
    }
    depthwise_forward_by_taps(padded, weight, stride, dilation, out)
}

/// [`depthwise_forward`] as k² whole-tensor candle ops (every device).
pub fn depthwise_forward_by_taps(
    padded: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
    out: (usize, usize),
) -> Result<Tensor> {
    let (c, _, kh, kw) = weight.dims4()?;
    let mut total: Option<Tensor> = None;
    for i in 0..kh {
        let rows = take_strided(padded, 2, i * dilation, out.0, stride)?;
        for j in 0..kw {
            let tap = take_strided(&rows, 3, j * dilation, out.1, stride)?;
            let w = weight
                .narrow(2, i, 1)?
                .narrow(3, j, 1)?
                .reshape((1, c, 1, 1))?;
            let term = tap.broadcast_mul(&w)?;
            total = Some(match total {
                Some(t) => t.add(&term)?,
                None => term,
            });
        }
    }
    match total {
        Some(t) => Ok(t),
        None => candle_core::bail!("depthwise convolution with an empty kernel"),
    }
}

/// The signal on the padded input grid [N, C, hp, wp] given the output signal `grad`: each tap's
/// product placed back where it was read.
pub fn depthwise_input_gradient(
    grad: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
    padded: (usize, usize),
) -> Result<Tensor> {
    if super::depthwise_cpu::applies(grad) {
        return super::depthwise_cpu::input_gradient(
            grad,
            weight,
            stride,
            dilation,
            (0, 0, 0, 0),
            padded,
        );
    }
    depthwise_input_gradient_by_taps(grad, weight, stride, dilation, padded)
}

/// [`depthwise_input_gradient`] as k² whole-tensor candle ops (every device).
pub fn depthwise_input_gradient_by_taps(
    grad: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
    padded: (usize, usize),
) -> Result<Tensor> {
    let (c, _, kh, kw) = weight.dims4()?;
    let mut total: Option<Tensor> = None;
    for i in 0..kh {
        let mut row_total: Option<Tensor> = None;
        for j in 0..kw {
            let w = weight
                .narrow(2, i, 1)?
                .narrow(3, j, 1)?
                .reshape((1, c, 1, 1))?;
            let placed =
                place_strided(&grad.broadcast_mul(&w)?, 3, j * dilation, stride, padded.1)?;
            row_total = Some(match row_total {
                Some(t) => t.add(&placed)?,
                None => placed,
            });
        }
        if let Some(row) = row_total {
            let placed = place_strided(&row, 2, i * dilation, stride, padded.0)?;
            total = Some(match total {
                Some(t) => t.add(&placed)?,
                None => placed,
            });
        }
    }
    match total {
        Some(t) => Ok(t),
        None => candle_core::bail!("depthwise convolution with an empty kernel"),
    }
}
