//! Transformation robustness (Olah et al. 2017): every step sees the image padded, jittered,
//! scaled and rotated at random, so that the optimum does not rely on exact pixel positions.
//!
//! The five transforms of Lucid's `standard_transforms` (pad 12 with 0.5, jitter 8, scale by one
//! of 0.9..1.1, rotate by one of −10..10°, jitter 4) compose to one affine map from the output
//! canvas to the padded image, so a step applies them as a single bilinear resampling: for each
//! output pixel, four source taps with weights, gathered with `index_select` and sent back with
//! `index_add` (both candle ops, on any device; on the CPU the same operations as loops,
//! `warp_cpu.rs`). Taps in the padding read its constant 0.5; taps
//! beyond it read 0, as the zero fill of Lucid's rotation and scaling does. Lucid's jitters crop
//! (the canvas loses `d − 1` pixels per jitter) and its scaling resizes the canvas; here the
//! canvas keeps the cropped size and the scaling acts about its centre, so every step runs the
//! network at one size.

use candle_core::{DType, Device, Tensor};
use rand::Rng;

use super::warp_cpu::HostTaps;
use crate::ops::cpu_slice::with_f32;
use crate::{Error, Result};

/// Lucid's `standard_transforms` and their parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TransformRobustness {
    /// Constant padding on each side (pixels).
    pub pad: usize,
    /// Value of the padding, in [0, 1] pixel units.
    pub pad_value: f64,
    /// The first jitter: a random crop offset in `0..jitter_before`.
    pub jitter_before: usize,
    /// Scale factors to draw from.
    pub scales: Vec<f64>,
    /// Rotation angles (degrees) to draw from.
    pub angles: Vec<f64>,
    /// The last jitter: a random crop offset in `0..jitter_after`.
    pub jitter_after: usize,
}

impl TransformRobustness {
    /// Lucid's defaults: pad 12 (0.5), jitter 8, scales 1 + (i−5)/50, angles −10..=10 and five
    /// more 0s, jitter 4.
    pub fn lucid() -> Self {
        TransformRobustness {
            pad: 12,
            pad_value: 0.5,
            jitter_before: 8,
            scales: (0..11).map(|i| 1.0 + (i as f64 - 5.0) / 50.0).collect(),
            angles: (-10..=10)
                .map(f64::from)
                .chain(std::iter::repeat_n(0.0, 5))
                .collect(),
            jitter_after: 4,
        }
    }

    /// The side of the network's input for an image side of `size`.
    pub fn canvas_size(&self, size: usize) -> usize {
        size + 2 * self.pad + 2 - self.jitter_before.max(1) - self.jitter_after.max(1)
    }

    /// Draws one transform for images of `size`×`size`.
    pub fn sample(&self, size: usize, rng: &mut impl Rng) -> Affine {
        let pick = |values: &[f64], rng: &mut dyn rand::RngCore| -> f64 {
            if values.is_empty() {
                0.0
            } else {
                values[rng.random_range(0..values.len())]
            }
        };
        let jitter =
            |d: usize, rng: &mut dyn rand::RngCore| -> f64 { rng.random_range(0..d.max(1)) as f64 };
        let (jx1, jy1) = (
            jitter(self.jitter_before, rng),
            jitter(self.jitter_before, rng),
        );
        let scale = pick(&self.scales, rng);
        let scale = if scale > 0.0 { scale } else { 1.0 };
        let degrees = if self.angles.is_empty() {
            0.0
        } else {
            pick(&self.angles, rng)
        };
        let (jx2, jy2) = (
            jitter(self.jitter_after, rng),
            jitter(self.jitter_after, rng),
        );
        // Backwards from an output pixel c4: c3 = c4 + j2; c2 = Rᵀ(c3 − m) + m; c1 = (c2 − m)/s
        // + m; padded = c1 + j1. m is the centre of the jittered canvas.
        let mid = (size + 2 * self.pad - self.jitter_before.max(1)) as f64 / 2.0;
        let (sin, cos) = degrees.to_radians().sin_cos();
        // c2 − m = Rᵀ (c4 + j2 − m), componentwise:
        //   x: cos·(u + jx2 − m) + sin·(v + jy2 − m)
        //   y: −sin·(u + jx2 − m) + cos·(v + jy2 − m)
        let (dx, dy) = (jx2 - mid, jy2 - mid);
        let x_const = (cos * dx + sin * dy) / scale + mid + jx1;
        let y_const = (-sin * dx + cos * dy) / scale + mid + jy1;
        Affine {
            xu: cos / scale,
            xv: sin / scale,
            x0: x_const,
            yu: -sin / scale,
            yv: cos / scale,
            y0: y_const,
        }
    }
}

