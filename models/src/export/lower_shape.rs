//! Ops that move elements: `view` / `reshape` / `flatten` / `squeeze` / `unsqueeze`, `permute` /
//! `transpose` / `t`, `chunk` / `split`, `slice`, `select`, `constant_pad_nd`, and the
//! `upsample_*2d` resizes.
//!
//! A reshape's target comes from the output sizes the program recorded, made to follow the
//! input: an axis that keeps the input's size (the batch, which the program fixed at its
//! exported value, or the same dynamic size) copies it at run time, and one other dynamic size
//! is inferred. So a program exported at batch 1 runs at any batch.

use serde_json::Value;

use super::lower::{At, Lowerer, Val};
use super::schema::{sym_int, Dim};
use crate::lowering::shape;
use crate::ops::{
    CoordinateMode, NearestRounding, Op, Reshape, Resize, ResizeMode, ResizeTarget, Slice,
    SliceAxis,
};
use crate::Result;

/// Two recorded sizes are the same symbol (or the same fixed size).
fn same_size(a: &Value, b: &Value) -> bool {
    match (a.get("as_expr"), b.get("as_expr")) {
        (Some(x), Some(y)) => x.get("expr_str") == y.get("expr_str"),
        _ => a == b,
    }
}

impl Lowerer<'_> {
    /// The run-time reshape target for the node's output, from its input `arg`.
    fn reshape_target(&self, at: &At, arg: &str) -> Result<Vec<i64>> {
        let (input, output) = self
            .raw_sizes(at, arg)
            .ok_or_else(|| at.unsupported("whose sizes the program does not record"))?;
        let mut target = Vec::with_capacity(output.len());
        let mut inferred = false;
        for (i, size) in output.iter().enumerate() {
            let dim = sym_int(size)
                .ok_or_else(|| at.unsupported(format!("with an unreadable size {size}")))?;
            let follows_batch = i == 0
                && dim == Dim::Fixed(self.exported_batch)
                && input.first().and_then(sym_int) == Some(Dim::Fixed(self.exported_batch));
            let copies =
                matches!(dim, Dim::Dynamic(_)) && input.get(i).is_some_and(|s| same_size(s, size));
            if follows_batch || copies {
                target.push(0);
            } else if let Dim::Fixed(n) = dim {
                target.push(n as i64);
            } else if !inferred {
                inferred = true;
                target.push(-1);
            } else {
                return Err(at.unsupported(
                    "with two sizes that change with the input: export with static height and width, \
                     or reshape with -1",
                ));
            }
        }
        Ok(target)
    }

    pub(crate) fn reshape(&mut self, at: &At) -> Result<Val> {
        let arg = at.first_arg_name();
        let x = self.required(at, &arg)?;
        let target = self.reshape_target(at, &arg)?;
        if at.op() == "flatten" {
            let rank = self.dims_of_arg(at, &arg)?.len();
            let start = self.axis(at, at.int("start_dim", 0)?, rank.max(1))?;
            let end = self.axis(at, at.int("end_dim", -1)?, rank.max(1))?;
            if end + 1 == rank && start >= 1 {
                let x = self.node(at, x)?;
                return Ok(self.push(at, Op::Flatten { start_dim: start }, &[x]));
            }
        }
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::Reshape(Reshape::Shape(target)), &[x]))
    }

    pub(crate) fn permute(&mut self, at: &At) -> Result<Val> {
        let x = self.required(at, "self")?;
        let rank = self.dims_of_arg(at, "self")?.len();
        let perm: Vec<usize> = match at.op() {
            "t" => {
                if let Val::Param(key) = x {
                    return Ok(Val::ParamT(key));
                }
                if rank < 2 {
                    return Ok(x);
                }
                vec![1, 0]
            }
            "transpose" => {
                let a = self.axis(at, at.int("dim0", 0)?, rank)?;
                let b = self.axis(at, at.int("dim1", 0)?, rank)?;
                let mut p: Vec<usize> = (0..rank).collect();
                p.swap(a, b);
                p
            }
            _ => {
                let dims = at.ints("dims")?.unwrap_or_default();
                dims.into_iter()
                    .map(|d| self.axis(at, d, rank))
                    .collect::<Result<Vec<_>>>()?
            }
        };
        if let (Val::Param(key), [1, 0]) = (&x, perm.as_slice()) {
            // A Linear weight transposed for `addmm` (the decomposed form of `nn.Linear`).
            return Ok(Val::ParamT(key.clone()));
        }
        let transpose = shape::permutation(perm, rank).map_err(|p| at.refused(p))?;
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::Transpose(transpose), &[x]))
    }

    /// `chunk`, `split`, `split_with_sizes`, `unbind`: consecutive slices whose sizes the outputs
    /// recorded.
    pub(crate) fn split(&mut self, at: &At) -> Result<Vec<Val>> {
        let rank = self.dims_of_arg(at, "self")?.len();
        let dim = self.axis(at, at.int("dim", 0)?, rank)?;
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        let mut start = 0i64;
        let mut out = Vec::new();
        let names = at.output_names();
        for (k, name) in names.iter().enumerate() {
            let size = match name {
                Some(n) => self
                    .dims_of_name(n)
                    .and_then(|d| d.get(dim).copied())
                    .filter(|d| matches!(d, Dim::Fixed(_)))
                    .map(Dim::size)
                    .ok_or_else(|| {
                        at.unsupported(
                            "into parts whose sizes are not recorded or change with the input",
                        )
                    })?,
                None => return Err(at.unsupported("with an output that is not a tensor")),
            };
            let size = if at.op() == "unbind" { 1 } else { size };
            let slice = Slice {
                axes: vec![SliceAxis {
                    axis: dim,
                    start,
                    end: start + size as i64,
                    step: 1,
                }],
            };
            start += size as i64;
            let part = if at.op() == "unbind" {
                let s = self.push_helper(at, &format!("part{k}"), Op::Slice(slice), &[x]);
                let mut target: Vec<i64> = vec![0; rank];
                target.remove(dim);
                if dim == 0 {
                    return Err(at.unsupported("over the batch axis"));
                }
                // Copying axes after the removed one would shift: give their sizes.
                let dims = self.dims_of_arg(at, "self")?;
                for (i, t) in target.iter_mut().enumerate().skip(dim) {
                    *t = dims[i + 1].size() as i64;
                }
                self.push(at, Op::Reshape(Reshape::Shape(target)), &[s])
            } else {
                self.push(at, Op::Slice(slice), &[x])
            };
            out.push(part);
        }
        Ok(out)
    }

    pub(crate) fn slice(&mut self, at: &At) -> Result<Val> {
        let rank = self.dims_of_arg(at, "self")?.len();
        let axis = self.axis(at, at.int("dim", 0)?, rank)?;
        let start = at.int("start", 0)?;
        let end = at.int("end", i64::MAX)?;
        let step = at.int("step", 1)?;
        if step < 1 {
            return Err(at.unsupported(format!("with step {step}")));
        }
        let x = self.required(at, "self")?;
        if axis == 0 && (start != 0 || end < self.exported_batch as i64) {
            return Err(at.unsupported("along the batch axis"));
        }
        let x = self.node(at, x)?;
        let op = Op::Slice(Slice {
            axes: vec![SliceAxis {
                axis,
                start,
                end,
                step: step as usize,
            }],
        });
        Ok(self.push(at, op, &[x]))
    }

    pub(crate) fn select(&mut self, at: &At) -> Result<Val> {
        let rank = self.dims_of_arg(at, "self")?.len();
        let axis = self.axis(at, at.int("dim", 0)?, rank)?;
        if axis == 0 {
            return Err(at.unsupported("along the batch axis"));
        }
        let index = at.int("index", 0)?;
        let end = if index == -1 { i64::MAX } else { index + 1 };
        let target = self.reshape_target(at, "self")?;
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        let op = Op::Slice(Slice {
            axes: vec![SliceAxis {
                axis,
                start: index,
                end,
                step: 1,
            }],
        });
        let s = self.push_helper(at, "slice", op, &[x]);
        Ok(self.push(at, Op::Reshape(Reshape::Shape(target)), &[s]))
    }

    pub(crate) fn pad(&mut self, at: &At) -> Result<Val> {
        if let Some(mode) = at.string("mode") {
            if mode != "constant" {
                return Err(at.unsupported(format!(
                    "in mode '{mode}': only constant padding is supported"
                )));
            }
        }
        let rank = self.dims_of_arg(at, "self")?.len();
        let list = at.ints("pad")?.unwrap_or_default();
        if list.len() % 2 != 0 || list.len() / 2 > rank {
            return Err(at.unsupported(format!("with pad {list:?} for a rank-{rank} tensor")));
        }
        // Pairs from the last axis backwards.
        let pads: Vec<(usize, i64, i64)> = list
            .chunks(2)
            .enumerate()
            .map(|(k, pair)| (rank - 1 - k, pair[0], pair[1]))
            .collect();
        let value = at.float("value", 0.0)?;
        let pad = shape::constant_pad(rank, &pads, value).map_err(|p| at.refused(p))?;
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::Pad(pad), &[x]))
    }

    pub(crate) fn upsample(&mut self, at: &At) -> Result<Val> {
        let arg = at.first_arg_name();
        let bilinear = at.op() == "upsample_bilinear2d";
        let scales = match at
            .arg("scale_factors")
            .and_then(|v| v.get("as_floats"))
            .and_then(Value::as_array)
        {
            Some(list) => Some(list.iter().filter_map(Value::as_f64).collect::<Vec<_>>()),
            None => match (at.arg("scales_h"), at.arg("scales_w")) {
                (Some(_), Some(_)) => {
                    Some(vec![at.float("scales_h", 1.0)?, at.float("scales_w", 1.0)?])
                }
                _ => None,
            },
        };
        let target = match (at.ints("output_size")?, scales.as_deref()) {
            (_, Some([h, w])) if *h > 0.0 && *w > 0.0 && *h <= 64.0 && *w <= 64.0 => {
                ResizeTarget::Scales(*h, *w)
            }
            (Some(size), _)
                if size.len() == 2 && size.iter().all(|&s| (1..=1 << 15).contains(&s)) =>
            {
                ResizeTarget::Sizes(size[0] as usize, size[1] as usize)
            }
            _ => return Err(at.unsupported("without a usable output size or scale")),
        };
        let (mode, coordinates) = if bilinear {
            let coordinates = if at.bool("align_corners", false)? {
                CoordinateMode::AlignCorners
            } else {
                CoordinateMode::PytorchHalfPixel
            };
            (ResizeMode::Linear, coordinates)
        } else {
            (
                ResizeMode::Nearest(NearestRounding::Floor),
                CoordinateMode::Asymmetric,
            )
        };
        let x = self.required(at, &arg)?;
        let x = self.node(at, x)?;
        let op = Op::Resize(Resize {
            mode,
            coordinates,
            target,
        });
        Ok(self.push(at, op, &[x]))
    }
}
