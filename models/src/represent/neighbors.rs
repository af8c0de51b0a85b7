//! Nearest neighbours in code space by cosine similarity, and exact k-nearest-neighbour lists by
//! Euclidean distance (what t-SNE's affinities are built from). The products run on the device.

use candle_core::{DType, Device, Tensor, D};

use crate::{Error, Result};

/// A neighbouring image.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Neighbor {
    /// Its row in the codes.
    pub index: usize,
    /// Cosine similarity to the query (1 = same direction).
    pub similarity: f32,
}

fn matrix(codes: &[f32], dim: usize, device: &Device) -> Result<Tensor> {
    if dim == 0 || !codes.len().is_multiple_of(dim) {
        return Err(Error::InvalidArgument(format!(
            "{} code values do not make rows of {dim}",
            codes.len()
        )));
    }
    Ok(Tensor::from_slice(codes, (codes.len() / dim, dim), device)?)
}

/// Rows scaled to unit length (zero rows stay zero).
fn unit_rows(x: &Tensor) -> Result<Tensor> {
    let norm = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12f32, f32::MAX)?;
    Ok(x.broadcast_div(&norm)?)
}

/// The `k` rows of `codes` (`dim` values each) most similar to `query` by cosine similarity,
/// most similar first, leaving out the rows in `exclude`. Ties go to the earlier row.
pub fn nearest_by_cosine(
    codes: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    exclude: &[usize],
    device: &Device,
) -> Result<Vec<Neighbor>> {
    if query.len() != dim {
        return Err(Error::InvalidArgument(format!(
            "the query code has {} values, the folder's codes {dim}",
            query.len()
        )));
    }
    let x = unit_rows(&matrix(codes, dim, device)?)?;
    let q = unit_rows(&Tensor::from_slice(query, (1, dim), device)?)?;
    let sims = x
        .matmul(&q.t()?)?
        .flatten_all()?
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?;
    let mut order: Vec<usize> = (0..sims.len()).filter(|i| !exclude.contains(i)).collect();
    order.sort_by(|&a, &b| sims[b].total_cmp(&sims[a]).then(a.cmp(&b)));
    Ok(order
        .into_iter()
        .take(k)
        .map(|index| Neighbor {
            index,
            similarity: sims[index],
        })
        .collect())
}

/// For every row of `codes`, its `k` nearest other rows by Euclidean distance, nearest first
/// (ties to the earlier row), as `(index, distance)`. Distances come from
/// `|a|² + |b|² − 2a·b` computed in blocks of rows on `device`.
pub fn knn_euclidean(
    codes: &[f32],
    dim: usize,
    k: usize,
    device: &Device,
) -> Result<Vec<Vec<(usize, f32)>>> {
    let x = matrix(codes, dim, device)?;
    let n = x.dim(0)?;
    let k = k.min(n.saturating_sub(1));
    let sq = x.sqr()?.sum(D::Minus1)?; // [n]
    let sq_host = sq.to_device(&Device::Cpu)?.to_vec1::<f32>()?;
    const BLOCK: usize = 512;
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let rows = BLOCK.min(n - start);
        let block = x.narrow(0, start, rows)?;
        let dots = block
            .matmul(&x.t()?)?
            .to_device(&Device::Cpu)?
            .to_vec2::<f32>()?;
        for (r, row) in dots.iter().enumerate() {
            let i = start + r;
            let dist = |j: usize| (sq_host[i] + sq_host[j] - 2.0 * row[j]).max(0.0);
            let mut candidates: Vec<usize> = (0..n).filter(|&j| j != i).collect();
            let rank = |a: &usize, b: &usize| dist(*a).total_cmp(&dist(*b)).then(a.cmp(b));
            if k > 0 && k < candidates.len() {
                candidates.select_nth_unstable_by(k - 1, rank);
                candidates.truncate(k);
            }
            candidates.sort_by(rank);
            candidates.truncate(k);
            out.push(
                candidates
                    .into_iter()
                    .map(|j| (j, dist(j).sqrt()))
                    .collect(),
            );
        }
        start += rows;
    }
    Ok(out)
}
