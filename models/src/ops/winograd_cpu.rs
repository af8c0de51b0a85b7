//! Winograd's minimal filtering F(4×4, 3×3) on the CPU (Lavin & Gray, "Fast Algorithms for
//! Convolutional Neural Networks", CVPR 2016): a stride-1, undilated, ungrouped 3×3 convolution
//! as 36 GEMMs over 6×6 transformed input tiles, each producing a 4×4 output tile. It does 2.25
//! multiply-adds per output and input channel where im2col and one GEMM do 9.
//!
//! Written here because no maintained crate offers a Winograd convolution over plain f32
//! slices (the ones on crates.io are parts of larger frameworks); the GEMMs are the `gemm`
//! crate's. The transforms round more than the direct sum: the results differ from candle's
//! convolution by about 4e-6 of the output's magnitude at 16 input channels and 1e-5 at 256
//! (tested). It runs only where the fastest convolutions are asked for
//! ([`super::Convolutions::Fastest`]): forward passes whose outputs only are read, and the
//! input gradients of the backward passes (linear in the signal, so rounding moves them
//! continuously: the ReLU masks a gradient follows come from the forward pass, which sums
//! directly); for f32 tensors on the CPU where it pays ([`pays`]). Every other device keeps
//! candle's convolution, other shapes the im2col path.

use candle_core::Result;
use gemm::Parallelism;
use rayon::prelude::*;

use super::conv2d_cpu::gemm_into;
use super::pointwise_cpu::FusedActivation;
use super::scratch::Scratch;
use super::unwritten::{unwritten, written};

/// Output tile side.
const TILE: usize = 4;
/// Input tile side: the output tile plus the kernel's reach, `TILE + 2`.
const SPAN: usize = TILE + 2;
/// Transformed values per tile, one GEMM each.
const POINTS: usize = SPAN * SPAN;
/// Tiles transformed together, one per SIMD lane.
const LANES: usize = 8;
/// Most tiles one task transforms and multiplies at once: its transformed inputs and products
/// (36 × channels × tiles each) stay in the core's cache. Timed ad hoc on 3×3 layers of 64 to
/// 256 channels: 16 and 64 level within the noise, 128 slower at 64 channels.
const MOST_TILES_PER_TASK: usize = 16;
/// Fewest output tiles per image for the Winograd path at any batch: a 7×7 plane is 4 tiles,
/// 14×14 16, 28×28 49. Timed ad hoc from 14×14 up (1.2–2.3× the direct sum).
const FEWEST_TILES: usize = 16;
/// Fewest output tiles per image for the Winograd path in a batch of two or more images, whose
/// tiles share each task's read of the transformed kernel (4× the weight): resnet's 7×7 layers
/// of 512 channels at batch 8, 2.5 against 5.8 ms directly. Alone (batch 1) every task would
/// read the whole transformed kernel for 4 tiles (1.5 against 0.8 ms), so a lone small plane
/// keeps the direct sum, unless the pass asks for a batch's paths
/// ([`super::Convolutions::FastestBatchInvariant`], as `represent::codes` does). From two
/// images on, which path a layer takes no longer depends on the batch, so an image's result
/// does not either (sharded sweeps merge into the unsharded one bit for bit:
/// `models/tests/represent.rs`; a rule counted by the batch's tiles failed it).
const FEWEST_TILES_IN_A_BATCH: usize = 4;
/// Fewer output channels than this and the `gemm` crate's blocking of a task's product
/// follows the task's tile count (its small-matrix paths), which follows the batch: such
/// layers keep the per-image rule, [`FEWEST_TILES`].
const FEWEST_CHANNELS_IN_A_BATCH: usize = 65;
/// Fewest input and output channels for which the transforms pay (a stem's 3 channels: no).
const FEWEST_CHANNELS: usize = 16;

