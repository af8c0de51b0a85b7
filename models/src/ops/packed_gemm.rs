//! A matrix product whose left operand, a layer's weight, is packed once for AVX-512 and kept:
//! `dst` [rows, n] = `lhs` [rows, depth] · `rhs` [depth, n] for the convolutions of small output
//! planes, forward (`conv2d_cpu::forward_small_planes`: [512, 49·images] products of depth 4608
//! in resnet18's last stage) and to the input (`conv2d_cpu::input_gradient_small_planes`: the
//! transposed weight, [4608, 49·images] of depth 512).
//!
//! There the `gemm` crate repacks the whole weight at every call (9 MiB for a 512→512 3×3 layer)
//! and splits a product of few columns poorly between threads: timed alone on a 2-core Xeon,
//! its 512×49×4608 product took 1.5–1.6 ms where this one took 1.15 ms before its depth was
//! blocked (1.3–1.4 against the crate's 2.1 in a noisier run after; at 392 columns 7.3
//! against 7.7 ms; level on one thread). Output rows go along the vectors, 32 at a time (two
//! 16-lane registers), and [`COLUMNS`] output columns along broadcasts: 28 accumulators, the
//! weight's 32 rows read as two loads per depth step from the packed panel, each column's value
//! broadcast from the packed right operand. Each thread takes a run of consecutive row panels
//! and, while it sums one, fetches the next one's weights into the cache, so that a panel's
//! first tile need not wait on memory for them (not timed apart from the rest: within the
//! machine's noise).
//!
//! Each output is summed along the depth in blocks of [`DEPTH_BLOCK`]: a block's products in
//! depth order from zero by one fused multiply–add per step, the blocks' sums added in order,
//! then the bias. Its bits do not depend on the number of columns, the panel it falls in or the
//! threads, so an image's output is the same in any batch. (One unbroken chain over the whole
//! depth rounded more: on the demo at 64 px, infidelity's float32 value strayed 2.6–3.7e-4
//! from float64, against 1.5–2.7e-4 with the blocks; `models/tests/evaluate_reference.rs`.)
//!
//! Written by hand: no crate offers a GEMM with a prepacked operand kept across calls.

use candle_core::Result;
use rayon::prelude::*;

use super::scratch::Scratch;

/// Output rows per panel: two vectors of 16 lanes.
const ROWS: usize = 32;
/// Output columns per micro-tile.
const COLUMNS: usize = 14;
/// Depth steps summed over every panel of a thread before the next ones (a block of the right
/// operand, DEPTH_BLOCK × n, stays in the cache meanwhile).
const DEPTH_BLOCK: usize = 256;
/// Bytes per cache line, the unit of a prefetch.
const CACHE_LINE: usize = 64;

/// The fewest rows, and the least depth, of a product taken packed: below them (64 or 128
/// output channels, depths of a few hundred) the `gemm` crate's kernel, whose vectors run along
/// the columns, is faster (2× on a 64×1024×576 product; timed alone).
const FEWEST_ROWS_AND_DEPTH: usize = 256;
/// The most columns of one packed product: wider ones go in parts of this many (the same bits,
/// see the module's note), whose right operand's depth block stays in the cache (512×392×4608:
/// 7.3 ms, level with the crate's 7.7; at 784 columns 17 against 12.9 ms in one product).
pub const MOST_COLUMNS: usize = 392;

/// Whether a layer's product of `rows` × `depth` (output channels by K, or K by output channels
/// for the input gradient) is taken packed. A rule of the layer's shape alone, not of the
/// batch, so that an image's bits do not depend on its batch.
pub fn pays(rows: usize, depth: usize) -> bool {
    rows >= FEWEST_ROWS_AND_DEPTH && depth >= FEWEST_ROWS_AND_DEPTH
}

/// A left operand [rows, depth] packed in panels of [`ROWS`] rows: panel `p` holds, for each
/// depth `d`, rows `p·ROWS..(p+1)·ROWS` at depth `d` side by side (zeros past the last row).
#[derive(Debug)]
pub struct PackedLhs {
    panels: Vec<f32>,
    rows: usize,
    depth: usize,
}

