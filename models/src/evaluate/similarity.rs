//! How alike two relevance maps are, as the randomization sanity check measures it: Spearman's
//! rank correlation (SciPy's `spearmanr`: ties get their average rank) and the structural
//! similarity index (scikit-image's `structural_similarity` with its defaults: a 7×7 uniform
//! window, K1 = 0.01, K2 = 0.03, the sample covariance, the mean over the positions where the
//! window fits).

use candle_core::{DType, Device, Tensor};

use crate::{Error, Result};

/// scikit-image's default window side.
const SSIM_WINDOW: usize = 7;
/// scikit-image's K1 and K2.
const SSIM_K1: f64 = 0.01;
const SSIM_K2: f64 = 0.03;

/// Spearman's rank correlation of two maps of the same shape (every value one observation); 0
/// when either is constant (SciPy gives NaN there: no ranking to correlate).
pub fn spearman(a: &Tensor, b: &Tensor) -> Result<f32> {
    if a.dims() != b.dims() {
        return Err(Error::InvalidArgument(format!(
            "cannot correlate maps of shapes {:?} and {:?}",
            a.dims(),
            b.dims()
        )));
    }
    // Ranking is a sort: it is done on the host, where the map is one small image.
    let host = |t: &Tensor| -> Result<Vec<f64>> {
        Ok(t.to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .flatten_all()?
            .to_vec1::<f64>()?)
    };
    let (ra, rb) = (ranks(&host(a)?), ranks(&host(b)?));
    Ok(pearson(&ra, &rb) as f32)
}

/// The rank of each value (1-based), tied values sharing the mean of their ranks.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end (0-based) hold ranks start+1..=end: their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Pearson's correlation; 0 when either side does not vary.
fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    if saa == 0.0 || sbb == 0.0 {
        return 0.0;
    }
    sab / (saa * sbb).sqrt()
}

/// The mean structural similarity of two maps [H, W] whose values span `data_range`.
pub fn ssim(a: &Tensor, b: &Tensor, data_range: f64) -> Result<f32> {
    let (h, w) = a.dims2()?;
    if b.dims() != a.dims() {
        return Err(Error::InvalidArgument(format!(
            "cannot compare maps of shapes {:?} and {:?}",
            a.dims(),
            b.dims()
        )));
    }
    if h < SSIM_WINDOW || w < SSIM_WINDOW {
        return Err(Error::InvalidArgument(format!(
            "SSIM needs maps of at least {SSIM_WINDOW}×{SSIM_WINDOW} pixels, not {h}×{w}"
        )));
    }
    // In f64, as scikit-image computes for f64 maps: the variances are differences of close
    // squares.
    let x = a.to_dtype(DType::F64)?.reshape((1, 1, h, w))?;
    let y = b
        .to_dtype(DType::F64)?
        .to_device(x.device())?
        .reshape((1, 1, h, w))?;
    // The window's mean at every position it fits: the positions scikit-image averages over.
    let mean = |t: &Tensor| t.avg_pool2d_with_stride(SSIM_WINDOW, 1);
    let (ux, uy) = (mean(&x)?, mean(&y)?);
    let (uxx, uyy, uxy) = (mean(&x.sqr()?)?, mean(&y.sqr()?)?, mean(&x.mul(&y)?)?);
    let np = (SSIM_WINDOW * SSIM_WINDOW) as f64;
    let cov_norm = np / (np - 1.0);
    let vx = uxx.sub(&ux.sqr()?)?.affine(cov_norm, 0.0)?;
    let vy = uyy.sub(&uy.sqr()?)?.affine(cov_norm, 0.0)?;
    let vxy = uxy.sub(&ux.mul(&uy)?)?.affine(cov_norm, 0.0)?;
    let c1 = (SSIM_K1 * data_range).powi(2);
    let c2 = (SSIM_K2 * data_range).powi(2);
    let a1 = ux.mul(&uy)?.affine(2.0, c1)?;
    let a2 = vxy.affine(2.0, c2)?;
    let b1 = ux.sqr()?.add(&uy.sqr()?)?.affine(1.0, c1)?;
    let b2 = vx.add(&vy)?.affine(1.0, c2)?;
    let s = a1.mul(&a2)?.div(&b1.mul(&b2)?)?;
    Ok(s.mean_all()?.to_device(&Device::Cpu)?.to_scalar::<f64>()? as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_their_mean_rank() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn a_map_is_fully_like_itself_and_unlike_its_reverse() {
        let a = Tensor::arange(0f32, 100.0, &Device::Cpu)
            .unwrap()
            .reshape((10, 10))
            .unwrap();
        let reversed = a.affine(-1.0, 99.0).unwrap();
        assert!((spearman(&a, &a).unwrap() - 1.0).abs() < 1e-6);
        assert!((spearman(&a, &reversed).unwrap() + 1.0).abs() < 1e-6);
        assert!((ssim(&a, &a, 99.0).unwrap() - 1.0).abs() < 1e-5);
    }
}