/// Kernel transform G (interpolation points 0, ±1, ±2, ∞; the input transform Bᵀ and output
/// transform Aᵀ are written out in [`input_line_transform`] and [`output_line_transform`]).
const G: [[f64; 3]; SPAN] = [
    [1.0 / 4.0, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// Whether the Winograd path applies to a convolution (3×3, stride 1, no dilation, one group)
/// and pays for `channels` input and `out_channels` output channels and `images` output planes
/// of `output` (rows, columns). For any two batches of at least two images the answer is the
/// same (see [`FEWEST_TILES_IN_A_BATCH`]).
pub fn pays(
    kernel: (usize, usize),
    stride: usize,
    dilation: usize,
    groups: usize,
    (channels, out_channels): (usize, usize),
    images: usize,
    output: (usize, usize),
) -> bool {
    let tiles = output.0.div_ceil(TILE) * output.1.div_ceil(TILE);
    let enough_tiles = tiles >= FEWEST_TILES
        || (images >= 2
            && tiles >= FEWEST_TILES_IN_A_BATCH
            && out_channels >= FEWEST_CHANNELS_IN_A_BATCH);
    kernel == (3, 3)
        && stride == 1
        && dilation == 1
        && groups == 1
        && channels >= FEWEST_CHANNELS
        && out_channels >= FEWEST_CHANNELS
        && enough_tiles
}

/// A 3×3 kernel in the Winograd domain: `u[point][in][out]`, one [in × out] matrix per point
/// (the transpose of the point's [out × in] product matrix, so that the GEMM's destination runs
/// along the output channels: see [`correlate`]).
#[derive(Debug)]
pub struct WinogradKernel {
    u: Vec<f32>,
    out_channels: usize,
    in_channels: usize,
}

impl WinogradKernel {
    /// The transform of a convolution's weight `weight` [O, C, 3, 3] (row-major).
    pub fn new(weight: &[f32], out_channels: usize, in_channels: usize) -> Result<Self> {
        let (rows, cols) = (out_channels, in_channels);
        if weight.len() != rows * cols * 9 {
            candle_core::bail!(
                "Winograd kernel of {rows}x{cols} 3x3 filters given {} values",
                weight.len()
            );
        }
        let mut u = vec![0f32; POINTS * rows * cols];
        let per_point = rows * cols;
        let filters: Vec<[f32; POINTS]> = weight
            .par_chunks_exact(9)
            .map(|g| {
                let tap = |i: usize, j: usize| f64::from(g[i * 3 + j]);
                // G·g·Gᵀ in f64: the kernel transform's fractions round once, at the end.
                let mut gg = [[0f64; 3]; SPAN];
                for (row, grow) in gg.iter_mut().zip(&G) {
                    for (j, v) in row.iter_mut().enumerate() {
                        *v = (0..3).map(|k| grow[k] * tap(k, j)).sum();
                    }
                }
                let mut out = [0f32; POINTS];
                for (i, row) in gg.iter().enumerate() {
                    for (j, grow) in G.iter().enumerate() {
                        out[i * SPAN + j] = (0..3).map(|k| row[k] * grow[k]).sum::<f64>() as f32;
                    }
                }
                out
            })
            .collect();
        for (rc, filter) in filters.iter().enumerate() {
            let (out, channel) = (rc / cols, rc % cols);
            for (point, &v) in filter.iter().enumerate() {
                u[point * per_point + channel * rows + out] = v;
            }
        }
        Ok(WinogradKernel {
            u,
            out_channels: rows,
            in_channels: cols,
        })
    }
}

/// The output [N, O, oh, ow] of correlating `x` [N, C, H, W] (`dims`) with `kernel` plus
/// `bias` (a value per output channel), then `then`: output pixel (y, x) reads input rows
/// `y − pad.0 ..= y − pad.0 + 2` and columns likewise, zeros outside the input: the
/// convolution's forward pass with its padding (top, left) and output size.
///
/// The input gradient of a 3×3 stride-1 convolution is such a correlation too (of the output
/// gradient with the transposed, flipped kernel); the transforms mix a tile's values, so it is
/// followed there by [`zero_outside_support`].
pub fn correlate(
    x: &[f32],
    dims: (usize, usize, usize, usize),
    kernel: &WinogradKernel,
    bias: Option<&[f32]>,
    pad: (usize, usize),
    output: (usize, usize),
    then: Option<FusedActivation>,
) -> Result<Vec<f32>> {
    let (n, c, h, w) = dims;
    let (o, (oh, ow)) = (kernel.out_channels, output);
    if kernel.in_channels != c || x.len() != n * c * h * w {
        candle_core::bail!(
            "Winograd convolution of {} input channels given an input of {:?} ({} values)",
            kernel.in_channels,
            dims,
            x.len()
        );
    }
    if bias.is_some_and(|b| b.len() != o) {
        candle_core::bail!("convolution bias does not have {o} values");
    }
    let (th, tw) = (oh.div_ceil(TILE), ow.div_ceil(TILE));
    let tiles = n * th * tw;
    if tiles == 0 || o == 0 {
        return Ok(vec![0f32; n * o * oh * ow]);
    }
    // Written tile by tile by the output transform, not zeroed ahead (see `unwritten`).
    let mut y = unwritten(n * o * oh * ow);
    let threads = rayon::current_num_threads().max(1);
    let per_task = tiles
        .div_ceil(threads)
        .clamp(1, MOST_TILES_PER_TASK)
        .next_multiple_of(LANES);
    let layout = Layout {
        input: (c, h, w),
        out_channels: o,
        pad,
        output,
        tiles_per_image: (th, tw),
        then,
    };
    let out = SharedOutput {
        ptr: y.as_mut_ptr().cast::<f32>(),
        len: y.len(),
    };
    let tasks = tiles.div_ceil(per_task);
    (0..tasks).into_par_iter().try_for_each_init(
        || {
            // One group of lanes of slack past the products: the output transform reads whole
            // groups of output channels (the slack's values land in lanes it does not write).
            (
                Scratch::of_len(POINTS * c * per_task),
                Scratch::of_len(POINTS * o * per_task + LANES),
            )
        },
        |(v, m), task| {
            let first = task * per_task;
            let count = per_task.min(tiles - first);
            transforms::input(&layout, x, first, count, per_task, v);
            // Each point's product as its transpose, [tiles × out] = Vᵀ·Uᵀ: its rows run along
            // the output channels (64 and more), which the `gemm` crate takes as the length of
            // its micro-kernel's vectors; the product itself, [out × tiles], would give it rows
            // of 16 tiles and its narrowest kernel (timed: docs/PERFORMANCE.md).
            for point in 0..POINTS {
                gemm_into(
                    &mut m[point * o * per_task..(point + 1) * o * per_task],
                    &v[point * c * per_task..(point + 1) * c * per_task],
                    true,
                    &kernel.u[point * o * c..(point + 1) * o * c],
                    (per_task, o, c),
                    false,
                    Parallelism::None,
                )?;
            }
            transforms::output(&layout, m, bias, first, count, per_task, &out);
            Ok::<(), candle_core::Error>(())
        },
    )?;
    // SAFETY: the tasks' tiles are the n·th·tw tiles of the output, and the output transform
    // writes each tile's pixels inside the plane (all of it: rows and columns up to TILE, fewer
    // at the plane's edge) for every output channel, so each of the n·o·oh·ow values.
    Ok(unsafe { written(y) })
}

/// Sets to exactly zero each pixel of `y` [N, O, oh, ow] (`out_channels`, `output`) whose
/// 3×3 window of `x` [N, C, H, W] (`dims`, read as [`correlate`] reads it, padded by `pad`) is
/// zero in every channel: there the direct sum is exactly zero, and the transforms, which mix a
/// tile's values, leave rounding (1e-8 where a deconvnet reconstruction must be zero outside
/// a unit's receptive field). One pass over `x`; nothing more for an image `x` has no zero
/// pixel in.
pub fn zero_outside_support(
    x: &[f32],
    dims: (usize, usize, usize, usize),
    pad: (usize, usize),
    y: &mut [f32],
    out_channels: usize,
    output: (usize, usize),
) -> Result<()> {
    let (n, c, h, w) = dims;
    let (oh, ow) = output;
    if x.len() != n * c * h * w || y.len() != n * out_channels * oh * ow {
        candle_core::bail!(
            "Winograd support of {dims:?} into {out_channels}x{oh}x{ow} given {} and {} values",
            x.len(),
            y.len()
        );
    }
    if n == 0 || c * h * w == 0 || out_channels * oh * ow == 0 {
        return Ok(());
    }
    y.par_chunks_mut(out_channels * oh * ow)
        .zip(x.par_chunks(c * h * w))
        .for_each(|(image_out, image_in)| {
            // Input pixels nonzero in some channel; a dense signal is known so after a
            // channel or two, and the rest of the image is not read.
            let mut nonzero = vec![false; h * w];
            for plane in image_in.chunks_exact(h * w) {
                for (any, &v) in nonzero.iter_mut().zip(plane) {
                    *any |= v != 0.0;
                }
                if nonzero.iter().all(|&any| any) {
                    return;
                }
            }
            let support: Vec<bool> = (0..oh * ow)
                .map(|p| {
                    let (oy, ox) = (p / ow, p % ow);
                    (0..3).any(|i| {
                        (oy + i)
                            .checked_sub(pad.0)
                            .filter(|&r| r < h)
                            .is_some_and(|r| {
                                (0..3).any(|j| {
                                    (ox + j)
                                        .checked_sub(pad.1)
                                        .filter(|&col| col < w)
                                        .is_some_and(|col| nonzero[r * w + col])
                                })
                            })
                    })
                })
                .collect();
            for plane in image_out.chunks_exact_mut(oh * ow) {
                for (v, &inside) in plane.iter_mut().zip(&support) {
                    if !inside {
                        *v = 0.0;
                    }
                }
            }
        });
    Ok(())
}

/// The shapes the transforms index with.
struct Layout {
    /// Input channels, rows, columns.
    input: (usize, usize, usize),
    out_channels: usize,
    pad: (usize, usize),
    output: (usize, usize),
    tiles_per_image: (usize, usize),
    /// The activation applied to each output pixel as it is written.
    then: Option<FusedActivation>,
}

impl Layout {
    /// Tile `t`'s image and the output row and column of its top-left pixel.
    fn tile(&self, t: usize) -> (usize, usize, usize) {
        let (th, tw) = self.tiles_per_image;
        let (image, rest) = (t / (th * tw), t % (th * tw));
        (image, rest / tw * TILE, rest % tw * TILE)
    }
}

/// The output buffer, written by several tasks at once at disjoint places.
struct SharedOutput {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: tasks write through the pointer only at the pixels of their own tiles (see
// `transform_output`), and tiles never share a pixel, so no two threads touch one element.
unsafe impl Sync for SharedOutput {}

/// A tile's 6×6 input window: its image, the input row and column of its top-left cell
/// (negative in the padding), and the rows and columns of the window that lie inside the
/// input plane (the rest read zeros), worked out once per window rather than per cell.
struct Window {
    image: usize,
    corner: (isize, isize),
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
}

impl Window {
    fn new(image: usize, corner: (isize, isize), (h, w): (usize, usize)) -> Window {
        let inside = |start: isize, len: usize| -> std::ops::Range<usize> {
            let lo = (-start).clamp(0, SPAN as isize) as usize;
            let hi = (len as isize - start).clamp(0, SPAN as isize) as usize;
            lo..hi.max(lo)
        };
        Window {
            image,
            corner,
            rows: inside(corner.0, h),
            columns: inside(corner.1, w),
        }
    }
}

/// `v[point][channel][column]` for the tiles `first..first + count` (columns past `count` are
/// zeros): Bᵀ·d·B of each tile's 6×6 input window `d`.
#[inline(always)]
fn transform_input(
    layout: &Layout,
    x: &[f32],
    first: usize,
    count: usize,
    columns: usize,
    v: &mut [f32],
) {
    let (c, h, w) = layout.input;
    let (pad_top, pad_left) = layout.pad;
    let windows: Vec<Window> = (0..count)
        .map(|k| {
            let (image, oy, ox) = layout.tile(first + k);
            Window::new(
                image,
                (
                    oy as isize - pad_top as isize,
                    ox as isize - pad_left as isize,
                ),
                (h, w),
            )
        })
        .collect();
    // One group of tiles' windows and their column transforms, `[row][column][lane]`.
    let mut d = [0f32; POINTS * LANES];
    let mut t = [0f32; POINTS * LANES];
    let row = SPAN * LANES;
    for channel in 0..c {
        for group in (0..columns).step_by(LANES) {
            for lane in 0..LANES {
                let Some(window) = windows.get(group + lane) else {
                    for cell in d.iter_mut().skip(lane).step_by(LANES) {
                        *cell = 0.0;
                    }
                    continue;
                };
                let image = window.image;
                let plane = &x[(image * c + channel) * h * w..(image * c + channel + 1) * h * w];
                let (top, left) = window.corner;
                for i in 0..SPAN {
                    let cells = d[i * row + lane..].iter_mut().step_by(LANES).take(SPAN);
                    if !window.rows.contains(&i) {
                        for cell in cells {
                            *cell = 0.0;
                        }
                        continue;
                    }
                    // Inside the plane: this row's input row and the window's first column.
                    let start = (top + i as isize) as usize * w;
                    if window.columns == (0..SPAN) {
                        let first = start + left as usize;
                        for (cell, &value) in cells.zip(&plane[first..first + SPAN]) {
                            *cell = value;
                        }
                    } else {
                        let src = &plane[start..start + w];
                        for (j, cell) in cells.enumerate() {
                            *cell = if window.columns.contains(&j) {
                                src[(left + j as isize) as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            for j in 0..SPAN {
                input_line_transform(&d[j * LANES..], row, &mut t[j * LANES..], row);
            }
            let stride = c * columns;
            for i in 0..SPAN {
                let at = (i * SPAN * c + channel) * columns + group;
                input_line_transform(&t[i * row..], LANES, &mut v[at..], stride);
            }
        }
    }
}

/// The transforms, compiled twice: for the baseline x86-64 the crate targets (SSE2), and with
/// AVX2 and FMA for the CPUs that have them (chosen at run time). The arithmetic is the same
/// (Rust never fuses a multiply and an add on its own), so both give the same bits.
mod transforms {
    use super::{transform_input, transform_output, Layout, SharedOutput};

    /// [`transform_input`] on the widest vectors the CPU has.
    pub(super) fn input(
        layout: &Layout,
        x: &[f32],
        first: usize,
        count: usize,
        columns: usize,
        v: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { input_avx2(layout, x, first, count, columns, v) };
        }
        transform_input(layout, x, first, count, columns, v)
    }

    /// [`transform_output`] on the widest vectors the CPU has.
    pub(super) fn output(
        layout: &Layout,
        m: &[f32],
        bias: Option<&[f32]>,
        first: usize,
        count: usize,
        columns: usize,
        out: &SharedOutput,
    ) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return unsafe { output_avx2(layout, m, bias, first, count, columns, out) };
        }
        transform_output(layout, m, bias, first, count, columns, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn input_avx2(
        layout: &Layout,
        x: &[f32],
        first: usize,
        count: usize,
        columns: usize,
        v: &mut [f32],
    ) {
        transform_input(layout, x, first, count, columns, v)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn output_avx2(
        layout: &Layout,
        m: &[f32],
        bias: Option<&[f32]>,
        first: usize,
        count: usize,
        columns: usize,
        out: &SharedOutput,
    ) {
        transform_output(layout, m, bias, first, count, columns, out)
    }
}

/// Bᵀ·d of six values per lane: `d[k]` at `src[k·src_stride..][..LANES]`, the result's `k`th
/// at `dst[k·dst_stride..][..LANES]` (down a tile's column, or along a row).
#[inline(always)]
fn input_line_transform(src: &[f32], src_stride: usize, dst: &mut [f32], dst_stride: usize) {
    let d: [Lanes; SPAN] = std::array::from_fn(|k| lanes(src, k * src_stride));
    let mut r = [[0f32; LANES]; SPAN];
    for l in 0..LANES {
        let [d0, d1, d2, d3, d4, d5] = [d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]];
        r[0][l] = 4.0 * d0 - 5.0 * d2 + d4;
        r[1][l] = -4.0 * (d1 + d2) + d3 + d4;
        r[2][l] = 4.0 * (d1 - d2) - d3 + d4;
        r[3][l] = 2.0 * (d3 - d1) - d2 + d4;
        r[4][l] = 2.0 * (d1 - d3) - d2 + d4;
        r[5][l] = 4.0 * d1 - 5.0 * d3 + d5;
    }
    for (k, values) in r.iter().enumerate() {
        dst[k * dst_stride..k * dst_stride + LANES].copy_from_slice(values);
    }
}

/// One value per lane (tile).
type Lanes = [f32; LANES];

/// The `LANES` values of `src` from `at`.
#[inline(always)]
fn lanes(src: &[f32], at: usize) -> Lanes {
    let mut values = [0f32; LANES];
    values.copy_from_slice(&src[at..at + LANES]);
    values
}

/// Writes the output pixels of the tiles `first..first + count` from their products
/// `m[point][column][out_channel]` (and `LANES` values of slack at the end): Aᵀ·m·A plus the
/// bias, cut at the output's edges, `LANES` output channels at a time.
#[inline(always)]
fn transform_output(
    layout: &Layout,
    m: &[f32],
    bias: Option<&[f32]>,
    first: usize,
    count: usize,
    columns: usize,
    out: &SharedOutput,
) {
    let o = layout.out_channels;
    let (oh, ow) = layout.output;
    let tiles: Vec<(usize, usize, usize)> =
        (first..first + count).map(|t| layout.tile(t)).collect();
    // One group's column transforms `[row][column][lane]` and output tiles `[row][column][lane]`
    // (a lane: an output channel).
    let mut t = [0f32; TILE * SPAN * LANES];
    let mut y = [0f32; TILE * TILE * LANES];
    let row = SPAN * LANES;
    let stride = SPAN * columns * o;
    for group in (0..o).step_by(LANES) {
        let lanes = LANES.min(o - group);
        let mut b = [0f32; LANES];
        if let Some(bias) = bias {
            b[..lanes].copy_from_slice(&bias[group..group + lanes]);
        }
        for (column, &(image, oy, ox)) in tiles.iter().enumerate() {
            for j in 0..SPAN {
                let at = (j * columns + column) * o + group;
                output_line_transform(&m[at..], stride, &mut t[j * LANES..], row);
            }
            for i in 0..TILE {
                output_line_transform(&t[i * row..], LANES, &mut y[i * TILE * LANES..], LANES);
            }
            let (rows, cols) = ((oh - oy).min(TILE), (ow - ox).min(TILE));
            for (lane, &b) in b.iter().enumerate().take(lanes) {
                let plane = (image * o + group + lane) * oh * ow;
                for i in 0..rows {
                    let start = plane + (oy + i) * ow + ox;
                    for j in 0..cols {
                        let value = y[(i * TILE + j) * LANES + lane] + b;
                        let value = layout.then.map_or(value, |a| a.apply(value));
                        debug_assert!(start + j < out.len);
                        // SAFETY: `start + j` < n·o·oh·ow = `out.len` (the image, channel, row
                        // and column are all in range), and only this tile's task writes it.
                        unsafe { *out.ptr.add(start + j) = value };
                    }
                }
            }
        }
    }
}

/// Aᵀ·m of six values per lane, laid out as in [`input_line_transform`].
#[inline(always)]
fn output_line_transform(src: &[f32], src_stride: usize, dst: &mut [f32], dst_stride: usize) {
    let m: [Lanes; SPAN] = std::array::from_fn(|k| lanes(src, k * src_stride));
    let mut r = [[0f32; LANES]; TILE];
    for l in 0..LANES {
        let [m0, m1, m2, m3, m4, m5] = [m[0][l], m[1][l], m[2][l], m[3][l], m[4][l], m[5][l]];
        let (sum12, diff12, sum34, diff34) = (m1 + m2, m1 - m2, m3 + m4, m3 - m4);
        r[0][l] = m0 + sum12 + sum34;
        r[1][l] = diff12 + 2.0 * diff34;
        r[2][l] = sum12 + 4.0 * sum34;
        r[3][l] = diff12 + 8.0 * diff34 + m5;
    }
    for (k, values) in r.iter().enumerate() {
        dst[k * dst_stride..k * dst_stride + LANES].copy_from_slice(values);
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::pays;
    use crate::ops::test_compare::{bits, max_rel};
    use crate::ops::{Activation, BatchNorm2d, Conv2d, Convolutions, Padding};

    /// F(4×4, 3×3) rounds more than the direct sum (its transforms scale by up to 8 and 1/24):
    /// about 4e-6 of the output's magnitude at 16 channels, 1e-5 at 256 (measured).
    const TOLERANCE: f32 = 3e-5;

    /// Padding of a different size on each side (none on the left).
    const ASYMMETRIC: Padding = Padding::Explicit {
        top: 2,
        bottom: 0,
        left: 0,
        right: 1,
    };

    #[test]
    fn the_winograd_convolution_equals_the_candle_path() {
        let dev = Device::Cpu;
        // (images, in channels, out channels, padding, input rows and columns, bias); planes
        // that end in partial tiles.
        let cases = [
            (2, 16, 24, Padding::symmetric(1), (17, 13), true),
            (1, 32, 16, Padding::symmetric(1), (28, 28), false),
            (3, 16, 16, Padding::symmetric(0), (18, 15), true),
            (2, 24, 16, Padding::symmetric(2), (15, 13), false),
            (2, 16, 20, ASYMMETRIC, (16, 17), true),
            (4, 16, 16, Padding::Same, (13, 14), true),
            (1, 256, 64, Padding::symmetric(1), (24, 24), true),
            (2, 512, 32, Padding::symmetric(1), (14, 14), false),
            (9, 16, 16, Padding::symmetric(1), (16, 16), true),
            // More output channels than the `gemm` crate's micro-kernel rows (64) twice over,
            // and not a multiple of its vector: its packed and tail paths.
            (2, 64, 136, Padding::symmetric(1), (20, 20), true),
            // Small planes (4 to 15 tiles) of more than 64 output channels, in a batch.
            (2, 32, 72, Padding::symmetric(1), (7, 7), true),
            (3, 16, 96, Padding::symmetric(1), (9, 11), false),
        ];
        for (n, c, o, padding, (h, w), bias) in cases {
            let weight = Tensor::randn(0f32, 1f32, (o, c, 3, 3), &dev).unwrap();
            let b = bias.then(|| Tensor::randn(0f32, 1f32, o, &dev).unwrap());
            let conv = Conv2d::new(weight, b, 1, padding, 1, 1);
            let x = Tensor::randn(0f32, 1f32, (n, c, h, w), &dev).unwrap();
            let (top, bottom, left, right) = conv.pads(&x).unwrap();
            let output = (h + top + bottom - 2, w + left + right - 2);
            let what = format!("n={n} c={c} o={o} pad={padding:?} hw={:?}", (h, w));
            assert!(pays((3, 3), 1, 1, 1, (c, o), n, output), "{what}");
            let fast = conv.forward_by(&x, Convolutions::Fastest).unwrap();
            let slow = conv.forward_by_candle(&x).unwrap();
            let error = max_rel(&fast, &slow);
            assert!(error < TOLERANCE, "forward {what}: {error}");
        }
    }

    #[test]
    fn the_winograd_input_gradient_equals_the_candle_path() {
        let dev = Device::Cpu;
        // (images, in channels, out channels, padding, input rows and columns): the gradient
        // correlates the `out` channels of the output gradient into the `in` channels.
        let cases = [
            (2, 16, 24, Padding::symmetric(1), (17, 13)),
            (3, 16, 16, Padding::symmetric(0), (18, 15)),
            (2, 24, 16, Padding::symmetric(2), (15, 13)),
            (2, 16, 20, ASYMMETRIC, (16, 17)),
            (4, 16, 16, Padding::Same, (13, 14)),
            (1, 64, 256, Padding::symmetric(1), (24, 24)),
            (2, 136, 64, Padding::symmetric(1), (20, 20)),
            (3, 72, 32, Padding::symmetric(1), (7, 7)),
        ];
        for (n, c, o, padding, (h, w)) in cases {
            let weight = Tensor::randn(0f32, 1f32, (o, c, 3, 3), &dev).unwrap();
            let conv = Conv2d::new(weight, None, 1, padding, 1, 1);
            let x = Tensor::randn(0f32, 1f32, (n, c, h, w), &dev).unwrap();
            let (top, bottom, left, right) = conv.pads(&x).unwrap();
            let output = (h + top + bottom - 2, w + left + right - 2);
            let g = Tensor::randn(0f32, 1f32, (n, o, output.0, output.1), &dev).unwrap();
            let what = format!("n={n} c={c} o={o} pad={padding:?} hw={:?}", (h, w));
            assert!(pays((3, 3), 1, 1, 1, (o, c), n, (h, w)), "{what}");
            let fast = conv
                .input_gradient_by(&x, &g, Convolutions::Fastest)
                .unwrap();
            let slow = conv.input_gradient_by_candle(&x, &g).unwrap();
            let error = max_rel(&fast, &slow);
            assert!(error < TOLERANCE, "input gradient {what}: {error}");
        }
    }

    #[test]
    fn the_winograd_input_gradient_is_zero_where_the_direct_sum_is() {
        let dev = Device::Cpu;
        let (n, c, o, (h, w)) = (2, 16, 32, (30, 27));
        let weight = Tensor::randn(0f32, 1f32, (o, c, 3, 3), &dev).unwrap();
        let conv = Conv2d::new(weight, None, 1, Padding::symmetric(1), 1, 1);
        let x = Tensor::randn(0f32, 1f32, (n, c, h, w), &dev).unwrap();
        // One unit's signal in the first image (a window of one channel, as a deconvnet sends
        // back from a unit), none in the second: tiles straddle the window's edges.
        let mut signal = vec![0f32; n * o * h * w];
        for y in 9..14 {
            for x in 5..11 {
                signal[(3 * h + y) * w + x] = 1.0 + (y * w + x) as f32 / 100.0;
            }
        }
        let g = Tensor::from_vec(signal, (n, o, h, w), &dev).unwrap();
        let fast = conv
            .input_gradient_by(&x, &g, Convolutions::Fastest)
            .unwrap();
        let direct = conv.input_gradient(&x, &g).unwrap();
        assert!(max_rel(&fast, &direct) < TOLERANCE);
        let (fast, direct) = (
            fast.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            direct.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let zeros = direct.iter().filter(|v| **v == 0.0).count();
        // Everything but the window grown by the kernel's reach in each of the 16 channels.
        assert_eq!(zeros, n * c * h * w - c * 7 * 8);
        for (i, (f, d)) in fast.iter().zip(&direct).enumerate() {
            assert_eq!(*f == 0.0, *d == 0.0, "element {i}: {f} against {d}");
        }
    }

    #[test]
    fn a_batch_norm_and_activation_applied_after_the_transforms_give_their_own_passes_bits() {
        let dev = Device::Cpu;
        let (c, o) = (16, 24);
        let weight = Tensor::randn(0f32, 1f32, (o, c, 3, 3), &dev).unwrap();
        let bias = Tensor::randn(0f32, 1f32, o, &dev).unwrap();
        let conv = Conv2d::new(weight, Some(bias), 1, Padding::symmetric(1), 1, 1);
        let stat = |lo: f32| Tensor::rand(lo, 2f32, o, &dev).unwrap();
        let bn = BatchNorm2d::new(stat(0.5), stat(-1.0), stat(-1.0), stat(0.5), 1e-5).unwrap();
        let x = Tensor::randn(0f32, 1f32, (3, c, 17, 18), &dev).unwrap();
        let relu = Activation::Relu;
        let fused = conv
            .forward_then(&x, Convolutions::Fastest, Some(&bn), Some(&relu))
            .unwrap();
        let apart = conv.forward_by(&x, Convolutions::Fastest).unwrap();
        let apart = relu.forward(&bn.forward(&apart).unwrap()).unwrap();
        assert_eq!(bits(&fused), bits(&apart));
        assert!(bits(&fused).contains(&0), "some outputs rectified");
    }

    #[test]
    fn an_images_result_does_not_depend_on_its_batch() {
        let dev = Device::Cpu;
        let weight = Tensor::randn(0f32, 1f32, (24, 16, 3, 3), &dev).unwrap();
        let conv = Conv2d::new(weight, None, 1, Padding::symmetric(1), 1, 1);
        let x = Tensor::randn(0f32, 1f32, (9, 16, 17, 19), &dev).unwrap();
        let batch = conv.forward_by(&x, Convolutions::Fastest).unwrap();
        for i in [0, 4, 8] {
            let one = x.narrow(0, i, 1).unwrap();
            let alone = conv.forward_by(&one, Convolutions::Fastest).unwrap();
            let diff = max_rel(&alone, &batch.narrow(0, i, 1).unwrap());
            assert_eq!(diff, 0.0, "image {i}");
        }
    }

    #[test]
    fn a_small_planes_result_is_the_same_in_every_batch_of_two_or_more_and_alone_when_asked() {
        let dev = Device::Cpu;
        let weight = Tensor::randn(0f32, 1f32, (72, 24, 3, 3), &dev).unwrap();
        let conv = Conv2d::new(weight, None, 1, Padding::symmetric(1), 1, 1);
        let x = Tensor::randn(0f32, 1f32, (11, 24, 7, 7), &dev).unwrap();
        let all = conv.forward_by(&x, Convolutions::Fastest).unwrap();
        let g = Tensor::randn(0f32, 1f32, (11, 72, 7, 7), &dev).unwrap();
        let all_gradient = conv
            .input_gradient_by(&x, &g, Convolutions::Fastest)
            .unwrap();
        for (start, len) in [(0, 2), (3, 3), (4, 5), (9, 2)] {
            let part = x.narrow(0, start, len).unwrap();
            let y = conv.forward_by(&part, Convolutions::Fastest).unwrap();
            let diff = max_rel(&y, &all.narrow(0, start, len).unwrap());
            assert_eq!(diff, 0.0, "images {start}..{}", start + len);
            let gx = conv
                .input_gradient_by(
                    &part,
                    &g.narrow(0, start, len).unwrap(),
                    Convolutions::Fastest,
                )
                .unwrap();
            let diff = max_rel(&gx, &all_gradient.narrow(0, start, len).unwrap());
            assert_eq!(
                diff,
                0.0,
                "input gradient of images {start}..{}",
                start + len
            );
        }
        // The batch's path is Winograd's: not the direct sum's bits.
        let direct = conv.forward_by(&x, Convolutions::Direct).unwrap();
        assert!(max_rel(&direct, &all) > 0.0);
        // A lone image takes the batch's path when asked to, else the direct sum.
        for i in [0, 5, 10] {
            let one = x.narrow(0, i, 1).unwrap();
            let invariant = conv
                .forward_by(&one, Convolutions::FastestBatchInvariant)
                .unwrap();
            let diff = max_rel(&invariant, &all.narrow(0, i, 1).unwrap());
            assert_eq!(diff, 0.0, "image {i} alone");
            let alone = conv.forward_by(&one, Convolutions::Fastest).unwrap();
            let direct = conv.forward_by(&one, Convolutions::Direct).unwrap();
            assert_eq!(max_rel(&alone, &direct), 0.0, "image {i} alone, fastest");
        }
    }

    #[test]
    fn the_vector_builds_of_the_transforms_give_the_same_bits() {
        let (c, h, w, o) = (3, 11, 13, 5);
        let layout = super::Layout {
            input: (c, h, w),
            out_channels: o,
            pad: (1, 2),
            output: (h, w),
            tiles_per_image: (h.div_ceil(super::TILE), w.div_ceil(super::TILE)),
            // Bounds inside the outputs' range, so that both sides of each are taken.
            then: Some(super::FusedActivation::Clamp { lo: -3.0, hi: 4.0 }),
        };
        let tiles = 2 * layout.tiles_per_image.0 * layout.tiles_per_image.1;
        let columns = tiles.next_multiple_of(super::LANES);
        let values = |len: usize, seed: u32| -> Vec<f32> {
            (0..len as u32)
                .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 1000) as f32 / 37.0 - 13.0)
                .collect()
        };
        let x = values(2 * c * h * w, 1);
        let (mut baseline, mut best) = (
            vec![0f32; super::POINTS * c * columns],
            vec![0f32; super::POINTS * c * columns],
        );
        super::transform_input(&layout, &x, 0, tiles, columns, &mut baseline);
        super::transforms::input(&layout, &x, 0, tiles, columns, &mut best);
        assert_eq!(baseline, best, "input transform");
        // With the slack the output transform reads past the last group of output channels.
        let m = values(super::POINTS * o * columns + super::LANES, 2);
        let bias = values(o, 3);
        let (mut baseline, mut best) = (vec![0f32; 2 * o * h * w], vec![0f32; 2 * o * h * w]);
        for (y, vector) in [(&mut baseline, false), (&mut best, true)] {
            let out = super::SharedOutput {
                ptr: y.as_mut_ptr(),
                len: y.len(),
            };
            if vector {
                super::transforms::output(&layout, &m, Some(&bias), 0, tiles, columns, &out);
            } else {
                super::transform_output(&layout, &m, Some(&bias), 0, tiles, columns, &out);
            }
        }
        assert_eq!(baseline, best, "output transform");
        assert!(best.iter().all(|v| v.is_finite() && *v != 0.0));
    }

    #[test]
    fn small_planes_and_other_convolutions_keep_the_direct_path() {
        // A small plane alone, or of at most 64 output channels, or of a single tile.
        assert!(!pays((3, 3), 1, 1, 1, (512, 512), 1, (7, 7)));
        assert!(!pays((3, 3), 1, 1, 1, (512, 64), 8, (7, 7)));
        assert!(!pays((3, 3), 1, 1, 1, (512, 512), 8, (4, 4)));
        assert!(!pays((3, 3), 2, 1, 1, (64, 64), 1, (56, 56)));
        assert!(!pays((3, 3), 1, 2, 1, (64, 64), 1, (56, 56)));
        assert!(!pays((3, 3), 1, 1, 2, (64, 64), 1, (56, 56)));
        assert!(!pays((1, 1), 1, 1, 1, (64, 64), 1, (56, 56)));
        assert!(!pays((3, 3), 1, 1, 1, (3, 64), 1, (224, 224)));
        assert!(pays((3, 3), 1, 1, 1, (64, 64), 1, (14, 14)));
        assert!(pays((3, 3), 1, 1, 1, (64, 64), 1, (56, 56)));
        for images in [2, 3, 16] {
            assert!(pays((3, 3), 1, 1, 1, (512, 512), images, (7, 7)));
        }
    }
}
