//! Lucid's decorrelated colour space: the optimized image lives in a space whose three channels
//! are uncorrelated over ImageNet, and a fixed 3×3 matrix (the square root of ImageNet's colour
//! correlation, from its SVD, scaled so that its largest column has unit norm) takes it to RGB.

use candle_core::{Device, Tensor};

use crate::Result;

/// `color_correlation_svd_sqrt` of Lucid (`lucid/optvis/param/color.py`), rows = RGB.
const COLOR_CORRELATION_SVD_SQRT: [[f32; 3]; 3] =
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];

/// The 3×3 map from the decorrelated space to RGB, on a device.
#[derive(Debug, Clone)]
pub struct ColorDecorrelation {
    /// The normalized matrix [3 (RGB out), 3 (decorrelated in)].
    matrix: Tensor,
    /// Its transpose, for the backward pass.
    transposed: Tensor,
}

/// Lucid's matrix divided by the largest Euclidean norm of its columns.
pub fn normalized_matrix() -> [[f32; 3]; 3] {
    let m = COLOR_CORRELATION_SVD_SQRT;
    let max_norm = (0..3)
        .map(|col| {
            (0..3)
                .map(|row| m[row][col] * m[row][col])
                .sum::<f32>()
                .sqrt()
        })
        .fold(0f32, f32::max);
    m.map(|row| row.map(|v| v / max_norm))
}

impl ColorDecorrelation {
    /// The matrix on `device`.
    pub fn new(device: &Device) -> Result<Self> {
        let m = normalized_matrix();
        let flat: Vec<f32> = m.iter().flatten().copied().collect();
        let matrix = Tensor::from_vec(flat, (3, 3), device)?;
        let transposed = matrix.t()?.contiguous()?;
        Ok(ColorDecorrelation { matrix, transposed })
    }

    /// RGB [B, 3, H, W] from decorrelated channels [B, 3, H, W]: `rgb[c] = Σ_k M[c,k] t[k]`,
    /// Lucid's `t @ M.T` over the channel axis.
    pub fn to_rgb(&self, t: &Tensor) -> Result<Tensor> {
        mix_channels(&self.matrix, t)
    }

    /// The adjoint: the signal on the decorrelated channels for a signal on RGB.
    pub fn backward(&self, grad_rgb: &Tensor) -> Result<Tensor> {
        mix_channels(&self.transposed, grad_rgb)
    }
}

/// `out[b, c] = Σ_k m[c, k] x[b, k]` for x [B, 3, H, W], as one batched matmul.
fn mix_channels(m: &Tensor, x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let flat = x.reshape((b, c, h * w))?;
    Ok(m.broadcast_matmul(&flat)?.reshape((b, c, h, w))?)
}
