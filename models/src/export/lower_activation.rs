//! Pointwise activations and softmax.

use super::lower::{At, Lowerer, Val};
use crate::lowering::activation;
use crate::ops::{Activation, Op};
use crate::Result;

impl Lowerer<'_> {
    pub(crate) fn activation(&mut self, at: &At) -> Result<Val> {
        let op = at.op().trim_end_matches('_').to_string();
        let activation = match op.as_str() {
            "relu" => Activation::Relu,
            "relu6" => Activation::Relu6,
            "hardtanh" | "clamp" => {
                let (lo, hi) = if op == "clamp" {
                    (
                        at.float("min", f64::NEG_INFINITY)?,
                        at.float("max", f64::INFINITY)?,
                    )
                } else {
                    (at.float("min_val", -1.0)?, at.float("max_val", 1.0)?)
                };
                activation::clip(lo, hi)
            }
            "leaky_relu" => Activation::LeakyRelu(at.float("negative_slope", 0.01)?),
            "elu" => {
                if at.float("scale", 1.0)? != 1.0 || at.float("input_scale", 1.0)? != 1.0 {
                    return Err(at.unsupported("with scale or input_scale (SELU/CELU)"));
                }
                Activation::Elu(at.float("alpha", 1.0)?)
            }
            "gelu" => match at.string("approximate").as_deref() {
                None | Some("none") => Activation::Gelu,
                Some("tanh") => Activation::GeluTanh,
                Some(other) => return Err(at.unsupported(format!("with approximate='{other}'"))),
            },
            "silu" => Activation::Silu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "hardswish" => Activation::HardSwish,
            "hardsigmoid" => Activation::TORCH_HARDSIGMOID,
            _ => return Err(at.unsupported("is not an activation convlens knows")),
        };
        let x = self
            .required(at, "self")
            .or_else(|_| self.required(at, "input"))?;
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::Activation(activation), &[x]))
    }

    pub(crate) fn softmax(&mut self, at: &At) -> Result<Val> {
        let rank = self.dims_of_arg(at, "self")?.len();
        let dim = self.axis(at, at.int("dim", -1)?, rank)?;
        if dim + 1 != rank {
            return Err(at.unsupported(format!(
                "over axis {dim}: convlens takes softmax over the last axis"
            )));
        }
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::Softmax, &[x]))
    }
}
