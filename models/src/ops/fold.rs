//! BatchNorm folded into the convolution before it: in evaluation mode BatchNorm is a
//! per-channel affine map, so `bn(conv(x))` is one convolution whose kernel rows are scaled by
//! the channel's scale and whose bias is the old bias scaled plus the shift. The forward passes
//! whose outputs only are read (`Convolutions::Fastest`) run it instead of the pair, skipping a
//! pass over the convolution's output; it rounds differently from the pair in the last bits.

use candle_core::Result;

use super::{BatchNorm2d, Conv2d};

/// The convolution that computes `norm(conv(x))`.
pub fn fold(conv: &Conv2d, norm: &BatchNorm2d) -> Result<Conv2d> {
    let (scale, shift) = norm.scale_and_shift();
    let out = conv.out_channels();
    if scale.elem_count() != out {
        candle_core::bail!(
            "BatchNorm of {} channels after a convolution of {out}",
            scale.elem_count()
        );
    }
    let weight = conv.weight.broadcast_mul(
        &scale
            .reshape((out, 1, 1, 1))?
            .to_dtype(conv.weight.dtype())?,
    )?;
    let scale = scale.flatten_all()?.to_dtype(conv.weight.dtype())?;
    let shift = shift.flatten_all()?.to_dtype(conv.weight.dtype())?;
    let bias = match &conv.bias {
        Some(b) => b.mul(&scale)?.add(&shift)?,
        None => shift,
    };
    Ok(Conv2d::new(
        weight,
        Some(bias),
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
    ))
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::fold;
    use crate::ops::test_compare::max_rel;
    use crate::ops::{BatchNorm2d, Conv2d, Padding};

    #[test]
    fn the_folded_convolution_equals_the_pair() {
        let dev = Device::Cpu;
        let randn = |dims: &[usize]| Tensor::randn(0f32, 1f32, dims, &dev).unwrap();
        // (in channels, out channels, groups, bias): plain, depthwise, grouped.
        for (c, o, groups, bias) in [(5, 7, 1, true), (6, 6, 6, false), (8, 4, 2, true)] {
            let conv = Conv2d::new(
                randn(&[o, c / groups, 3, 3]),
                bias.then(|| randn(&[o])),
                1,
                Padding::symmetric(1),
                1,
                groups,
            );
            let norm = BatchNorm2d::new(
                randn(&[o]),
                randn(&[o]),
                randn(&[o]),
                randn(&[o]).abs().unwrap(),
                1e-5,
            )
            .unwrap();
            let x = randn(&[2, c, 9, 8]);
            let pair = norm.forward(&conv.forward(&x).unwrap()).unwrap();
            let folded = fold(&conv, &norm).unwrap().forward(&x).unwrap();
            let error = max_rel(&folded, &pair);
            assert!(error < 1e-5, "c={c} o={o} groups={groups}: {error}");
        }
    }
}
