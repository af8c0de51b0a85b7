//! Score-CAM's masked copies through the network's first convolution by linearity: a mask is
//! an affine map of a bilinear upsample, `α · R_h·a·R_wᵀ + β`, so the convolution of the
//! masked input is `α · Σ a[p, q] · conv(x ⊙ basis[p, q]) + β · conv(x)` (plus the bias), where
//! `basis[p, q]` is the upsample of the map with a one at (p, q). Each of those convolutions is
//! made once and is zero outside a box (a bilinear basis reaches two source cells); a copy then
//! costs a few scaled sums over those boxes instead of a convolution: resnet18's 7×7 stem,
//! 118 million multiply–adds per copy, becomes about 5 million. The same values as the copies'
//! own convolution up to rounding (tested against it); the copies' path stays the reference
//! and the path for masks this would not reproduce ([`well_conditioned`]).

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::resize::resize_bilinear;
use crate::graph::{Graph, LinearStem, NodeId};
use crate::ops::pointwise_cpu::FusedActivation;
use crate::ops::{Conv2d, Convolutions};
use crate::{Error, Result};

/// Map cells whose basis convolutions are made at once (a batch of that many full-size copies).
const BASES_PER_PASS: usize = 8;

/// A mask is taken by linearity only when its upsample's range is at least this share of its
/// largest magnitude: min–max scaling divides by the range, so a nearly constant map (a ReLU6
/// channel at 6, constant up to the upsample's rounding) has a mask made of rounding noise,
/// which only the copy's own upsample reproduces.
const LEAST_RELATIVE_RANGE: f32 = 1e-2;

/// The first convolution's output for masked copies of one input, by linearity.
pub(crate) struct MaskedStem {
    /// The node whose output [`MaskedStem::outputs`] gives (the convolution's, its
    /// BatchNorm's or its activation's): the rest of the network runs from there
    /// ([`Graph::output_after`]).
    pub output: NodeId,
    /// The activation applied to each output plane, if any.
    activation: Option<FusedActivation>,
    /// Output channels and plane (rows, columns).
    channels: usize,
    plane: (usize, usize),
    /// The convolution's bias per channel (zeros without one).
    bias: Vec<f32>,
    /// The convolution of the unmasked input, without its bias: [channels, rows, columns].
    unmasked: Vec<f32>,
    /// The convolution of the input masked by each map cell's basis, cell by cell.
    bases: Vec<Basis>,
}

/// One map cell's basis convolution, kept inside the box where it is not zero.
struct Basis {
    rows: std::ops::Range<usize>,
    columns: std::ops::Range<usize>,
    /// [channels, rows.len(), columns.len()].
    values: Vec<f32>,
}

impl MaskedStem {
    /// The stem of `graph` for masked copies of `input` [1, C, H, W] by maps of `map` (rows,
    /// columns) cells, when the network starts with a linear convolution ([`Graph::linear_stem`])
    /// and the input is one f32 image on the CPU; `None` otherwise.
    pub fn new(graph: &Graph, input: &Tensor, map: (usize, usize)) -> Result<Option<MaskedStem>> {
        let Some(LinearStem {
            conv,
            activation,
            output,
        }) = graph.linear_stem()
        else {
            return Ok(None);
        };
        let (n, _, h, w) = input.dims4()?;
        if n != 1 || !matches!(input.device(), Device::Cpu) || input.dtype() != DType::F32 {
            return Ok(None);
        }
        let unbiased = Conv2d::new(
            conv.weight.clone(),
            None,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
        );
        let unmasked = unbiased.forward_by(input, Convolutions::Direct)?;
        let (_, channels, oh, ow) = unmasked.dims4()?;
        let bias = match &conv.bias {
            Some(b) => b.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?,
            None => vec![0.0; channels],
        };
        if bias.len() != channels {
            return Err(Error::InvalidArgument(format!(
                "the first convolution has {} bias values for {channels} channels",
                bias.len()
            )));
        }
        let cells = map.0 * map.1;
        let mut bases = Vec::with_capacity(cells);
        for first in (0..cells).step_by(BASES_PER_PASS) {
            let count = BASES_PER_PASS.min(cells - first);
            let mut one_hot = vec![0f32; count * cells];
            for i in 0..count {
                one_hot[i * cells + first + i] = 1.0;
            }
            let one_hot = Tensor::from_vec(one_hot, (count, map.0, map.1), input.device())?;
            let masks = resize_bilinear(&one_hot, h, w, true)?.unsqueeze(1)?;
            let y = unbiased.forward_by(&masks.broadcast_mul(input)?, Convolutions::Direct)?;
            let y = y.flatten_all()?.to_vec1::<f32>()?;
            for values in y.chunks_exact(channels * oh * ow) {
                bases.push(Basis::of(values, channels, (oh, ow)));
            }
        }
        Ok(Some(MaskedStem {
            output,
            activation,
            channels,
            plane: (oh, ow),
            bias,
            unmasked: unmasked.flatten_all()?.to_vec1::<f32>()?,
            bases,
        }))
    }

