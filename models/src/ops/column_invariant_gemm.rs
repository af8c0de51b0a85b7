//! Matrix products whose every column (or row) has the same bits however many columns (rows)
//! the product has. The direct convolution of small planes multiplies several images' columns
//! at once (`conv2d_cpu::forward_small_planes`) and a Linear layer all its images' rows, so an
//! image's output would otherwise round by the size of its batch, and a sharded sweep would
//! not merge into the unsharded one bit for bit.
//!
//! The `gemm` crate (0.19) picks its path by the product's sides. It multiplies a row-major
//! output as its transpose; then two choices follow the column count: a single column goes
//! through its matrix–vector kernel, and a product with at most [`SMALL_SIDE`] rows and columns
//! sums the depth in blocks of [`SMALL_DEPTH`], where a larger one sums it in blocks chosen
//! from the depth and the cache alone (one block up to 512). Every other choice (blocking of
//! rows and columns, threads) leaves each output's sum in the same order. So here a lone column
//! goes as two, and a product of at most [`SMALL_SIDE`] rows is summed in slices of
//! [`SMALL_DEPTH`]: each call then has one depth block on either path, in the order the small
//! path takes them. Rows go as the columns of the transposed product (as rows, a row-major
//! left operand with few output values would take a third kernel of its own, and a lone row
//! costs 4× as long: 1.4 against 0.35 ms for a 1280→1000 head, timed ad hoc). Tested here
//! against products of other sizes; written by hand because no crate gives a GEMM with this
//! guarantee.

use candle_core::Result;
use gemm::Parallelism;

use super::conv2d_cpu::{check_buffers, gemm_depth_into};

/// The most rows (and columns) of a product the `gemm` crate takes as small.
const SMALL_SIDE: usize = 64;
/// The depth of the `gemm` crate's blocks in a small product.
const SMALL_DEPTH: usize = 512;

