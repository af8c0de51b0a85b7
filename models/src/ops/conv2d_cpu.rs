//! The CPU fast path of (grouped, non-depthwise) 2-D convolution: im2col straight into the
//! [C·kh·kw, oh·ow] matrix the GEMM reads, one GEMM per image and group writing the output in
//! NCHW, and the input gradient as Wᵀ·g followed by a col2im fold.
//!
//! candle 0.11.1's CPU convolution first copies the input to NHWC on one thread, builds im2col
//! tiles element by element, and scatters each tile's result back to NCHW; padding that is not
//! the same on all sides costs two more padded copies, and the input gradient goes through a
//! padded (and, when strided, zero-dilated) copy of the output gradient. Here padding is never
//! materialized (out-of-range taps are zeros in the column matrix), rows of the column matrix
//! are copied as contiguous runs in parallel, and the bias is the GEMM's initial output. It
//! runs only for f32 tensors on the CPU; every other device keeps the candle path, and the
//! tests below check this path against it.

use std::mem::MaybeUninit;

use candle_core::{Result, Tensor};
use gemm::{gemm, Parallelism};
use rayon::prelude::*;

use super::column_invariant_gemm::gemm_columns_into;
use super::cpu_slice::{is_cpu_f32, with_f32};
use super::epilogue::Epilogue;
use super::packed_gemm::{self, gemm_packed_into, OutputLayout, PackedLhs};
use super::scratch::Scratch;
use super::unwritten::{self, input_holds, unwritten};

/// A layer's weight packed for [`gemm_packed_into`], made the first time its small planes need
/// it (`None` inside where the CPU cannot run the packed product).
pub type PackedWeight = std::sync::OnceLock<Option<std::sync::Arc<PackedLhs>>>;

/// Whether the fast path applies to an input (or output signal) `x` and kernel `weight`.
pub fn applies(x: &Tensor, weight: &Tensor) -> bool {
    is_cpu_f32(x) && is_cpu_f32(weight)
}

/// The shape of one convolution, as the loops need it.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    /// Kernel rows and columns.
    kernel: (usize, usize),
    stride: usize,
    dilation: usize,
    /// Zero rows above and columns on the left (those below and on the right only bound the
    /// output size).
    pad: (usize, usize),
    /// Input plane (rows, columns), unpadded.
    input: (usize, usize),
    /// Output plane (rows, columns).
    output: (usize, usize),
}

impl Geometry {
    fn new(
        kernel: (usize, usize),
        stride: usize,
        dilation: usize,
        pads: (usize, usize, usize, usize),
        input: (usize, usize),
    ) -> Result<Self> {
        let (top, bottom, left, right) = pads;
        let (kh, kw) = kernel;
        if stride == 0 || dilation == 0 || kh == 0 || kw == 0 {
            candle_core::bail!("convolution with a zero stride, dilation or kernel size");
        }
        let (ekh, ekw) = (dilation * (kh - 1) + 1, dilation * (kw - 1) + 1);
        let (hp, wp) = (input.0 + top + bottom, input.1 + left + right);
        if hp < ekh || wp < ekw {
            candle_core::bail!(
                "convolution kernel {ekh}x{ekw} (dilated) is larger than the padded input {hp}x{wp}"
            );
        }
        Ok(Geometry {
            kernel,
            stride,
            dilation,
            pad: (top, left),
            input,
            output: ((hp - ekh) / stride + 1, (wp - ekw) / stride + 1),
        })
    }

    /// Whether the column matrix is the input itself (1×1 kernel, stride 1, no padding).
    fn is_pointwise(&self) -> bool {
        self.kernel == (1, 1) && self.stride == 1 && self.pad == (0, 0) && self.output == self.input
    }

    /// The output positions `lo..hi` along one axis whose tap at `offset` (kernel index times
    /// dilation) reads inside an input of `len`, given the padding `pad` before it.
    fn valid(&self, count: usize, offset: usize, pad: usize, len: usize) -> (usize, usize) {
        let s = self.stride;
        let lo = if pad > offset {
            (pad - offset).div_ceil(s)
        } else {
            0
        };
        let hi = if len + pad > offset {
            ((len + pad - offset - 1) / s + 1).min(count)
        } else {
            0
        };
        (lo.min(hi), hi)
    }

    /// The input row read by output row `oy` at kernel row offset `offset`, if inside.
    fn input_row(&self, oy: usize, offset: usize) -> Option<usize> {
        (oy * self.stride + offset)
            .checked_sub(self.pad.0)
            .filter(|&y| y < self.input.0)
    }
}

