//! Convolutions and pooling windows.

use candle_core::Tensor;

use super::{Lowered, Problem, MAX_WINDOW};
use crate::ops::{Conv2d, Padding, PoolWindow};

/// A 2-D convolution's arguments as read from the file.
pub struct ConvArgs {
    /// [out, in / groups, kh, kw].
    pub weight: Tensor,
    /// [out], when present.
    pub bias: Option<Tensor>,
    /// Stride along height and width.
    pub stride: (i64, i64),
    /// Dilation along height and width.
    pub dilation: (i64, i64),
    /// The padding.
    pub padding: Padding,
    /// Groups.
    pub groups: i64,
}

/// One size for both axes, which the engine's convolutions need (`what`: `stride`, `dilation`).
fn square(what: &str, (h, w): (i64, i64)) -> Lowered<usize> {
    if h != w {
        return Err(Problem::Unsupported(format!(
            "with {what} ({h}, {w}): only equal {what}s on both axes are supported"
        )));
    }
    if !(1..=MAX_WINDOW).contains(&h) {
        return Err(Problem::Invalid(format!("{what} {h} is out of range")));
    }
    Ok(h as usize)
}

/// Checks a convolution's arguments and builds it.
pub fn conv2d(args: ConvArgs) -> Lowered<Conv2d> {
    let ConvArgs {
        weight,
        bias,
        stride,
        dilation,
        padding,
        groups,
    } = args;
    let &[out_channels, _, kh, kw] = weight.dims() else {
        return Err(Problem::Unsupported(format!(
            "with a kernel of shape {:?}: only 2-D convolutions are supported",
            weight.dims()
        )));
    };
    if kh == 0 || kw == 0 || out_channels == 0 {
        return Err(Problem::Invalid(format!(
            "an empty kernel {:?}",
            weight.dims()
        )));
    }
    if !(1..=MAX_WINDOW * 16).contains(&groups) || out_channels % groups as usize != 0 {
        return Err(Problem::Invalid(format!(
            "{groups} groups do not divide {out_channels} channels"
        )));
    }
    if let Some(b) = &bias {
        if b.dims() != [out_channels] {
            return Err(Problem::Invalid(format!(
                "a bias of shape {:?} for {out_channels} channels",
                b.dims()
            )));
        }
    }
    let stride = square("stride", stride)?;
    let dilation = square("dilation", dilation)?;
    if let Padding::Explicit {
        top,
        bottom,
        left,
        right,
    } = padding
    {
        if [top, bottom, left, right]
            .iter()
            .any(|&p| p as i64 > MAX_WINDOW)
        {
            return Err(Problem::Invalid(format!(
                "padding {:?} is too large",
                (top, bottom, left, right)
            )));
        }
    }
    Ok(Conv2d::new(
        weight,
        bias,
        stride,
        padding,
        dilation,
        groups as usize,
    ))
}

/// A pooling window from its kernel, stride, padding (top, bottom, left, right) and dilation.
pub fn pool_window(
    kernel: (i64, i64),
    stride: (i64, i64),
    padding: (i64, i64, i64, i64),
    dilation: (i64, i64),
    ceil_mode: bool,
) -> Lowered<PoolWindow> {
    let size = |what: &str, v: i64, min: i64| -> Lowered<usize> {
        if (min..=MAX_WINDOW).contains(&v) {
            Ok(v as usize)
        } else {
            Err(Problem::Invalid(format!("{what} {v} is out of range")))
        }
    };
    let (t, b, l, r) = padding;
    Ok(PoolWindow {
        kernel: (size("kernel", kernel.0, 1)?, size("kernel", kernel.1, 1)?),
        stride: (size("stride", stride.0, 1)?, size("stride", stride.1, 1)?),
        padding: (
            size("pad", t, 0)?,
            size("pad", b, 0)?,
            size("pad", l, 0)?,
            size("pad", r, 0)?,
        ),
        ceil_mode,
        dilation: (
            size("dilation", dilation.0, 1)?,
            size("dilation", dilation.1, 1)?,
        ),
    })
}

/// Pooling dilations must all be 1.
pub fn undilated(dilations: &[i64]) -> Lowered<()> {
    if dilations.iter().any(|&d| d != 1) {
        return Err(Problem::Unsupported(format!(
            "with dilations {dilations:?}: only undilated pooling is supported"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};

    use super::*;

    fn args(weight: &[usize], stride: (i64, i64), groups: i64) -> ConvArgs {
        ConvArgs {
            weight: Tensor::zeros(weight, DType::F32, &Device::Cpu).unwrap(),
            bias: None,
            stride,
            dilation: (1, 1),
            padding: Padding::symmetric(1),
            groups,
        }
    }

    #[test]
    fn convolutions_are_checked_once_for_every_importer() {
        assert!(conv2d(args(&[8, 3, 3, 3], (2, 2), 1)).is_ok());
        assert!(matches!(
            conv2d(args(&[8, 3, 3, 3], (2, 1), 1)),
            Err(Problem::Unsupported(_))
        ));
        assert!(matches!(
            conv2d(args(&[8, 3, 3], (1, 1), 1)),
            Err(Problem::Unsupported(_))
        ));
        assert!(matches!(
            conv2d(args(&[8, 1, 3, 3], (1, 1), 3)),
            Err(Problem::Invalid(_))
        ));
        assert!(matches!(
            pool_window((0, 2), (1, 1), (0, 0, 0, 0), (1, 1), false),
            Err(Problem::Invalid(_))
        ));
        assert!(matches!(undilated(&[1, 2]), Err(Problem::Unsupported(_))));
    }
}
