//! What deletion and insertion put in place of the pixels they take away: zeros (of the
//! normalized input, the dataset's mean colour) or the input blurred as the RISE paper's code
//! blurs it: a depthwise 11×11 convolution, zero-padded, whose kernel is a unit impulse passed
//! through SciPy's `gaussian_filter(σ = 5)` (truncated at 4σ, borders reflected). The kernel is
//! separable, so the blur runs as two matrix products on the input's device.

use candle_core::{Device, Tensor};

use crate::Result;

/// The side of the RISE blur kernel.
pub const BLUR_SIDE: usize = 11;
/// Its Gaussian's standard deviation.
pub const BLUR_SIGMA: f64 = 5.0;

/// What replaces the pixels taken away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Substrate {
    /// Zeros of the normalized input.
    Zero,
    /// The input blurred as RISE blurs it.
    Blur,
}

/// One axis of the RISE kernel: SciPy's `gaussian_filter1d` of a unit impulse at the centre of
/// `side` samples (`mode='reflect'`: d c b a | a b c d | d c b a; `truncate=4`).
pub fn rise_kernel_1d(side: usize, sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|t| (-0.5 * (t * t) as f64 / (sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let n = side as i64;
    // Half-sample symmetric reflection of an index into 0..n.
    let reflect = |i: i64| {
        let period = 2 * n;
        let m = i.rem_euclid(period);
        if m < n {
            m
        } else {
            period - 1 - m
        }
    };
    let centre = n / 2;
    (0..n)
        .map(|j| {
            (-radius..=radius)
                .filter(|&t| reflect(j + t) == centre)
                .map(|t| weights[(t + radius) as usize] / total)
                .sum()
        })
        .collect()
}

/// The [size, size] matrix of a zero-padded 1-D convolution with `kernel` (odd length),
/// centred: row i takes samples i − r … i + r.
fn banded(size: usize, kernel: &[f64], device: &Device) -> Result<Tensor> {
    let r = (kernel.len() / 2) as i64;
    let mut m = vec![0f32; size * size];
    for i in 0..size as i64 {
        for (k, w) in kernel.iter().enumerate() {
            let j = i + k as i64 - r;
            if (0..size as i64).contains(&j) {
                m[i as usize * size + j as usize] = *w as f32;
            }
        }
    }
    Ok(Tensor::from_vec(m, (size, size), device)?)
}

/// `x` [..., H, W] as the substrate says.
pub fn substrate_of(x: &Tensor, substrate: Substrate) -> Result<Tensor> {
    match substrate {
        Substrate::Zero => Ok(x.zeros_like()?),
        Substrate::Blur => {
            let rank = x.rank();
            let (h, w) = (x.dim(rank - 2)?, x.dim(rank - 1)?);
            let kernel = rise_kernel_1d(BLUR_SIDE, BLUR_SIGMA);
            let rows = banded(h, &kernel, x.device())?;
            let cols = banded(w, &kernel, x.device())?;
            Ok(rows
                .broadcast_matmul(&x.contiguous()?)?
                .broadcast_matmul(&cols.t()?)?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rise_kernel_sums_to_one_and_is_symmetric() {
        let k = rise_kernel_1d(11, 5.0);
        assert_eq!(k.len(), 11);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for i in 0..11 {
            assert!((k[i] - k[10 - i]).abs() < 1e-15);
        }
        // Reflection folds the tails back in: flatter than the plain sampled Gaussian.
        assert!(k[5] < 0.15 && k[0] > 0.05, "{k:?}");
    }
}
