//! Incremental inference (Nakandala et al., "Incremental and Approximate Inference for Faster
//! Occlusion-based Deep CNN Explanations", SIGMOD 2019): the outputs of a batch of copies of one
//! input, each copy changed only inside a box (an occlusion patch), computed from the traced
//! outputs of the unchanged input.
//!
//! A convolution's or a pooling's output changes only inside the cone of a changed box, and a
//! pointwise op's only inside the box itself. So each node recomputes, for each copy, only the
//! box of its output that its changed inputs reach, reading everything around it from the trace.
//! Once a box covers a whole feature map, or the copies meet an op with no spatial locality (a
//! global pool, a linear layer, an average pool's position-dependent divisor), the copies are
//! laid over the trace and run on as a plain batch.
//!
//! Exact: every value recomputed is computed by the same op from the same inputs as in a full
//! pass of the changed copies (the trace supplies the unchanged ones, the padding the layer would
//! add is laid around a window that reaches past the map), so the outputs equal
//! [`Graph::forward`] of the copies up to the order of a GEMM's sums. The full pass stays the
//! reference; the tests compare the two.
//!
//! Every step is candle ops (narrow, cat, the ops' own forward), so it runs on any device; on
//! the CPU the windows are gathered by plain copies instead (`gather_cpu.rs`, the same bits).

use candle_core::Tensor;

use super::{gather_cpu, Graph, NodeId, Trace};
use crate::ops::cpu_slice::is_cpu_f32;
use crate::ops::{Convolutions, MaxPool2d, Op, PoolWindow};
use crate::{Error, Result};

/// A batch of copies of one input [1, C, H, W], each changed inside a box of one size.
#[derive(Debug, Clone)]
pub struct BoxedCopies {
    /// The values inside each copy's box, [N, C, h, w].
    pub patches: Tensor,
    /// Each copy's box origin (row, column).
    pub origins: Vec<(usize, usize)>,
}

/// What one node's output is for the batch of copies.
enum Value {
    /// The traced output for every copy: the node does not depend on the input.
    Traced,
    /// The traced output with each copy's box laid over it.
    Boxed(BoxedCopies),
    /// Each copy's whole output, [N, ..].
    Batch(Tensor),
}

/// A sliding window along one axis, as a convolution or pooling places it.
#[derive(Clone, Copy, Debug)]
struct AxisWindow {
    /// The window's extent on the input (dilation · (k − 1) + 1).
    extent: usize,
    stride: usize,
    /// Padding before the first input element.
    before: usize,
}

impl AxisWindow {
    /// The outputs [lo, hi) whose windows read any of the inputs [start, start + len), within
    /// the `out` outputs.
    fn outputs_reading(&self, start: usize, len: usize, out: usize) -> (usize, usize) {
        let (start, len) = (start as i64, len as i64);
        let (e, s, p) = (self.extent as i64, self.stride as i64, self.before as i64);
        // Output o reads inputs [o·s − p, o·s − p + e).
        let lo = (start + p - e).div_euclid(s) + 1;
        let hi = (start + len + p + s - 1).div_euclid(s);
        let clamp = |v: i64| v.clamp(0, out as i64) as usize;
        (clamp(lo), clamp(hi).max(clamp(lo)))
    }

    /// The first input (negative: in the padding) that outputs from `first` read, and how many
    /// inputs `count` outputs read.
    fn inputs_read(&self, first: usize, count: usize) -> (i64, usize) {
        (
            (first * self.stride) as i64 - self.before as i64,
            (count.max(1) - 1) * self.stride + self.extent,
        )
    }
}

/// Each copy's output box along one axis (one size for all, placed inside the `out` outputs)
/// for input boxes at `starts` of length `len`.
fn output_boxes(
    window: AxisWindow,
    starts: &[usize],
    len: usize,
    out: usize,
) -> (Vec<usize>, usize) {
    let ranges: Vec<(usize, usize)> = starts
        .iter()
        .map(|&s| window.outputs_reading(s, len, out))
        .collect();
    let size = ranges
        .iter()
        .map(|(lo, hi)| hi - lo)
        .max()
        .unwrap_or(0)
        .clamp(1, out.max(1));
    let origins = ranges.iter().map(|&(lo, _)| lo.min(out - size)).collect();
    (origins, size)
}

