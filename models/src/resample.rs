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
/// Pillow's `Image.resize((nw, nh), Image.BILINEAR)` does.
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
}
