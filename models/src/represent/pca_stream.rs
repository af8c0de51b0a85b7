//! Principal component analysis of codes that stream by: one pass sums the rows and their outer
//! products (in blocks, as matmuls on the model's device, accumulated in f64), the components
//! are the leading eigenvectors of the covariance those sums give (the same subspace iteration
//! as [`super::pca::pca`]), and each row is projected afterwards on its own. Memory is
//! `dim × dim` whatever the number of rows: the map of a million codes needs no million codes
//! in memory.

use candle_core::{DType, Device, Tensor};

use super::pca::{explained, leading_axes};
use crate::{Error, Result};

/// Rows multiplied together at a time.
const BLOCK_ROWS: usize = 256;

/// The sums a PCA needs, taken a row at a time.
pub struct PcaAccumulator {
    dim: usize,
    device: Device,
    rows: usize,
    /// The first row: every row is taken less it, which leaves the covariance as it is and keeps
    /// the sums small (no cancellation when the mean is large beside the spread).
    shift: Vec<f32>,
    /// Σ (x − shift), per value.
    sum: Vec<f64>,
    /// Σ (x − shift)(x − shift)ᵀ, `dim × dim`.
    products: Vec<f64>,
    /// Shifted rows not yet multiplied, at most [`BLOCK_ROWS`].
    block: Vec<f32>,
}

impl PcaAccumulator {
    /// An empty accumulator of rows of `dim` values, multiplying on `device`.
    pub fn new(dim: usize, device: &Device) -> PcaAccumulator {
        PcaAccumulator {
            dim,
            device: device.clone(),
            rows: 0,
            shift: Vec::new(),
            sum: vec![0.0; dim],
            products: vec![0.0; dim * dim],
            block: Vec::with_capacity(BLOCK_ROWS * dim),
        }
    }

    /// Takes the next row.
    pub fn push(&mut self, row: &[f32]) -> Result<()> {
        if row.len() != self.dim {
            return Err(Error::InvalidArgument(format!(
                "PCA needs rows of {} values, got {}",
                self.dim,
                row.len()
            )));
        }
        if row.iter().any(|v| !v.is_finite()) {
            return Err(Error::InvalidArgument(
                "the codes hold NaN or infinite values".into(),
            ));
        }
        if self.rows == 0 {
            self.shift = row.to_vec();
        }
        for ((s, &v), &c) in self.sum.iter_mut().zip(row).zip(&self.shift) {
            let shifted = v - c;
            *s += f64::from(shifted);
            self.block.push(shifted);
        }
        self.rows += 1;
        if self.block.len() >= BLOCK_ROWS * self.dim {
            self.flush()?;
        }
        Ok(())
    }

    /// Adds the waiting rows' outer products.
    fn flush(&mut self) -> Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let rows = self.block.len() / self.dim;
        let x = Tensor::from_slice(&self.block, (rows, self.dim), &self.device)?;
        let gram = x
            .t()?
            .matmul(&x)?
            .to_dtype(DType::F64)?
            .to_device(&Device::Cpu)?
            .flatten_all()?
            .to_vec1::<f64>()?;
        self.products
            .iter_mut()
            .zip(gram)
            .for_each(|(p, g)| *p += g);
        self.block.clear();
        Ok(())
    }

    /// The first `components` principal components of the rows taken (`seed` picks the
    /// iteration's starting block, as [`super::pca::pca`]'s).
    pub fn fit(mut self, components: usize, seed: u64) -> Result<PcaFit> {
        self.flush()?;
        let (n, dim) = (self.rows, self.dim);
        if components == 0 || components > dim.min(n) {
            return Err(Error::InvalidArgument(format!(
                "cannot take {components} principal components of {n} points in {dim} dimensions"
            )));
        }
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n as f64).collect();
        let covariance: Vec<f64> = (0..dim * dim)
            .map(|i| self.products[i] / n as f64 - mean[i / dim] * mean[i % dim])
            .collect();
        let total_variance: f64 = (0..dim).map(|i| covariance[i * dim + i]).sum();
        let c = Tensor::from_vec(covariance, (dim, dim), &self.device)?;
        let apply = |q: &[Vec<f64>]| -> Result<Vec<Vec<f64>>> {
            let flat: Vec<f64> = (0..dim)
                .flat_map(|r| q.iter().map(move |col| col[r]))
                .collect();
            let rows = c
                .matmul(&Tensor::from_vec(flat, (dim, q.len()), &self.device)?)?
                .to_device(&Device::Cpu)?
                .to_vec2::<f64>()?;
            Ok((0..q.len())
                .map(|col| rows.iter().map(|row| row[col]).collect())
                .collect())
        };
        let (values, axes) = leading_axes(dim, n, components, seed, apply)?;
        let (explained_variance, explained_variance_ratio) =
            explained(&values, components, total_variance);
        Ok(PcaFit {
            components,
            mean: mean
                .iter()
                .zip(&self.shift)
                .map(|(m, &s)| m + f64::from(s))
                .collect(),
            axes,
            explained_variance,
            explained_variance_ratio,
        })
    }
}

