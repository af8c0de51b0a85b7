//! The CPU path of [`super::transforms::Warp`]: the four bilinear taps of every output pixel
//! worked out on the host, and the resampling and its adjoint as loops over each image plane.
//!
//! Beside the tensor-op path (every device; the reference) because candle's CPU ops make the
//! warp a large share of a lucid step: the sum over the taps is a reduction over a middle
//! dimension, which candle walks element by element with a division per element, and
//! `index_add` runs on one thread (together 26–40 ms of an instrumented lucid step at batch 4,
//! docs/PERFORMANCE.md). The loops do the same float operations in the same order, so the
//! results are the same bits (`models/tests/maximize.rs`,
//! `the_warps_cpu_path_equals_its_tensor_ops`).

use rayon::prelude::*;

use super::transforms::Affine;

/// The taps of a warp from an `in_hw` image (inside a border of `pad` pixels of `pad_value`) to
/// an `out_hw` canvas, on the host.
#[derive(Debug)]
pub struct HostTaps {
    /// Source pixel of tap k of output pixel i at `k·n + i` (n output pixels; taps that read
    /// outside the image point at a pixel inside it, with weight 0).
    pub indices: Vec<u32>,
    /// Weight of each tap, laid out as `indices`.
    pub weights: Vec<f32>,
    /// What the taps outside the image contribute (the padding's value), one per output pixel.
    pub constant: Vec<f32>,
}

impl HostTaps {
    /// The taps of `affine`, computed as the tensor-op path computes them, step by step in f32.
    pub fn new(
        affine: &Affine,
        (h, w): (usize, usize),
        (oh, ow): (usize, usize),
        pad: usize,
        pad_value: f64,
    ) -> Self {
        let n = oh * ow;
        let mut taps = HostTaps {
            indices: vec![0; 4 * n],
            weights: vec![0.0; 4 * n],
            constant: vec![0.0; n],
        };
        // The tensor path's `affine(mul, add)` converts both to f32 and computes `v·mul + add`.
        let f = |v: f64| v as f32;
        let (xu, xv, x0) = (f(affine.xu), f(affine.xv), f(affine.x0));
        let (yu, yv, y0) = (f(affine.yu), f(affine.yv), f(affine.y0));
        let pad_f = pad as f32;
        let image_x = (pad_f, f(pad as f64 + w as f64 - 1.0));
        let image_y = (pad_f, f(pad as f64 + h as f64 - 1.0));
        let padded_x = (0.0, f(2.0 * pad as f64 + w as f64 - 1.0));
        let padded_y = (0.0, f(2.0 * pad as f64 + h as f64 - 1.0));
        let within = |t: f32, (lo, hi): (f32, f32)| -> f32 {
            f32::from(u8::from(t >= lo)) * f32::from(u8::from(t <= hi))
        };
        let (last_col, last_row) = ((w.max(1) - 1) as f32, (h.max(1) - 1) as f32);
        let pv = f(pad_value);
        for v in 0..oh {
            for u in 0..ow {
                let i = v * ow + u;
                let (uf, vf) = (u as f32, v as f32);
                let x = (uf * xu + x0) + (vf * xv + 0.0);
                let y = (uf * yu + y0) + (vf * yv + 0.0);
                let (x_floor, y_floor) = (x.floor(), y.floor());
                let (fx, fy) = (x - x_floor, y - y_floor);
                // `affine(-1, 1)` and `affine(1, 1)`: −f + 1 is 1 − f, and ·1 changes nothing.
                let (gx, gy) = (1.0 - fx, 1.0 - fy);
                let (x_next, y_next) = (x_floor + 1.0, y_floor + 1.0);
                let tx = [x_floor, x_next, x_floor, x_next];
                let ty = [y_floor, y_floor, y_next, y_next];
                let tw = [gx * gy, fx * gy, gx * fy, fx * fy];
                let mut constant = 0f32;
                for k in 0..4 {
                    let in_image = within(tx[k], image_x) * within(ty[k], image_y);
                    let in_padded = within(tx[k], padded_x) * within(ty[k], padded_y);
                    taps.weights[k * n + i] = tw[k] * in_image;
                    constant += tw[k] * (in_padded - in_image) * pv + 0.0;
                    let col = (tx[k] - pad_f).max(0.0).min(last_col);
                    let row = (ty[k] - pad_f).max(0.0).min(last_row);
                    taps.indices[k * n + i] = ((row * w as f32 + 0.0) + col) as u32;
                }
                taps.constant[i] = constant;
            }
        }
        taps
    }

    /// Output pixels.
    fn pixels(&self) -> usize {
        self.constant.len()
    }

    /// The warped planes of `x` (planes of `plane` pixels, one after another): each output pixel
    /// the sum of its taps times their weights, then the constant.
    pub fn apply(&self, x: &[f32], plane: usize) -> Vec<f32> {
        let n = self.pixels();
        let planes = x.len() / plane.max(1);
        let mut out = vec![0f32; planes * n];
        if n == 0 || plane == 0 {
            return out;
        }
        out.par_chunks_mut(n)
            .zip(x.par_chunks(plane))
            .for_each(|(dst, src)| {
                for (i, d) in dst.iter_mut().enumerate() {
                    let mut sum = 0f32;
                    for k in 0..4 {
                        let j = k * n + i;
                        sum += src[self.indices[j] as usize] * self.weights[j];
                    }
                    *d = sum + self.constant[i];
                }
            });
        out
    }

    /// The adjoint of [`HostTaps::apply`]: each output pixel's signal times each tap's weight,
    /// added to the tap's source pixel, taps in order (tap 0 of every pixel, then tap 1, …), into
    /// planes of `plane` pixels.
    pub fn backward(&self, grad: &[f32], plane: usize) -> Vec<f32> {
        let n = self.pixels();
        let planes = grad.len() / n.max(1);
        let mut out = vec![0f32; planes * plane];
        if n == 0 || plane == 0 {
            return out;
        }
        out.par_chunks_mut(plane)
            .zip(grad.par_chunks(n))
            .for_each(|(dst, g)| {
                for (j, (&index, &weight)) in self.indices.iter().zip(&self.weights).enumerate() {
                    dst[index as usize] += g[j % n] * weight;
                }
            });
        out
    }
}