/// Copies the column-matrix row of kernel tap (`i`, `j`) of one input plane: `row` [oh·ow].
fn im2col_row(geo: &Geometry, plane: &[f32], (i, j): (usize, usize), row: &mut [f32]) {
    let ow = geo.output.1;
    let w = geo.input.1;
    let (s, d) = (geo.stride, geo.dilation);
    let offset = j * d;
    let (lo, hi) = geo.valid(ow, offset, geo.pad.1, w);
    if lo >= hi || ow == 0 {
        row.fill(0.0);
        return;
    }
    for (oy, out) in row.chunks_exact_mut(ow).enumerate() {
        let Some(y) = geo.input_row(oy, i * d) else {
            out.fill(0.0);
            continue;
        };
        let src = &plane[y * w..(y + 1) * w];
        out[..lo].fill(0.0);
        out[hi..].fill(0.0);
        let first = lo * s + offset - geo.pad.1;
        if s == 1 {
            out[lo..hi].copy_from_slice(&src[first..first + hi - lo]);
        } else {
            for (v, x) in out[lo..hi].iter_mut().zip(src[first..].iter().step_by(s)) {
                *v = *x;
            }
        }
    }
}

/// The column matrix of one image `img` [C, H, W] for `groups` groups: per group, rows ordered
/// (kernel row, kernel column, channel), as candle's convolution orders them, so that the GEMM
/// sums each output in the same order as the candle path and rounds alike (a last-bit
/// difference flips ReLU6 masks at pre-activations of exactly 6).
fn im2col(geo: &Geometry, img: &[f32], channels: usize, groups: usize, col: &mut [f32]) {
    let (h, w) = geo.input;
    let m = geo.output.0 * geo.output.1;
    let kw = geo.kernel.1;
    let cg = channels / groups;
    let kg = cg * geo.kernel.0 * kw;
    if m == 0 || kg == 0 {
        return;
    }
    let rows_per_task = 4096usize.div_ceil(m).max(1);
    col.par_chunks_mut(m * rows_per_task)
        .enumerate()
        .for_each(|(task, rows)| {
            for (k, row) in rows.chunks_exact_mut(m).enumerate() {
                let r = task * rows_per_task + k;
                let (g, rr) = (r / kg, r % kg);
                let (tap, cl) = (rr / cg, rr % cg);
                let c = g * cg + cl;
                let plane = &img[c * h * w..(c + 1) * h * w];
                im2col_row(geo, plane, (tap / kw, tap % kw), row);
            }
        });
}

/// Adds one input plane's kh·kw rows of the column matrix back onto the plane (col2im).
fn col2im_plane(geo: &Geometry, rows: &[f32], plane: &mut [f32]) {
    let (kh, kw) = geo.kernel;
    let ow = geo.output.1;
    let w = geo.input.1;
    let (s, d) = (geo.stride, geo.dilation);
    let m = geo.output.0 * ow;
    for i in 0..kh {
        for j in 0..kw {
            let row = &rows[(i * kw + j) * m..(i * kw + j + 1) * m];
            let offset = j * d;
            let (lo, hi) = geo.valid(ow, offset, geo.pad.1, w);
            if lo >= hi {
                continue;
            }
            for (oy, src) in row.chunks_exact(ow).enumerate() {
                let Some(y) = geo.input_row(oy, i * d) else {
                    continue;
                };
                let first = lo * s + offset - geo.pad.1;
                let dst = &mut plane[y * w + first..(y + 1) * w];
                if s == 1 {
                    for (v, g) in dst.iter_mut().zip(&src[lo..hi]) {
                        *v += *g;
                    }
                } else {
                    for (v, g) in dst.iter_mut().step_by(s).zip(&src[lo..hi]) {
                        *v += *g;
                    }
                }
            }
        }
    }
}

/// An error unless `dst`, `lhs` and `rhs` hold the m·n, m·k and k·n values of an [m, k] by
/// [k, n] product (`rhs` stored either way round).
pub(super) fn check_buffers(
    dst: &[f32],
    lhs: &[f32],
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
) -> Result<()> {
    check_lengths(dst.len(), lhs, rhs, (m, n, k))
}

/// [`check_buffers`] given the destination's length.
fn check_lengths(
    dst_len: usize,
    lhs: &[f32],
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
) -> Result<()> {
    if dst_len != m * n || lhs.len() != m * k || rhs.len() != k * n {
        candle_core::bail!(
            "GEMM of {m}x{k} by {k}x{n} given buffers of {}, {} and {dst_len}",
            lhs.len(),
            rhs.len(),
        );
    }
    Ok(())
}

/// `dst` [m, n] = `lhs` · `rhs` (plus `dst` when `accumulate`), row-major; `lhs` is [m, k], or
/// stored as its transpose [k, m] when `lhs_transposed`; `rhs` is [k, n].
pub(super) fn gemm_into(
    dst: &mut [f32],
    lhs: &[f32],
    lhs_transposed: bool,
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
    accumulate: bool,
    parallelism: Parallelism,
) -> Result<()> {
    gemm_depth_into(
        dst,
        lhs,
        lhs_transposed,
        rhs,
        (m, n, k),
        0..k,
        accumulate,
        parallelism,
    )
}

