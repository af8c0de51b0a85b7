//! The receptive field of one position of a layer: the input pixels that can change it.
//!
//! Computed from the graph's geometry rather than measured from a gradient's support: the
//! support of a gradient shrinks wherever a ReLU is off on this image or a max-pool switch
//! points elsewhere, so it would vary with the image and understate the field. Walking back from
//! the position, each op maps an interval of output rows (and columns) to the input interval that
//! can affect it (kernel, stride, dilation and padding of convolutions and pools; PyTorch's bins
//! for adaptive pooling), branches are united, and anything that mixes all positions (a global
//! mean, a linear layer) widens it to the whole input. A squeeze-excitation gate (a [N, C, 1, 1]
//! operand broadcast over a local branch) is left out: it depends on the whole image, but only
//! rescales channels, and counting it would make every unit after such a block see everything.

use serde::Serialize;

use crate::graph::{Graph, NodeId, Trace};
use crate::ops::{Op, PoolWindow};
use crate::{Error, Result};

/// The input rectangle a unit at one position sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ReceptiveField {
    /// First row inside the image.
    pub top: usize,
    /// First column inside the image.
    pub left: usize,
    /// One past the last row inside the image.
    pub bottom: usize,
    /// One past the last column inside the image.
    pub right: usize,
    /// The field's height and width before clipping to the image (padding included): the
    /// textbook receptive-field size.
    pub size: (usize, usize),
}

/// Inclusive intervals of rows and columns, in a node's output grid, before clipping (they may
/// reach into padding: negative or past the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Region {
    /// Every position of the node's output.
    Whole,
    /// A per-channel gate broadcast over a local branch (squeeze-excitation): left out.
    Gate,
    /// Rows `r0..=r1`, columns `c0..=c1`.
    Window { r0: i64, r1: i64, c0: i64, c1: i64 },
}

impl Region {
    fn union(self, other: Region) -> Region {
        match (self, other) {
            (
                Region::Window { r0, r1, c0, c1 },
                Region::Window {
                    r0: a0,
                    r1: a1,
                    c0: b0,
                    c1: b1,
                },
            ) => Region::Window {
                r0: r0.min(a0),
                r1: r1.max(a1),
                c0: c0.min(b0),
                c1: c1.max(b1),
            },
            (Region::Gate, r) | (r, Region::Gate) => r,
            _ => Region::Whole,
        }
    }
}

/// The receptive field of position (`row`, `col`) of node `layer`'s output; `trace` is a
/// forward pass that kept every node (its shapes give paddings and pooling bins).
pub fn receptive_field(
    graph: &Graph,
    trace: &Trace,
    layer: NodeId,
    row: usize,
    col: usize,
) -> Result<ReceptiveField> {
    let spatial = |id: NodeId| -> Result<Option<(usize, usize)>> {
        let t = trace.get(id).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "the forward pass did not keep the output of `{}`",
                graph.name(id)
            ))
        })?;
        Ok(match t.dims() {
            [_, _, h, w] => Some((*h, *w)),
            _ => None,
        })
    };
    let Some((h, w)) = spatial(layer)? else {
        return Err(Error::InvalidArgument(format!(
            "layer `{}` has no spatial positions",
            graph.name(layer)
        )));
    };
    if row >= h || col >= w {
        return Err(Error::InvalidArgument(format!(
            "position ({row}, {col}) is outside layer `{}`'s {h}×{w} map",
            graph.name(layer)
        )));
    }
    let mut regions: Vec<Option<Region>> = vec![None; layer + 1];
    regions[layer] = Some(Region::Window {
        r0: row as i64,
        r1: row as i64,
        c0: col as i64,
        c1: col as i64,
    });
    for id in (1..=layer).rev() {
        let Some(region) = regions[id].take() else {
            continue;
        };
        if region == Region::Gate {
            continue;
        }
        let node = &graph.nodes()[id];
        for &input in &node.inputs {
            let mapped = match (region, spatial(input)?, spatial(id)?) {
                (Region::Window { r0, r1, c0, c1 }, Some(in_hw), Some(out_hw)) => {
                    map_back(&node.op, (r0, r1), (c0, c1), in_hw, out_hw)
                }
                _ => Region::Whole,
            };
            regions[input] = Some(match regions[input] {
                Some(r) => r.union(mapped),
                None => mapped,
            });
        }
    }
    let Some((ih, iw)) = spatial(0)? else {
        return Err(Error::InvalidArgument("the input is not an image".into()));
    };
    Ok(match regions[0] {
        Some(Region::Window { r0, r1, c0, c1 }) => {
            let clip = |lo: i64, hi: i64, size: usize| {
                let lo = lo.clamp(0, size as i64) as usize;
                let hi = (hi + 1).clamp(0, size as i64) as usize;
                (lo, hi.max(lo))
            };
            let (top, bottom) = clip(r0, r1, ih);
            let (left, right) = clip(c0, c1, iw);
            ReceptiveField {
                top,
                left,
                bottom,
                right,
                size: ((r1 - r0 + 1) as usize, (c1 - c0 + 1) as usize),
            }
        }
        _ => ReceptiveField {
            top: 0,
            left: 0,
            bottom: ih,
            right: iw,
            size: (ih, iw),
        },
    })
}

