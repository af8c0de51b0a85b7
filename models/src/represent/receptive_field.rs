//! The receptive field of a layer's units: the input pixels a unit at a given position can see,
//! worked out from the geometry of every convolution, pooling and padding on the way from the
//! input (the theoretical field, as deepvis crops it).
//!
//! Each node's field is `jump · position + [start, end]` per axis. Where branches meet (a residual
//! sum, a concatenation) the fields are united. A branch that went through a global operation (a
//! global average pool, a linear layer), such as a squeeze-and-excitation gate, is not counted
//! when it only rescales a local branch; a layer after the head is global.

use candle_core::{DType, Tensor};

use crate::graph::NodeId;
use crate::ops::{Op, Padding};
use crate::{Error, Model, Result};

/// One axis of a receptive field: unit `i` sees input pixels `jump·i + start ..= jump·i + end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AxisField {
    /// Input pixels between neighbouring units.
    pub jump: i64,
    /// First input pixel seen by unit 0 (negative where it reaches into padding).
    pub start: i64,
    /// Last input pixel seen by unit 0.
    pub end: i64,
}

impl AxisField {
    const IDENTITY: AxisField = AxisField {
        jump: 1,
        start: 0,
        end: 0,
    };

    /// The input pixels `[first, last]` seen by unit `i`, clipped to an input of `size` pixels.
    pub fn span(&self, i: usize, size: usize) -> (usize, usize) {
        let first = self.jump * i as i64 + self.start;
        let last = self.jump * i as i64 + self.end;
        let max = size as i64 - 1;
        (first.clamp(0, max) as usize, last.clamp(0, max) as usize)
    }

    /// Its size in pixels.
    pub fn size(&self) -> i64 {
        self.end - self.start + 1
    }

    fn window(self, kernel: usize, stride: usize, dilation: usize, pad_before: usize) -> Self {
        let reach = (kernel.max(1) as i64 - 1) * dilation as i64;
        AxisField {
            jump: self.jump * stride as i64,
            start: self.start - pad_before as i64 * self.jump,
            end: self.end + (reach - pad_before as i64) * self.jump,
        }
    }

