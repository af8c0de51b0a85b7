//! The CPU fast path of depthwise convolution: direct loops over each channel's plane, in
//! parallel over images × channels.
//!
//! The device-generic path (`depthwise.rs`) makes k² whole-tensor candle ops, each of which
//! allocates and walks the full tensor (and a strided copy for every tap); on a CPU that is
//! memory traffic for a few multiply-adds per element. A channel plane of an EfficientNet is at
//! most a few hundred KB, so a direct loop per plane stays in cache. No crate offers a depthwise
//! convolution over plain slices, hence this file. It runs only for f32 tensors on the CPU;
//! every other device keeps the candle path.

use candle_core::{DType, Device, Result, Tensor};
use multiversion::multiversion;

use super::cpu_slice::with_f32;
use super::epilogue::Epilogue;
use super::unwritten::{input_holds, written_in_parts};

/// Whether the fast path applies to `x`.
pub fn applies(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32
}

/// Geometry shared by the forward and backward loops.
struct Plan {
    kh: usize,
    kw: usize,
    stride: usize,
    dilation: usize,
    /// The input plane (unpadded) the loops read (forward) or write (backward).
    input: (usize, usize),
    /// Output plane (rows, columns).
    output: (usize, usize),
}

fn weights(weight: &Tensor) -> Result<(Vec<f32>, usize, usize, usize)> {
    let (c, _, kh, kw) = weight.dims4()?;
    let w = weight
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok((w, c, kh, kw))
}

/// A depthwise convolution of `x` [N, C, H, W] on the CPU, padded by `pads` = (top, bottom,
/// left, right) (each plane copied into a zero-bordered buffer, see [`forward_plane`]). `bias`
/// [C] is added last, as the candle path adds it; then `then`, each plane as it is done
/// ([`Epilogue`]).
pub fn forward(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    dilation: usize,
    pads: (usize, usize, usize, usize),
    then: Epilogue<'_>,
) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (wts, wc, kh, kw) = weights(weight)?;
    if wc != c {
        candle_core::bail!("depthwise weight has {wc} channels for an input of {c}");
    }
    then.check(c)?;
    let bias = match bias {
        Some(b) => {
            let b = b.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            if b.len() != c {
                candle_core::bail!("depthwise bias has {} values for {c} channels", b.len());
            }
            Some(b)
        }
        None => None,
    };
    let out = output_size((h, w), (kh, kw), stride, dilation, pads)?;
    let plan = Plan {
        kh,
        kw,
        stride,
        dilation,
        input: (h, w),
        output: out,
    };
    let (oh, ow) = out;
    if oh * ow == 0 || h * w == 0 {
        return Tensor::zeros((n, c, oh, ow), DType::F32, x.device());
    }
    // Each plane filled with zeros in cache right before its sums are copied in, not the whole
    // output zeroed ahead in memory (see `unwritten`).
    let y = with_f32(x, |xs| {
        input_holds(xs, (n, c, h, w))?;
        let input_plane = h * w;
        let planes = written_in_parts(
            n * c * oh * ow,
            oh * ow,
            Scratch::default,
            |scratch, plane, y| {
                let ch = plane % c;
                let w = &wts[ch * kh * kw..(ch + 1) * kh * kw];
                let b = bias.as_ref().map(|b| b[ch]);
                let x = &xs[plane * input_plane..(plane + 1) * input_plane];
                forward_plane(&plan, pads, w, x, y, b, scratch);
                then.apply_plane(y, ch);
            },
        );
        Ok(planes)
    })?;
    Tensor::from_vec(y, (n, c, oh, ow), x.device())
}

/// The output plane of a `kernel` at `stride` and `dilation` over an `input` plane padded by
/// `pads` (top, bottom, left, right), or an error when the kernel does not fit.
fn output_size(
    (h, w): (usize, usize),
    (kh, kw): (usize, usize),
    stride: usize,
    dilation: usize,
    (top, bottom, left, right): (usize, usize, usize, usize),
) -> Result<(usize, usize)> {
    let extent = |k: usize| dilation * (k.max(1) - 1) + 1;
    let (hp, wp) = (h + top + bottom, w + left + right);
    if stride == 0 || hp < extent(kh) || wp < extent(kw) {
        candle_core::bail!(
            "depthwise kernel {kh}x{kw} (dilation {dilation}, stride {stride}) does not fit a \
             padded input of {hp}x{wp}"
        );
    }
    Ok((
        (hp - extent(kh)) / stride + 1,
        (wp - extent(kw)) / stride + 1,
    ))
}