impl PackedLhs {
    /// `lhs` [rows, depth] packed, or `None` where the CPU has no AVX-512 (the caller keeps
    /// its other product) or the sizes do not match.
    pub fn new(lhs: &[f32], rows: usize, depth: usize) -> Option<PackedLhs> {
        Self::packed(lhs, rows, depth, |p, panel| {
            for r in p * ROWS..((p + 1) * ROWS).min(rows) {
                let lane = r - p * ROWS;
                for (d, &v) in lhs[r * depth..(r + 1) * depth].iter().enumerate() {
                    panel[d * ROWS + lane] = v;
                }
            }
        })
    }

    /// The transpose of `lhs_t` [depth, rows] packed (a layer's weight [O, K] as the [K, O]
    /// operand of its input gradient), or `None` as [`PackedLhs::new`].
    pub fn transposed(lhs_t: &[f32], rows: usize, depth: usize) -> Option<PackedLhs> {
        Self::packed(lhs_t, rows, depth, |p, panel| {
            let (first, count) = (p * ROWS, ROWS.min(rows - p * ROWS));
            for (d, lanes) in panel.chunks_exact_mut(ROWS).enumerate() {
                let start = d * rows + first;
                lanes[..count].copy_from_slice(&lhs_t[start..start + count]);
            }
        })
    }

    /// The operand `values` (rows·depth of them) packed by `fill(p, panel)`, which writes
    /// panel `p` (zeroed before); `None` as [`PackedLhs::new`].
    fn packed(
        values: &[f32],
        rows: usize,
        depth: usize,
        fill: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Option<PackedLhs> {
        if !Self::available() || values.len() != rows.checked_mul(depth)? {
            return None;
        }
        let mut panels = vec![0f32; rows.div_ceil(ROWS) * depth * ROWS];
        panels
            .par_chunks_mut((depth * ROWS).max(1))
            .enumerate()
            .for_each(|(p, panel)| fill(p, panel));
        Some(PackedLhs {
            panels,
            rows,
            depth,
        })
    }

    /// Whether this CPU runs the packed product (it has AVX-512F).
    pub fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// Rows of the operand.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Its depth (columns).
    pub fn depth(&self) -> usize {
        self.depth
    }
}

/// Where each output column goes: column `j` of the product is written at
/// `(j / group)·image_stride + j % group` plus `row·row_stride` for its row. A row-major [rows,
/// n] output is one group of n columns; an NCHW output of images with `m` pixels each is groups
/// of `m` with `image_stride` = rows·m and `row_stride` = m.
#[derive(Clone, Copy, Debug)]
pub struct OutputLayout {
    /// Columns per group (an image's pixels).
    pub group: usize,
    /// Distance between groups.
    pub image_stride: usize,
    /// Distance between rows.
    pub row_stride: usize,
}

impl OutputLayout {
    /// The offset of row `row`, column `column`.
    fn at(&self, row: usize, column: usize) -> usize {
        (column / self.group) * self.image_stride + column % self.group + row * self.row_stride
    }

