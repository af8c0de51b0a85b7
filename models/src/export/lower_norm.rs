//! Normalization and affine layers: `batch_norm` (evaluation form), `layer_norm`, `group_norm`,
//! `linear`, `addmm`, `mm` / `matmul`.

use candle_core::Tensor;

use super::lower::{At, Lowerer, Val};
use crate::lowering::norm;
use crate::ops::{GroupNorm, LayerNorm, Linear, Op, Reshape};
use crate::Result;

impl Lowerer<'_> {
    fn optional_fixed(&mut self, at: &At, name: &str) -> Result<Option<Tensor>> {
        match self.value(at, name)? {
            Some(v) => Ok(Some(self.fixed_tensor(at, v)?)),
            None => Ok(None),
        }
    }

    pub(crate) fn batch_norm(&mut self, at: &At) -> Result<Val> {
        if at.bool("training", false)? {
            return Err(at.unsupported("in training mode: export the model after model.eval()"));
        }
        let x = self.required(at, "input")?;
        let mean = self.required(at, "running_mean")?;
        let mean = self.fixed_tensor(at, mean)?;
        let var = self.required(at, "running_var")?;
        let var = self.fixed_tensor(at, var)?;
        let weight = self.optional_fixed(at, "weight")?;
        let bias = self.optional_fixed(at, "bias")?;
        let eps = at.float("eps", 1e-5)?;
        let rank = self.dims_of_arg(at, "input")?.len();
        let bn = norm::batch_norm(weight, bias, mean, var, eps).map_err(|p| at.refused(p))?;
        let mut x = self.node(at, x)?;
        match rank {
            4 => Ok(self.push(at, Op::BatchNorm2d(bn), &[x])),
            2 | 3 => {
                // BatchNorm1d: as 2-D on [N, C, L, 1], then back.
                let to4 = Reshape::Shape(if rank == 2 {
                    vec![0, 0, 1, 1]
                } else {
                    vec![0, 0, 0, 1]
                });
                x = self.push_helper(at, "as_2d", Op::Reshape(to4), &[x]);
                let y = self.push_helper(at, "norm", Op::BatchNorm2d(bn), &[x]);
                let back = Reshape::Shape(if rank == 2 { vec![0, 0] } else { vec![0, 0, 0] });
                Ok(self.push(at, Op::Reshape(back), &[y]))
            }
            r => Err(at.unsupported(format!("on a rank-{r} input"))),
        }
    }

    pub(crate) fn layer_norm(&mut self, at: &At) -> Result<Val> {
        let axes = at
            .ints("normalized_shape")?
            .map(|v| v.len())
            .ok_or_else(|| at.unsupported("without normalized_shape"))?;
        let x = self.required(at, "input")?;
        let weight = self.optional_fixed(at, "weight")?;
        let bias = self.optional_fixed(at, "bias")?;
        let eps = at.float("eps", 1e-5)?;
        let x = self.node(at, x)?;
        let op = Op::LayerNorm(LayerNorm {
            axes,
            weight,
            bias,
            eps,
        });
        Ok(self.push(at, op, &[x]))
    }

    pub(crate) fn group_norm(&mut self, at: &At) -> Result<Val> {
        let groups = at.int("num_groups", 1)?;
        if groups < 1 {
            return Err(at.unsupported(format!("with {groups} groups")));
        }
        let x = self.required(at, "input")?;
        let weight = self.optional_fixed(at, "weight")?;
        let bias = self.optional_fixed(at, "bias")?;
        let eps = at.float("eps", 1e-5)?;
        let x = self.node(at, x)?;
        let op = Op::GroupNorm(GroupNorm {
            groups: groups as usize,
            weight,
            bias,
            eps,
        });
        Ok(self.push(at, op, &[x]))
    }

    pub(crate) fn linear(&mut self, at: &At) -> Result<Val> {
        let x = self.required(at, "input")?;
        let weight = self.required(at, "weight")?;
        let weight = self.fixed_tensor(at, weight)?;
        let bias = self.optional_fixed(at, "bias")?;
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::Linear(Linear { weight, bias }), &[x]))
    }

    /// `addmm(bias, x, t(W))`, the decomposed form of `nn.Linear`.
    pub(crate) fn addmm(&mut self, at: &At) -> Result<Val> {
        if at.float("beta", 1.0)? != 1.0 || at.float("alpha", 1.0)? != 1.0 {
            return Err(at.unsupported("with beta or alpha other than 1"));
        }
        let x = self.required(at, "mat1")?;
        let weight = match self.required(at, "mat2")? {
            Val::ParamT(key) => self.param(&key)?,
            Val::Param(key) => self.param(&key)?.t()?.contiguous()?,
            _ => return Err(at.unsupported("with a second matrix computed inside the graph")),
        };
        let bias = self.optional_fixed(at, "self")?;
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::Linear(Linear { weight, bias }), &[x]))
    }

    pub(crate) fn matmul(&mut self, at: &At) -> Result<Val> {
        let a = self.required(at, "self")?;
        let b = self
            .required(at, "other")
            .or_else(|_| self.required(at, "mat2"))?;
        match b {
            Val::ParamT(key) => {
                let weight = self.param(&key)?;
                let a = self.node(at, a)?;
                Ok(self.push(at, Op::Linear(Linear { weight, bias: None }), &[a]))
            }
            Val::Param(key) => {
                let weight = self.param(&key)?.t()?.contiguous()?;
                let a = self.node(at, a)?;
                Ok(self.push(at, Op::Linear(Linear { weight, bias: None }), &[a]))
            }
            b => {
                let a = self.node(at, a)?;
                let b = self.node(at, b)?;
                Ok(self.push(at, Op::MatMul, &[a, b]))
            }
        }
    }
}
