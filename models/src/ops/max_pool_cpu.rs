//! The CPU fast path of max pooling: one direct loop per channel plane, in parallel over planes,
//! for the forward pass and for the backward pass (which finds each window's first maximum in
//! row-major order again, as PyTorch and the candle path pick it, and adds the signal there).
//!
//! The device-generic path in `max_pool.rs` makes about ten whole-tensor candle ops per window
//! tap (strided views, comparisons, casts, placements), each allocating and walking the tensor;
//! a resnet stem's pooled plane is small enough to stay in cache when walked directly. Runs only
//! for f32 tensors on the CPU; the tests below check it against the candle path.
//!
//! Both passes take a row of windows at a time: a window column (forward) or tap (backward) is
//! applied to every window of the row whose taps lie inside it, as one vectorized loop over the
//! input row split by column phase (a stride's taps for consecutive windows are then adjacent);
//! windows over the plane's edge go one by one. The window-by-window walk stays as the
//! reference the tests hold the rows to, bit for bit.

use candle_core::{Result, Tensor};
use multiversion::multiversion;
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

    /// The windows [lo, hi) of a row of outputs whose columns all lie inside the plane.
    fn inside_columns(&self) -> (usize, usize) {
        let (w, ow) = (self.input.1, self.output.1);
        let (kw, sx, px) = (self.kernel.1, self.stride.1, self.pad.1);
        let lo = px.div_ceil(sx).min(ow);
        let hi = if w + px >= kw {
            ((w + px - kw) / sx + 1).min(ow)
        } else {
            0
        };
        (lo, hi.max(lo))
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
                    || RowScratch::new(&plan),
                    |scratch, (yp, xp)| pool_plane(&plan, xp, yp, scratch),
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
/// that: for the windows inside the row, a column of the window at a time over the whole row
/// (split by column phase, see [`backward_plane`]), else window by window; either way each
/// output folds its columns from the first, from −∞. The maximum of a window in either order:
/// `f32::max` is associative and commutative (a NaN counts only when every tap is one), up to
/// the sign of a zero when +0 and −0 tie.
fn pool_plane(plan: &Plan, xp: &[f32], yp: &mut [f32], scratch: &mut RowScratch) {
    let (h, w) = plan.input;
    let (oh, ow) = plan.output;
    let (kh, kw) = plan.kernel;
    let (sy, sx) = plan.stride;
    let (py, px) = plan.pad;
    let (lo, hi) = plan.inside_columns();
    let RowScratch {
        rows,
        phases,
        phase_len,
        ..
    } = scratch;
    let phase_len = *phase_len;
    for oy in 0..oh {
        let (top, bottom) = inside((oy * sy) as isize - py as isize, kh, h);
        rows.fill(f32::NEG_INFINITY);
        for y in top..bottom {
            for (m, &v) in rows.iter_mut().zip(&xp[y * w..(y + 1) * w]) {
                *m = m.max(v);
            }
        }
        let outputs = &mut yp[oy * ow..(oy + 1) * ow];
        if hi > lo {
            split_phases(rows, sx, phases, phase_len);
            outputs[lo..hi].fill(f32::NEG_INFINITY);
            for j in 0..kw {
                let column = (lo * sx + j) - px;
                let taps = &phases[(column % sx) * phase_len + column / sx..][..hi - lo];
                max_into(&mut outputs[lo..hi], taps);
            }
        }
        for ox in (0..lo).chain(hi..ow) {
            let (left, right) = inside((ox * sx) as isize - px as isize, kw, w);
            outputs[ox] = rows[left..right]
                .iter()
                .fold(f32::NEG_INFINITY, |best, &v| best.max(v));
        }
    }
}

/// `out[k] = max(out[k], taps[k])`.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn max_into(out: &mut [f32], taps: &[f32]) {
    for (o, &v) in out.iter_mut().zip(taps) {
        *o = o.max(v);
    }
}

