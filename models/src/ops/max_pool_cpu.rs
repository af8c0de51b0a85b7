//! The CPU fast path of max pooling: one direct loop per channel plane, in parallel over planes,
//! for the forward pass and for the backward pass (which finds each window's first maximum in
//! row-major order again, as PyTorch and the candle path pick it, and adds the signal there).
//!
//! The device-generic path in `max_pool.rs` makes about ten whole-tensor candle ops per window
//! tap (strided views, comparisons, casts, placements), each allocating and walking the tensor;
//! a resnet stem's pooled plane is small enough to stay in cache when walked directly. Runs only
//! for f32 tensors on the CPU; the tests below check it against the candle path.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::cpu_slice::{is_cpu_f32, with_f32};
use super::pool::PoolWindow;

/// Whether the fast path applies to `x`.
pub fn applies(x: &Tensor) -> bool {
    is_cpu_f32(x)
}

/// The geometry of one plane's windows.
#[derive(Clone, Copy)]
struct Plan {
    kernel: (usize, usize),
    stride: (usize, usize),
    /// Padding above and on the left.
    pad: (usize, usize),
    input: (usize, usize),
    output: (usize, usize),
}

impl Plan {
    fn new(window: &PoolWindow, h: usize, w: usize) -> Self {
        let r = window.resolve(h, w);
        Plan {
            kernel: window.kernel,
            stride: window.stride,
            pad: (window.padding.0, window.padding.2),
            input: (h, w),
            output: r.out,
        }
    }

    /// The input index of window tap (`i`, `j`) of output (`oy`, `ox`), or `None` in padding.
    fn tap(&self, oy: usize, ox: usize, i: usize, j: usize) -> Option<usize> {
        let y = (oy * self.stride.0 + i).checked_sub(self.pad.0)?;
        let x = (ox * self.stride.1 + j).checked_sub(self.pad.1)?;
        (y < self.input.0 && x < self.input.1).then_some(y * self.input.1 + x)
    }
}

/// [`super::MaxPool2d::forward`] on the CPU.
pub fn forward(window: &PoolWindow, x: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let plan = Plan::new(window, h, w);
    let (oh, ow) = plan.output;
    let mut y = vec![f32::NEG_INFINITY; n * c * oh * ow];
    if oh * ow > 0 && h * w > 0 {
        with_f32(x, |xs| {
            y.par_chunks_mut(oh * ow)
                .zip(xs.par_chunks(h * w))
                .for_each_init(
                    || vec![f32::NEG_INFINITY; w],
                    |rows, (yp, xp)| pool_plane(&plan, xp, yp, rows),
                );
            Ok(())
        })?;
    }
    Tensor::from_vec(y, (n, c, oh, ow), x.device())
}

/// The taps [first, end) of the window starting at `start` (negative: in the padding) of
/// `extent` taps, inside an axis of `len` inputs.
fn inside(start: isize, extent: usize, len: usize) -> (usize, usize) {
    let first = start.max(0) as usize;
    let end = (start + extent as isize).clamp(0, len as isize) as usize;
    (first.min(end), end)
}

/// One plane's maxima: per output row, the elementwise maximum of its window's input rows
/// (whole rows, which vectorize), then each output's maximum across its window's columns of
/// that. The maximum of a window in either order: `f32::max` is associative and commutative
/// (a NaN counts only when every tap is one), up to the sign of a zero when +0 and −0 tie.
fn pool_plane(plan: &Plan, xp: &[f32], yp: &mut [f32], rows: &mut [f32]) {
    let (h, w) = plan.input;
    let (oh, ow) = plan.output;
    let (kh, kw) = plan.kernel;
    let (sy, sx) = plan.stride;
    let (py, px) = plan.pad;
    for oy in 0..oh {
        let (top, bottom) = inside((oy * sy) as isize - py as isize, kh, h);
        rows.fill(f32::NEG_INFINITY);
        for y in top..bottom {
            for (m, &v) in rows.iter_mut().zip(&xp[y * w..(y + 1) * w]) {
                *m = m.max(v);
            }
        }
        for (ox, out) in yp[oy * ow..(oy + 1) * ow].iter_mut().enumerate() {
            let (left, right) = inside((ox * sx) as isize - px as isize, kw, w);
            *out = rows[left..right]
                .iter()
                .fold(f32::NEG_INFINITY, |best, &v| best.max(v));
        }
    }
}