/// Scratch a thread reuses from plane to plane.
#[derive(Default)]
struct Scratch {
    /// The zero-bordered input plane (forward), or the signal at it laid back from its phases
    /// (backward, strided).
    padded: Vec<f32>,
    /// The padded plane split by [`split_phases`] (forward, strided only), or the signal summed
    /// at it by phase (backward; one phase, the plane itself, when not strided).
    phases: Vec<f32>,
    /// The forward pass's sums, or the backward pass's signal, in rows as long as a phase
    /// plane's (see [`forward_plane`]).
    sums: Vec<f32>,
}

/// `plane` [h, w] split into stride² phase planes: phase (a, b) holds rows a, a + stride, … and
/// of each the columns b, b + stride, …, as a [h.div_ceil(stride), w.div_ceil(stride)] plane
/// (cells past the input's edge left 0, never read). A strided tap then reads one phase plane
/// the way a stride-1 tap reads the input.
#[inline(always)]
fn split_phases(plane: &[f32], (h, w): (usize, usize), stride: usize, phases: &mut Vec<f32>) {
    let (ph, pw) = (h.div_ceil(stride), w.div_ceil(stride));
    phases.clear();
    phases.resize(stride * stride * ph * pw, 0.0);
    for (phase, dst) in phases.chunks_exact_mut(ph * pw).enumerate() {
        let (a, b) = (phase / stride, phase % stride);
        let rows = plane.chunks_exact(w).skip(a).step_by(stride);
        for (dst, row) in dst.chunks_exact_mut(pw).zip(rows) {
            let row = &row[b.min(w)..];
            // Whole strides first (a pattern the compiler turns into vector shuffles), then
            // the one cell a partial stride at the row's end holds.
            let whole = row.chunks_exact(stride);
            let rest = whole.remainder().first().copied();
            let mut k = 0;
            for (d, cells) in dst.iter_mut().zip(whole) {
                *d = cells[0];
                k += 1;
            }
            if let (Some(v), Some(d)) = (rest, dst.get_mut(k)) {
                *d = v;
            }
        }
    }
}

/// One channel plane of [`forward`], plus `bias`, compiled for the widest vectors the CPU has
/// (AVX-512, AVX2); each output is one multiply and one add per tap in the candle path's order
/// (Rust never fuses them into an FMA), so every instruction set gives the same bits.
///
/// The plane is copied once into a zero-bordered buffer (split by phase when strided, see
/// [`split_phases`]), and the outputs are summed in a buffer whose rows are as long as the rows
/// a tap reads: each tap's products are then one flat run over both, long enough to vectorize
/// even for a 7×7 plane, and the extra columns (outputs past the row's end) are dropped when the
/// rows are copied out. A tap over the border adds a product with zero, as the candle path's
/// padded copy does.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn forward_plane(
    plan: &Plan,
    (top, bottom, left, right): (usize, usize, usize, usize),
    w: &[f32],
    x: &[f32],
    y: &mut [f32],
    bias: Option<f32>,
    scratch: &mut Scratch,
) {
    let (h, wi) = plan.input;
    let (oh, ow) = plan.output;
    let (s, d) = (plan.stride, plan.dilation);
    let (hp, wp) = (h + top + bottom, wi + left + right);
    let Scratch {
        padded,
        phases,
        sums,
    } = scratch;
    padded.clear();
    padded.resize(hp * wp, 0.0);
    for (dst, src) in padded[top * wp..]
        .chunks_exact_mut(wp)
        .zip(x.chunks_exact(wi))
    {
        dst[left..left + wi].copy_from_slice(src);
    }
    let source: &[f32] = if s == 1 {
        padded
    } else {
        split_phases(padded, (hp, wp), s, phases);
        phases
    };
    let (ph, pw) = (hp.div_ceil(s), wp.div_ceil(s));
    let run = (oh - 1) * pw + ow;
    sums.clear();
    sums.resize(run, 0.0);
    for (t, &tap) in w.iter().enumerate().take(plan.kh * plan.kw) {
        let (i, j) = (t / plan.kw * d, t % plan.kw * d);
        let phase = (i % s) * s + j % s;
        let from = phase * ph * pw + (i / s) * pw + j / s;
        for (v, &xv) in sums.iter_mut().zip(&source[from..from + run]) {
            *v += tap * xv;
        }
    }
    for (dst, src) in y.chunks_exact_mut(ow).zip(sums.chunks(pw)) {
        dst.copy_from_slice(&src[..ow]);
        if let Some(b) = bias {
            dst.iter_mut().for_each(|v| *v += b);
        }
    }
}

