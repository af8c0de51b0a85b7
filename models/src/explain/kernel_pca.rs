//! KPCA-CAM's projection: pytorch-grad-cam's `get_2d_projection_kernel`, which projects the
//! centred activations of each position on the first kernel principal component of
//! scikit-learn's `KernelPCA(n_components=1, kernel="sigmoid")` (γ = 1 / channels, c₀ = 1).

use candle_core::Tensor;

use crate::Result;

/// Power-iteration steps for the leading eigenvector (the matrices are one row per position of
/// a CAM layer: 4 to a few hundred).
const ITERATIONS: usize = 2000;

/// The activations `a` [1, K, h, w] projected on their first sigmoid-kernel principal component:
/// [h, w], the eigenvector of the centred kernel matrix with the largest eigenvalue λ, times √λ,
/// with scikit-learn's sign (its largest entry in magnitude positive, `svd_flip`).
pub(crate) fn kernel_projection(a: &Tensor) -> Result<Tensor> {
    let (_, k, h, w) = a.dims4()?;
    let n = h * w;
    let x = a.squeeze(0)?.reshape((k, n))?.t()?.contiguous()?;
    let x = x.broadcast_sub(&x.mean_keepdim(0)?)?;
    let kernel = x.matmul(&x.t()?)?.affine(1.0 / k as f64, 1.0)?.tanh()?;
    // scikit-learn's KernelCenterer.
    let column_means = kernel.mean_keepdim(0)?;
    let row_means = kernel.mean_keepdim(1)?;
    let all = column_means.mean_all()?;
    let centred = kernel
        .broadcast_sub(&column_means)?
        .broadcast_sub(&row_means)?
        .broadcast_add(&all)?;
    let (vector, value) = largest_eigenpair(&centred)?;
    let scale = value.max(0.0).sqrt();
    Ok(vector.affine(f64::from(scale), 0.0)?.reshape((h, w))?)
}

/// The unit eigenvector [n, 1] of the symmetric `m` with the largest (algebraic) eigenvalue, and
/// that eigenvalue, by power iteration on `m` shifted by a bound on its spectral radius (so
/// that every eigenvalue is ≥ 0 and the largest stays largest), signed as scikit-learn signs it.
fn largest_eigenpair(m: &Tensor) -> Result<(Tensor, f32)> {
    let n = m.dim(0)?;
    // Gershgorin: no eigenvalue exceeds the largest absolute row sum in magnitude.
    let shift = m.abs()?.sum(1)?.max(0)?.to_scalar::<f32>()?;
    let eye = Tensor::eye(n, m.dtype(), m.device())?;
    let shifted = m.add(&eye.affine(f64::from(shift), 0.0)?)?;
    let start: Vec<f32> = (0..n)
        .map(|i| 1.0 + (i as f32 * 0.618_034).fract())
        .collect();
    let mut v = Tensor::from_vec(start, (n, 1), m.device())?.to_dtype(m.dtype())?;
    for _ in 0..ITERATIONS {
        let next = shifted.matmul(&v)?;
        let norm = next.sqr()?.sum_all()?.sqrt()?.affine(1.0, 1e-30)?;
        v = next.broadcast_div(&norm)?;
    }
    let value = v
        .t()?
        .matmul(&m.matmul(&v)?)?
        .flatten_all()?
        .to_vec1::<f32>()?[0];
    let entries = v.flatten_all()?.to_vec1::<f32>()?;
    let largest = entries
        .iter()
        .copied()
        .fold(0f32, |best, e| if e.abs() > best.abs() { e } else { best });
    let v = if largest < 0.0 { v.neg()? } else { v };
    Ok((v, value))
}