impl Graph {
    /// The network's output [N, ..] for the copies: what [`Graph::forward`] of the copies laid
    /// over the input gives, recomputing only what each copy's box changes. `trace` is a pass of
    /// the unchanged input [1, C, H, W] that kept every node's output. Run on rayon's pool
    /// (`in_pool`).
    pub fn forward_boxed_copies(&self, trace: &Trace, copies: BoxedCopies) -> Result<Tensor> {
        super::in_pool::in_pool(|| self.forward_boxed_copies_here(trace, copies))
    }

    /// [`Graph::forward_boxed_copies`] on the calling thread.
    fn forward_boxed_copies_here(&self, trace: &Trace, copies: BoxedCopies) -> Result<Tensor> {
        let n = self.nodes.len();
        if !trace.is_complete(n) {
            return Err(Error::InvalidArgument(
                "incremental inference needs a trace of every node".into(),
            ));
        }
        let input = traced(trace, 0)?;
        let (batch, channels, ph, pw) = copies.patches.dims4()?;
        let (one, c, h, w) = input.dims4()?;
        let fits = one == 1
            && channels == c
            && copies.origins.len() == batch
            && copies
                .origins
                .iter()
                .all(|&(y, x)| y + ph <= h && x + pw <= w);
        if !fits {
            return Err(Error::Shape {
                what: "changed copies".into(),
                expected: format!("boxes of [{c}, ≤{h}, ≤{w}] inside the input"),
                found: format!("{:?} at {:?}", copies.patches.dims(), copies.origins),
            });
        }
        let last_use = self.last_uses();
        let mut values: Vec<Option<Value>> = (0..n).map(|_| None).collect();
        values[0] = Some(Value::Boxed(copies));
        for id in 1..n {
            let value = self
                .incremental_node(trace, id, &values, batch)
                .map_err(|e| match e {
                    Error::Tensor(e) => super::in_layer(&self.nodes[id].name, e),
                    other => other,
                })?;
            values[id] = Some(value);
            for &i in &self.nodes[id].inputs {
                if last_use[i] == id {
                    values[i] = None;
                }
            }
        }
        match values.pop().flatten() {
            Some(Value::Batch(t)) => Ok(t),
            Some(Value::Boxed(b)) => materialize(traced(trace, n - 1)?, &b),
            Some(Value::Traced) => super::repeat_batch(traced(trace, n - 1)?, batch),
            None => Err(missing(&self.nodes[n - 1].name)),
        }
    }

