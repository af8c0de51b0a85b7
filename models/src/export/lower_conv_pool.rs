//! Convolutions and pooling: `conv2d` / `convolution`, `max_pool2d`, `avg_pool2d`,
//! `adaptive_avg_pool2d`.

use candle_core::Tensor;

use super::lower::{At, Lowerer, Val};
use crate::lowering::conv_pool::{self, ConvArgs};
use crate::lowering::MAX_WINDOW;
use crate::ops::{
    AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d, Op, Padding, PoolWindow,
};
use crate::Result;

/// A pair (height, width) from a list of one or two values (one stands for both).
fn pair(at: &At, name: &str, v: Option<Vec<i64>>, default: i64) -> Result<(usize, usize)> {
    let (h, w) = match v.as_deref() {
        None | Some([]) => (default, default),
        Some([a]) => (*a, *a),
        Some([a, b]) => (*a, *b),
        Some(other) => return Err(at.unsupported(format!("with `{name}` = {other:?}"))),
    };
    if !(0..=MAX_WINDOW).contains(&h) || !(0..=MAX_WINDOW).contains(&w) {
        return Err(at.unsupported(format!("with `{name}` = ({h}, {w})")));
    }
    Ok((h as usize, w as usize))
}

impl Lowerer<'_> {
    /// A tensor operand that must be a parameter or constant (a conv or linear weight).
    pub(crate) fn fixed_tensor(&mut self, at: &At, v: Val) -> Result<Tensor> {
        match v {
            Val::Param(key) => self.param(&key),
            Val::ParamT(key) => Ok(self.param(&key)?.t()?.contiguous()?),
            Val::Const(t) => Ok(t
                .to_dtype(candle_core::DType::F32)?
                .to_device(&self.device)?),
            _ => Err(at.unsupported("with a weight computed inside the graph")),
        }
    }

    pub(crate) fn conv(&mut self, at: &At) -> Result<Val> {
        if at.bool("transposed", false)? {
            return Err(at.unsupported("transposed (ConvTranspose2d)"));
        }
        let x = self.required(at, "input")?;
        let weight = self.required(at, "weight")?;
        let weight = self.fixed_tensor(at, weight)?;
        let bias = match self.value(at, "bias")? {
            Some(b) => Some(self.fixed_tensor(at, b)?),
            None => None,
        };
        let stride = pair(at, "stride", at.ints("stride")?, 1)?;
        let dilation = pair(at, "dilation", at.ints("dilation")?, 1)?;
        let padding = match at.string("padding") {
            Some(mode) if mode == "valid" => Padding::symmetric(0),
            Some(mode) if mode == "same" => {
                if stride != (1, 1) {
                    return Err(at.unsupported("with padding='same' and a stride above 1"));
                }
                Padding::Same
            }
            Some(mode) => return Err(at.unsupported(format!("with padding '{mode}'"))),
            None => {
                let (ph, pw) = pair(at, "padding", at.ints("padding")?, 0)?;
                Padding::Explicit {
                    top: ph,
                    bottom: ph,
                    left: pw,
                    right: pw,
                }
            }
        };
        let conv = conv_pool::conv2d(ConvArgs {
            weight,
            bias,
            stride: (stride.0 as i64, stride.1 as i64),
            dilation: (dilation.0 as i64, dilation.1 as i64),
            padding,
            groups: at.int("groups", 1)?,
        })
        .map_err(|p| at.refused(p))?;
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::Conv2d(conv), &[x]))
    }

    fn window(&self, at: &At) -> Result<PoolWindow> {
        let kernel = pair(at, "kernel_size", at.ints("kernel_size")?, 1)?;
        let stride = match at.ints("stride")? {
            Some(s) if !s.is_empty() => pair(at, "stride", Some(s), 1)?,
            _ => kernel,
        };
        let (ph, pw) = pair(at, "padding", at.ints("padding")?, 0)?;
        // avg_pool2d has no dilation argument: it reads as 1.
        let dilation = pair(at, "dilation", at.ints("dilation")?, 1)?;
        let i = |v: usize| v as i64;
        conv_pool::pool_window(
            (i(kernel.0), i(kernel.1)),
            (i(stride.0), i(stride.1)),
            (i(ph), i(ph), i(pw), i(pw)),
            (i(dilation.0), i(dilation.1)),
            at.bool("ceil_mode", false)?,
        )
        .map_err(|p| at.refused(p))
    }

    pub(crate) fn max_pool(&mut self, at: &At) -> Result<Val> {
        let window = self.window(at)?;
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        Ok(self.push(at, Op::MaxPool2d(MaxPool2d { window }), &[x]))
    }

    pub(crate) fn avg_pool(&mut self, at: &At) -> Result<Val> {
        if at.arg("divisor_override").is_some() {
            return Err(at.unsupported("with divisor_override"));
        }
        let window = self.window(at)?;
        let count_include_pad = at.bool("count_include_pad", true)?;
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        let op = Op::AvgPool2d(AvgPool2d {
            window,
            count_include_pad,
        });
        Ok(self.push(at, op, &[x]))
    }

    pub(crate) fn adaptive_max_pool(&mut self, at: &At) -> Result<Val> {
        let (h, w) = pair(at, "output_size", at.ints("output_size")?, 1)?;
        if h == 0 || w == 0 {
            return Err(at.unsupported("with an empty output size"));
        }
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        let op = Op::AdaptiveMaxPool2d(AdaptiveMaxPool2d {
            output_size: (h, w),
        });
        Ok(self.push(at, op, &[x]))
    }

    pub(crate) fn adaptive_avg_pool(&mut self, at: &At) -> Result<Val> {
        let (h, w) = pair(at, "output_size", at.ints("output_size")?, 1)?;
        if h == 0 || w == 0 {
            return Err(at.unsupported("with an empty output size"));
        }
        let x = self.required(at, "self")?;
        let x = self.node(at, x)?;
        let op = Op::AdaptiveAvgPool2d(AdaptiveAvgPool2d {
            output_size: (h, w),
        });
        Ok(self.push(at, op, &[x]))
    }
}
