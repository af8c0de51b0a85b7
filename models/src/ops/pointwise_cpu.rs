//! CPU fast paths of the per-channel and pointwise maps that follow every convolution:
//! batch-norm's affine map (forward and backward), ReLU/ReLU6/Hardtanh and their gradient,
//! DeepLift's rescale rule, each one parallel pass over the planes instead of candle's chain of
//! whole-tensor ops (a broadcast multiply then a broadcast add; a maximum then a minimum; a
//! comparison, a dtype cast and a multiply; eight ops for the rescale rule). They give the same
//! values as the candle ops (the same f32 operations in the same order, never fused into an
//! FMA); the tests below check that. Each loop is compiled for AVX-512 and AVX2 beside the
//! baseline, picked at run time (the same bits on each).

use candle_core::{Result, Tensor};
use multiversion::multiversion;
use rayon::prelude::*;

use super::cpu_slice::{is_cpu_f32, with_f32};
use super::unwritten::written_in_parts;
use super::Activation;

/// Planes smaller than this are grouped so that each parallel task has some work.
const MIN_TASK: usize = 1 << 14;

/// `x · scale[c] + shift[c]` (or `x · scale[c]` without a shift) for `x` [N, C, H, W] on the
/// CPU, or `None` when the fast path does not apply (another device or dtype, another rank).
pub fn channel_affine(x: &Tensor, scale: &[f32], shift: Option<&[f32]>) -> Result<Option<Tensor>> {
    if !is_cpu_f32(x) || x.rank() != 4 {
        return Ok(None);
    }
    let (n, c, h, w) = x.dims4()?;
    if scale.len() != c || shift.is_some_and(|s| s.len() != c) {
        candle_core::bail!(
            "per-channel map of {} values applied to {c} channels",
            scale.len()
        );
    }
    let plane = h * w;
    if plane == 0 {
        return Ok(Some(x.zeros_like()?));
    }
    let y = with_f32(x, |xs| {
        let per_task = MIN_TASK.div_ceil(plane).max(1);
        let chunk = plane * per_task;
        Ok(written_in_parts(
            xs.len(),
            chunk,
            || (),
            |_, task, ys| {
                let xs = &xs[task * chunk..task * chunk + ys.len()];
                for (k, (yp, xp)) in ys.chunks_mut(plane).zip(xs.chunks(plane)).enumerate() {
                    let ch = (task * per_task + k) % c;
                    affine_plane(yp, xp, scale[ch], shift.map(|t| t[ch]));
                }
            },
        ))
    })?;
    Ok(Some(Tensor::from_vec(y, (n, c, h, w), x.device())?))
}

/// `grad` where `lo < x` (and `x < hi` when given), zero elsewhere: the gradient of ReLU, ReLU6
/// and Hardtanh with PyTorch's choice of 0 at the kinks, on the CPU, or `None` when the fast path
/// does not apply.
pub fn band_gradient(
    x: &Tensor,
    grad: &Tensor,
    lo: f32,
    hi: Option<f32>,
) -> Result<Option<Tensor>> {
    if !is_cpu_f32(x) || !is_cpu_f32(grad) || x.shape() != grad.shape() {
        return Ok(None);
    }
    let out = with_f32(x, |xs| {
        with_f32(grad, |gs| {
            Ok(written_in_parts(
                xs.len(),
                MIN_TASK,
                || (),
                |_, k, o| {
                    let at = k * MIN_TASK..k * MIN_TASK + o.len();
                    band_chunk(o, &xs[at.clone()], &gs[at], lo, hi)
                },
            ))
        })
    })?;
    Ok(Some(Tensor::from_vec(out, x.shape(), x.device())?))
}