/// Splits `row` by column phase: phase `p` of `phases` (`phase_len` values each) gets columns
/// `p, p + stride, p + 2·stride, …` of `row`.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn split_phases(row: &[f32], stride: usize, phases: &mut [f32], phase_len: usize) {
    if stride == 2 {
        // Pairs, which vectorize as shuffles (a step of two does not).
        let (even, odd) = phases.split_at_mut(phase_len);
        for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(row.chunks_exact(2)) {
            *e = pair[0];
            *o = pair[1];
        }
        if let (Some(&last), Some(e)) = (
            row.last().filter(|_| row.len() % 2 == 1),
            even.get_mut(row.len() / 2),
        ) {
            *e = last;
        }
        return;
    }
    for (phase, split) in phases.chunks_exact_mut(phase_len).enumerate() {
        for (to, &v) in split.iter_mut().zip(row.iter().skip(phase).step_by(stride)) {
            *to = v;
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
        // Indices of a plane as u32 (16 to a vector): planes too large for that take the
        // window-by-window walk.
        let by_rows = u32::try_from(h * w).is_ok();
        with_f32(x, |xs| {
            with_f32(y, |ys| {
                with_f32(grad, |gs| {
                    gx.par_chunks_mut(h * w)
                        .zip(xs.par_chunks(h * w))
                        .zip(ys.par_chunks(oh * ow).zip(gs.par_chunks(oh * ow)))
                        .for_each_init(
                            || RowScratch::new(&plan),
                            |scratch, ((gxp, xp), (yp, gp))| {
                                if by_rows {
                                    backward_plane(&plan, xp, yp, gp, gxp, scratch);
                                } else {
                                    backward_plane_by_window(&plan, xp, yp, gp, gxp);
                                }
                            },
                        );
                    Ok(())
                })
            })
        })?;
    }
    Tensor::from_vec(gx, (n, c, h, w), x.device())
}

/// The input index of the first maximum (row-major) of the window of output (`oy`, `ox`) equal
/// to `target`, or `None`. Walks the taps from the last to the first keeping the latest that
/// equals it, a select rather than a branch (where the maximum sits is as good as random, and a
/// mispredicted exit per window cost more than the walk); windows inside the plane index it
/// directly, those over its edge go through [`Plan::tap`] (padding: −∞, no index).
fn first_max(plan: &Plan, xp: &[f32], (oy, ox): (usize, usize), target: f32) -> Option<usize> {
    let (h, w) = plan.input;
    let (kh, kw) = plan.kernel;
    let (sy, sx) = plan.stride;
    let (py, px) = plan.pad;
    let mut first = usize::MAX;
    let rows_inside = oy * sy >= py && oy * sy - py + kh <= h;
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
    (first != usize::MAX).then_some(first)
}

/// One plane of [`backward`], window by window: the reference [`backward_plane`] is checked
/// against, and the path of planes too large for its u32 indices.
fn backward_plane_by_window(plan: &Plan, xp: &[f32], yp: &[f32], gp: &[f32], gxp: &mut [f32]) {
    let (oh, ow) = plan.output;
    for oy in 0..oh {
        for ox in 0..ow {
            let at = oy * ow + ox;
            if let Some(v) = first_max(plan, xp, (oy, ox), yp[at]).and_then(|k| gxp.get_mut(k)) {
                *v += gp[at];
            }
        }
    }
}

/// The buffers [`pool_plane`] and [`backward_plane`] work a row of windows in, kept per thread.
struct RowScratch {
    /// The elementwise maximum of a window's input rows.
    rows: Vec<f32>,
    /// Each output of the row's first maximum (an input index; `u32::MAX`: none yet).
    first: Vec<u32>,
    /// One input row split by column phase: phase `p` holds columns `p, p + sx, p + 2·sx, …`,
    /// `phase_len` each.
    phases: Vec<f32>,
    phase_len: usize,
}

impl RowScratch {
    fn new(plan: &Plan) -> Self {
        // Strides are at least 1 (checked where windows are made; `PoolWindow::resolve`
        // divides by them before this).
        let phase_len = plan.input.1.div_ceil(plan.stride.1);
        RowScratch {
            rows: vec![f32::NEG_INFINITY; plan.input.1],
            first: vec![u32::MAX; plan.output.1],
            phases: vec![0.0; phase_len * plan.stride.1],
            phase_len,
        }
    }
}