/// [`super::MaxPool2d::backward`] on the CPU: `grad` [N, C, oh, ow] added at each window's first
/// tap (row-major, padding counting as −∞) equal to the output `y`.
pub fn backward(window: &PoolWindow, x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let plan = Plan::new(window, h, w);
    let (oh, ow) = plan.output;
    if y.dims4()? != (n, c, oh, ow) || grad.dims4()? != (n, c, oh, ow) {
        candle_core::bail!(
            "max pooling backward: output {:?} and signal {:?} for a pooled {n}x{c}x{oh}x{ow}",
            y.dims(),
            grad.dims()
        );
    }
    let mut gx = vec![0f32; n * c * h * w];
    if oh * ow > 0 && h * w > 0 {
        with_f32(x, |xs| {
            with_f32(y, |ys| {
                with_f32(grad, |gs| {
                    gx.par_chunks_mut(h * w)
                        .zip(xs.par_chunks(h * w))
                        .zip(ys.par_chunks(oh * ow).zip(gs.par_chunks(oh * ow)))
                        .for_each(|((gxp, xp), (yp, gp))| {
                            backward_plane(&plan, xp, yp, gp, gxp);
                        });
                    Ok(())
                })
            })
        })?;
    }
    Tensor::from_vec(gx, (n, c, h, w), x.device())
}

/// One plane of [`backward`]. Each window's first maximum is found by walking its taps from
/// the last to the first and keeping the latest that equals the output, a select rather than a
/// branch (where the maximum sits is as good as random, and a mispredicted exit per window cost
/// more than the walk); windows inside the plane index it directly, those over its edge go
/// through [`Plan::tap`] (padding: −∞, no index).
fn backward_plane(plan: &Plan, xp: &[f32], yp: &[f32], gp: &[f32], gxp: &mut [f32]) {
    let (h, w) = plan.input;
    let (oh, ow) = plan.output;
    let (kh, kw) = plan.kernel;
    let (sy, sx) = plan.stride;
    let (py, px) = plan.pad;
    for oy in 0..oh {
        let rows_inside = oy * sy >= py && oy * sy - py + kh <= h;
        for ox in 0..ow {
            let at = oy * ow + ox;
            let target = yp[at];
            let mut first = usize::MAX;
            if rows_inside && ox * sx >= px && ox * sx - px + kw <= w {
                let corner = (oy * sy - py) * w + ox * sx - px;
                for i in (0..kh).rev() {
                    let row = &xp[corner + i * w..corner + i * w + kw];
                    for (j, &v) in row.iter().enumerate().rev() {
                        first = if v == target {
                            corner + i * w + j
                        } else {
                            first
                        };
                    }
                }
            } else {
                for i in (0..kh).rev() {
                    for j in (0..kw).rev() {
                        let tap = plan.tap(oy, ox, i, j);
                        let v = tap.map_or(f32::NEG_INFINITY, |k| xp[k]);
                        first = if v == target {
                            tap.unwrap_or(usize::MAX)
                        } else {
                            first
                        };
                    }
                }
            }
            if let Some(v) = gxp.get_mut(first) {
                *v += gp[at];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::test_compare::max_abs;
    use candle_core::{Device, Tensor};

    use crate::ops::{MaxPool2d, PoolWindow};

    #[test]
    fn the_cpu_loops_equal_the_candle_path() {
        let dev = Device::Cpu;
        let windows = [
            PoolWindow::square(3, 2, 1, false),
            PoolWindow::square(2, 2, 0, false),
            PoolWindow::square(3, 2, 0, true),
            PoolWindow::square(3, 1, 1, false),
            PoolWindow {
                kernel: (2, 3),
                stride: (1, 2),
                padding: (1, 0, 0, 1),
                ceil_mode: true,
                dilation: (1, 1),
            },
        ];
        for window in windows {
            for (n, c, h, w) in [(1, 3, 9, 11), (2, 4, 12, 12)] {
                let x = Tensor::randn(0f32, 1f32, (n, c, h, w), &dev).unwrap();
                // Ties: quantized values make windows share their maximum.
                let x = x.affine(2.0, 0.0).unwrap().round().unwrap();
                let pool = MaxPool2d { window };
                let fast = super::forward(&window, &x).unwrap();
                let slow = pool.forward_by_candle(&x).unwrap();
                assert_eq!(max_abs(&fast, &slow), 0.0, "forward {window:?}");
                let g = Tensor::randn(0f32, 1f32, fast.dims(), &dev).unwrap();
                let fast_g = super::backward(&window, &x, &fast, &g).unwrap();
                let slow_g = pool.backward_by_candle(&x, &slow, &g).unwrap();
                // A position's gradient sums up to kh·kw window gradients, in another order
                // than candle's: allow f32 rounding of such a sum (seen: up to 2e-6 on sums ~5).
                let diff = max_abs(&fast_g, &slow_g);
                let largest = slow_g.abs().unwrap().max_all().unwrap();
                let largest = largest.to_scalar::<f32>().unwrap().max(1.0);
                let area = (window.kernel.0 * window.kernel.1) as f32;
                let tolerance = f32::EPSILON * area * largest;
                assert!(
                    diff <= tolerance,
                    "backward {window:?}: differs by {diff} (tolerance {tolerance})"
                );
            }
        }
    }
}