/// [`band_gradient`] followed by the backward map of the BatchNorm before the activation, in
/// one pass: `(grad where lo < y (< hi), else 0) · scale[c]` for `y` and `grad` [N, C, H, W]
/// on the CPU, the operations of the two passes in their order (the same bits), or `None`
/// when the fast path does not apply.
pub fn band_gradient_scaled(
    y: &Tensor,
    grad: &Tensor,
    (lo, hi): (f32, Option<f32>),
    scale: &[f32],
) -> Result<Option<Tensor>> {
    if !is_cpu_f32(y) || !is_cpu_f32(grad) || y.shape() != grad.shape() || y.rank() != 4 {
        return Ok(None);
    }
    let (n, c, h, w) = y.dims4()?;
    if scale.len() != c {
        candle_core::bail!("BatchNorm of {} channels before {c}", scale.len());
    }
    let plane = h * w;
    if plane == 0 {
        return Ok(Some(y.zeros_like()?));
    }
    let out = with_f32(y, |ys| {
        with_f32(grad, |gs| {
            let per_task = MIN_TASK.div_ceil(plane).max(1);
            let chunk = plane * per_task;
            Ok(written_in_parts(
                ys.len(),
                chunk,
                || (),
                |_, task, o| {
                    let at = task * chunk..task * chunk + o.len();
                    let (ys, gs) = (&ys[at.clone()], &gs[at]);
                    let planes = o
                        .chunks_mut(plane)
                        .zip(ys.chunks(plane).zip(gs.chunks(plane)));
                    for (k, (o, (ys, gs))) in planes.enumerate() {
                        let s = scale[(task * per_task + k) % c];
                        band_scaled_plane(o, ys, gs, (lo, hi), s);
                    }
                },
            ))
        })
    })?;
    Ok(Some(Tensor::from_vec(out, (n, c, h, w), y.device())?))
}

/// One plane of [`band_gradient_scaled`].
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn band_scaled_plane(out: &mut [f32], y: &[f32], g: &[f32], (lo, hi): (f32, Option<f32>), s: f32) {
    let values = out.iter_mut().zip(y.iter().zip(g));
    match hi {
        Some(hi) => {
            for (v, (y, g)) in values {
                *v = (if *y > lo && *y < hi { *g } else { 0.0 }) * s;
            }
        }
        None => {
            for (v, (y, g)) in values {
                *v = (if *y > lo { *g } else { 0.0 }) * s;
            }
        }
    }
}

/// `y = x · s + t` (or `x · s`) over one plane.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn affine_plane(y: &mut [f32], x: &[f32], s: f32, t: Option<f32>) {
    match t {
        Some(t) => {
            for (v, x) in y.iter_mut().zip(x) {
                *v = *x * s + t;
            }
        }
        None => {
            for (v, x) in y.iter_mut().zip(x) {
                *v = *x * s;
            }
        }
    }
}

/// `y = y · s + t` in place over one plane: [`affine_plane`]'s operations, so the same bits.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
pub(crate) fn affine_in_place(y: &mut [f32], s: f32, t: f32) {
    for v in y.iter_mut() {
        *v = *v * s + t;
    }
}

/// `out = g` where `lo < x` (and `x < hi`), else 0, over one chunk.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn band_chunk(out: &mut [f32], x: &[f32], g: &[f32], lo: f32, hi: Option<f32>) {
    let pairs = out.iter_mut().zip(x.iter().zip(g));
    match hi {
        Some(hi) => {
            for (v, (x, g)) in pairs {
                *v = if *x > lo && *x < hi { *g } else { 0.0 };
            }
        }
        None => {
            for (v, (x, g)) in pairs {
                *v = if *x > lo { *g } else { 0.0 };
            }
        }
    }
}

