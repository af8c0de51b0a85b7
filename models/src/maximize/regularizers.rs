//! The image regularizers of Yosinski et al. 2015 (deep-visualization-toolbox's
//! `gradient_optimizer.py`): L2 decay, Gaussian blur, and clipping the pixels of small norm or
//! small contribution (below a percentile) to zero, plus the clip to the valid pixel range.
//! All act on a batch [B, 3, H, W] in mean-subtracted 0–255 pixel units, with tensor ops.

use candle_core::{DType, Device, Tensor, D};

use crate::Result;

/// `x · (1 − decay)`.
pub fn l2_decay(x: &Tensor, decay: f64) -> Result<Tensor> {
    Ok(x.affine(1.0 - decay, 0.0)?)
}

/// Clamps each channel to `[lo[c], hi[c]]` (the valid range of mean-subtracted pixels).
pub fn clip_range(x: &Tensor, lo: &Tensor, hi: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_maximum(lo)?.broadcast_minimum(hi)?)
}

/// scipy's `gaussian_filter(x, sigma)` on each image and channel (truncate 4, mode `reflect`),
/// as two matmuls with banded matrices that hold the reflection at the borders.
#[derive(Debug, Clone)]
pub struct GaussianBlur {
    /// [H, H]: out = rows · x.
    rows: Tensor,
    /// [W, W]: out = x · cols_t.
    cols_t: Tensor,
}

/// scipy's reflect mode (`d c b a | a b c d | d c b a`): the source index of position `i`.
fn reflect(i: i64, n: i64) -> usize {
    let period = 2 * n;
    let mut j = i.rem_euclid(period);
    if j >= n {
        j = period - 1 - j;
    }
    j as usize
}

/// scipy's `_gaussian_kernel1d(sigma, 0, radius)` with radius `int(4 σ + 0.5)`.
pub fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|x| (-0.5 / (sigma * sigma) * (x * x) as f64).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    weights.into_iter().map(|w| w / total).collect()
}

/// The [n, n] matrix of a 1-D Gaussian filter: `out[i] = Σ_j M[i, j] in[j]`.
fn blur_matrix(n: usize, sigma: f64) -> Vec<f32> {
    let kernel = gaussian_kernel(sigma);
    let radius = (kernel.len() / 2) as i64;
    let mut m = vec![0f64; n * n];
    for i in 0..n {
        for (k, weight) in kernel.iter().enumerate() {
            let src = reflect(i as i64 + k as i64 - radius, n as i64);
            m[i * n + src] += weight;
        }
    }
    m.into_iter().map(|v| v as f32).collect()
}

impl GaussianBlur {
    /// The blur of width `sigma` pixels for `h`×`w` images on `device`.
    pub fn new(sigma: f64, h: usize, w: usize, device: &Device) -> Result<Self> {
        let rows = Tensor::from_vec(blur_matrix(h, sigma), (h, h), device)?;
        let cols_t = Tensor::from_vec(blur_matrix(w, sigma), (w, w), device)?
            .t()?
            .contiguous()?;
        Ok(GaussianBlur { rows, cols_t })
    }

    /// The blurred batch.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self
            .rows
            .broadcast_matmul(x)?
            .broadcast_matmul(&self.cols_t)?)
    }
}

/// How many of `n` values lie strictly below numpy's `percentile(values, pct)` (linear
/// interpolation between order statistics), when the values are distinct.
pub fn count_below_percentile(n: usize, pct: f64) -> usize {
    if n == 0 {
        return 0;
    }
    let position = pct.clamp(0.0, 100.0) / 100.0 * (n - 1) as f64;
    let below = position.floor() as usize;
    if position > below as f64 {
        below + 1
    } else {
        below
    }
}

/// A mask [B, N] (1.0 / 0.0) of the values of each row of `values` [B, N] strictly below that
/// row's `pct` percentile (numpy's linear rule).
///
/// Found by bisection on the threshold with tensor ops, since candle sorts rows only up to a few
/// thousand values on the GPU. After 40 halvings of the row's range the bracket holds only the
/// threshold's own value (f32 has 24 bits), so the mask differs from numpy's only on exact ties,
/// and those are zeros already zeroed.
pub fn below_percentile(values: &Tensor, pct: f64) -> Result<Tensor> {
    let (_, n) = values.dims2()?;
    let wanted = count_below_percentile(n, pct) as f64;
    let values = values.to_dtype(DType::F32)?;
    let mut lo = values.min_keepdim(D::Minus1)?;
    let mut hi = values.max_keepdim(D::Minus1)?;
    if wanted <= 0.0 {
        return Ok(values.zeros_like()?);
    }
    // Invariant: count(v < lo) < wanted ≤ count(v < hi); the wanted-th smallest value is in
    // [lo, hi), which shrinks to it.
    for _ in 0..40 {
        let mid = lo.add(&hi)?.affine(0.5, 0.0)?;
        let count = values
            .broadcast_lt(&mid)?
            .to_dtype(DType::F32)?
            .sum_keepdim(D::Minus1)?;
        let enough = count.ge(wanted)?;
        hi = enough.where_cond(&mid, &hi)?;
        lo = enough.where_cond(&lo, &mid)?;
    }
    Ok(values.broadcast_lt(&hi)?.to_dtype(DType::F32)?)
}

/// Zeroes the pixels (all channels) whose norm over channels is below the `pct` percentile of
/// their image (θ_n_pct).
pub fn clip_small_norm(x: &Tensor, pct: f64) -> Result<Tensor> {
    let (b, _, h, w) = x.dims4()?;
    let norms = x.sqr()?.sum(1)?.sqrt()?.reshape((b, h * w))?;
    let small = below_percentile(&norms, pct)?.reshape((b, 1, h, w))?;
    Ok(x.broadcast_mul(&small.affine(-1.0, 1.0)?)?)
}

/// Zeroes the pixels whose contribution |Σ_c grad·(−x)| (the first-order change of the
/// objective if the pixel were set to 0) is below the `pct` percentile of their image (θ_c_pct).
pub fn clip_small_contribution(x: &Tensor, grad: &Tensor, pct: f64) -> Result<Tensor> {
    let (b, _, h, w) = x.dims4()?;
    let benefit = grad.mul(x)?.sum(1)?.abs()?.reshape((b, h * w))?;
    let small = below_percentile(&benefit, pct)?.reshape((b, 1, h, w))?;
    Ok(x.broadcast_mul(&small.affine(-1.0, 1.0)?)?)
}
