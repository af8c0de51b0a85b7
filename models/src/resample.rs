//! Pillow's antialiased bilinear resize, to the bit, on 8-bit RGB and grayscale images.
//!
//! torchvision resizes PIL images with Pillow's `Image.resize(..., BILINEAR)`: a separable
//! triangle filter whose support grows with the downscale factor, with coefficients in 22-bit
//! fixed point and an 8-bit image between the horizontal and the vertical pass. The `image`
//! crate's Triangle filter is the same idea in floating point without the intermediate rounding,
//! which moves pixels by a level or two and is enough to swap close top-1 classes. Written by hand
//! because matching Pillow's arithmetic exactly is the point and no crate promises it.

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Per output pixel: the first input index, and the fixed-point weights of the inputs from there.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    weights: Vec<i32>,
    ksize: usize,
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        1.0 - x
    } else {
        0.0
    }
}

/// Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc` for resizing `in_size` to `out_size`.
fn coefficients(in_size: usize, out_size: usize) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = vec![0i32; out_size * ksize];
    let mut k = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin).min(ksize);
        let mut total = 0.0;
        for (x, slot) in k.iter_mut().enumerate().take(count) {
            let w = triangle((x as f64 + xmin as f64 - center + 0.5) * ss);
            *slot = w;
            total += w;
        }
        for (x, &w) in k.iter().enumerate().take(count) {
            let w = if total != 0.0 { w / total } else { w };
            let fixed = w * f64::from(1u32 << PRECISION_BITS);
            weights[xx * ksize + x] = if w < 0.0 {
                (fixed - 0.5) as i32
            } else {
                (fixed + 0.5) as i32
            };
        }
        bounds.push((xmin, count));
    }
    Coefficients {
        bounds,
        weights,
        ksize,
    }
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes an interleaved 8-bit image of `channels` channels from `w`×`h` to `nw`×`nh`, as
/// Pillow's `Image.resize((nw, nh), Image.BILINEAR)` does: the whole image, pixel by pixel
/// (the reference [`resize_bilinear_window`] is tested against).
pub fn resize_bilinear(
    pixels: &[u8],
    w: usize,
    h: usize,
    channels: usize,
    nw: usize,
    nh: usize,
) -> Vec<u8> {
    let round = 1i64 << (PRECISION_BITS - 1);
    // Horizontal pass first, into an 8-bit image of nw × h (skipped when the width is unchanged).
    let horizontal = if nw != w {
        let c = coefficients(w, nw);
        let mut out = vec![0u8; nw * h * channels];
        for y in 0..h {
            let row = &pixels[y * w * channels..(y + 1) * w * channels];
            for (xx, &(xmin, count)) in c.bounds.iter().enumerate() {
                let k = &c.weights[xx * c.ksize..xx * c.ksize + count];
                for ch in 0..channels {
                    let mut acc = round;
                    for (x, &wt) in k.iter().enumerate() {
                        acc += i64::from(row[(xmin + x) * channels + ch]) * i64::from(wt);
                    }
                    out[(y * nw + xx) * channels + ch] = clip8(acc);
                }
            }
        }
        out
    } else {
        pixels.to_vec()
    };
    if nh == h {
        return horizontal;
    }
    let c = coefficients(h, nh);
    let mut out = vec![0u8; nw * nh * channels];
    for (yy, &(ymin, count)) in c.bounds.iter().enumerate() {
        let k = &c.weights[yy * c.ksize..yy * c.ksize + count];
        for x in 0..nw {
            for ch in 0..channels {
                let mut acc = round;
                for (y, &wt) in k.iter().enumerate() {
                    acc += i64::from(horizontal[((ymin + y) * nw + x) * channels + ch])
                        * i64::from(wt);
                }
                out[(yy * nw + x) * channels + ch] = clip8(acc);
            }
        }
    }
    out
}

/// The part of a resized image that is kept: columns `left..left + width`, rows
/// `top..top + height` of the `nw`×`nh` result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First column kept.
    pub left: usize,
    /// First row kept.
    pub top: usize,
    /// Columns kept.
    pub width: usize,
    /// Rows kept.
    pub height: usize,
}