/// DeepLift's rescale rule at an activation, on the CPU in one pass, or `None` when the fast
/// path does not apply. The batch's first half are inputs, its second half their baselines; with
/// Δx and Δy the first half of the activation's input `x` and output `y` minus the second (the
/// same for both halves), the signal is `grad · Δy / Δx`, or the plain derivative `exact` where
/// |Δx| < `eps`: what `explain/deeplift.rs`'s candle ops give, element for element, in one pass
/// instead of eight.
pub fn rescale(
    x: &Tensor,
    y: &Tensor,
    grad: &Tensor,
    exact: &Tensor,
    eps: f32,
) -> Result<Option<Tensor>> {
    let all = [x, y, grad, exact];
    if !all.iter().all(|t| is_cpu_f32(t) && t.shape() == x.shape()) || x.rank() == 0 {
        return Ok(None);
    }
    let batch = x.dim(0)?;
    if batch % 2 != 0 {
        return Ok(None);
    }
    let half = x.elem_count() / 2;
    let mut out = vec![0f32; x.elem_count()];
    with_f32(x, |xs| {
        with_f32(y, |ys| {
            with_f32(grad, |gs| {
                with_f32(exact, |es| {
                    let ((x0, x1), (y0, y1)) = (xs.split_at(half), ys.split_at(half));
                    let ((g0, g1), (e0, e1)) = (gs.split_at(half), es.split_at(half));
                    let (o0, o1) = out.split_at_mut(half);
                    o0.par_chunks_mut(MIN_TASK)
                        .zip(o1.par_chunks_mut(MIN_TASK))
                        .enumerate()
                        .for_each(|(k, (o0, o1))| {
                            let at = k * MIN_TASK..k * MIN_TASK + o0.len();
                            let inputs = [
                                [&x0[at.clone()], &x1[at.clone()]],
                                [&y0[at.clone()], &y1[at.clone()]],
                                [&g0[at.clone()], &g1[at.clone()]],
                                [&e0[at.clone()], &e1[at]],
                            ];
                            rescale_chunk([o0, o1], inputs, eps);
                        });
                    Ok(())
                })
            })
        })
    })?;
    Ok(Some(Tensor::from_vec(out, x.shape(), x.device())?))
}

/// [`rescale`] over one chunk of both halves: `out[h]` from `[x, y, grad, exact][·][h]`.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn rescale_chunk(out: [&mut [f32]; 2], [x, y, g, e]: [[&[f32]; 2]; 4], eps: f32) {
    let [o0, o1] = out;
    for i in 0..o0.len().min(o1.len()) {
        let delta_in = x[0][i] - x[1][i];
        let delta_out = y[0][i] - y[1][i];
        let small = delta_in.abs() < eps;
        o0[i] = if small {
            e[0][i]
        } else {
            g[0][i] * delta_out / delta_in
        };
        o1[i] = if small {
            e[1][i]
        } else {
            g[1][i] * delta_out / delta_in
        };
    }
}

/// `x` clamped to `[lo, hi]` on the CPU, compared as candle's `maximum(lo)` then `minimum(hi)`
/// compare (a NaN stays NaN), or `None` when the fast path does not apply: ReLU6 and Hardtanh.
pub fn clamp(x: &Tensor, lo: f32, hi: f32) -> Result<Option<Tensor>> {
    map(x, |y, x| clamp_chunk(y, x, lo, hi))
}

/// ReLU on the CPU, as candle's (`max(v, 0)`: a NaN becomes 0), or `None` when the fast path
/// does not apply.
pub fn relu(x: &Tensor) -> Result<Option<Tensor>> {
    map(x, relu_chunk)
}

/// One value clamped as [`clamp`] clamps it.
#[inline(always)]
fn clamp_value(x: f32, lo: f32, hi: f32) -> f32 {
    let x = if x < lo { lo } else { x };
    if x > hi {
        hi
    } else {
        x
    }
}

/// One value through ReLU as [`relu`] passes it.
#[inline(always)]
fn relu_value(x: f32) -> f32 {
    x.max(0.0)
}

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn clamp_chunk(y: &mut [f32], x: &[f32], lo: f32, hi: f32) {
    for (v, x) in y.iter_mut().zip(x) {
        *v = clamp_value(*x, lo, hi);
    }
}

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn relu_chunk(y: &mut [f32], x: &[f32]) {
    for (v, x) in y.iter_mut().zip(x) {
        *v = relu_value(*x);
    }
}

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn clamp_in_place(y: &mut [f32], lo: f32, hi: f32) {
    for v in y.iter_mut() {
        *v = clamp_value(*v, lo, hi);
    }
}

#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn relu_in_place(y: &mut [f32]) {
    for v in y.iter_mut() {
        *v = relu_value(*v);
    }
}

