//! The CPU fast path of incremental inference's gather: each copy's window of a traced map, with
//! the copy's box laid over it, written straight into one output buffer. The candle path
//! (`incremental::gather_by_candle`, every device) builds the same windows with narrow, pad and
//! two concatenations per copy, which on the CPU copied each window three times (concatenating
//! along the width is a strided copy): ~17% of resnet18's occlusion in a profile. Pure copies,
//! so the two give the same bits (tested in `incremental`).

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use crate::ops::cpu_slice::with_f32;

/// The copies' boxes: their values [N, C, bh, bw] and each one's origin (row, column) in the map.
pub struct Boxes<'a> {
    /// The values inside each copy's box.
    pub patches: &'a Tensor,
    /// Each copy's box origin.
    pub origins: &'a [(usize, usize)],
}

/// `[starts.len(), C, size.0, size.1]`: for each start `(row, column)` (which may lie outside
/// the map), the window of `base` [1, C, H, W] there, `fill` where it reaches past the map, and
/// over it copy `k`'s box where the window meets it. `base` and the patches are CPU f32.
pub fn gather(
    base: &Tensor,
    boxes: Option<Boxes<'_>>,
    starts: &[(i64, i64)],
    size: (usize, usize),
    fill: f32,
) -> Result<Tensor> {
    let (_, c, h, w) = base.dims4()?;
    let (wh, ww) = size;
    let plane = wh * ww;
    let mut out = vec![0f32; starts.len() * c * plane];
    if plane == 0 {
        return Tensor::from_vec(out, (starts.len(), c, wh, ww), base.device());
    }
    let (bh, bw) = match &boxes {
        Some(b) => {
            let (n, pc, bh, bw) = b.patches.dims4()?;
            if pc != c || n != starts.len() || b.origins.len() != n {
                candle_core::bail!(
                    "boxes {:?} with {} origins do not fit {} windows of {c} channels",
                    b.patches.dims(),
                    b.origins.len(),
                    starts.len()
                );
            }
            (bh, bw)
        }
        None => (0, 0),
    };
    // One pass: each window cut out of its channel's map, then its copy's box laid over it.
    let mut cut = |map: &[f32], patches: Option<&[f32]>| {
        out.par_chunks_mut(plane)
            .enumerate()
            .for_each(|(index, window)| {
                let (k, ch) = (index / c, index % c);
                let src = &map[ch * h * w..(ch + 1) * h * w];
                window_of(src, (h, w), starts[k], ww, fill, window);
                if let (Some(patches), Some(b)) = (patches, &boxes) {
                    let patch = &patches[index * bh * bw..(index + 1) * bh * bw];
                    overlay(patch, (bh, bw), b.origins[k], starts[k], (wh, ww), window);
                }
            });
    };
    with_f32(base, |map| match &boxes {
        Some(b) => with_f32(b.patches, |patches| {
            cut(map, Some(patches));
            Ok(())
        }),
        None => {
            cut(map, None);
            Ok(())
        }
    })?;
    Tensor::from_vec(out, (starts.len(), c, wh, ww), base.device())
}

/// The window at `start`, `ww` wide and as high as `window` holds rows, of one channel's map
/// `src` (`hw`), `fill` outside it.
fn window_of(
    src: &[f32],
    (h, w): (usize, usize),
    (sy, sx): (i64, i64),
    ww: usize,
    fill: f32,
    window: &mut [f32],
) {
    // The window's columns that fall inside the map: j in j0..j1.
    let j0 = (-sx).clamp(0, ww as i64) as usize;
    let j1 = (w as i64 - sx).clamp(j0 as i64, ww as i64) as usize;
    for (i, row) in window.chunks_mut(ww).enumerate() {
        let y = sy + i as i64;
        if y < 0 || y >= h as i64 || j0 == j1 {
            row.fill(fill);
            continue;
        }
        let from = y as usize * w + (sx + j0 as i64) as usize;
        row[..j0].fill(fill);
        row[j0..j1].copy_from_slice(&src[from..from + (j1 - j0)]);
        row[j1..].fill(fill);
    }
}

/// Lays the box `patch` (`bhw`, origin `by, bx` in the map) over the `size` window at `start`,
/// where the two meet.
fn overlay(
    patch: &[f32],
    (bh, bw): (usize, usize),
    (by, bx): (usize, usize),
    (sy, sx): (i64, i64),
    (wh, ww): (usize, usize),
    window: &mut [f32],
) {
    let (by, bx) = (by as i64, bx as i64);
    // Map rows and columns the two share.
    let (y0, y1) = (by.max(sy), (by + bh as i64).min(sy + wh as i64));
    let (x0, x1) = (bx.max(sx), (bx + bw as i64).min(sx + ww as i64));
    if y0 >= y1 || x0 >= x1 {
        return;
    }
    let len = (x1 - x0) as usize;
    for y in y0..y1 {
        let to = (y - sy) as usize * ww + (x0 - sx) as usize;
        let from = (y - by) as usize * bw + (x0 - bx) as usize;
        window[to..to + len].copy_from_slice(&patch[from..from + len]);
    }
}