/// Source coordinates of an output pixel at column `u`, row `v`, in the padded image's pixels
/// (pixel centres at integers, the image from `pad` on): `x = xu·u + xv·v + x0`,
/// `y = yu·u + yv·v + y0`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    /// ∂x/∂u.
    pub xu: f64,
    /// ∂x/∂v.
    pub xv: f64,
    /// x at (0, 0).
    pub x0: f64,
    /// ∂y/∂u.
    pub yu: f64,
    /// ∂y/∂v.
    pub yv: f64,
    /// y at (0, 0).
    pub y0: f64,
}

impl Affine {
    /// The identity shifted by `(dx, dy)`: output (u, v) reads padded (u + dx, v + dy).
    pub fn shift(dx: f64, dy: f64) -> Self {
        Affine {
            xu: 1.0,
            xv: 0.0,
            x0: dx,
            yu: 0.0,
            yv: 1.0,
            y0: dy,
        }
    }
}

/// A bilinear resampling of `in_h`×`in_w` images to `out_h`×`out_w`, ready to apply.
#[derive(Debug)]
pub struct Warp {
    in_hw: (usize, usize),
    out_hw: (usize, usize),
    taps: Taps,
}

/// Where a warp's taps live: tensors on the model's device (every device), or on the host for
/// the CPU path ([`HostTaps`], the same values).
#[derive(Debug)]
enum Taps {
    Device(DeviceTaps),
    Host(HostTaps),
}

/// The taps as tensors.
#[derive(Clone, Debug)]
struct DeviceTaps {
    /// Source pixel of each tap, [4·N_out] (taps that read outside the image point at 0).
    indices: Tensor,
    /// Weight of each tap on its source pixel, [4, N_out] (0 outside the image).
    weights: Tensor,
    /// What the taps outside the image contribute (the padding's value), [N_out].
    constant: Tensor,
}

impl DeviceTaps {
    /// The host taps as tensors on `device`.
    fn of(taps: &HostTaps, device: &Device) -> Result<Self> {
        let n = taps.constant.len();
        Ok(DeviceTaps {
            indices: Tensor::from_slice(&taps.indices, 4 * n, device)?,
            weights: Tensor::from_slice(&taps.weights, (4, n), device)?,
            constant: Tensor::from_slice(&taps.constant, n, device)?,
        })
    }
}

impl Warp {
    /// The warp for `affine`, reading an image of `in_hw` inside a border of `pad` pixels of
    /// value `pad_value` (0 beyond): on the CPU its taps worked out on the host and applied by
    /// loops ([`HostTaps`]), elsewhere by [`Warp::by_tensor_ops`].
    pub fn new(
        affine: &Affine,
        in_hw: (usize, usize),
        out_hw: (usize, usize),
        pad: usize,
        pad_value: f64,
        device: &Device,
    ) -> Result<Self> {
        if device.is_cpu() {
            return Ok(Warp {
                in_hw,
                out_hw,
                taps: Taps::Host(HostTaps::new(affine, in_hw, out_hw, pad, pad_value)),
            });
        }
        Self::by_tensor_ops(affine, in_hw, out_hw, pad, pad_value, device)
    }