/// An activation that a CPU convolution applies to its outputs as it writes them, while they
/// are in cache, instead of a pass of its own over the whole tensor: the activations of
/// [`Activation::forward`]'s CPU fast paths, to the same bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FusedActivation {
    /// ReLU, as [`relu`].
    Relu,
    /// ReLU6 and Hardtanh, as [`clamp`].
    Clamp {
        /// The lower bound.
        lo: f32,
        /// The upper bound.
        hi: f32,
    },
}

impl FusedActivation {
    /// The fused form of `activation`, if it has one.
    pub fn of(activation: &Activation) -> Option<FusedActivation> {
        match *activation {
            Activation::Relu => Some(FusedActivation::Relu),
            Activation::Relu6 => Some(FusedActivation::Clamp { lo: 0.0, hi: 6.0 }),
            Activation::Clip { min, max } => Some(FusedActivation::Clamp {
                lo: min as f32,
                hi: max as f32,
            }),
            _ => None,
        }
    }

    /// The activation of one value.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            FusedActivation::Relu => relu_value(x),
            FusedActivation::Clamp { lo, hi } => clamp_value(x, lo, hi),
        }
    }

    /// The activation of every value of `y`, in place.
    pub fn apply_in_place(self, y: &mut [f32]) {
        match self {
            FusedActivation::Relu => relu_in_place(y),
            FusedActivation::Clamp { lo, hi } => clamp_in_place(y, lo, hi),
        }
    }
}

/// `chunk` (output, input) over every element of `x` in one parallel pass, or `None` off the
/// CPU or f32.
fn map(x: &Tensor, chunk: impl Fn(&mut [f32], &[f32]) + Sync) -> Result<Option<Tensor>> {
    if !is_cpu_f32(x) {
        return Ok(None);
    }
    let y = with_f32(x, |xs| {
        Ok(written_in_parts(
            xs.len(),
            MIN_TASK,
            || (),
            |_, k, ys| chunk(ys, &xs[k * MIN_TASK..k * MIN_TASK + ys.len()]),
        ))
    })?;
    Ok(Some(Tensor::from_vec(y, x.shape(), x.device())?))
}

#[cfg(test)]
mod tests {
    use crate::ops::test_compare::{bits, max_abs};
    use candle_core::{Device, Tensor};

    #[test]
    fn channel_affine_equals_the_broadcast_ops() {
        let dev = Device::Cpu;
        for dims in [(1, 3, 5, 7), (4, 6, 70, 70), (2, 5, 1, 1)] {
            let x = Tensor::randn(0f32, 1f32, dims, &dev).unwrap();
            let c = dims.1;
            let scale = Tensor::randn(0f32, 1f32, c, &dev).unwrap();
            let shift = Tensor::randn(0f32, 1f32, c, &dev).unwrap();
            let (sv, tv) = (
                scale.to_vec1::<f32>().unwrap(),
                shift.to_vec1::<f32>().unwrap(),
            );
            let s4 = scale.reshape((1, c, 1, 1)).unwrap();
            let t4 = shift.reshape((1, c, 1, 1)).unwrap();
            let slow = x.broadcast_mul(&s4).unwrap().broadcast_add(&t4).unwrap();
            let fast = super::channel_affine(&x, &sv, Some(&tv)).unwrap().unwrap();
            assert_eq!(max_abs(&fast, &slow), 0.0, "{dims:?}");
            let slow = x.broadcast_mul(&s4).unwrap();
            let fast = super::channel_affine(&x, &sv, None).unwrap().unwrap();
            assert_eq!(max_abs(&fast, &slow), 0.0, "{dims:?} without shift");
            // A non-contiguous input is read in its logical order.
            let xt = x.transpose(2, 3).unwrap();
            let slow = xt.broadcast_mul(&s4).unwrap();
            let fast = super::channel_affine(&xt, &sv, None).unwrap().unwrap();
            assert_eq!(max_abs(&fast, &slow), 0.0, "{dims:?} transposed");
        }
    }

