//! The CPU fast path of depthwise convolution: direct loops over each channel's plane, in
//! parallel over images × channels.
//!
//! The device-generic path (`depthwise.rs`) makes k² whole-tensor candle ops, each of which
//! allocates and walks the full tensor (and a strided copy for every tap); on a CPU that is
//! memory traffic for a few multiply-adds per element. A channel plane of an EfficientNet is at
//! most a few hundred KB, so a direct loop per plane stays in cache. No crate offers a depthwise
//! convolution over plain slices, hence this file. It runs only for f32 tensors on the CPU;
//! every other device keeps the candle path.

use candle_core::{DType, Device, Result, Tensor};
use rayon::prelude::*;

/// Whether the fast path applies to `x`.
pub fn applies(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32
}

/// Geometry shared by the forward and backward loops.
struct Plan {
    kh: usize,
    kw: usize,
    stride: usize,
    dilation: usize,
    /// Padded input plane (rows, columns).
    input: (usize, usize),
    /// Output plane (rows, columns).
    output: (usize, usize),
}

fn weights(weight: &Tensor) -> Result<(Vec<f32>, usize, usize, usize)> {
    let (c, _, kh, kw) = weight.dims4()?;
    let w = weight
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok((w, c, kh, kw))
}

/// [`super::depthwise::depthwise_forward`] on the CPU.
pub fn forward(
    padded: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
    out: (usize, usize),
) -> Result<Tensor> {
    let (n, c, hp, wp) = padded.dims4()?;
    let (w, wc, kh, kw) = weights(weight)?;
    if wc != c {
        candle_core::bail!("depthwise weight has {wc} channels for an input of {c}");
    }
    let plan = Plan {
        kh,
        kw,
        stride,
        dilation,
        input: (hp, wp),
        output: out,
    };
    let (oh, ow) = out;
    let reach = |o: usize, k: usize| (o.max(1) - 1) * stride + (k.max(1) - 1) * dilation;
    if reach(oh, kh) >= hp || reach(ow, kw) >= wp {
        candle_core::bail!("depthwise output {oh}x{ow} does not fit a padded input of {hp}x{wp}");
    }
    let x = padded.flatten_all()?.to_vec1::<f32>()?;
    let mut y = vec![0f32; n * c * oh * ow];
    y.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(hp * wp))
        .enumerate()
        .for_each(|(plane, (y, x))| {
            let ch = plane % c;
            forward_plane(&plan, &w[ch * kh * kw..(ch + 1) * kh * kw], x, y);
        });
    Tensor::from_vec(y, (n, c, oh, ow), padded.device())
}

fn forward_plane(plan: &Plan, w: &[f32], x: &[f32], y: &mut [f32]) {
    let (oh, ow) = plan.output;
    let wp = plan.input.1;
    let s = plan.stride;
    // Taps in the same order as the candle path (row by row), so both sum alike.
    for i in 0..plan.kh {
        for j in 0..plan.kw {
            let tap = w[i * plan.kw + j];
            for oy in 0..oh {
                let row = (oy * s + i * plan.dilation) * wp + j * plan.dilation;
                let y_row = &mut y[oy * ow..(oy + 1) * ow];
                for (ox, v) in y_row.iter_mut().enumerate() {
                    *v += tap * x[row + ox * s];
                }
            }
        }
    }
}

/// [`super::depthwise::depthwise_input_gradient`] on the CPU.
pub fn input_gradient(
    grad: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
    padded: (usize, usize),
) -> Result<Tensor> {
    let (n, c, oh, ow) = grad.dims4()?;
    let (w, wc, kh, kw) = weights(weight)?;
    if wc != c {
        candle_core::bail!("depthwise weight has {wc} channels for a signal of {c}");
    }
    let plan = Plan {
        kh,
        kw,
        stride,
        dilation,
        input: padded,
        output: (oh, ow),
    };
    let g = grad.flatten_all()?.to_vec1::<f32>()?;
    let (hp, wp) = padded;
    let mut gx = vec![0f32; n * c * hp * wp];
    gx.par_chunks_mut(hp * wp)
        .zip(g.par_chunks(oh * ow))
        .enumerate()
        .for_each(|(plane, (gx, g))| {
            let ch = plane % c;
            backward_plane(&plan, &w[ch * kh * kw..(ch + 1) * kh * kw], g, gx);
        });
    Tensor::from_vec(gx, (n, c, hp, wp), grad.device())
}

fn backward_plane(plan: &Plan, w: &[f32], g: &[f32], gx: &mut [f32]) {
    let (oh, ow) = plan.output;
    let (hp, wp) = plan.input;
    let s = plan.stride;
    for i in 0..plan.kh {
        for j in 0..plan.kw {
            let tap = w[i * plan.kw + j];
            for oy in 0..oh {
                let y = oy * s + i * plan.dilation;
                if y >= hp {
                    break;
                }
                let row = y * wp + j * plan.dilation;
                for ox in 0..ow {
                    let x = j * plan.dilation + ox * s;
                    if x >= wp {
                        break;
                    }
                    gx[row + ox * s] += tap * g[oy * ow + ox];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::test_compare::max_rel;
    use candle_core::{Device, Tensor};

    use super::super::depthwise::{
        depthwise_forward_by_taps as depthwise_forward,
        depthwise_input_gradient_by_taps as depthwise_input_gradient,
    };

    #[test]
    fn the_cpu_loops_equal_the_candle_path() {
        let dev = Device::Cpu;
        for &(k, stride, dilation) in &[(3usize, 1usize, 1usize), (5, 2, 1), (3, 2, 2), (1, 1, 1)] {
            let (c, hp, wp) = (6, 17, 15);
            let ek = dilation * (k - 1) + 1;
            let out = ((hp - ek) / stride + 1, (wp - ek) / stride + 1);
            let x = Tensor::randn(0f32, 1f32, (2, c, hp, wp), &dev).unwrap();
            let w = Tensor::randn(0f32, 1f32, (c, 1, k, k), &dev).unwrap();
            let fast = super::forward(&x, &w, stride, dilation, out).unwrap();
            let slow = depthwise_forward(&x, &w, stride, dilation, out).unwrap();
            assert!(
                max_rel(&fast, &slow) < 1e-6,
                "forward k={k} s={stride} d={dilation}"
            );
            let g = Tensor::randn(0f32, 1f32, fast.dims(), &dev).unwrap();
            let fast = super::input_gradient(&g, &w, stride, dilation, (hp, wp)).unwrap();
            let slow = depthwise_input_gradient(&g, &w, stride, dilation, (hp, wp)).unwrap();
            assert!(
                max_rel(&fast, &slow) < 1e-5,
                "backward k={k} s={stride} d={dilation}"
            );
        }
    }
}
