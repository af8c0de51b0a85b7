//! Bilinear resizing and Gaussian blurring of maps as matrix products, so they run on any device:
//! `R_h · map · R_wᵀ` with PyTorch's (and OpenCV's `INTER_LINEAR`) sampling positions.

use candle_core::{Device, Result, Tensor};

/// The [out, size] matrix of bilinear interpolation from `size` samples to `out`.
/// `align_corners` as PyTorch's; without it, half-pixel centres clamped at the borders. The
/// positions and weights are computed in f32 exactly as PyTorch's CPU kernel computes them, so
/// that maps which are constant up to rounding stay so in the same places (Score-CAM's min–max
/// scaled masks depend on that).
pub fn bilinear_matrix(
    size: usize,
    out: usize,
    align_corners: bool,
    device: &Device,
) -> Result<Tensor> {
    let mut m = vec![0f32; out * size];
    let scale = if align_corners {
        if out > 1 {
            (size as f32 - 1.0) / (out as f32 - 1.0)
        } else {
            0.0
        }
    } else {
        size as f32 / out as f32
    };
    for i in 0..out {
        let src = if align_corners {
            scale * i as f32
        } else {
            (scale * (i as f32 + 0.5) - 0.5).max(0.0)
        };
        let i0 = (src as usize).min(size - 1);
        let i1 = if i0 < size - 1 { i0 + 1 } else { i0 };
        let lambda1 = src - i0 as f32;
        let lambda0 = 1.0 - lambda1;
        m[i * size + i0] += lambda0;
        m[i * size + i1] += lambda1;
    }
    Tensor::from_vec(m, (out, size), device)
}

/// `map` [..., h, w] resized to `out_h`×`out_w` bilinearly: along the width first, then the
/// height, the order in which PyTorch's kernel combines the four neighbours.
pub fn resize_bilinear(
    map: &Tensor,
    out_h: usize,
    out_w: usize,
    align_corners: bool,
) -> Result<Tensor> {
    let rank = map.rank();
    let (h, w) = (map.dim(rank - 2)?, map.dim(rank - 1)?);
    let rows = bilinear_matrix(h, out_h, align_corners, map.device())?;
    let cols = bilinear_matrix(w, out_w, align_corners, map.device())?;
    let along_width = map.contiguous()?.broadcast_matmul(&cols.t()?)?;
    rows.broadcast_matmul(&along_width)
}

/// The [size, size] matrix of a Gaussian blur of standard deviation `sigma`, borders clamped.
fn gaussian_matrix(size: usize, sigma: f64, device: &Device) -> Result<Tensor> {
    let radius = (3.0 * sigma).ceil() as i64;
    let taps: Vec<f64> = (-radius..=radius)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = taps.iter().sum();
    let mut m = vec![0f32; size * size];
    for i in 0..size as i64 {
        for (k, tap) in taps.iter().enumerate() {
            let j = (i + k as i64 - radius).clamp(0, size as i64 - 1) as usize;
            m[i as usize * size + j] += (tap / total) as f32;
        }
    }
    Tensor::from_vec(m, (size, size), device)
}

/// `x` [..., h, w] blurred with a Gaussian of standard deviation `sigma` pixels.
pub fn blur(x: &Tensor, sigma: f64) -> Result<Tensor> {
    let rank = x.rank();
    let (h, w) = (x.dim(rank - 2)?, x.dim(rank - 1)?);
    let rows = gaussian_matrix(h, sigma, x.device())?;
    let cols = gaussian_matrix(w, sigma, x.device())?;
    rows.broadcast_matmul(&x.contiguous()?)?
        .broadcast_matmul(&cols.t()?)
}

/// pytorch-grad-cam's `scale_cam_image`: subtract the minimum, divide by (1e-7 + maximum),
/// resize bilinearly (OpenCV `INTER_LINEAR`) to `out_h`×`out_w`.
pub fn scale_cam(map: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    let shifted = map.broadcast_sub(&map.min_all()?)?;
    let scaled = shifted.broadcast_div(&shifted.max_all()?.affine(1.0, 1e-7)?)?;
    resize_bilinear(&scaled, out_h, out_w, false)
}