    /// Whether `rows` × `n` outputs (both at least 1) land at distinct offsets inside `len`:
    /// rows of a group do not overlap (a row's stride spans the group's columns), groups do not
    /// overlap (a group's stride spans its rows), and the last output, then the largest
    /// offset, lies inside.
    fn fits(&self, rows: usize, n: usize, len: usize) -> bool {
        let columns = self.group.min(n);
        self.group > 0
            && (rows == 1 || self.row_stride >= columns)
            && (n <= self.group
                || self.image_stride >= self.group.max((rows - 1) * self.row_stride + columns))
            && self.at(rows - 1, n - 1) < len
    }
}

/// `dst` = `lhs` · `rhs` [depth, n] (row-major) plus `bias` [rows] per row, written where
/// `layout` puts each output (every output of the product is written; `dst` must hold them).
/// Each output's bits do not depend on `n` (see the module's note).
pub fn gemm_packed_into(
    dst: &mut [f32],
    layout: OutputLayout,
    lhs: &PackedLhs,
    rhs: &[f32],
    n: usize,
    bias: Option<&[f32]>,
) -> Result<()> {
    let (rows, depth) = (lhs.rows, lhs.depth);
    if rhs.len() != depth * n {
        candle_core::bail!(
            "packed GEMM of {rows}x{depth} by {depth}x{n} given a right operand of {}",
            rhs.len()
        );
    }
    if bias.is_some_and(|b| b.len() != rows) {
        candle_core::bail!(
            "packed GEMM of {rows} rows given {} biases",
            bias.map_or(0, <[f32]>::len)
        );
    }
    if rows == 0 || n == 0 {
        return Ok(());
    }
    if !layout.fits(rows, n, dst.len()) {
        candle_core::bail!(
            "packed GEMM of {rows}x{n} outputs does not fit an output of {} values laid out as {layout:?}",
            dst.len()
        );
    }
    // The right operand in panels of COLUMNS columns, each [depth][its columns].
    let mut packed = Scratch::of_len(depth * n);
    if depth > 0 {
        packed
            .par_chunks_mut(depth * COLUMNS)
            .enumerate()
            .for_each(|(p, panel)| {
                let (first, width) = (p * COLUMNS, panel.len() / depth);
                for (d, values) in panel.chunks_exact_mut(width).enumerate() {
                    values.copy_from_slice(&rhs[d * n + first..d * n + first + width]);
                }
            });
    }
    let out = SharedOutput(dst.as_mut_ptr());
    let packed = &*packed;
    let panel_len = depth * ROWS;
    let panels = rows.div_ceil(ROWS);
    let tiles = n.div_ceil(COLUMNS);
    // Each thread a run of consecutive row panels. The depth in blocks of DEPTH_BLOCK, outermost,
    // so that a block of the right operand (DEPTH_BLOCK × n) stays in the cache while every
    // panel of the thread passes over it; each output's running sum waits in `sums` between
    // blocks, and each block's own sum is added to it.
    let per_thread = panels.div_ceil(rayon::current_num_threads().max(1)).max(1);
    (0..panels)
        .step_by(per_thread)
        .collect::<Vec<_>>()
        .into_par_iter()
        .for_each(|first_panel| {
            let mine = first_panel..(first_panel + per_thread).min(panels);
            // [panel][column][ROWS] partial sums of this thread's panels.
            let mut sums = Scratch::of_len(mine.len() * n * ROWS);
            sums.fill(0.0);
            let mut start = 0;
            loop {
                let block = start..(start + DEPTH_BLOCK).min(depth);
                for (q, p) in mine.clone().enumerate() {
                    let weights =
                        &lhs.panels[p * panel_len + block.start * ROWS..][..block.len() * ROWS];
                    // The weights this thread reads next: the next panel's block, else the
                    // first panel's next block.
                    let next = if p + 1 < mine.end {
                        (p + 1) * panel_len + block.start * ROWS
                    } else {
                        mine.start * panel_len + block.end * ROWS
                    };
                    let next = lhs
                        .panels
                        .get(next..(next + DEPTH_BLOCK * ROWS).min(lhs.panels.len()))
                        .unwrap_or(&[]);
                    let lines_per_tile = (next.len() * 4).div_ceil(CACHE_LINE).div_ceil(tiles);
                    for t in 0..tiles {
                        let (first, width) = (t * COLUMNS, (n - t * COLUMNS).min(COLUMNS));
                        // This tile's columns in the block: [depth][width] from the panel's
                        // start.
                        let columns =
                            &packed[first * depth + block.start * width..][..block.len() * width];
                        let floats = CACHE_LINE / 4;
                        let from = (t * lines_per_tile * floats).min(next.len());
                        let to = ((t + 1) * lines_per_tile * floats).min(next.len());
                        let tile = &mut sums[(q * n + first) * ROWS..][..width * ROWS];
                        // SAFETY: the CPU has AVX-512F (a PackedLhs exists only then);
                        // `weights` holds block·ROWS values, `columns` block·width and `tile`
                        // width·ROWS.
                        unsafe {
                            kernels::tile(
                                weights,
                                columns,
                                width,
                                block.len(),
                                &next[from..to],
                                tile,
                            )
                        };
                    }
                }
                start = block.end;
                if start >= depth {
                    break;
                }
            }
            for (q, p) in mine.enumerate() {
                let panel_rows = (rows - p * ROWS).min(ROWS);
                for j in 0..n {
                    let column = layout.at(p * ROWS, j);
                    let lanes = &sums[(q * n + j) * ROWS..][..panel_rows];
                    for (r, &sum) in lanes.iter().enumerate() {
                        let value = sum + bias.map_or(0.0, |b| b[p * ROWS + r]);
                        // SAFETY: the layout was checked to put every output at its own
                        // offset, all inside `dst` (`OutputLayout::fits`); each (row, column)
                        // is written by the one task of its row panel.
                        unsafe { *out.at(column + r * layout.row_stride) = value };
                    }
                }
            }
        });
    Ok(())
}

/// The output, written by the row panels' tasks at disjoint places.
struct SharedOutput(*mut f32);

// SAFETY: each task writes only the outputs of its own rows, at offsets no other output has
// (see `gemm_packed_into`).
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// The output at `offset` (inside the output: the caller checks).
    fn at(&self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

/// The AVX-512 micro-kernels.
mod kernels {
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::{
        __m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps,
        _mm512_storeu_ps, _mm_prefetch, _MM_HINT_T1,
    };

    use super::{CACHE_LINE, COLUMNS, ROWS};

    /// `tile[j·ROWS + r]` += Σ over depth of `weights[d·ROWS + r]`·`columns[d·width + j]` (the
    /// sum from zero, one fused multiply–add per step in depth order, then added), for `width`
    /// (1..=COLUMNS) columns, while `ahead` (weights needed next) is fetched into the cache.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `weights` holds `depth·ROWS` values, `columns` `depth·width` and
    /// `tile` `width·ROWS`.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile(
        weights: &[f32],
        columns: &[f32],
        width: usize,
        depth: usize,
        ahead: &[f32],
        tile: &mut [f32],
    ) {
        debug_assert!(weights.len() >= depth * ROWS && columns.len() >= depth * width);
        debug_assert!(width <= COLUMNS && tile.len() >= width * ROWS);
        let (w, c) = (weights.as_ptr(), columns.as_ptr());
        let floats = CACHE_LINE / 4;
        let lines = ahead.len().div_ceil(floats);
        let ahead = Ahead {
            at: ahead.as_ptr(),
            lines,
            per_step: lines.div_ceil(depth.max(1)),
        };
        // SAFETY (each arm): as the function's contract.
        unsafe {
            match width {
                14 => sums::<14>(w, c, depth, ahead, tile),
                13 => sums::<13>(w, c, depth, ahead, tile),
                12 => sums::<12>(w, c, depth, ahead, tile),
                11 => sums::<11>(w, c, depth, ahead, tile),
                10 => sums::<10>(w, c, depth, ahead, tile),
                9 => sums::<9>(w, c, depth, ahead, tile),
                8 => sums::<8>(w, c, depth, ahead, tile),
                7 => sums::<7>(w, c, depth, ahead, tile),
                6 => sums::<6>(w, c, depth, ahead, tile),
                5 => sums::<5>(w, c, depth, ahead, tile),
                4 => sums::<4>(w, c, depth, ahead, tile),
                3 => sums::<3>(w, c, depth, ahead, tile),
                2 => sums::<2>(w, c, depth, ahead, tile),
                _ => sums::<1>(w, c, depth, ahead, tile),
            }
        }
    }

    /// Never called: a PackedLhs is made only on x86-64 with AVX-512F.
    #[cfg(not(target_arch = "x86_64"))]
    pub(super) unsafe fn tile(_: &[f32], _: &[f32], _: usize, _: usize, _: &[f32], _: &mut [f32]) {
        unreachable!("the packed GEMM runs only with AVX-512F")
    }

    /// Cache lines to fetch while a tile is summed: `lines` from `at`, `per_step` at each depth
    /// step.
    #[cfg(target_arch = "x86_64")]
    struct Ahead {
        at: *const f32,
        lines: usize,
        per_step: usize,
    }

    /// [`tile`] for `W` columns, the accumulators in registers.
    ///
    /// # Safety
    /// As [`tile`], with `width` = `W`.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn sums<const W: usize>(
        mut weights: *const f32,
        mut columns: *const f32,
        depth: usize,
        ahead: Ahead,
        tile: &mut [f32],
    ) {
        // SAFETY: the caller has AVX-512F; every pointer below stays inside the operands
        // (depth steps of ROWS weights and W columns), and prefetches inside `ahead`'s lines
        // (a prefetch never faults in any case).
        unsafe {
            let at = tile.as_mut_ptr();
            let mut acc = [[_mm512_setzero_ps(); 2]; W];
            let mut fetched = 0;
            for _ in 0..depth {
                for _ in 0..ahead.per_step {
                    if fetched < ahead.lines {
                        _mm_prefetch::<_MM_HINT_T1>(
                            ahead.at.wrapping_add(fetched * CACHE_LINE / 4).cast::<i8>(),
                        );
                        fetched += 1;
                    }
                }
                let a: [__m512; 2] = [_mm512_loadu_ps(weights), _mm512_loadu_ps(weights.add(16))];
                for (j, sums) in acc.iter_mut().enumerate() {
                    let b = _mm512_set1_ps(*columns.add(j));
                    sums[0] = _mm512_fmadd_ps(a[0], b, sums[0]);
                    sums[1] = _mm512_fmadd_ps(a[1], b, sums[1]);
                }
                weights = weights.add(ROWS);
                columns = columns.add(W);
            }
            for (j, sums) in acc.iter().enumerate() {
                let (low, high) = (at.add(j * ROWS), at.add(j * ROWS + 16));
                _mm512_storeu_ps(low, _mm512_add_ps(_mm512_loadu_ps(low), sums[0]));
                _mm512_storeu_ps(high, _mm512_add_ps(_mm512_loadu_ps(high), sums[1]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{gemm_packed_into, OutputLayout, PackedLhs};

    /// Values in -1..1 from a seed, different for each index.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        (0..len as u64)
            .map(|i| {
                let x = (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ seed.wrapping_mul(0xD1B5);
                ((x >> 40) % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn row_major(n: usize) -> OutputLayout {
        OutputLayout {
            group: n,
            image_stride: 0,
            row_stride: n,
        }
    }

    /// The packed product where the CPU runs it; `None` (and a note) where it does not.
    fn packed(lhs: &[f32], rows: usize, depth: usize) -> Option<PackedLhs> {
        let packed = PackedLhs::new(lhs, rows, depth);
        if packed.is_none() {
            eprintln!("no AVX-512F on this CPU: the packed product is not run");
        }
        packed
    }

    #[test]
    fn the_packed_product_equals_the_product_in_f64() {
        // Rows around the panel's 32, columns around the tile's 14, depths from 0.
        for (rows, n, depth) in [
            (1, 1, 1),
            (31, 13, 5),
            (32, 14, 300),
            (33, 15, 64),
            (70, 49, 577),
            (64, 29, 0),
            (5, 100, 9),
        ] {
            let lhs = values(rows * depth, 1);
            let rhs = values(depth * n, 2);
            let bias = values(rows, 3);
            let Some(lhs_packed) = packed(&lhs, rows, depth) else {
                return;
            };
            let mut dst = vec![f32::NAN; rows * n];
            gemm_packed_into(&mut dst, row_major(n), &lhs_packed, &rhs, n, Some(&bias)).unwrap();
            for r in 0..rows {
                for j in 0..n {
                    let want: f64 = (0..depth)
                        .map(|d| f64::from(lhs[r * depth + d]) * f64::from(rhs[d * n + j]))
                        .sum::<f64>()
                        + f64::from(bias[r]);
                    let got = f64::from(dst[r * n + j]);
                    assert!(
                        (got - want).abs() <= 1e-5 * (1.0 + depth as f64).sqrt(),
                        "{rows}x{n}x{depth} at ({r}, {j}): {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_columns_bits_do_not_depend_on_the_other_columns() {
        let (rows, depth, n) = (40, 700, 47);
        let lhs = values(rows * depth, 4);
        let rhs = values(depth * n, 5);
        let Some(lhs_packed) = packed(&lhs, rows, depth) else {
            return;
        };
        let mut all = vec![0f32; rows * n];
        gemm_packed_into(&mut all, row_major(n), &lhs_packed, &rhs, n, None).unwrap();
        // Columns start..start + len alone: in other tiles, at other places in a tile.
        for (start, len) in [(0, 1), (46, 1), (3, 2), (5, 14), (13, 15), (20, 27)] {
            let part: Vec<f32> = (0..depth)
                .flat_map(|d| rhs[d * n + start..d * n + start + len].to_vec())
                .collect();
            let mut dst = vec![0f32; rows * len];
            gemm_packed_into(&mut dst, row_major(len), &lhs_packed, &part, len, None).unwrap();
            for r in 0..rows {
                let want: Vec<u32> = all[r * n + start..r * n + start + len]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                let got: Vec<u32> = dst[r * len..(r + 1) * len]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                assert_eq!(got, want, "row {r}, columns {start}..{}", start + len);
            }
        }
    }

    #[test]
    fn images_are_written_in_their_own_planes() {
        // Three images of 5 pixels, 33 rows (channels): NCHW output.
        let (rows, depth, m, images) = (33, 20, 5, 3);
        let lhs = values(rows * depth, 6);
        let rhs = values(depth * m * images, 7);
        let Some(lhs_packed) = packed(&lhs, rows, depth) else {
            return;
        };
        let n = m * images;
        let mut flat = vec![0f32; rows * n];
        gemm_packed_into(&mut flat, row_major(n), &lhs_packed, &rhs, n, None).unwrap();
        let mut nchw = vec![f32::NAN; rows * n];
        let layout = OutputLayout {
            group: m,
            image_stride: rows * m,
            row_stride: m,
        };
        gemm_packed_into(&mut nchw, layout, &lhs_packed, &rhs, n, None).unwrap();
        for b in 0..images {
            for r in 0..rows {
                for p in 0..m {
                    assert_eq!(
                        nchw[(b * rows + r) * m + p].to_bits(),
                        flat[r * n + b * m + p].to_bits()
                    );
                }
            }
        }
    }

    #[test]
    fn the_transposed_packing_packs_the_transpose() {
        let (rows, depth) = (45, 17);
        let lhs = values(rows * depth, 8);
        let lhs_t: Vec<f32> = (0..depth)
            .flat_map(|d| (0..rows).map(|r| lhs[r * depth + d]).collect::<Vec<_>>())
            .collect();
        let (Some(a), Some(b)) = (
            packed(&lhs, rows, depth),
            PackedLhs::transposed(&lhs_t, rows, depth),
        ) else {
            return;
        };
        assert_eq!(a.panels, b.panels);
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let Some(lhs) = packed(&values(6, 9), 2, 3) else {
            return;
        };
        let mut dst = vec![0f32; 8];
        assert!(gemm_packed_into(&mut dst, row_major(4), &lhs, &values(11, 1), 4, None).is_err());
        assert!(gemm_packed_into(
            &mut dst,
            row_major(4),
            &lhs,
            &values(12, 1),
            4,
            Some(&[1.0])
        )
        .is_err());
        let mut short = vec![0f32; 7];
        assert!(gemm_packed_into(&mut short, row_major(4), &lhs, &values(12, 1), 4, None).is_err());
        // Layouts that would write two outputs at one place: rows closer than a row's columns,
        // groups closer than a group's rows.
        let rows_overlap = OutputLayout {
            group: 4,
            image_stride: 0,
            row_stride: 3,
        };
        assert!(gemm_packed_into(&mut dst, rows_overlap, &lhs, &values(12, 1), 4, None).is_err());
        let groups_overlap = OutputLayout {
            group: 2,
            image_stride: 3,
            row_stride: 2,
        };
        assert!(gemm_packed_into(&mut dst, groups_overlap, &lhs, &values(12, 1), 4, None).is_err());
        assert!(PackedLhs::new(&values(5, 1), 2, 3).is_none());
    }
}