    /// Node `id`'s value for the copies, from its inputs' values.
    fn incremental_node(
        &self,
        trace: &Trace,
        id: NodeId,
        values: &[Option<Value>],
        batch: usize,
    ) -> Result<Value> {
        let node = &self.nodes[id];
        let inputs: Vec<&Value> = node
            .inputs
            .iter()
            .map(|&i| {
                values[i]
                    .as_ref()
                    .ok_or_else(|| missing(&self.nodes[i].name))
            })
            .collect::<Result<_>>()?;
        if inputs.iter().all(|v| matches!(v, Value::Traced)) {
            return Ok(Value::Traced);
        }
        let output = traced(trace, id)?;
        let boxed = match (&node.op, inputs.as_slice()) {
            (Op::BatchNorm2d(_) | Op::Activation(_) | Op::Identity, [Value::Boxed(b)]) => {
                Some(BoxedCopies {
                    patches: node.op.forward(&[&b.patches])?,
                    origins: b.origins.clone(),
                })
            }
            (Op::Conv2d(conv), [Value::Boxed(b)]) => {
                let x = traced(trace, node.inputs[0])?;
                let (top, _, left, _) = conv.pads(x)?;
                let (eh, ew) = conv.effective_kernel();
                let rows = AxisWindow {
                    extent: eh,
                    stride: conv.stride,
                    before: top,
                };
                let cols = AxisWindow {
                    extent: ew,
                    stride: conv.stride,
                    before: left,
                };
                windowed(x, b, output, (rows, cols), 0.0, |window| {
                    conv.forward_on_padded(window)
                })?
            }
            (Op::MaxPool2d(pool), [Value::Boxed(b)]) => {
                let x = traced(trace, node.inputs[0])?;
                let (eh, ew) = pool.window.extent();
                let (t, _, l, _) = pool.window.padding;
                let rows = AxisWindow {
                    extent: eh,
                    stride: pool.window.stride.0,
                    before: t,
                };
                let cols = AxisWindow {
                    extent: ew,
                    stride: pool.window.stride.1,
                    before: l,
                };
                let unpadded = MaxPool2d {
                    window: PoolWindow {
                        padding: (0, 0, 0, 0),
                        ceil_mode: false,
                        ..pool.window
                    },
                };
                windowed(x, b, output, (rows, cols), f64::NEG_INFINITY, |window| {
                    unpadded.forward(window)
                })?
            }
            (Op::Add | Op::Mul | Op::Concat { dim: 1 }, _) => self.merged(trace, id, &inputs)?,
            _ => None,
        };
        if let Some(b) = boxed {
            let (_, _, bh, bw) = b.patches.dims4()?;
            let (_, _, oh, ow) = output.dims4()?;
            return Ok(if (bh, bw) == (oh, ow) {
                Value::Batch(b.patches)
            } else {
                Value::Boxed(b)
            });
        }
        // No spatial locality here (or the copies already run whole): the plain batch.
        let whole: Vec<Tensor> = node
            .inputs
            .iter()
            .zip(&inputs)
            .map(|(&i, v)| match v {
                Value::Traced => Ok(traced(trace, i)?.clone()),
                Value::Boxed(b) => materialize(traced(trace, i)?, b),
                Value::Batch(t) => Ok(t.clone()),
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = whole.iter().collect();
        // Only the copies' scores are read, as in the full passes: the fastest convolutions.
        let y = node.op.forward_by(&refs, Convolutions::Fastest)?;
        if y.dims().first() != Some(&batch) {
            return Err(Error::InvalidArgument(format!(
                "layer `{}` does not keep the batch of changed copies",
                node.name
            )));
        }
        Ok(Value::Batch(y))
    }

    /// A sum, product or channel concatenation of same-sized maps, over the union of the
    /// inputs' boxes; `None` when an input already runs whole or the maps differ in size.
    fn merged(&self, trace: &Trace, id: NodeId, inputs: &[&Value]) -> Result<Option<BoxedCopies>> {
        let node = &self.nodes[id];
        let spatial = |t: &Tensor| match t.dims() {
            &[1, _, h, w] => Some((h, w)),
            _ => None,
        };
        let Some((h, w)) = spatial(traced(trace, id)?) else {
            return Ok(None);
        };
        let mut boxes = vec![];
        for (&i, v) in node.inputs.iter().zip(inputs) {
            if matches!(v, Value::Batch(_)) || spatial(traced(trace, i)?) != Some((h, w)) {
                return Ok(None);
            }
            if let Value::Boxed(b) = v {
                boxes.push(b);
            }
        }
        let Some(first) = boxes.first() else {
            return Ok(None);
        };
        let copies = first.origins.len();
        let mut rows = Vec::with_capacity(copies);
        let mut cols = Vec::with_capacity(copies);
        for k in 0..copies {
            let (mut y0, mut y1, mut x0, mut x1) = (h, 0, w, 0);
            for b in &boxes {
                let (_, _, bh, bw) = b.patches.dims4()?;
                let (y, x) = b.origins[k];
                (y0, y1, x0, x1) = (y0.min(y), y1.max(y + bh), x0.min(x), x1.max(x + bw));
            }
            rows.push((y0, y1));
            cols.push((x0, x1));
        }
        let place = |spans: &[(usize, usize)], out: usize| -> (Vec<usize>, usize) {
            let size = spans.iter().map(|(a, b)| b - a).max().unwrap_or(1).max(1);
            (
                spans.iter().map(|&(a, _)| a.min(out - size)).collect(),
                size,
            )
        };
        let (ys, bh) = place(&rows, h);
        let (xs, bw) = place(&cols, w);
        let starts: Vec<(i64, i64)> = ys
            .iter()
            .zip(&xs)
            .map(|(&y, &x)| (y as i64, x as i64))
            .collect();
        let windows: Vec<Tensor> = node
            .inputs
            .iter()
            .zip(inputs)
            .map(|(&i, v)| {
                let b = match v {
                    Value::Boxed(b) => Some(b),
                    _ => None,
                };
                gather(traced(trace, i)?, b, &starts, (bh, bw), 0.0)
            })
            .collect::<Result<_>>()?;
        let refs: Vec<&Tensor> = windows.iter().collect();
        Ok(Some(BoxedCopies {
            patches: node.op.forward(&refs)?,
            origins: ys.into_iter().zip(xs).collect(),
        }))
    }
}

/// A windowed op (convolution, pooling) over each copy's box: the outputs the box reaches,
/// computed by `run` on the windows of the input they read (padding laid as `fill`).
fn windowed(
    x: &Tensor,
    b: &BoxedCopies,
    output: &Tensor,
    (rows, cols): (AxisWindow, AxisWindow),
    fill: f64,
    run: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<Option<BoxedCopies>> {
    let (_, _, bh, bw) = b.patches.dims4()?;
    let (_, _, oh, ow) = output.dims4()?;
    let ys: Vec<usize> = b.origins.iter().map(|o| o.0).collect();
    let xs: Vec<usize> = b.origins.iter().map(|o| o.1).collect();
    let (out_ys, out_h) = output_boxes(rows, &ys, bh, oh);
    let (out_xs, out_w) = output_boxes(cols, &xs, bw, ow);
    let mut starts = Vec::with_capacity(ys.len());
    let mut size = (0, 0);
    for (&oy, &ox) in out_ys.iter().zip(&out_xs) {
        let (y, wh) = rows.inputs_read(oy, out_h);
        let (x, ww) = cols.inputs_read(ox, out_w);
        starts.push((y, x));
        size = (wh, ww);
    }
    let windows = gather(x, Some(b), &starts, size, fill)?;
    let patches = run(&windows)?;
    let (_, _, ph, pw) = patches.dims4()?;
    if (ph, pw) != (out_h, out_w) {
        return Err(Error::InvalidArgument(format!(
            "incremental window gave {ph}x{pw} outputs, not {out_h}x{out_w}"
        )));
    }
    Ok(Some(BoxedCopies {
        patches,
        origins: out_ys.into_iter().zip(out_xs).collect(),
    }))
}

/// Each copy's values over a window of `size` at `starts` (row, column; a window may reach
/// past the map, where it reads `fill`): the traced map `base` [1, C, H, W] with the copy's box
/// laid over it. [copies, C, size.0, size.1]. On the CPU by plain copies ([`gather_cpu`]).
fn gather(
    base: &Tensor,
    boxes: Option<&BoxedCopies>,
    starts: &[(i64, i64)],
    size: (usize, usize),
    fill: f64,
) -> Result<Tensor> {
    let on_cpu = is_cpu_f32(base) && boxes.is_none_or(|b| is_cpu_f32(&b.patches));
    if on_cpu {
        let boxes = boxes.map(|b| gather_cpu::Boxes {
            patches: &b.patches,
            origins: &b.origins,
        });
        return Ok(gather_cpu::gather(base, boxes, starts, size, fill as f32)?);
    }
    gather_by_candle(base, boxes, starts, size, fill)
}

/// [`gather`] by candle ops: every device, and the reference the CPU path is tested against.
fn gather_by_candle(
    base: &Tensor,
    boxes: Option<&BoxedCopies>,
    starts: &[(i64, i64)],
    size: (usize, usize),
    fill: f64,
) -> Result<Tensor> {
    use crate::ops::strided::pad_with_value;
    let (_, _, h, w) = base.dims4()?;
    let (wh, ww) = (size.0 as i64, size.1 as i64);
    // How far the windows reach past the map on each side.
    let past = |reach: &dyn Fn(&(i64, i64)) -> i64| {
        starts.iter().map(reach).max().unwrap_or(0).max(0) as usize
    };
    let (top, left) = (past(&|s| -s.0), past(&|s| -s.1));
    let bottom = past(&|s| s.0 + wh - h as i64);
    let right = past(&|s| s.1 + ww - w as i64);
    let padded = pad_with_value(base, 2, top, bottom, fill)?;
    let padded = pad_with_value(&padded, 3, left, right, fill)?;
    let mut windows = Vec::with_capacity(starts.len());
    for (k, &(sy, sx)) in starts.iter().enumerate() {
        let window = padded
            .narrow(2, (sy + top as i64) as usize, size.0)?
            .narrow(3, (sx + left as i64) as usize, size.1)?;
        let window = match boxes {
            Some(b) => overlay(window, b, k, (sy, sx), size)?,
            None => window,
        };
        windows.push(window);
    }
    Ok(Tensor::cat(&windows, 0)?)
}

/// `window` (of the map at `start`) with the part of copy `k`'s box that falls inside it.
fn overlay(
    window: Tensor,
    b: &BoxedCopies,
    k: usize,
    start: (i64, i64),
    size: (usize, usize),
) -> Result<Tensor> {
    let (_, _, bh, bw) = b.patches.dims4()?;
    let (by, bx) = b.origins[k];
    let span = |origin: usize, len: usize, from: i64, n: usize| -> Option<(usize, usize)> {
        let lo = (origin as i64).max(from);
        let hi = ((origin + len) as i64).min(from + n as i64);
        (lo < hi).then_some(((lo - from) as usize, (hi - lo) as usize))
    };
    let (Some((r, rn)), Some((c, cn))) =
        (span(by, bh, start.0, size.0), span(bx, bw, start.1, size.1))
    else {
        return Ok(window);
    };
    // Where the window's rows r..r+rn start inside the box.
    let (pr, pc) = (
        (start.0 + r as i64 - by as i64) as usize,
        (start.1 + c as i64 - bx as i64) as usize,
    );
    let piece = b
        .patches
        .narrow(0, k, 1)?
        .narrow(2, pr, rn)?
        .narrow(3, pc, cn)?;
    let band = splice(&window.narrow(2, r, rn)?, 3, c, &piece)?;
    splice(&window, 2, r, &band)
}

/// `t` with `piece` in place of its slice from `at` along `dim` (as long as `piece` is there).
fn splice(t: &Tensor, dim: usize, at: usize, piece: &Tensor) -> Result<Tensor> {
    let (len, size) = (piece.dim(dim)?, t.dim(dim)?);
    let mut parts = Vec::with_capacity(3);
    if at > 0 {
        parts.push(t.narrow(dim, 0, at)?);
    }
    parts.push(piece.clone());
    if at + len < size {
        parts.push(t.narrow(dim, at + len, size - at - len)?);
    }
    Ok(Tensor::cat(&parts, dim)?)
}

/// Each copy's whole map: the trace `base` [1, C, H, W] with the copy's box laid over it.
fn materialize(base: &Tensor, b: &BoxedCopies) -> Result<Tensor> {
    let (_, _, h, w) = base.dims4()?;
    let starts = vec![(0, 0); b.origins.len()];
    gather(base, Some(b), &starts, (h, w), 0.0)
}

fn traced(trace: &Trace, id: NodeId) -> Result<&Tensor> {
    trace
        .get(id)
        .ok_or_else(|| Error::InvalidArgument(format!("the trace has no output for node {id}")))
}

fn missing(name: &str) -> Error {
    Error::InvalidArgument(format!(
        "incremental inference lost the value of layer `{name}`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_compare::bits;
    use candle_core::Device;

    /// The CPU gather equals the candle one to the bit: windows inside the map, reaching past
    /// each edge (padding read as `fill`), larger than the map, meeting their copy's box in
    /// part, in whole, or not at all; and without boxes.
    #[test]
    fn the_cpu_gather_equals_the_candle_one() {
        let dev = Device::Cpu;
        let (c, h, w) = (3, 9, 7);
        let base = Tensor::randn(0f32, 1f32, (1, c, h, w), &dev).unwrap();
        let (bh, bw) = (3, 2);
        let origins = vec![(0, 0), (6, 5), (3, 2), (4, 0), (0, 5), (2, 3)];
        let patches = Tensor::randn(0f32, 1f32, (origins.len(), c, bh, bw), &dev).unwrap();
        let boxes = BoxedCopies { patches, origins };
        type Case<'a> = (&'a [(i64, i64)], (usize, usize));
        let cases: [Case; 5] = [
            (&[(0, 0), (5, 4), (2, 1), (3, -1), (-2, 4), (1, 2)], (4, 3)),
            // Windows that start inside their box (below and right of its origin).
            (&[(1, 1), (7, 6), (4, 3), (5, 1), (1, 6), (3, 4)], (2, 2)),
            (
                &[(-1, -1), (-3, -2), (6, 5), (8, 6), (-1, 0), (0, -4)],
                (5, 5),
            ),
            (&[(-2, -2); 6], (13, 11)),
            (&[(0, 0); 6], (9, 7)),
        ];
        for (starts, size) in cases {
            for fill in [0.0, f64::NEG_INFINITY] {
                let fast = gather(&base, Some(&boxes), starts, size, fill).unwrap();
                let slow = gather_by_candle(&base, Some(&boxes), starts, size, fill).unwrap();
                assert_eq!(fast.dims(), slow.dims());
                assert_eq!(bits(&fast), bits(&slow), "{starts:?} {size:?} fill {fill}");
                let fast = gather(&base, None, starts, size, fill).unwrap();
                let slow = gather_by_candle(&base, None, starts, size, fill).unwrap();
                assert_eq!(bits(&fast), bits(&slow), "no boxes: {starts:?} {size:?}");
            }
        }
    }
}