/// The input region that output rows `rows` and columns `cols` of `op` read, for an input of
/// `in_hw` and an output of `out_hw`.
fn map_back(
    op: &Op,
    rows: (i64, i64),
    cols: (i64, i64),
    in_hw: (usize, usize),
    out_hw: (usize, usize),
) -> Region {
    let window = |rows: (i64, i64), cols: (i64, i64)| Region::Window {
        r0: rows.0,
        r1: rows.1,
        c0: cols.0,
        c1: cols.1,
    };
    match op {
        Op::Conv2d(conv) => {
            let (kh, kw) = conv.kernel_size();
            let d = conv.dilation;
            let (ekh, ekw) = (d * (kh - 1) + 1, d * (kw - 1) + 1);
            let (top, _, left, _) = conv
                .padding
                .resolve(in_hw.0, in_hw.1, ekh, ekw, conv.stride);
            let s = conv.stride as i64;
            window(
                sliding(rows, s, top as i64, ekh as i64),
                sliding(cols, s, left as i64, ekw as i64),
            )
        }
        Op::MaxPool2d(p) => pool_back(&p.window, rows, cols),
        Op::AvgPool2d(p) => pool_back(&p.window, rows, cols),
        Op::AdaptiveAvgPool2d(_) | Op::AdaptiveMaxPool2d(_) => window(
            adaptive_bins(rows, in_hw.0, out_hw.0),
            adaptive_bins(cols, in_hw.1, out_hw.1),
        ),
        Op::Input
        | Op::BatchNorm2d(_)
        | Op::Activation(_)
        | Op::Identity
        | Op::Add
        | Op::Mul
        | Op::Concat { dim: 0 | 1 } => {
            if in_hw == out_hw {
                window(rows, cols)
            } else if in_hw == (1, 1) {
                // A broadcast operand: a squeeze-excitation gate that rescales the local branch.
                Region::Gate
            } else {
                Region::Whole
            }
        }
        Op::Pad(pad) => match (pad.pads.get(2), pad.pads.get(3)) {
            (Some(&(top, _)), Some(&(left, _))) => window(
                (rows.0 - top as i64, rows.1 - top as i64),
                (cols.0 - left as i64, cols.1 - left as i64),
            ),
            _ => Region::Whole,
        },
        Op::Slice(slice) => {
            let mut rows = rows;
            let mut cols = cols;
            for axis in &slice.axes {
                let (target, len) = match axis.axis {
                    2 => (&mut rows, in_hw.0),
                    3 => (&mut cols, in_hw.1),
                    0 | 1 => continue,
                    _ => return Region::Whole,
                };
                let len = len as i64;
                let start = if axis.start < 0 {
                    axis.start.saturating_add(len)
                } else {
                    axis.start
                }
                .clamp(0, len);
                let step = axis.step as i64;
                *target = (start + target.0 * step, start + target.1 * step);
            }
            window(rows, cols)
        }
        Op::Resize(_) => window(
            proportional(rows, in_hw.0, out_hw.0),
            proportional(cols, in_hw.1, out_hw.1),
        ),
        _ => Region::Whole,
    }
}

/// Input interval of a sliding window (stride `s`, leading padding `pad`, effective kernel `k`).
fn sliding(out: (i64, i64), s: i64, pad: i64, k: i64) -> (i64, i64) {
    (out.0 * s - pad, out.1 * s - pad + k - 1)
}

fn pool_back(window: &PoolWindow, rows: (i64, i64), cols: (i64, i64)) -> Region {
    let (top, _, left, _) = window.padding;
    let (eh, ew) = window.extent();
    let rows = sliding(rows, window.stride.0 as i64, top as i64, eh as i64);
    let cols = sliding(cols, window.stride.1 as i64, left as i64, ew as i64);
    Region::Window {
        r0: rows.0,
        r1: rows.1,
        c0: cols.0,
        c1: cols.1,
    }
}

/// PyTorch's adaptive pooling bins: output i averages [⌊i·n/o⌋, ⌈(i+1)·n/o⌉).
fn adaptive_bins(out: (i64, i64), size: usize, out_size: usize) -> (i64, i64) {
    let (n, o) = (size as i64, out_size.max(1) as i64);
    let (a, b) = (out.0.clamp(0, o - 1), out.1.clamp(0, o - 1));
    (a * n / o, ((b + 1) * n + o - 1) / o - 1)
}

/// A resize's source interval, widened by one pixel for interpolation.
fn proportional(out: (i64, i64), size: usize, out_size: usize) -> (i64, i64) {
    let (n, o) = (size as i64, out_size.max(1) as i64);
    ((out.0 * n) / o - 1, ((out.1 + 1) * n + o - 1) / o)
}
