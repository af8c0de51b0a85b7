//! Arithmetic on tensors and scalars: `add`, `sub`, `mul`, `div` (broadcasting), `mean` and `sum`
//! over axes, `cat`.

use candle_core::{DType, Device, Tensor};

use super::lower::{At, Lowerer, Val};
use super::schema::Dim;
use crate::ops::{Op, ReduceMean};
use crate::Result;

/// A scalar constant.
fn scalar(v: f64) -> Result<Val> {
    Ok(Val::Const(Tensor::new(&[v as f32], &Device::Cpu)?))
}

impl Lowerer<'_> {
    /// `v * factor`.
    fn scaled(&mut self, at: &At, v: Val, factor: f64, suffix: &str) -> Result<Val> {
        if factor == 1.0 {
            return Ok(v);
        }
        if let Val::Const(t) = &v {
            return Ok(Val::Const(t.to_dtype(DType::F32)?.affine(factor, 0.0)?));
        }
        let x = self.node(at, v)?;
        let k = self.node(at, scalar(factor)?)?;
        Ok(Val::Node(self.push_helper(at, suffix, Op::Mul, &[x, k])))
    }

    pub(crate) fn arithmetic(&mut self, at: &At) -> Result<Val> {
        let op = at.op().trim_end_matches('_').to_string();
        if at.arg("rounding_mode").is_some() {
            return Err(at.unsupported("with a rounding mode"));
        }
        let a = self.required(at, "self")?;
        let b = self.required(at, "other")?;
        let alpha = at.float("alpha", 1.0)?;
        // Constants fold.
        if let (Val::Const(x), Val::Const(y)) = (&a, &b) {
            let (x, y) = (x.to_dtype(DType::F32)?, y.to_dtype(DType::F32)?);
            let t = match op.as_str() {
                "add" => x.broadcast_add(&y.affine(alpha, 0.0)?)?,
                "sub" => x.broadcast_sub(&y.affine(alpha, 0.0)?)?,
                "mul" => x.broadcast_mul(&y)?,
                _ => x.broadcast_div(&y)?,
            };
            return Ok(Val::Const(t));
        }
        match op.as_str() {
            "add" | "sub" => {
                let sign = if op == "sub" { -alpha } else { alpha };
                let b = self.scaled(at, b, sign, "scaled")?;
                let (a, b) = (self.node(at, a)?, self.node(at, b)?);
                Ok(self.push(at, Op::Add, &[a, b]))
            }
            "mul" => {
                let (a, b) = (self.node(at, a)?, self.node(at, b)?);
                Ok(self.push(at, Op::Mul, &[a, b]))
            }
            _ => match b {
                Val::Const(t) => {
                    let inverse = Val::Const(t.to_dtype(DType::F32)?.recip()?);
                    let (a, b) = (self.node(at, a)?, self.node(at, inverse)?);
                    Ok(self.push(at, Op::Mul, &[a, b]))
                }
                _ => {
                    Err(at.unsupported("by a computed tensor: convlens divides by constants only"))
                }
            },
        }
    }

    pub(crate) fn reduce(&mut self, at: &At) -> Result<Val> {
        let dims = self.dims_of_arg(at, "self")?;
        let rank = dims.len();
        let axes: Vec<usize> = match at.ints("dim")? {
            Some(list) if !list.is_empty() => {
                let mut axes = list
                    .into_iter()
                    .map(|a| self.axis(at, a, rank))
                    .collect::<Result<Vec<_>>>()?;
                axes.sort_unstable();
                axes.dedup();
                axes
            }
            _ => (0..rank).collect(),
        };
        let keepdim = at.bool("keepdim", false)?;
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        let mean = Op::ReduceMean(ReduceMean {
            axes: axes.clone(),
            keepdim,
        });
        if at.op() == "mean" {
            return Ok(self.push(at, mean, &[x]));
        }
        let mut count = 1usize;
        for &a in &axes {
            match dims[a] {
                Dim::Fixed(n) if a != 0 => count *= n,
                _ => {
                    return Err(at.unsupported(format!(
                        "over axis {a}, whose size changes (the batch, or a dynamic size)"
                    )))
                }
            }
        }
        let m = self.push_helper(at, "mean", mean, &[x]);
        let k = self.node(at, scalar(count as f64)?)?;
        Ok(self.push(at, Op::Mul, &[m, k]))
    }

    pub(crate) fn cat(&mut self, at: &At) -> Result<Val> {
        let rank = self.output_dims(at)?.len();
        let dim = self.axis(at, at.int("dim", 0)?, rank)?;
        let parts = self.values(at, "tensors")?;
        let mut ids = Vec::with_capacity(parts.len());
        for p in parts {
            ids.push(self.node(at, p)?);
        }
        Ok(self.push(at, Op::Concat { dim }, &ids))
    }
}