/// [`resize_bilinear`] to `nw`×`nh`, computing only `window` of the result (what a centre
/// crop keeps): the same pixels, to the bit. The horizontal pass runs on the input rows the
/// window's rows read and for the window's columns only; the vertical pass adds whole rows at
/// a time (Pillow's 32-bit integer sums, which the compiler vectorizes along the row). A window
/// reaching past the result is cut to it.
pub fn resize_bilinear_window(
    pixels: &[u8],
    (w, h): (usize, usize),
    channels: usize,
    (nw, nh): (usize, usize),
    window: Window,
) -> Vec<u8> {
    let left = window.left.min(nw);
    let top = window.top.min(nh);
    let width = window.width.min(nw - left);
    let height = window.height.min(nh - top);
    let row_len = width * channels;
    if row_len == 0 || height == 0 || pixels.len() < w * h * channels {
        return vec![0u8; row_len * height];
    }
    let round = 1i32 << (PRECISION_BITS - 1);
    let clip = |acc: i32| (acc >> PRECISION_BITS).clamp(0, 255) as u8;
    // The input rows the window's output rows read.
    let vertical = (nh != h).then(|| coefficients(h, nh));
    let (first_row, last_row) = match &vertical {
        Some(c) => {
            let rows = &c.bounds[top..top + height];
            let first = rows.iter().map(|&(y, _)| y).min().unwrap_or(0);
            let last = rows.iter().map(|&(y, n)| y + n).max().unwrap_or(first);
            (first, last.max(first))
        }
        None => (top, top + height),
    };
    // Horizontal pass, into an 8-bit image of width × (last_row − first_row).
    let mut horizontal = vec![0u8; row_len * (last_row - first_row)];
    let input_row = |y: usize| &pixels[y * w * channels..(y + 1) * w * channels];
    if nw != w {
        let c = coefficients(w, nw);
        for (y, out) in (first_row..last_row).zip(horizontal.chunks_exact_mut(row_len)) {
            let row = input_row(y);
            for (xx, out) in (left..left + width).zip(out.chunks_exact_mut(channels)) {
                let (xmin, count) = c.bounds[xx];
                let k = &c.weights[xx * c.ksize..xx * c.ksize + count];
                for (ch, out) in out.iter_mut().enumerate() {
                    let mut acc = round;
                    for (x, &wt) in k.iter().enumerate() {
                        acc += i32::from(row[(xmin + x) * channels + ch]) * wt;
                    }
                    *out = clip(acc);
                }
            }
        }
    } else {
        for (y, out) in (first_row..last_row).zip(horizontal.chunks_exact_mut(row_len)) {
            out.copy_from_slice(&input_row(y)[left * channels..(left + width) * channels]);
        }
    }
    let Some(c) = vertical else {
        return horizontal;
    };
    // Vertical pass: each output row the weighted sum of whole intermediate rows.
    let mut out = vec![0u8; row_len * height];
    let mut acc = vec![0i32; row_len];
    for (yy, out) in (top..top + height).zip(out.chunks_exact_mut(row_len)) {
        let (ymin, count) = c.bounds[yy];
        let k = &c.weights[yy * c.ksize..yy * c.ksize + count];
        acc.fill(round);
        for (y, &wt) in k.iter().enumerate() {
            let start = (ymin + y - first_row) * row_len;
            for (a, &v) in acc.iter_mut().zip(&horizontal[start..start + row_len]) {
                *a += i32::from(v) * wt;
            }
        }
        for (o, &a) in out.iter_mut().zip(&acc) {
            *o = clip(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_image_stays_constant_and_weights_sum_to_one() {
        let img = vec![200u8; 10 * 7 * 3];
        let out = resize_bilinear(&img, 10, 7, 3, 4, 3);
        assert!(out.iter().all(|&v| v == 200));
        let c = coefficients(451, 256);
        for (i, &(_, n)) in c.bounds.iter().enumerate() {
            let s: i64 = c.weights[i * c.ksize..i * c.ksize + n]
                .iter()
                .map(|&w| i64::from(w))
                .sum();
            assert!((s - (1 << PRECISION_BITS)).abs() <= n as i64);
        }
    }

    /// The windowed resize gives the window of the whole resize, to the bit: downscales (the
    /// photos' 256-px resize), upscales, one side unchanged, RGB and grayscale, windows at the
    /// centre, at the edges and past them.
    #[test]
    fn a_window_of_the_resize_equals_the_whole_resize_cropped() {
        let mut state = 7u32;
        let mut noise = |len: usize| -> Vec<u8> {
            (0..len)
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 24) as u8
                })
                .collect()
        };
        let cases = [
            ((451, 300), 3, (384, 256), (80, 16, 224, 224)),
            ((300, 451), 3, (256, 384), (16, 80, 224, 224)),
            ((37, 29), 3, (90, 70), (0, 0, 90, 70)),
            ((37, 29), 1, (37, 70), (5, 9, 20, 30)),
            ((64, 48), 1, (20, 48), (3, 0, 10, 48)),
            ((64, 48), 3, (32, 24), (20, 20, 40, 40)),
        ];
        for ((w, h), channels, (nw, nh), (left, top, width, height)) in cases {
            let img = noise(w * h * channels);
            let whole = resize_bilinear(&img, w, h, channels, nw, nh);
            let window = Window {
                left,
                top,
                width,
                height,
            };
            let got = resize_bilinear_window(&img, (w, h), channels, (nw, nh), window);
            let (width, height) = (width.min(nw - left), height.min(nh - top));
            let want: Vec<u8> = (top..top + height)
                .flat_map(|y| {
                    let row = (y * nw + left) * channels;
                    whole[row..row + width * channels].to_vec()
                })
                .collect();
            assert_eq!(got, want, "{w}x{h}x{channels} -> {nw}x{nh}, {window:?}");
        }
    }
}