/// `dst` [m, n] = `lhs` [m, k] · `rhs` [k, n] (plus `dst` when `accumulate`), all row-major,
/// each column of `dst` the same bits for any `n` (see the module's note).
pub fn gemm_columns_into(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    parallelism: Parallelism,
) -> Result<()> {
    check_buffers(dst, lhs, rhs, (m, n, k))?;
    if n == 1 {
        // The column twice, so that the crate's matrix–matrix path runs.
        let pair: Vec<f32> = rhs.iter().flat_map(|&v| [v, v]).collect();
        let mut out: Vec<f32> = dst.iter().flat_map(|&v| [v, v]).collect();
        gemm_columns_into(&mut out, lhs, &pair, (m, 2, k), accumulate, parallelism)?;
        for (d, pair) in dst.iter_mut().zip(out.chunks_exact(2)) {
            *d = pair[0];
        }
        return Ok(());
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let depth = if m <= SMALL_SIDE {
        SMALL_DEPTH
    } else {
        k.max(1)
    };
    let mut start = 0;
    loop {
        let end = (start + depth).min(k);
        let slice_accumulates = accumulate || start > 0;
        gemm_depth_into(
            dst,
            lhs,
            false,
            rhs,
            (m, n, k),
            start..end,
            slice_accumulates,
            parallelism,
        )?;
        start = end;
        if start >= k {
            return Ok(());
        }
    }
}

/// `dst` [m, n] = `lhs` [m, k] · `rhs_t`ᵀ, `rhs_t` [n, k] (a Linear layer's weight), all
/// row-major, each row of `dst` the same bits for any `m`: the columns of the transposed
/// product by [`gemm_columns_into`] (see the module's note).
pub fn gemm_rows_into(
    dst: &mut [f32],
    lhs: &[f32],
    rhs_t: &[f32],
    (m, n, k): (usize, usize, usize),
    parallelism: Parallelism,
) -> Result<()> {
    check_buffers(dst, lhs, rhs_t, (m, n, k))?;
    let mut lhs_t = vec![0f32; k * m];
    transpose::transpose(lhs, &mut lhs_t, k, m);
    let mut dst_t = vec![0f32; n * m];
    gemm_columns_into(&mut dst_t, rhs_t, &lhs_t, (n, m, k), false, parallelism)?;
    transpose::transpose(&dst_t, dst, m, n);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [-1, 1).
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The first `cols` columns of the row-major [k, n] matrix `rhs`.
    fn first_columns(rhs: &[f32], (k, n): (usize, usize), cols: usize) -> Vec<f32> {
        (0..k)
            .flat_map(|r| rhs[r * n..r * n + cols].iter().copied())
            .collect()
    }

    /// Every column count from one to the product's, on both sides of each of the `gemm`
    /// crate's choices (one column, 64 rows and columns, a depth of 512, a depth of 2 or less),
    /// gives each column the bits it has in the widest product; and the product is a product
    /// (to f64 rounding), added to `dst` when accumulating.
    #[test]
    fn a_columns_bits_do_not_depend_on_how_many_columns_there_are() {
        for (m, k) in [
            (1, 700),
            (10, 1280),
            (32, 576),
            (64, 513),
            (64, 512),
            (65, 1152),
            (130, 300),
            (24, 2),
        ] {
            let n = 140;
            let lhs = values(m * k, 1);
            let rhs = values(k * n, 2);
            let start = values(m * n, 3);
            for accumulate in [false, true] {
                let mut all = if accumulate {
                    start.clone()
                } else {
                    vec![0.0; m * n]
                };
                gemm_columns_into(
                    &mut all,
                    &lhs,
                    &rhs,
                    (m, n, k),
                    accumulate,
                    Parallelism::Rayon(2),
                )
                .unwrap();
                for i in 0..m {
                    for j in 0..n {
                        let exact: f64 = (0..k)
                            .map(|p| f64::from(lhs[i * k + p]) * f64::from(rhs[p * n + j]))
                            .sum::<f64>()
                            + if accumulate {
                                f64::from(start[i * n + j])
                            } else {
                                0.0
                            };
                        let error = (f64::from(all[i * n + j]) - exact).abs();
                        assert!(error < 1e-4 * (k as f64).sqrt(), "{m}x{k}: {error}");
                    }
                }
                for cols in [1, 2, 3, 16, 33, 63, 64, 65, 100] {
                    let part = first_columns(&rhs, (k, n), cols);
                    let mut dst: Vec<f32> = if accumulate {
                        (0..m)
                            .flat_map(|i| start[i * n..i * n + cols].iter().copied())
                            .collect()
                    } else {
                        vec![0.0; m * cols]
                    };
                    gemm_columns_into(
                        &mut dst,
                        &lhs,
                        &part,
                        (m, cols, k),
                        accumulate,
                        Parallelism::None,
                    )
                    .unwrap();
                    for i in 0..m {
                        let got: Vec<u32> = dst[i * cols..(i + 1) * cols]
                            .iter()
                            .map(|v| v.to_bits())
                            .collect();
                        let want: Vec<u32> = all[i * n..i * n + cols]
                            .iter()
                            .map(|v| v.to_bits())
                            .collect();
                        assert_eq!(got, want, "{m}x{k}, {cols} columns, row {i}, {accumulate}");
                    }
                }
            }
        }
    }

    /// The same for rows against the transpose of a weight, on both sides of the small
    /// products' bound (64) and where rows as rows would take the crate's horizontal kernel.
    #[test]
    fn a_rows_bits_do_not_depend_on_how_many_rows_there_are() {
        for (n, k) in [
            (10, 1280),
            (64, 513),
            (100, 600),
            (128, 1100),
            (257, 700),
            (1000, 512),
            (300, 2),
        ] {
            let m = 70;
            let lhs = values(m * k, 4);
            let rhs_t = values(n * k, 5);
            let mut all = vec![0.0; m * n];
            gemm_rows_into(&mut all, &lhs, &rhs_t, (m, n, k), Parallelism::Rayon(2)).unwrap();
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..k)
                        .map(|p| f64::from(lhs[i * k + p]) * f64::from(rhs_t[j * k + p]))
                        .sum();
                    let error = (f64::from(all[i * n + j]) - exact).abs();
                    assert!(error < 1e-4 * (k as f64).sqrt(), "{n}x{k}: {error}");
                }
            }
            for rows in [1, 2, 3, 25, 26, 64, 65] {
                let mut dst = vec![0.0; rows * n];
                gemm_rows_into(
                    &mut dst,
                    &lhs[..rows * k],
                    &rhs_t,
                    (rows, n, k),
                    Parallelism::None,
                )
                .unwrap();
                let got: Vec<u32> = dst.iter().map(|v| v.to_bits()).collect();
                let want: Vec<u32> = all[..rows * n].iter().map(|v| v.to_bits()).collect();
                assert_eq!(got, want, "{n}x{k}, {rows} rows");
            }
        }
    }

    #[test]
    fn buffers_of_the_wrong_length_are_an_error() {
        let mut dst = vec![0.0; 6];
        let error = gemm_columns_into(
            &mut dst,
            &[0.0; 6],
            &[0.0; 5],
            (2, 3, 3),
            false,
            Parallelism::None,
        );
        assert!(error.is_err());
        let error = gemm_rows_into(&mut dst, &[0.0; 6], &[0.0; 8], (2, 3, 3), Parallelism::None);
        assert!(error.is_err());
    }
}
