//! Principal component analysis of codes: the leading eigenvectors of their covariance, found by
//! block subspace iteration with a Rayleigh–Ritz step.
//!
//! Hand-written because only a few leading components of an N×D matrix are needed: the products
//! with the data run as candle matmuls on the model's device, and what remains is a small
//! (k+p)×(k+p) symmetric eigenproblem solved by Jacobi rotations, instead of bringing in a dense
//! linear-algebra crate for a full D×D decomposition. Deterministic for a seed (the seed only
//! picks the starting block; the result is the same up to rounding for any seed), and each
//! component's sign is fixed so that its largest loading is positive.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result};

/// A fitted projection.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Pca {
    /// Components kept.
    pub components: usize,
    /// The data, centred and projected: `n × components`, row-major.
    pub projected: Vec<f32>,
    /// The component directions, `components × dim`, row-major, unit length.
    pub axes: Vec<f32>,
    /// Variance along each component.
    pub explained_variance: Vec<f32>,
    /// Fraction of the total variance each component explains.
    pub explained_variance_ratio: Vec<f32>,
}

/// Iterations at most; stops earlier once the Ritz values settle.
const MAX_ITERATIONS: usize = 200;
/// Extra directions iterated alongside the wanted ones (faster, surer convergence).
const OVERSAMPLING: usize = 8;

/// The first `components` principal components of `data` (`n` rows of `dim` values).
pub fn pca(data: &[f32], dim: usize, components: usize, seed: u64, device: &Device) -> Result<Pca> {
    if dim == 0 || !data.len().is_multiple_of(dim) || data.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "PCA needs rows of {dim} values, got {} values",
            data.len()
        )));
    }
    let n = data.len() / dim;
    if components == 0 || components > dim.min(n) {
        return Err(Error::InvalidArgument(format!(
            "cannot take {components} principal components of {n} points in {dim} dimensions"
        )));
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(
            "the codes hold NaN or infinite values".into(),
        ));
    }
    let x = Tensor::from_slice(data, (n, dim), device)?;
    let mean = x.mean_keepdim(0)?;
    let xc = x.broadcast_sub(&mean)?;
    let total_variance = xc.sqr()?.sum_all()?.to_scalar::<f32>()? as f64 / n as f64;
    // The covariance applied to the columns of Q, as Xcᵀ(Xc Q) / n on the device.
    let apply = |q: &[Vec<f64>]| -> Result<Vec<Vec<f64>>> {
        let flat: Vec<f32> = (0..dim)
            .flat_map(|r| q.iter().map(move |col| col[r] as f32))
            .collect();
        let qt = Tensor::from_vec(flat, (dim, q.len()), device)?;
        let cq = xc
            .t()?
            .matmul(&xc.matmul(&qt)?)?
            .affine(1.0 / n as f64, 0.0)?;
        let rows = cq
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .to_vec2::<f64>()?;
        Ok((0..q.len())
            .map(|c| rows.iter().map(|row| row[c]).collect())
            .collect())
    };
    let (values, axes) = leading_axes(dim, n, components, seed, apply)?;
    let w = Tensor::from_slice(&axes, (components, dim), device)?;
    let projected = xc
        .matmul(&w.t()?)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let (explained_variance, explained_variance_ratio) =
        explained(&values, components, total_variance);
    Ok(Pca {
        components,
        projected,
        axes,
        explained_variance,
        explained_variance_ratio,
    })
}

/// The `components` leading eigenvalues (all `m` Ritz values, descending) and unit eigenvectors
/// (`components × dim`, row-major, each signed so that its largest loading is positive) of the
/// symmetric positive semi-definite `dim × dim` operator `apply` (of `n` points), by block
/// subspace iteration from a seeded random block.
/// The variance along each of the first `components` axes (the leading eigenvalues `values`)
/// and the fraction of `total_variance` each explains.
pub(super) fn explained(
    values: &[f64],
    components: usize,
    total_variance: f64,
) -> (Vec<f32>, Vec<f32>) {
    let first = values.iter().take(components);
    let variance = first.clone().map(|&v| v as f32).collect();
    let ratio = first
        .map(|&v| {
            if total_variance > 0.0 {
                (v / total_variance) as f32
            } else {
                0.0
            }
        })
        .collect();
    (variance, ratio)
}