/// [`gemm_into`] over the depths `depth` (a range inside 0..k) only: `lhs`'s columns and
/// `rhs`'s rows in that range, in one call to the `gemm` crate.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_depth_into(
    dst: &mut [f32],
    lhs: &[f32],
    lhs_transposed: bool,
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
    depth: std::ops::Range<usize>,
    accumulate: bool,
    parallelism: Parallelism,
) -> Result<()> {
    // SAFETY: `dst`'s length is `product`'s to check; borrowed mutably, it does not alias the
    // inputs, and what the product reads of it (when `accumulate`) was written.
    unsafe {
        product(
            dst.as_mut_ptr(),
            dst.len(),
            lhs,
            lhs_transposed,
            rhs,
            (m, n, k),
            depth,
            accumulate,
            parallelism,
        )
    }
}

/// [`gemm_into`] without accumulating, into `dst` as yet unwritten (see [`unwritten`]): every
/// element written, returned as floats.
pub(super) fn gemm_write_into<'a>(
    dst: &'a mut [MaybeUninit<f32>],
    lhs: &[f32],
    lhs_transposed: bool,
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
    parallelism: Parallelism,
) -> Result<&'a mut [f32]> {
    if k == 0 {
        check_lengths(dst.len(), lhs, rhs, (m, n, k))?;
        return Ok(unwritten::fill(dst, 0.0));
    }
    // SAFETY: `dst`'s length is `product`'s to check; borrowed mutably, it is not read (no
    // accumulation).
    unsafe {
        product(
            dst.as_mut_ptr().cast::<f32>(),
            dst.len(),
            lhs,
            lhs_transposed,
            rhs,
            (m, n, k),
            0..k,
            false,
            parallelism,
        )?;
    }
    // SAFETY: the product checked that `dst` holds m·n elements, and one that does not
    // accumulate writes each of them (the `gemm` crate's contract, over a depth of at least
    // one).
    Ok(unsafe { unwritten::assume_written(dst) })
}