/// The signal at the input [N, C, H, W] (`input` = (H, W)) of [`forward`] padded by `pads`,
/// given the output signal `grad`: each tap's product added back where it was read (into a
/// zero-bordered plane whose border is dropped, see [`backward_plane`]).
pub fn input_gradient(
    grad: &Tensor,
    weight: &Tensor,
    stride: usize,
    dilation: usize,
    pads: (usize, usize, usize, usize),
    input: (usize, usize),
) -> Result<Tensor> {
    let (n, c, oh, ow) = grad.dims4()?;
    let (w, wc, kh, kw) = weights(weight)?;
    if wc != c {
        candle_core::bail!("depthwise weight has {wc} channels for a signal of {c}");
    }
    let out = output_size(input, (kh, kw), stride, dilation, pads)?;
    if out != (oh, ow) {
        candle_core::bail!(
            "depthwise signal is {oh}x{ow}, but the layer's output is {}x{}",
            out.0,
            out.1
        );
    }
    let plan = Plan {
        kh,
        kw,
        stride,
        dilation,
        input,
        output: (oh, ow),
    };
    let (h, wi) = input;
    if oh * ow == 0 || h * wi == 0 {
        return Tensor::zeros((n, c, h, wi), DType::F32, grad.device());
    }
    let gx = with_f32(grad, |g| {
        input_holds(g, (n, c, oh, ow))?;
        let planes = written_in_parts(
            n * c * h * wi,
            h * wi,
            Scratch::default,
            |scratch, plane, gx| {
                let ch = plane % c;
                let w = &w[ch * kh * kw..(ch + 1) * kh * kw];
                let g = &g[plane * oh * ow..(plane + 1) * oh * ow];
                backward_plane(&plan, pads, w, g, gx, scratch);
            },
        );
        Ok(planes)
    })?;
    Tensor::from_vec(gx, (n, c, h, wi), grad.device())
}

/// One channel plane of [`input_gradient`], compiled for the same instruction sets as
/// [`forward_plane`], and the same way round: the signal is laid in rows as long as a phase
/// plane's (zeros past each row's end), each tap adds its products to the zero-bordered input
/// plane (split by phase when strided) as one flat run, and the input's cells are cut out of it
/// at the end. A tap's products over the border land in the border and are dropped.
#[multiversion(targets("x86_64+avx512f", "x86_64+avx2"))]
fn backward_plane(
    plan: &Plan,
    (top, bottom, left, right): (usize, usize, usize, usize),
    w: &[f32],
    g: &[f32],
    gx: &mut [f32],
    scratch: &mut Scratch,
) {
    let (h, wi) = plan.input;
    let (oh, ow) = plan.output;
    let (s, d) = (plan.stride, plan.dilation);
    let (hp, wp) = (h + top + bottom, wi + left + right);
    let (ph, pw) = (hp.div_ceil(s), wp.div_ceil(s));
    let Scratch {
        padded,
        phases,
        sums,
    } = scratch;
    let run = (oh - 1) * pw + ow;
    sums.clear();
    sums.resize(run, 0.0);
    for (dst, src) in sums.chunks_mut(pw).zip(g.chunks_exact(ow)) {
        dst[..ow].copy_from_slice(src);
    }
    phases.clear();
    phases.resize(s * s * ph * pw, 0.0);
    for (t, &tap) in w.iter().enumerate().take(plan.kh * plan.kw) {
        let (i, j) = (t / plan.kw * d, t % plan.kw * d);
        let phase = (i % s) * s + j % s;
        let from = phase * ph * pw + (i / s) * pw + j / s;
        for (v, &gv) in phases[from..from + run].iter_mut().zip(sums.iter()) {
            *v += tap * gv;
        }
    }
    let whole: &[f32] = if s == 1 {
        phases
    } else {
        padded.clear();
        padded.resize(hp * wp, 0.0);
        merge_phases(phases, (hp, wp), s, padded);
        padded
    };
    for (dst, src) in gx.chunks_exact_mut(wi).zip(whole[top * wp..].chunks(wp)) {
        dst.copy_from_slice(&src[left..left + wi]);
    }
}