pub(super) fn leading_axes(
    dim: usize,
    n: usize,
    components: usize,
    seed: u64,
    apply: impl Fn(&[Vec<f64>]) -> Result<Vec<Vec<f64>>>,
) -> Result<(Vec<f64>, Vec<f32>)> {
    let m = (components + OVERSAMPLING).min(dim).min(n);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Q: dim × m, orthonormal columns, kept on the host in f64 between products.
    let mut q: Vec<Vec<f64>> = (0..m)
        .map(|_| (0..dim).map(|_| rng.random::<f64>() - 0.5).collect())
        .collect();
    orthonormalize(&mut q);
    let mut previous: Vec<f64> = vec![f64::NAN; components];
    let mut ritz: (Vec<f64>, Vec<Vec<f64>>) = (vec![], vec![]);
    for _ in 0..MAX_ITERATIONS {
        let z = apply(&q)?;
        // Rayleigh–Ritz: the small matrix T = Qᵀ C Q and its eigenvectors.
        let t: Vec<Vec<f64>> = (0..m)
            .map(|i| (0..m).map(|j| dot(&q[i], &z[j])).collect())
            .collect();
        let (values, vectors) = jacobi_eigen(t);
        // Rotate Q onto the Ritz vectors, then take the next power step from them.
        q = (0..m)
            .map(|c| {
                (0..dim)
                    .map(|r| (0..m).map(|j| q[j][r] * vectors[j][c]).sum())
                    .collect()
            })
            .collect();
        let settled = values
            .iter()
            .zip(&previous)
            .take(components)
            .all(|(v, p)| (v - p).abs() <= 1e-9 * v.abs().max(1e-30));
        previous = values.iter().take(components).copied().collect();
        ritz = (values, vectors);
        if settled {
            break;
        }
        let mut next = apply(&q)?;
        orthonormalize(&mut next);
        q = next;
    }
    let values = ritz.0;
    let mut axes: Vec<f32> = Vec::with_capacity(components * dim);
    for axis in q.iter_mut().take(components) {
        let largest = axis
            .iter()
            .copied()
            .fold(0f64, |a, v| if v.abs() > a.abs() { v } else { a });
        if largest < 0.0 {
            axis.iter_mut().for_each(|v| *v = -*v);
        }
        axes.extend(axis.iter().map(|&v| v as f32));
    }
    Ok((values, axes))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Modified Gram–Schmidt, twice for stability; a column that vanishes is replaced by a unit
/// vector orthogonal to the others.
fn orthonormalize(columns: &mut [Vec<f64>]) {
    let dim = columns.first().map_or(0, Vec::len);
    for i in 0..columns.len() {
        for _ in 0..2 {
            for j in 0..i {
                let (done, rest) = columns.split_at_mut(i);
                let proj = dot(&rest[0], &done[j]);
                rest[0]
                    .iter_mut()
                    .zip(&done[j])
                    .for_each(|(v, u)| *v -= proj * u);
            }
        }
        let norm = dot(&columns[i], &columns[i]).sqrt();
        if norm > 1e-300 {
            columns[i].iter_mut().for_each(|v| *v /= norm);
        } else {
            columns[i] = (0..dim)
                .map(|r| if r == i % dim.max(1) { 1.0 } else { 0.0 })
                .collect();
        }
    }
}

/// Eigenvalues (descending) and eigenvectors (`vectors[row][column]`, column `c` belonging to
/// value `c`) of a small symmetric matrix, by cyclic Jacobi rotations.
fn jacobi_eigen(mut a: Vec<Vec<f64>>) -> (Vec<f64>, Vec<Vec<f64>>) {
    let m = a.len();
    let mut v: Vec<Vec<f64>> = (0..m)
        .map(|i| (0..m).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect();
    for _ in 0..100 {
        let off: f64 = (0..m)
            .flat_map(|i| (0..m).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i][j] * a[i][j])
            .sum();
        let scale: f64 = (0..m).map(|i| a[i][i] * a[i][i]).sum();
        if off <= 1e-30 * scale.max(1e-300) {
            break;
        }
        for p in 0..m {
            for r in p + 1..m {
                if a[p][r].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[r][r] - a[p][p]) / (2.0 * a[p][r]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for row in a.iter_mut() {
                    let (akp, akr) = (row[p], row[r]);
                    row[p] = c * akp - s * akr;
                    row[r] = s * akp + c * akr;
                }
                let (before, from_r) = a.split_at_mut(r);
                for (x, y) in before[p].iter_mut().zip(from_r[0].iter_mut()) {
                    let (apk, ark) = (*x, *y);
                    *x = c * apk - s * ark;
                    *y = s * apk + c * ark;
                }
                for row in v.iter_mut() {
                    let (vp, vr) = (row[p], row[r]);
                    row[p] = c * vp - s * vr;
                    row[r] = s * vp + c * vr;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| a[j][j].total_cmp(&a[i][i]));
    let values = order.iter().map(|&i| a[i][i]).collect();
    let vectors = (0..m)
        .map(|row| order.iter().map(|&c| v[row][c]).collect())
        .collect();
    (values, vectors)
}