    /// The stem's output [n, channels, rows, columns] for the input masked by `α · up(map) + β`
    /// for each `(map, (α, β))` of `masks` (each map's cells row by row).
    pub fn outputs(&self, masks: &[(&[f32], (f32, f32))], device: &Device) -> Result<Tensor> {
        let (oh, ow) = self.plane;
        let plane = oh * ow;
        let cells = self.bases.len();
        if let Some((map, _)) = masks.iter().find(|(map, _)| map.len() != cells) {
            return Err(Error::InvalidArgument(format!(
                "a Score-CAM map of {} cells for a stem made for {cells}",
                map.len()
            )));
        }
        let mut y = vec![0f32; masks.len() * self.channels * plane];
        y.par_chunks_mut(plane.max(1))
            .enumerate()
            .for_each(|(i, dst)| {
                let (mask, channel) = (i / self.channels, i % self.channels);
                let (map, (alpha, beta)) = masks[mask];
                let bias = self.bias[channel];
                let unmasked = &self.unmasked[channel * plane..(channel + 1) * plane];
                for (d, &u) in dst.iter_mut().zip(unmasked) {
                    *d = beta * u + bias;
                }
                for (basis, &a) in self.bases.iter().zip(map) {
                    let weight = alpha * a;
                    if weight != 0.0 {
                        basis.add_scaled(channel, weight, dst, ow);
                    }
                }
                if let Some(activation) = self.activation {
                    activation.apply_in_place(dst);
                }
            });
        Ok(Tensor::from_vec(
            y,
            (masks.len(), self.channels, oh, ow),
            device,
        )?)
    }
}

impl Basis {
    /// The basis of `values` [channels, rows, columns], cut to the box of its nonzero values.
    fn of(values: &[f32], channels: usize, (oh, ow): (usize, usize)) -> Basis {
        let (mut rows, mut columns) = (oh..0, ow..0);
        for plane in values.chunks_exact(oh * ow) {
            for (r, row) in plane.chunks_exact(ow).enumerate() {
                if let Some(first) = row.iter().position(|&v| v != 0.0) {
                    let last = row.iter().rposition(|&v| v != 0.0).unwrap_or(first);
                    rows = rows.start.min(r)..rows.end.max(r + 1);
                    columns = columns.start.min(first)..columns.end.max(last + 1);
                }
            }
        }
        if rows.is_empty() || columns.is_empty() {
            return Basis {
                rows: 0..0,
                columns: 0..0,
                values: Vec::new(),
            };
        }
        let mut kept = Vec::with_capacity(channels * rows.len() * columns.len());
        for plane in values.chunks_exact(oh * ow) {
            for r in rows.clone() {
                kept.extend_from_slice(&plane[r * ow + columns.start..r * ow + columns.end]);
            }
        }
        Basis {
            rows,
            columns,
            values: kept,
        }
    }