    fn union(self, other: AxisField) -> Self {
        AxisField {
            jump: self.jump.max(other.jump),
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// The receptive field of a node's units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum ReceptiveField {
    /// Each unit sees a window of the input.
    Local {
        /// Rows.
        y: AxisField,
        /// Columns.
        x: AxisField,
    },
    /// Each unit sees the whole input.
    Global,
}

impl ReceptiveField {
    /// The input rectangle `(top, left, bottom, right)` (inclusive) that the unit at `(y, x)`
    /// sees, clipped to an input of `height`×`width`.
    pub fn rect(
        &self,
        y: usize,
        x: usize,
        height: usize,
        width: usize,
    ) -> (usize, usize, usize, usize) {
        match self {
            ReceptiveField::Local { y: fy, x: fx } => {
                let (top, bottom) = fy.span(y, height);
                let (left, right) = fx.span(x, width);
                (top, left, bottom, right)
            }
            ReceptiveField::Global => (0, 0, height.saturating_sub(1), width.saturating_sub(1)),
        }
    }

    fn union(self, other: ReceptiveField) -> Self {
        match (self, other) {
            (ReceptiveField::Local { y: ay, x: ax }, ReceptiveField::Local { y: by, x: bx }) => {
                ReceptiveField::Local {
                    y: ay.union(by),
                    x: ax.union(bx),
                }
            }
            _ => ReceptiveField::Global,
        }
    }
}

/// The receptive field of `layer`'s units for the model's input size.
pub fn receptive_field(model: &Model, layer: NodeId) -> Result<ReceptiveField> {
    let p = model.preprocess;
    let size = p.crop as usize;
    let x = Tensor::zeros(
        (1, p.normalization.channels, size, size),
        DType::F32,
        &model.device,
    )?;
    let trace = model.graph.forward(&x, None)?;
    let nodes = model.graph.nodes();
    if layer >= nodes.len() {
        return Err(Error::InvalidArgument(format!("no node {layer}")));
    }
    let dims =
        |id: NodeId| -> Vec<usize> { trace.get(id).map(|t| t.dims().to_vec()).unwrap_or_default() };
    let spatial = |id: NodeId| -> Option<(usize, usize)> {
        match dims(id).as_slice() {
            [_, _, h, w] => Some((*h, *w)),
            _ => None,
        }
    };
    let mut fields: Vec<ReceptiveField> = Vec::with_capacity(layer + 1);
    fields.push(ReceptiveField::Local {
        y: AxisField::IDENTITY,
        x: AxisField::IDENTITY,
    });
    for node in nodes.iter().take(layer + 1).skip(1) {
        let inputs: Vec<ReceptiveField> = node.inputs.iter().map(|&i| fields[i]).collect();
        let first = inputs.first().copied().unwrap_or(ReceptiveField::Global);
        let in_hw = node.inputs.first().and_then(|&i| spatial(i));
        let windowed =
            |kh: usize, kw: usize, sh: usize, sw: usize, dil: usize, top: usize, left: usize| {
                match first {
                    ReceptiveField::Local { y, x } => ReceptiveField::Local {
                        y: y.window(kh, sh, dil, top),
                        x: x.window(kw, sw, dil, left),
                    },
                    ReceptiveField::Global => ReceptiveField::Global,
                }
            };
        let field = match &node.op {
            Op::Input => fields[0],
            Op::Conv2d(c) => {
                let (kh, kw) = c.kernel_size();
                let (top, left) = match (c.padding, in_hw) {
                    (Padding::Explicit { top, left, .. }, _) => (top, left),
                    (Padding::Same, Some((h, w))) => {
                        let eff = |k: usize| (k - 1) * c.dilation + 1;
                        let (t, _, l, _) = c.padding.resolve(h, w, eff(kh), eff(kw), c.stride);
                        (t, l)
                    }
                    (Padding::Same, None) => (0, 0),
                };
                windowed(kh, kw, c.stride, c.stride, c.dilation, top, left)
            }
            Op::MaxPool2d(p) => {
                let w = p.window;
                windowed(
                    w.kernel.0,
                    w.kernel.1,
                    w.stride.0,
                    w.stride.1,
                    1,
                    w.padding.0,
                    w.padding.2,
                )
            }
            Op::AvgPool2d(p) => {
                let w = p.window;
                windowed(
                    w.kernel.0,
                    w.kernel.1,
                    w.stride.0,
                    w.stride.1,
                    1,
                    w.padding.0,
                    w.padding.2,
                )
            }
            Op::Pad(p) if p.pads.len() == 4 => windowed(1, 1, 1, 1, 1, p.pads[2].0, p.pads[3].0),
            Op::AdaptiveAvgPool2d(a) => match (in_hw, a.output_size) {
                (Some((h, w)), (oh, ow)) if oh == h && ow == w => first,
                _ => ReceptiveField::Global,
            },
            Op::BatchNorm2d(_)
            | Op::Activation(_)
            | Op::Identity
            | Op::Softmax
            | Op::Transpose(_)
            | Op::Slice(_) => first,
            Op::Add | Op::Mul | Op::Concat { .. } => {
                // Inputs reduced to a single position (a gate) do not widen the field.
                let local: Vec<ReceptiveField> = node
                    .inputs
                    .iter()
                    .zip(&inputs)
                    .filter(|(&i, _)| spatial(i).is_some_and(|(h, w)| h * w > 1))
                    .map(|(_, f)| *f)
                    .collect();
                let pool = if local.is_empty() {
                    inputs.clone()
                } else {
                    local
                };
                pool.into_iter()
                    .reduce(ReceptiveField::union)
                    .unwrap_or(ReceptiveField::Global)
            }
            _ => ReceptiveField::Global,
        };
        fields.push(field);
    }
    Ok(fields[layer])
}