    #[test]
    fn clamp_and_relu_equal_candle_ops() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 4f32, (3, 5, 41, 43), &dev).unwrap();
        // Values at the bounds, and a NaN, included.
        let mut values = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values[..4].copy_from_slice(&[0.0, 6.0, -1.0, f32::NAN]);
        let x = Tensor::from_vec(values, x.shape(), &dev).unwrap();
        for (lo, hi) in [(0f32, 6f32), (-1.0, 1.0)] {
            let slow = x.clamp(lo, hi).unwrap();
            let fast = super::clamp(&x, lo, hi).unwrap().unwrap();
            assert_eq!(bits(&fast), bits(&slow), "clamp to [{lo}, {hi}]");
        }
        let fast = super::relu(&x).unwrap().unwrap();
        assert_eq!(bits(&fast), bits(&x.relu().unwrap()));
        // A non-contiguous input is read in its logical order.
        let xt = x.transpose(2, 3).unwrap();
        let fast = super::clamp(&xt, 0.0, 6.0).unwrap().unwrap();
        assert_eq!(bits(&fast), bits(&xt.clamp(0f32, 6f32).unwrap()));
    }

    #[test]
    fn rescale_equals_the_candle_ops() {
        let dev = Device::Cpu;
        // Inputs beside baselines (first half, second half); some differences zero.
        let x = Tensor::randn(0f32, 1f32, (4, 3, 70, 90), &dev).unwrap();
        let mut values = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let half = values.len() / 2;
        for i in (0..half).step_by(7) {
            values[half + i] = values[i];
        }
        let x = Tensor::from_vec(values, x.shape(), &dev).unwrap();
        let y = x.clamp(0f32, 6f32).unwrap();
        let grad = Tensor::randn(0f32, 1f32, x.dims(), &dev).unwrap();
        let exact = super::band_gradient(&x, &grad, 0.0, Some(6.0))
            .unwrap()
            .unwrap();
        let difference = |t: &Tensor| {
            let d = t
                .narrow(0, 0, 2)
                .unwrap()
                .sub(&t.narrow(0, 2, 2).unwrap())
                .unwrap();
            Tensor::cat(&[&d, &d], 0).unwrap()
        };
        let (delta_in, delta_out) = (difference(&x), difference(&y));
        let rescaled = grad.mul(&delta_out).unwrap().div(&delta_in).unwrap();
        let slow = delta_in
            .abs()
            .unwrap()
            .lt(1e-10f32)
            .unwrap()
            .where_cond(&exact, &rescaled)
            .unwrap();
        let fast = super::rescale(&x, &y, &grad, &exact, 1e-10)
            .unwrap()
            .unwrap();
        assert_eq!(bits(&fast), bits(&slow));
        // An odd batch has no halves: the fast path steps aside.
        let odd = x.narrow(0, 0, 3).unwrap();
        assert!(super::rescale(&odd, &odd, &odd, &odd, 1e-10)
            .unwrap()
            .is_none());
    }

    #[test]
    fn band_gradient_equals_the_mask_product() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1f32, (3, 4, 50, 60), &dev).unwrap();
        // Negative, zero and positive entries.
        let keep = x
            .abs()
            .unwrap()
            .gt(0.3f32)
            .unwrap()
            .to_dtype(x.dtype())
            .unwrap();
        let x = x.mul(&keep).unwrap();
        let g = Tensor::randn(0f32, 1f32, x.dims(), &dev).unwrap();
        let slow = g
            .mul(&x.gt(0f32).unwrap().to_dtype(g.dtype()).unwrap())
            .unwrap();
        let fast = super::band_gradient(&x, &g, 0.0, None).unwrap().unwrap();
        assert_eq!(max_abs(&fast, &slow), 0.0);
        let x = x.affine(4.0, 0.0).unwrap().round().unwrap(); // values at 0 and 6 included
        let band = x.gt(0f32).unwrap().mul(&x.lt(6f32).unwrap()).unwrap();
        let slow = g.mul(&band.to_dtype(g.dtype()).unwrap()).unwrap();
        let fast = super::band_gradient(&x, &g, 0.0, Some(6.0))
            .unwrap()
            .unwrap();
        assert_eq!(max_abs(&fast, &slow), 0.0);
    }
}