    /// `dst` (one channel's plane, rows of `width`) += `weight` · this basis's plane.
    fn add_scaled(&self, channel: usize, weight: f32, dst: &mut [f32], width: usize) {
        let span = self.columns.len();
        let size = self.rows.len() * span;
        let Some(plane) = self.values.get(channel * size..(channel + 1) * size) else {
            return;
        };
        for (r, src) in self.rows.clone().zip(plane.chunks_exact(span.max(1))) {
            let start = r * width + self.columns.start;
            for (d, &s) in dst[start..start + span].iter_mut().zip(src) {
                *d += weight * s;
            }
        }
    }
}

/// Whether the mask scaled from an upsample with this `min` and `max` is taken by linearity
/// ([`LEAST_RELATIVE_RANGE`]).
pub(crate) fn well_conditioned(min: f32, max: f32) -> bool {
    let range = max - min;
    range.is_finite() && range > 0.0 && range >= LEAST_RELATIVE_RANGE * min.abs().max(max.abs())
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::{well_conditioned, MaskedStem};
    use crate::explain::resize::resize_bilinear;
    use crate::ops::test_compare::max_rel;
    use crate::ops::Convolutions;
    use crate::{LoadOptions, Model};

    #[test]
    fn the_stems_outputs_equal_the_masked_copies_own_convolution() {
        let dev = Device::Cpu;
        // A 7×7 stride-2 stem with its BatchNorm folded in, a 3×3 stride-2 one, one with a
        // bias and no BatchNorm; maps of 3×3 and 2×4 cells (ReLU-like: some cells zero).
        for (spec, map) in [
            ("random:resnet18", (3, 3)),
            ("random:efficientnet_lite0", (2, 4)),
            ("random:vgg11", (3, 3)),
        ] {
            let model = Model::load(spec, &LoadOptions::default(), &dev).unwrap();
            let x = Tensor::randn(0f32, 1f32, (1, 3, 61, 58), &dev).unwrap();
            let stem = MaskedStem::new(&model.graph, &x, map).unwrap().unwrap();
            let conv = model.graph.linear_stem().unwrap().conv;
            let cells = map.0 * map.1;
            let maps: Vec<Vec<f32>> = (0..4)
                .map(|seed| {
                    (0..cells)
                        .map(|i| {
                            (((i * 7 + seed * 3) % 5) as f32 - 1.5).max(0.0) * 0.7
                                + 0.2 * seed as f32
                        })
                        .collect()
                })
                .collect();
            let mut masks = Vec::new();
            let mut copies = Vec::new();
            for m in &maps {
                let a = Tensor::from_slice(m, (1, map.0, map.1), &dev).unwrap();
                let up = resize_bilinear(&a, 61, 58, true).unwrap();
                let values = up.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let min = values.iter().copied().fold(f32::INFINITY, f32::min);
                let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                assert!(well_conditioned(min, max), "{spec}");
                let d = (max - min) + 1e-8;
                masks.push((m.as_slice(), (1.0 / d, -min / d)));
                let mask = ((up - f64::from(min)).unwrap() / f64::from(d)).unwrap();
                copies.push(mask.unsqueeze(0).unwrap().broadcast_mul(&x).unwrap());
            }
            let copies = Tensor::cat(&copies, 0).unwrap();
            let stem_of = model.graph.linear_stem().unwrap();
            // BatchNorm and activation taken in where there is one.
            assert_eq!(
                stem_of.activation.is_some(),
                spec != "random:vgg11",
                "{spec}"
            );
            let want = conv.forward_by(&copies, Convolutions::Direct).unwrap();
            let want = match stem_of.activation {
                Some(activation) => {
                    let mut values = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    activation.apply_in_place(&mut values);
                    Tensor::from_vec(values, want.shape(), &dev).unwrap()
                }
                None => want,
            };
            let got = stem.outputs(&masks, &dev).unwrap();
            let error = max_rel(&got, &want);
            assert!(error < 1e-5, "{spec}: {error}");
        }
    }
}