/// One plane of [`backward`], a row of windows at a time: for the windows whose taps all lie
/// inside the plane, each tap (from the last to the first) is compared with the whole row's
/// outputs at once, keeping the latest equal tap as [`first_max`] does (the tap's inputs for
/// consecutive windows are `sx` apart, so the input row is first split by column phase, and
/// they are contiguous there); the row's other windows go through [`first_max`]. The signal is
/// then added window by window in the reference's order, so the result has its bits.
fn backward_plane(
    plan: &Plan,
    xp: &[f32],
    yp: &[f32],
    gp: &[f32],
    gxp: &mut [f32],
    scratch: &mut RowScratch,
) {
    let (h, w) = plan.input;
    let (oh, ow) = plan.output;
    let (kh, kw) = plan.kernel;
    let (sy, sx) = plan.stride;
    let (py, px) = plan.pad;
    let (lo, hi) = plan.inside_columns();
    let RowScratch {
        first,
        phases,
        phase_len,
        ..
    } = scratch;
    let phase_len = *phase_len;
    for oy in 0..oh {
        let outputs = &yp[oy * ow..(oy + 1) * ow];
        let rows_inside = oy * sy >= py && oy * sy - py + kh <= h;
        if rows_inside && hi > lo {
            first[lo..hi].fill(u32::MAX);
            for i in (0..kh).rev() {
                let r = oy * sy - py + i;
                let row = &xp[r * w..(r + 1) * w];
                split_phases(row, sx, phases, phase_len);
                for j in (0..kw).rev() {
                    // Window ox's tap j is column ox·sx − px + j = (ox + shift)·sx + phase.
                    let column = (lo * sx + j) - px;
                    let (shift_start, phase) = (column / sx, column % sx);
                    let taps = &phases[phase * phase_len + shift_start..][..hi - lo];
                    let start = (r * w + column) as u32;
                    select_equal(&mut first[lo..hi], &outputs[lo..hi], taps, start, sx as u32);
                }
            }
        }
        for (ox, &target) in outputs.iter().enumerate() {
            let found = if rows_inside && (lo..hi).contains(&ox) {
                (first[ox] != u32::MAX).then_some(first[ox] as usize)
            } else {
                first_max(plan, xp, (oy, ox), target)
            };
            if let Some(v) = found.and_then(|k| gxp.get_mut(k)) {
                *v += gp[oy * ow + ox];
            }
        }
    }
}

