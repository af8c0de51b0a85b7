//! Lucid's Fourier-space image parameterization: the optimized variables are the real and
//! imaginary parts of the image's half spectrum (as `torch.fft.irfftn` reads it), scaled by 1/f so
//! that every frequency has about the same energy, brought to pixels by the inverse real 2-D DFT
//! with orthonormal scaling, then divided by Lucid's "magic" 4.
//!
//! The inverse DFT is written as four dense matmuls with precomputed cosine and sine matrices
//! rather than an FFT crate: the same code then runs on the GPU (candle has no FFT), its adjoint
//! (the backward pass) is the same matmuls transposed, and at 224×224 it costs a few percent of a
//! network forward+backward, so an O(n log n) CPU path would not change the step time.

use std::f64::consts::PI;

use candle_core::{Device, Tensor};

use crate::Result;

/// Lucid's divisor of the spatial image (`image / 4.0`, "magic constant").
const MAGIC: f64 = 4.0;

/// The inverse real 2-D DFT of an `h`×`w` image, with the 1/f spectrum scaling, on a device.
///
/// Parameters are laid out as [B, C, h, 2·wf]: columns `0..wf` the real parts, `wf..2wf` the
/// imaginary parts of the frequencies `fftfreq(h)` × `rfftfreq(w)`, wf = w/2 + 1.
#[derive(Debug, Clone)]
pub struct FourierImage {
    h: usize,
    w: usize,
    wf: usize,
    /// cos(2π k m / h), [h, h] (symmetric).
    cos_h: Tensor,
    /// sin(2π k m / h), [h, h] (symmetric).
    sin_h: Tensor,
    /// [[c_l cos(2π l n / w)]; [−c_l sin(2π l n / w)]], [2wf, w].
    real_part: Tensor,
    /// [[c_l sin(2π l n / w)]; [c_l cos(2π l n / w)]], [2wf, w].
    imag_part: Tensor,
    /// Their transposes, for the adjoint.
    real_part_t: Tensor,
    imag_part_t: Tensor,
    /// 1/max(f, 1/max(h, w)) / √(hw) / 4, [h, 2wf].
    scale: Tensor,
}

/// numpy's `fftfreq(n)[i]`.
fn fftfreq(n: usize, i: usize) -> f64 {
    let i = i as f64;
    let n_f = n as f64;
    if (i as usize) < n.div_ceil(2) {
        i / n_f
    } else {
        (i - n_f) / n_f
    }
}

impl FourierImage {
    /// The transform for `h`×`w` images on `device`.
    pub fn new(h: usize, w: usize, device: &Device) -> Result<Self> {
        let wf = w / 2 + 1;
        let mut cos_h = vec![0f32; h * h];
        let mut sin_h = vec![0f32; h * h];
        for m in 0..h {
            for k in 0..h {
                // (k·m mod h) keeps the angle small, so f64 trig stays exact to f32.
                let angle = 2.0 * PI * ((k * m) % h) as f64 / h as f64;
                cos_h[m * h + k] = angle.cos() as f32;
                sin_h[m * h + k] = angle.sin() as f32;
            }
        }
        let mut real_part = vec![0f32; 2 * wf * w];
        let mut imag_part = vec![0f32; 2 * wf * w];
        for l in 0..wf {
            // c2r counts every frequency twice (itself and its conjugate) except DC and, for even
            // widths, Nyquist; their imaginary parts drop out because sin vanishes there.
            let weight = if l == 0 || (w.is_multiple_of(2) && l == w / 2) {
                1.0
            } else {
                2.0
            };
            for n in 0..w {
                let angle = 2.0 * PI * ((l * n) % w) as f64 / w as f64;
                let (c, s) = ((weight * angle.cos()) as f32, (weight * angle.sin()) as f32);
                real_part[l * w + n] = c;
                real_part[(wf + l) * w + n] = -s;
                imag_part[l * w + n] = s;
                imag_part[(wf + l) * w + n] = c;
            }
        }
        let norm = 1.0 / ((h * w) as f64).sqrt() / MAGIC;
        let floor = 1.0 / h.max(w) as f64;
        let mut scale = vec![0f32; h * 2 * wf];
        for k in 0..h {
            let fy = fftfreq(h, k);
            for l in 0..wf {
                let fx = fftfreq(w, l);
                let f = (fx * fx + fy * fy).sqrt().max(floor);
                let s = (norm / f) as f32;
                scale[k * 2 * wf + l] = s;
                scale[k * 2 * wf + wf + l] = s;
            }
        }
        let real_part = Tensor::from_vec(real_part, (2 * wf, w), device)?;
        let imag_part = Tensor::from_vec(imag_part, (2 * wf, w), device)?;
        Ok(FourierImage {
            h,
            w,
            wf,
            cos_h: Tensor::from_vec(cos_h, (h, h), device)?,
            sin_h: Tensor::from_vec(sin_h, (h, h), device)?,
            real_part_t: real_part.t()?.contiguous()?,
            imag_part_t: imag_part.t()?.contiguous()?,
            real_part,
            imag_part,
            scale: Tensor::from_vec(scale, (h, 2 * wf), device)?,
        })
    }

    /// The parameter shape for `batch` images of `channels` channels.
    pub fn param_shape(&self, batch: usize, channels: usize) -> (usize, usize, usize, usize) {
        (batch, channels, self.h, 2 * self.wf)
    }

    /// The spatial image [B, C, h, w] of a spectrum parameter [B, C, h, 2wf].
    pub fn to_image(&self, spectrum: &Tensor) -> Result<Tensor> {
        let scaled = spectrum.broadcast_mul(&self.scale)?;
        // U, V: the inverse real DFT along the width of (Re X, Im X) paired with cos and sin.
        let u = scaled.broadcast_matmul(&self.real_part)?;
        let v = scaled.broadcast_matmul(&self.imag_part)?;
        // Then the inverse DFT along the height: x = cos_h·U − sin_h·V.
        let x = self
            .cos_h
            .broadcast_matmul(&u)?
            .sub(&self.sin_h.broadcast_matmul(&v)?)?;
        Ok(x)
    }

    /// The adjoint of [`FourierImage::to_image`]: the signal on the spectrum parameter for a
    /// signal on the image.
    pub fn backward(&self, grad_image: &Tensor) -> Result<Tensor> {
        let grad_u = self.cos_h.broadcast_matmul(grad_image)?;
        let grad_v = self.sin_h.broadcast_matmul(grad_image)?.neg()?;
        let grad_scaled = grad_u
            .broadcast_matmul(&self.real_part_t)?
            .add(&grad_v.broadcast_matmul(&self.imag_part_t)?)?;
        Ok(grad_scaled.broadcast_mul(&self.scale)?)
    }

    /// Image height and width.
    pub fn size(&self) -> (usize, usize) {
        (self.h, self.w)
    }
}