/// The product of [`gemm_depth_into`] into `dst`, after checking the buffers' lengths (an
/// error unless `dst_len` is m·n).
///
/// # Safety
/// `dst` points to `dst_len` floats that nothing else reads or writes during the call, written
/// ones where `accumulate`.
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    dst: *mut f32,
    dst_len: usize,
    lhs: &[f32],
    lhs_transposed: bool,
    rhs: &[f32],
    (m, n, k): (usize, usize, usize),
    depth: std::ops::Range<usize>,
    accumulate: bool,
    parallelism: Parallelism,
) -> Result<()> {
    check_lengths(dst_len, lhs, rhs, (m, n, k))?;
    if depth.start > depth.end || depth.end > k {
        candle_core::bail!("GEMM depths {depth:?} outside a depth of {k}");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (lhs_cs, lhs_rs, lhs_start) = if lhs_transposed {
        (m as isize, 1, depth.start * m)
    } else {
        (1, k as isize, depth.start)
    };
    // SAFETY: the lengths were checked above and `depth` lies inside 0..k, so every element
    // the strides reach from the offsets (row-major [m, n], [m, k] or its transpose, [k, n],
    // at depths in `depth`) lies inside the slices and inside `dst`'s m·n floats, which the
    // caller keeps to this call.
    unsafe {
        gemm(
            m,
            n,
            depth.len(),
            dst,
            1,
            n as isize,
            accumulate,
            lhs.as_ptr().add(lhs_start),
            lhs_cs,
            lhs_rs,
            rhs.as_ptr().add(depth.start * n),
            1,
            n as isize,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// Every thread of the pool inside one GEMM (none when the pool has one).
pub(super) fn all_threads() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        threads => Parallelism::Rayon(threads),
    }
}

/// A convolution weight [O, C/groups, kh, kw] permuted to [O, kh, kw, C/groups], the layout
/// [`forward`] takes.
pub fn taps_major(weight: &Tensor) -> Result<Tensor> {
    weight.permute((0, 2, 3, 1))?.contiguous()
}

/// Parallelism for the GEMMs: across images when there are enough of them, else inside each.
fn plan_parallelism(images: usize) -> (bool, Parallelism) {
    let threads = rayon::current_num_threads();
    if threads > 1 && images >= threads {
        (true, Parallelism::None)
    } else {
        (false, all_threads())
    }
}

/// Runs `f` on each (output chunk, input chunk) pair, in parallel when `parallel`, with a
/// scratch buffer of `scratch` floats (kept by the thread, see [`Scratch`]).
fn for_each_image<T: Send, F>(
    out: &mut [T],
    out_len: usize,
    inp: &[f32],
    in_len: usize,
    (parallel, scratch): (bool, usize),
    f: F,
) -> Result<()>
where
    F: Fn(&mut [f32], &mut [T], &[f32]) -> Result<()> + Sync,
{
    if out_len == 0 || in_len == 0 {
        return Ok(());
    }
    if parallel {
        out.par_chunks_mut(out_len)
            .zip(inp.par_chunks(in_len))
            .try_for_each_init(
                || Scratch::of_len(scratch),
                |buffer, (o, i)| f(buffer, o, i),
            )
    } else {
        let mut buffer = Scratch::of_len(scratch);
        out.chunks_mut(out_len)
            .zip(inp.chunks(in_len))
            .try_for_each(|(o, i)| f(&mut buffer, o, i))
    }
}

/// The output [N, O, oh, ow] of convolving `x` [N, C, H, W] with a kernel given as `weight_hwc`
/// [O, kh, kw, C/groups] (the layer's weight permuted, see [`taps_major`]) plus `bias` [O],
/// padded by `pads` = (top, bottom, left, right); then `then`, each image as it is done
/// ([`Epilogue`]). Small planes use `packed`, the same weight packed (filled on first use).
#[allow(clippy::too_many_arguments)]
pub fn forward(
    x: &Tensor,
    weight_hwc: &Tensor,
    packed: &PackedWeight,
    bias: Option<&Tensor>,
    stride: usize,
    dilation: usize,
    pads: (usize, usize, usize, usize),
    groups: usize,
    then: Epilogue<'_>,
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (o, kh, kw, cg) = weight_hwc.dims4()?;
    if groups == 0 || cg * groups != c || o % groups != 0 {
        candle_core::bail!(
            "convolution weight (as [O, kh, kw, C/groups]) {:?} with {groups} groups does not fit an input of {c} channels",
            weight_hwc.dims()
        );
    }
    let geo = Geometry::new((kh, kw), stride, dilation, pads, (h, w))?;
    let (oh, ow) = geo.output;
    let m = oh * ow;
    let (og, kg) = (o / groups, cg * kh * kw);
    then.check(o)?;
    let bias = match bias {
        Some(b) => {
            let b = b.flatten_all()?.to_vec1::<f32>()?;
            if b.len() != o {
                candle_core::bail!("convolution bias has {} values for {o} channels", b.len());
            }
            Some(b)
        }
        None => None,
    };
    if groups == 1 && m <= SMALL_PLANE {
        let y = with_f32(x, |xs| {
            with_f32(weight_hwc, |ws| {
                let packed = packed
                    .get_or_init(|| {
                        packed_gemm::pays(o, kg)
                            .then(|| PackedLhs::new(ws, o, kg).map(std::sync::Arc::new))
                            .flatten()
                    })
                    .as_deref();
                forward_small_planes(&geo, xs, ws, packed, bias.as_deref(), (n, c, o, kg), then)
            })
        })?;
        return Tensor::from_vec(y, (n, o, oh, ow), x.device());
    }
    if o * m == 0 || c * h * w == 0 {
        return Tensor::zeros((n, o, oh, ow), candle_core::DType::F32, x.device());
    }
    let (parallel, parallelism) = plan_parallelism(n);
    let mut y = unwritten(n * o * m);
    with_f32(x, |xs| {
        input_holds(xs, (n, c, h, w))?;
        with_f32(weight_hwc, |ws| {
            let scratch = if geo.is_pointwise() {
                0
            } else {
                c * kh * kw * m
            };
            for_each_image(
                &mut y,
                o * m,
                xs,
                c * h * w,
                (parallel, scratch),
                |scratch, yimg, img| {
                    let col: &[f32] = if geo.is_pointwise() {
                        img
                    } else {
                        if h * w > 0 {
                            im2col(&geo, img, c, groups, scratch);
                        }
                        &scratch[..]
                    };
                    let yimg = match &bias {
                        Some(b) => {
                            for (row, &v) in yimg.chunks_exact_mut(m).zip(b) {
                                unwritten::fill(row, v);
                            }
                            // SAFETY: the o rows of m were each filled with their bias.
                            let yimg = unsafe { unwritten::assume_written(yimg) };
                            for g in 0..groups {
                                gemm_into(
                                    &mut yimg[g * og * m..(g + 1) * og * m],
                                    &ws[g * og * kg..(g + 1) * og * kg],
                                    false,
                                    &col[g * kg * m..(g + 1) * kg * m],
                                    (og, m, kg),
                                    true,
                                    parallelism,
                                )?;
                            }
                            yimg
                        }
                        None => {
                            for g in 0..groups {
                                gemm_write_into(
                                    &mut yimg[g * og * m..(g + 1) * og * m],
                                    &ws[g * og * kg..(g + 1) * og * kg],
                                    false,
                                    &col[g * kg * m..(g + 1) * kg * m],
                                    (og, m, kg),
                                    parallelism,
                                )?;
                            }
                            // SAFETY: the groups' products wrote their og rows each, o in all.
                            unsafe { unwritten::assume_written(yimg) }
                        }
                    };
                    then.apply_image(yimg, m);
                    Ok(())
                },
            )
        })
    })?;
    // SAFETY: each of the n images' o·m outputs was written above (`xs` holds n images; the
    // call returns early on an error).
    let y = unsafe { unwritten::written(y) };
    Tensor::from_vec(y, (n, o, oh, ow), x.device())
}

/// Output planes of at most this many pixels go through one GEMM for several images: a GEMM per
/// image would be [O × K]·[K × m] with m = 49 (a 7×7 plane), packing the whole weight again for
/// a few columns each time. Timed ad hoc at batch 16: 1.1–1.15× on 7×7 layers with a large K
/// (512→512 3×3, 2048→512 1×1); level on 14×14 ones, which stay per image. A lone image takes
/// the same path (one GEMM of its own columns, as the per-image path would do), whose product
/// gives each column the same bits for any number of columns ([`gemm_columns_into`]): an
/// image's output does not depend on its batch.
const SMALL_PLANE: usize = 64;
/// Columns (images × pixels) a GEMM of several images aims for.
const BATCH_COLUMNS: usize = 1024;

/// [`forward`] (one group) of images whose output planes are small: images in chunks, each
/// chunk's column matrix [K, images·m] multiplied once, the result laid out as NCHW, then
/// `then`. The product is the packed one where `packed` is given (the same weight as `ws`),
/// else the `gemm` crate's, column-invariant.
fn forward_small_planes(
    geo: &Geometry,
    xs: &[f32],
    ws: &[f32],
    packed: Option<&PackedLhs>,
    bias: Option<&[f32]>,
    (n, c, o, kg): (usize, usize, usize, usize),
    then: Epilogue<'_>,
) -> Result<Vec<f32>> {
    let m = geo.output.0 * geo.output.1;
    let plane = geo.input.0 * geo.input.1;
    let mut y = vec![0f32; n * o * m];
    if m == 0 || o == 0 {
        return Ok(y);
    }
    let columns = if packed.is_some() {
        packed_gemm::MOST_COLUMNS
    } else {
        BATCH_COLUMNS
    };
    let per = (columns / m).clamp(1, n);
    let parallelism = all_threads();
    let mut col = Scratch::of_len(kg * per * m);
    let mut out: Option<Scratch> = None;
    for (chunk, ychunk) in y.chunks_mut(per * o * m).enumerate() {
        let images = ychunk.len() / (o * m);
        let cols = images * m;
        let first = chunk * per * c * plane;
        let imgs = &xs[first..first + images * c * plane];
        let col = &mut col[..kg * cols];
        im2col_images(geo, imgs, c, col);
        if let Some(lhs) = packed {
            let layout = OutputLayout {
                group: m,
                image_stride: o * m,
                row_stride: m,
            };
            gemm_packed_into(ychunk, layout, lhs, col, cols, bias)?;
            ychunk
                .par_chunks_mut(o * m)
                .for_each(|yimg| then.apply_image(yimg, m));
            continue;
        }
        let out = out.get_or_insert_with(|| Scratch::of_len(o * per * m));
        let out = &mut out[..o * cols];
        if let Some(b) = bias {
            for (row, &v) in out.chunks_exact_mut(cols).zip(b) {
                row.fill(v);
            }
        }
        gemm_columns_into(out, ws, col, (o, cols, kg), bias.is_some(), parallelism)?;
        let out = &*out;
        ychunk
            .par_chunks_mut(o * m)
            .enumerate()
            .for_each(|(b, yimg)| {
                for (i, dst) in yimg.chunks_exact_mut(m).enumerate() {
                    dst.copy_from_slice(&out[i * cols + b * m..i * cols + (b + 1) * m]);
                }
                then.apply_image(yimg, m);
            });
    }
    Ok(y)
}

/// The column matrix [C·kh·kw, images·m] of several images `imgs` [images, C, H, W] (one
/// group): each row holds one tap of one channel for every image, image after image, rows in
/// [`im2col`]'s order.
fn im2col_images(geo: &Geometry, imgs: &[f32], channels: usize, col: &mut [f32]) {
    let (h, w) = geo.input;
    let m = geo.output.0 * geo.output.1;
    let kw = geo.kernel.1;
    let rows = channels * geo.kernel.0 * kw;
    if m == 0 || rows == 0 || col.is_empty() {
        return;
    }
    let cols = col.len() / rows;
    let rows_per_task = 4096usize.div_ceil(cols).max(1);
    col.par_chunks_mut(cols * rows_per_task)
        .enumerate()
        .for_each(|(task, chunk)| {
            for (k, row) in chunk.chunks_exact_mut(cols).enumerate() {
                let r = task * rows_per_task + k;
                let (tap, ch) = (r / channels, r % channels);
                for (b, segment) in row.chunks_exact_mut(m).enumerate() {
                    let start = (b * channels + ch) * h * w;
                    let plane = &imgs[start..start + h * w];
                    im2col_row(geo, plane, (tap / kw, tap % kw), segment);
                }
            }
        });
}

/// The gradient with respect to the input [N, C, H, W] (`input` = (H, W)) of [`forward`], given
/// the output gradient `grad` [N, O, oh, ow]. Small planes use `packed_transposed`, the weight's
/// transpose packed (filled on first use).
#[allow(clippy::too_many_arguments)]
pub fn input_gradient(
    grad: &Tensor,
    weight: &Tensor,
    packed_transposed: &PackedWeight,
    stride: usize,
    dilation: usize,
    pads: (usize, usize, usize, usize),
    groups: usize,
    input: (usize, usize),
) -> Result<Tensor> {
    let (n, o, goh, gow) = grad.dims4()?;
    let (wo, cg, kh, kw) = weight.dims4()?;
    if groups == 0 || wo != o || o % groups != 0 {
        candle_core::bail!(
            "convolution weight {:?} with {groups} groups does not fit a signal of {o} channels",
            weight.dims()
        );
    }
    let geo = Geometry::new((kh, kw), stride, dilation, pads, input)?;
    if geo.output != (goh, gow) {
        candle_core::bail!(
            "convolution signal is {goh}x{gow}, but the layer's output is {}x{}",
            geo.output.0,
            geo.output.1
        );
    }
    let c = cg * groups;
    let (h, w) = input;
    let m = goh * gow;
    let (og, kg) = (o / groups, cg * kh * kw);
    if groups == 1 && m <= SMALL_PLANE {
        let packed = with_f32(weight, |ws| {
            Ok(packed_transposed
                .get_or_init(|| {
                    packed_gemm::pays(kg, og)
                        .then(|| PackedLhs::transposed(ws, kg, og).map(std::sync::Arc::new))
                        .flatten()
                })
                .clone())
        })?;
        if let Some(packed) = packed {
            let gx = with_f32(grad, |gs| {
                input_gradient_small_planes(&geo, gs, &packed, (n, c, o))
            })?;
            return Tensor::from_vec(gx, (n, c, h, w), grad.device());
        }
    }
    if c * h * w == 0 || o * m == 0 {
        return Tensor::zeros((n, c, h, w), candle_core::DType::F32, grad.device());
    }
    let (parallel, parallelism) = plan_parallelism(n);
    let mut gx = unwritten(n * c * h * w);
    with_f32(grad, |gs| {
        input_holds(gs, (n, o, goh, gow))?;
        with_f32(weight, |ws| {
            let pointwise = geo.is_pointwise();
            let scratch = if pointwise { 0 } else { c * kh * kw * m };
            for_each_image(
                &mut gx,
                c * h * w,
                gs,
                o * m,
                (parallel, scratch),
                |cols, gximg, gimg| {
                    for g in 0..groups {
                        let (lhs, rhs) = (
                            &ws[g * og * kg..(g + 1) * og * kg],
                            &gimg[g * og * m..(g + 1) * og * m],
                        );
                        if pointwise {
                            // A pointwise layer's columns are its input gradient (kg = C/groups
                            // channels of m = h·w pixels a group).
                            let dst = &mut gximg[g * kg * m..(g + 1) * kg * m];
                            gemm_write_into(dst, lhs, true, rhs, (kg, m, og), parallelism)?;
                        } else {
                            let dst = &mut cols[g * kg * m..(g + 1) * kg * m];
                            gemm_into(dst, lhs, true, rhs, (kg, m, og), false, parallelism)?;
                        }
                    }
                    if !pointwise {
                        if cols.len() != c * kh * kw * m {
                            candle_core::bail!("col2im given {} columns' values", cols.len());
                        }
                        // Each plane zeroed in cache right before its taps are added in.
                        gximg
                            .par_chunks_mut(h * w)
                            .zip(cols.par_chunks(kh * kw * m))
                            .for_each(|(plane, rows)| {
                                col2im_plane(&geo, rows, unwritten::fill(plane, 0.0))
                            });
                    }
                    Ok(())
                },
            )
        })
    })?;
    // SAFETY: each of the n images' c·h·w values was written above: by the groups' products
    // (pointwise: kg rows of m = h·w each, c in all), else by zeroing each of its c planes
    // (`cols` holds c planes' taps, checked) before col2im; `gs` holds n images.
    let gx = unsafe { unwritten::written(gx) };
    Tensor::from_vec(gx, (n, c, h, w), grad.device())
}

/// [`input_gradient`] (one group) of images whose output planes are small, by the packed
/// product: images in chunks, each chunk's signal [O, images·m] multiplied once by the packed
/// transposed weight into each image's column matrix [C·kh·kw, m] (straight into the input
/// gradient for a pointwise layer), then folded by col2im.
fn input_gradient_small_planes(
    geo: &Geometry,
    gs: &[f32],
    packed: &PackedLhs,
    (n, c, o): (usize, usize, usize),
) -> Result<Vec<f32>> {
    let m = geo.output.0 * geo.output.1;
    let plane = geo.input.0 * geo.input.1;
    let kg = packed.rows();
    let mut gx = vec![0f32; n * c * plane];
    if m == 0 || o == 0 || plane == 0 {
        return Ok(gx);
    }
    let per = (packed_gemm::MOST_COLUMNS / m).clamp(1, n);
    let pointwise = geo.is_pointwise();
    let mut signal = Scratch::of_len(o * per * m);
    let mut cols = Scratch::of_len(if pointwise { 0 } else { kg * per * m });
    for (chunk, gxchunk) in gx.chunks_mut(per * c * plane).enumerate() {
        let images = gxchunk.len() / (c * plane);
        let columns = images * m;
        let signal = &mut signal[..o * columns];
        let first = chunk * per * o * m;
        // The chunk's signal as [O, images·m]: row i holds channel i of each image in turn.
        signal
            .par_chunks_mut(columns)
            .enumerate()
            .for_each(|(i, row)| {
                for (b, dst) in row.chunks_exact_mut(m).enumerate() {
                    let at = first + (b * o + i) * m;
                    dst.copy_from_slice(&gs[at..at + m]);
                }
            });
        let layout = OutputLayout {
            group: m,
            image_stride: kg * m,
            row_stride: m,
        };
        if pointwise {
            gemm_packed_into(gxchunk, layout, packed, signal, columns, None)?;
            continue;
        }
        let cols = &mut cols[..kg * columns];
        gemm_packed_into(cols, layout, packed, signal, columns, None)?;
        gxchunk
            .par_chunks_mut(plane)
            .zip(cols.par_chunks(geo.kernel.0 * geo.kernel.1 * m))
            .for_each(|(plane, rows)| col2im_plane(geo, rows, plane));
    }
    Ok(gx)
}

#[cfg(test)]
mod tests {
    use crate::ops::test_compare::{bits, max_rel};
    use candle_core::{Device, Tensor};
    use gemm::Parallelism;

    use crate::ops::unwritten::unwritten;
    use crate::ops::{Conv2d, Padding};

    /// A product written into an unwritten buffer equals the one into a zeroed buffer, a
    /// destination of the wrong length is refused, and a depth of 0 writes zeros.
    #[test]
    fn a_product_into_an_unwritten_buffer_writes_every_output() {
        let (m, n, k) = (5, 7, 3);
        let lhs: Vec<f32> = (0..m * k).map(|v| v as f32 * 0.5 - 3.0).collect();
        let rhs: Vec<f32> = (0..k * n).map(|v| 1.0 - v as f32 * 0.25).collect();
        let mut zeroed = vec![0f32; m * n];
        super::gemm_into(
            &mut zeroed,
            &lhs,
            false,
            &rhs,
            (m, n, k),
            false,
            Parallelism::None,
        )
        .unwrap();
        let mut buffer = unwritten(m * n);
        let written =
            super::gemm_write_into(&mut buffer, &lhs, false, &rhs, (m, n, k), Parallelism::None)
                .unwrap();
        assert_eq!(written, &zeroed[..]);
        let mut short = unwritten(m * n - 1);
        let product = (m, n, k);
        assert!(
            super::gemm_write_into(&mut short, &lhs, false, &rhs, product, Parallelism::None)
                .is_err()
        );
        assert!(
            super::gemm_write_into(&mut short, &[], false, &[], (m, n, 0), Parallelism::None)
                .is_err()
        );
        let mut empty = unwritten(m * n);
        let zeros =
            super::gemm_write_into(&mut empty, &[], false, &[], (m, n, 0), Parallelism::None)
                .unwrap();
        assert!(zeros.iter().all(|&v| v == 0.0));
    }

    struct Case {
        n: usize,
        c: usize,
        o: usize,
        k: (usize, usize),
        stride: usize,
        padding: Padding,
        dilation: usize,
        groups: usize,
        hw: (usize, usize),
        bias: bool,
    }

    fn check(case: &Case) {
        let dev = Device::Cpu;
        let (kh, kw) = case.k;
        let w = Tensor::randn(0f32, 1f32, (case.o, case.c / case.groups, kh, kw), &dev).unwrap();
        let b = case
            .bias
            .then(|| Tensor::randn(0f32, 1f32, case.o, &dev).unwrap());
        let conv = Conv2d::new(w, b, case.stride, case.padding, case.dilation, case.groups);
        let x = Tensor::randn(0f32, 1f32, (case.n, case.c, case.hw.0, case.hw.1), &dev).unwrap();
        let fast = conv.forward(&x).unwrap();
        let slow = conv.forward_by_candle(&x).unwrap();
        let what = format!(
            "n={} c={} o={} k={:?} s={} pad={:?} d={} g={} hw={:?}",
            case.n,
            case.c,
            case.o,
            case.k,
            case.stride,
            case.padding,
            case.dilation,
            case.groups,
            case.hw
        );
        assert!(max_rel(&fast, &slow) < 1e-5, "forward {what}");
        let g = Tensor::randn(0f32, 1f32, fast.dims(), &dev).unwrap();
        let fast = conv.input_gradient(&x, &g).unwrap();
        let slow = conv.input_gradient_by_candle(&x, &g).unwrap();
        assert!(max_rel(&fast, &slow) < 1e-5, "input gradient {what}");
    }

    #[test]
    fn the_cpu_convolution_equals_the_candle_path() {
        let sym = Padding::symmetric;
        let asym = Padding::Explicit {
            top: 0,
            bottom: 2,
            left: 1,
            right: 0,
        };
        let cases = [
            // (n, c, o, k, stride, padding, dilation, groups, hw, bias)
            (1, 3, 8, (7, 7), 2, sym(3), 1, 1, (23, 19), true),
            (2, 4, 6, (3, 3), 1, sym(1), 1, 1, (9, 11), false),
            (3, 4, 6, (3, 3), 2, sym(1), 1, 1, (10, 9), true),
            (2, 6, 4, (1, 1), 1, sym(0), 1, 1, (7, 8), true),
            (2, 6, 4, (1, 1), 2, sym(0), 1, 1, (7, 8), false),
            (1, 5, 3, (3, 3), 1, sym(2), 2, 1, (12, 10), true),
            (2, 4, 6, (3, 3), 1, sym(1), 1, 2, (8, 8), true),
            (2, 8, 4, (3, 3), 2, sym(1), 1, 4, (9, 9), false),
            (1, 4, 4, (1, 1), 1, sym(0), 1, 2, (5, 6), true),
            (2, 3, 5, (3, 2), 3, sym(0), 1, 1, (11, 13), true),
            (1, 3, 5, (3, 3), 2, asym, 1, 1, (8, 9), true),
            (2, 4, 4, (3, 3), 2, Padding::Same, 1, 1, (8, 9), false),
            (1, 2, 3, (5, 5), 1, Padding::Same, 2, 1, (9, 7), true),
            (4, 4, 6, (3, 3), 1, sym(4), 3, 2, (6, 6), false),
            // Depthwise (groups = channels): padding skipped in the loops, not copied.
            (2, 6, 6, (3, 3), 1, sym(1), 1, 6, (9, 8), true),
            (2, 8, 8, (5, 5), 2, Padding::Same, 1, 8, (9, 12), true),
            (1, 4, 4, (3, 3), 2, asym, 2, 4, (11, 10), false),
            // Small output planes, several images per GEMM (in chunks, the last one short).
            (45, 5, 7, (3, 3), 1, sym(1), 1, 1, (5, 5), true),
            (3, 5, 6, (3, 3), 1, sym(1), 1, 1, (8, 8), false),
            (3, 6, 4, (1, 1), 1, sym(0), 1, 1, (7, 7), false),
            (5, 3, 4, (3, 3), 2, Padding::Same, 1, 1, (13, 11), true),
            // Small planes of layers wide and deep enough for the packed product (with
            // AVX-512): forward and input gradient, pointwise and folded by col2im.
            (3, 64, 256, (3, 3), 1, sym(1), 1, 1, (6, 6), true),
            (2, 300, 260, (1, 1), 1, sym(0), 1, 1, (5, 4), false),
            (2, 288, 270, (1, 1), 2, sym(0), 1, 1, (9, 9), true),
        ];
        for (n, c, o, k, stride, padding, dilation, groups, hw, bias) in cases {
            check(&Case {
                n,
                c,
                o,
                k,
                stride,
                padding,
                dilation,
                groups,
                hw,
                bias,
            });
        }
    }

    /// An image's output and input gradient have the same bits alone and in any batch, on
    /// planes small enough to share a GEMM with other images: 64 output channels or fewer with
    /// a depth over 512 (the `gemm` crate's small products), one output pixel (a lone column),
    /// one output channel, a depth of 2, many channels, and layers the packed product takes.
    #[test]
    fn an_images_output_does_not_depend_on_its_batch() {
        let dev = Device::Cpu;
        // (c, o, kernel, stride, padding, input side)
        let cases = [
            (64, 64, 3, 1, 1, 7),
            (96, 32, 3, 1, 1, 4),
            (128, 48, 3, 2, 1, 8),
            (600, 16, 1, 1, 0, 6),
            (64, 72, 3, 1, 0, 3),
            (32, 1, 3, 1, 1, 5),
            (2, 24, 1, 1, 0, 6),
            (256, 130, 3, 2, 1, 7),
            // Wide and deep enough for the packed product (with AVX-512), forward and backward.
            (64, 256, 3, 1, 1, 4),
            (288, 260, 1, 1, 0, 5),
        ];
        for (c, o, k, stride, pad, side) in cases {
            let w = Tensor::randn(0f32, 1f32, (o, c, k, k), &dev).unwrap();
            let b = Tensor::randn(0f32, 1f32, o, &dev).unwrap();
            let conv = Conv2d::new(w, Some(b), stride, Padding::symmetric(pad), 1, 1);
            let x = Tensor::randn(0f32, 1f32, (9, c, side, side), &dev).unwrap();
            let all = conv.forward(&x).unwrap();
            let signal = all.randn_like(0.0, 1.0).unwrap();
            let gradient = conv.input_gradient(&x, &signal).unwrap();
            for (start, len) in [(0, 1), (4, 1), (8, 1), (0, 2), (3, 3), (2, 7)] {
                let images = x.narrow(0, start, len).unwrap();
                let part = conv.forward(&images).unwrap();
                assert_eq!(
                    bits(&part),
                    bits(&all.narrow(0, start, len).unwrap()),
                    "c={c} o={o} k={k} s={stride} side={side}: images {start}..{}",
                    start + len
                );
                let part = conv
                    .input_gradient(&images, &signal.narrow(0, start, len).unwrap())
                    .unwrap();
                assert_eq!(
                    bits(&part),
                    bits(&gradient.narrow(0, start, len).unwrap()),
                    "c={c} o={o} k={k} s={stride} side={side}: gradient of images {start}..{}",
                    start + len
                );
            }
        }
    }
}