/// `first[k] = start + k·step` where `taps[k] == outputs[k]`, else unchanged: one tap of a row
/// of windows.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn select_equal(first: &mut [u32], outputs: &[f32], taps: &[f32], start: u32, step: u32) {
    for (k, (f, (&y, &v))) in first.iter_mut().zip(outputs.iter().zip(taps)).enumerate() {
        let index = start.wrapping_add((k as u32).wrapping_mul(step));
        *f = if v == y { index } else { *f };
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::test_compare::{bits, max_abs};
    use candle_core::{Device, Tensor};

    use crate::ops::{MaxPool2d, PoolWindow};

    /// The windows the tests pool with: resnet's stem pool, ceil mode, strides 1 to 4, padding
    /// on some sides only.
    fn windows() -> Vec<PoolWindow> {
        vec![
            PoolWindow::square(3, 2, 1, false),
            PoolWindow::square(3, 2, 1, true),
            PoolWindow::square(3, 2, 0, true),
            PoolWindow::square(2, 2, 0, false),
            PoolWindow::square(3, 1, 1, false),
            PoolWindow::square(5, 3, 2, true),
            PoolWindow::square(4, 4, 0, false),
            PoolWindow {
                kernel: (2, 3),
                stride: (1, 2),
                padding: (1, 0, 0, 1),
                ceil_mode: true,
                dilation: (1, 1),
            },
        ]
    }

    /// Normal values doubled and rounded to integers: windows share their maximum (ties).
    fn quantized(shape: (usize, usize, usize, usize)) -> Tensor {
        let x = Tensor::randn(0f32, 1f32, shape, &Device::Cpu).unwrap();
        x.affine(2.0, 0.0).unwrap().round().unwrap()
    }

    /// One plane's maxima window by window, as the CPU path computed them before it took a
    /// row of windows at a time: the maximum of the window's rows, then of its columns.
    fn pool_plane_by_window(plan: &super::Plan, xp: &[f32]) -> Vec<f32> {
        let (h, w) = plan.input;
        let (oh, ow) = plan.output;
        let mut out = Vec::with_capacity(oh * ow);
        for oy in 0..oh {
            let start = (oy * plan.stride.0) as isize - plan.pad.0 as isize;
            let (top, bottom) = super::inside(start, plan.kernel.0, h);
            let mut rows = vec![f32::NEG_INFINITY; w];
            for y in top..bottom {
                for (m, &v) in rows.iter_mut().zip(&xp[y * w..(y + 1) * w]) {
                    *m = m.max(v);
                }
            }
            for ox in 0..ow {
                let start = (ox * plan.stride.1) as isize - plan.pad.1 as isize;
                let (left, right) = super::inside(start, plan.kernel.1, w);
                out.push(
                    rows[left..right]
                        .iter()
                        .fold(f32::NEG_INFINITY, |best, &v| best.max(v)),
                );
            }
        }
        out
    }

    /// The rows of windows give the window-by-window walk's bits: ties (quantized values),
    /// NaNs and infinities, windows over the edges, strides that split rows into phases.
    #[test]
    fn a_row_of_windows_at_a_time_equals_the_window_by_window_walk() {
        let dev = Device::Cpu;
        for window in windows() {
            for (h, w) in [(9, 11), (12, 12), (3, 4), (31, 57)] {
                let mut values = quantized((2, 3, h, w));
                let mut values_vec = values.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                for (i, v) in values_vec.iter_mut().enumerate() {
                    match i % 23 {
                        5 => *v = f32::NAN,
                        11 => *v = f32::NEG_INFINITY,
                        17 => *v = f32::INFINITY,
                        _ => {}
                    }
                }
                values = Tensor::from_vec(values_vec, (2, 3, h, w), &dev).unwrap();
                let y = super::forward(&window, &values).unwrap();
                let (_, _, oh, ow) = y.dims4().unwrap();
                let plan = super::Plan::new(&window, h, w);
                let xs = values.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let ys = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let pooled: Vec<f32> = xs
                    .chunks(h * w)
                    .flat_map(|xp| pool_plane_by_window(&plan, xp))
                    .collect();
                let pooled = Tensor::from_vec(pooled, y.dims(), &dev).unwrap();
                assert_eq!(
                    bits(&y),
                    bits(&pooled),
                    "{window:?} on {h}x{w}: the maxima differ from the walk"
                );
                let g = Tensor::randn(0f32, 1f32, y.dims(), &dev).unwrap();
                let rows = super::backward(&window, &values, &y, &g).unwrap();
                let gs = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let mut walked = vec![0f32; xs.len()];
                for ((gxp, xp), (yp, gp)) in walked
                    .chunks_mut(h * w)
                    .zip(xs.chunks(h * w))
                    .zip(ys.chunks(oh * ow).zip(gs.chunks(oh * ow)))
                {
                    super::backward_plane_by_window(&plan, xp, yp, gp, gxp);
                }
                assert!(walked.iter().any(|&v| v != 0.0), "{window:?} on {h}x{w}");
                let walked = Tensor::from_vec(walked, values.dims(), &dev).unwrap();
                assert_eq!(
                    bits(&rows),
                    bits(&walked),
                    "{window:?} on {h}x{w}: the rows differ from the walk"
                );
            }
        }
    }

    #[test]
    fn the_cpu_loops_equal_the_candle_path() {
        let dev = Device::Cpu;
        for window in windows() {
            for shape in [(1, 3, 9, 11), (2, 4, 12, 12)] {
                let x = quantized(shape);
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