/// The inverse of [`split_phases`]: every cell of `plane` [h, w] from its phase plane.
#[inline(always)]
fn merge_phases(phases: &[f32], (h, w): (usize, usize), stride: usize, plane: &mut [f32]) {
    let (ph, pw) = (h.div_ceil(stride), w.div_ceil(stride));
    for (phase, src) in phases.chunks_exact(ph * pw).enumerate() {
        let (a, b) = (phase / stride, phase % stride);
        let rows = plane.chunks_exact_mut(w).skip(a).step_by(stride);
        for (src, row) in src.chunks_exact(pw).zip(rows) {
            let row = &mut row[b.min(w)..];
            let n = row.len().div_ceil(stride).min(src.len());
            for k in 0..n {
                row[stride * k] = src[k];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::epilogue::Epilogue;
    use crate::ops::test_compare::max_rel;
    use candle_core::{Device, Tensor};

    use super::super::depthwise::{
        depthwise_forward_by_taps as depthwise_forward,
        depthwise_input_gradient_by_taps as depthwise_input_gradient,
    };

    #[test]
    fn a_signal_of_the_wrong_size_is_an_error() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1f32, (4, 1, 3, 3), &dev).unwrap();
        // A 3×3 kernel, stride 2, 'same' padding over 9×9 gives 5×5, not 6×6 or 4×4.
        for out in [6, 4] {
            let g = Tensor::randn(0f32, 1f32, (1, 4, out, out), &dev).unwrap();
            let err = super::input_gradient(&g, &w, 2, 1, (1, 1, 1, 1), (9, 9)).unwrap_err();
            assert!(err.to_string().contains("5x5"), "{err}");
        }
    }

    #[test]
    fn the_cpu_loops_equal_the_candle_path() {
        let dev = Device::Cpu;
        for &(k, stride, dilation) in &[
            (3usize, 1usize, 1usize),
            (5, 2, 1),
            (3, 2, 2),
            (3, 3, 1),
            (1, 1, 1),
        ] {
            let (c, hp, wp) = (6, 17, 15);
            let ek = dilation * (k - 1) + 1;
            let out = ((hp - ek) / stride + 1, (wp - ek) / stride + 1);
            let x = Tensor::randn(0f32, 1f32, (2, c, hp, wp), &dev).unwrap();
            let w = Tensor::randn(0f32, 1f32, (c, 1, k, k), &dev).unwrap();
            let fast = super::forward(
                &x,
                &w,
                None,
                stride,
                dilation,
                (0, 0, 0, 0),
                Epilogue::default(),
            )
            .unwrap();
            let slow = depthwise_forward(&x, &w, stride, dilation, out).unwrap();
            assert_eq!(
                max_rel(&fast, &slow),
                0.0,
                "forward k={k} s={stride} d={dilation}"
            );
            // Padding skipped instead of copied, and a bias: uneven padding (as TF's 'same' makes
            // it for some sizes), and TF's 'same' padding itself, where output rows are as long
            // as the rows a tap reads (the input's, or a phase plane's when strided), so each
            // tap's rows run as one flat loop.
            let same = |len: usize| {
                let total = ((len.div_ceil(stride) - 1) * stride + ek).saturating_sub(len);
                (total / 2, total - total / 2)
            };
            let ((st, sb), (sl, sr)) = (same(hp), same(wp));
            let b = Tensor::randn(0f32, 1f32, c, &dev).unwrap();
            for (what, pads) in [("padded", (2, 1, 0, 3)), ("'same'", (st, sb, sl, sr))] {
                let (top, bottom, left, right) = pads;
                let fast = super::forward(
                    &x,
                    &w,
                    Some(&b),
                    stride,
                    dilation,
                    pads,
                    Epilogue::default(),
                )
                .unwrap();
                let padded = x
                    .pad_with_zeros(2, top, bottom)
                    .unwrap()
                    .pad_with_zeros(3, left, right)
                    .unwrap();
                let (hpp, wpp) = (hp + top + bottom, wp + left + right);
                let out = ((hpp - ek) / stride + 1, (wpp - ek) / stride + 1);
                let slow = depthwise_forward(&padded, &w, stride, dilation, out)
                    .unwrap()
                    .broadcast_add(&b.reshape((1, c, 1, 1)).unwrap())
                    .unwrap();
                let case = format!("{what} k={k} s={stride} d={dilation}");
                assert_eq!(max_rel(&fast, &slow), 0.0, "forward {case}");
                let g = Tensor::randn(0f32, 1f32, (2, c, out.0, out.1), &dev).unwrap();
                let fast = super::input_gradient(&g, &w, stride, dilation, pads, (hp, wp)).unwrap();
                let slow = depthwise_input_gradient(&g, &w, stride, dilation, (hpp, wpp))
                    .unwrap()
                    .narrow(2, top, hp)
                    .unwrap()
                    .narrow(3, left, wp)
                    .unwrap();
                assert!(max_rel(&fast, &slow) < 1e-5, "backward {case}");
            }
            let out = ((hp - ek) / stride + 1, (wp - ek) / stride + 1);
            let g = Tensor::randn(0f32, 1f32, (2, c, out.0, out.1), &dev).unwrap();
            let fast =
                super::input_gradient(&g, &w, stride, dilation, (0, 0, 0, 0), (hp, wp)).unwrap();
            let slow = depthwise_input_gradient(&g, &w, stride, dilation, (hp, wp)).unwrap();
            assert!(
                max_rel(&fast, &slow) < 1e-5,
                "backward k={k} s={stride} d={dilation}"
            );
        }
    }
}