    /// [`Warp::new`] with the taps computed, applied and sent back by candle's tensor ops on
    /// `device` (every device; the CPU path is tested against it).
    pub fn by_tensor_ops(
        affine: &Affine,
        in_hw: (usize, usize),
        out_hw: (usize, usize),
        pad: usize,
        pad_value: f64,
        device: &Device,
    ) -> Result<Self> {
        let (h, w) = in_hw;
        let (oh, ow) = out_hw;
        let n = oh * ow;
        let u = Tensor::arange(0u32, ow as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((1, ow))?
            .broadcast_as((oh, ow))?
            .flatten_all()?;
        let v = Tensor::arange(0u32, oh as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((oh, 1))?
            .broadcast_as((oh, ow))?
            .flatten_all()?;
        let x = u
            .affine(affine.xu, affine.x0)?
            .add(&v.affine(affine.xv, 0.0)?)?;
        let y = u
            .affine(affine.yu, affine.y0)?
            .add(&v.affine(affine.yv, 0.0)?)?;
        let x_floor = x.floor()?;
        let y_floor = y.floor()?;
        let fx = x.sub(&x_floor)?;
        let fy = y.sub(&y_floor)?;
        let (gx, gy) = (fx.affine(-1.0, 1.0)?, fy.affine(-1.0, 1.0)?);
        let x_next = x_floor.affine(1.0, 1.0)?;
        let y_next = y_floor.affine(1.0, 1.0)?;
        // The four taps, stacked: (x0,y0), (x1,y0), (x0,y1), (x1,y1).
        let tx = Tensor::cat(&[&x_floor, &x_next, &x_floor, &x_next], 0)?;
        let ty = Tensor::cat(&[&y_floor, &y_floor, &y_next, &y_next], 0)?;
        let tw = Tensor::cat(
            &[&gx.mul(&gy)?, &fx.mul(&gy)?, &gx.mul(&fy)?, &fx.mul(&fy)?],
            0,
        )?;
        let within = |t: &Tensor, lo: f64, hi: f64| -> Result<Tensor> {
            Ok(t.ge(lo)?.mul(&t.le(hi)?)?.to_dtype(DType::F32)?)
        };
        let pad_f = pad as f64;
        let in_image = within(&tx, pad_f, pad_f + w as f64 - 1.0)?.mul(&within(
            &ty,
            pad_f,
            pad_f + h as f64 - 1.0,
        )?)?;
        let in_padded = within(&tx, 0.0, 2.0 * pad_f + w as f64 - 1.0)?.mul(&within(
            &ty,
            0.0,
            2.0 * pad_f + h as f64 - 1.0,
        )?)?;
        let weights = tw.mul(&in_image)?;
        let constant = tw
            .mul(&in_padded.sub(&in_image)?)?
            .affine(pad_value, 0.0)?
            .reshape((4, n))?
            .sum(0)?;
        let col = tx.affine(1.0, -pad_f)?.clamp(0f32, (w - 1) as f32)?;
        let row = ty.affine(1.0, -pad_f)?.clamp(0f32, (h - 1) as f32)?;
        let indices = row.affine(w as f64, 0.0)?.add(&col)?.to_dtype(DType::U32)?;
        Ok(Warp {
            in_hw,
            out_hw,
            taps: Taps::Device(DeviceTaps {
                indices,
                weights: weights.reshape((4, n))?,
                constant,
            }),
        })
    }

    /// The host taps when `x` (an image batch) can take the CPU path: on the CPU, in f32.
    fn host_taps_for(&self, x: &Tensor) -> Option<&HostTaps> {
        match &self.taps {
            Taps::Host(taps) if x.device().is_cpu() && x.dtype() == DType::F32 => Some(taps),
            _ => None,
        }
    }

    /// The taps as tensors on `x`'s device (made from the host taps for an input the CPU path
    /// does not take).
    fn device_taps_for(&self, x: &Tensor) -> Result<std::borrow::Cow<'_, DeviceTaps>> {
        Ok(match &self.taps {
            Taps::Device(taps) => std::borrow::Cow::Borrowed(taps),
            Taps::Host(taps) => std::borrow::Cow::Owned(DeviceTaps::of(taps, x.device())?),
        })
    }

    /// The warped images [B, C, out_h, out_w] of `x` [B, C, in_h, in_w].
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        let (oh, ow) = self.out_hw;
        let n = oh * ow;
        check_plane("the warp's input images", self.in_hw, (h, w))?;
        if let Some(host) = self.host_taps_for(x) {
            let out = with_f32(x, |xs| Ok(host.apply(xs, h * w)))?;
            return Ok(Tensor::from_vec(out, (b, c, oh, ow), x.device())?);
        }
        let device = self.device_taps_for(x)?;
        let taps = x
            .reshape((b, c, h * w))?
            .index_select(&device.indices, 2)?
            .reshape((b, c, 4, n))?
            .broadcast_mul(&device.weights)?
            .sum(2)?;
        Ok(taps
            .broadcast_add(&device.constant)?
            .reshape((b, c, oh, ow))?)
    }

    /// The adjoint of [`Warp::apply`]: the signal on the source image for a signal on the output.
    pub fn backward(&self, grad: &Tensor) -> Result<Tensor> {
        let (b, c, oh, ow) = grad.dims4()?;
        let n = oh * ow;
        let (h, w) = self.in_hw;
        check_plane("the signal on the warp's output", self.out_hw, (oh, ow))?;
        if let Some(host) = self.host_taps_for(grad) {
            let out = with_f32(grad, |g| Ok(host.backward(g, h * w)))?;
            return Ok(Tensor::from_vec(out, (b, c, h, w), grad.device())?);
        }
        let device = self.device_taps_for(grad)?;
        let spread = grad
            .reshape((b, c, 1, n))?
            .broadcast_mul(&device.weights)?
            .reshape((b, c, 4 * n))?;
        let zeros = Tensor::zeros((b, c, h * w), grad.dtype(), grad.device())?;
        Ok(zeros
            .index_add(&device.indices, &spread, 2)?
            .reshape((b, c, h, w))?)
    }
}

/// A shape error naming `what` unless its planes are `found` = `expected` (rows, columns).
fn check_plane(what: &str, expected: (usize, usize), found: (usize, usize)) -> Result<()> {
    if found == expected {
        return Ok(());
    }
    Err(Error::Shape {
        what: what.into(),
        expected: format!("{expected:?}"),
        found: format!("{found:?}"),
    })
}