/// A projection fitted to streamed rows.
#[derive(Clone, Debug)]
pub struct PcaFit {
    /// Components kept.
    pub components: usize,
    /// The rows' mean.
    pub mean: Vec<f64>,
    /// The component directions, `components × dim`, row-major, unit length.
    pub axes: Vec<f32>,
    /// Variance along each component.
    pub explained_variance: Vec<f32>,
    /// Fraction of the total variance each component explains.
    pub explained_variance_ratio: Vec<f32>,
}

impl PcaFit {
    /// `row`, centred and projected on the components.
    pub fn project(&self, row: &[f32]) -> Vec<f32> {
        self.axes
            .chunks(self.mean.len().max(1))
            .map(|axis| {
                row.iter()
                    .zip(&self.mean)
                    .zip(axis)
                    .map(|((&v, m), &a)| (f64::from(v) - m) * f64::from(a))
                    .sum::<f64>() as f32
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::represent::pca::pca;

    /// Rows far from the origin (a large mean beside the spread), spread unevenly.
    fn rows(n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim)
            .map(|i| {
                let (r, c) = ((i / dim) as f32, (i % dim) as f32);
                100.0 + (r * 0.37 + c * 1.3).sin() * (c + 1.0) + (r * c * 0.011).cos()
            })
            .collect()
    }

    #[test]
    fn the_streamed_fit_equals_the_whole_one() {
        let (n, dim) = (700, 24);
        let data = rows(n, dim);
        let whole = pca(&data, dim, 2, 0, &Device::Cpu).unwrap();
        let mut acc = PcaAccumulator::new(dim, &Device::Cpu);
        for row in data.chunks(dim) {
            acc.push(row).unwrap();
        }
        let fit = acc.fit(2, 0).unwrap();
        let projected: Vec<f32> = data.chunks(dim).flat_map(|r| fit.project(r)).collect();
        let scale = whole.projected.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (i, (a, b)) in projected.iter().zip(&whole.projected).enumerate() {
            assert!((a - b).abs() <= 1e-4 * scale, "value {i}: {a} vs {b}");
        }
        for (a, b) in fit.explained_variance.iter().zip(&whole.explained_variance) {
            assert!((a - b).abs() <= 1e-4 * b.abs(), "{a} vs {b}");
        }
    }

    #[test]
    fn bad_rows_are_refused() {
        let mut acc = PcaAccumulator::new(3, &Device::Cpu);
        assert!(acc.push(&[1.0, 2.0]).is_err());
        assert!(acc.push(&[1.0, f32::NAN, 2.0]).is_err());
        acc.push(&[1.0, 2.0, 3.0]).unwrap();
        assert!(acc.fit(2, 0).is_err(), "two components of one point");
    }
}
