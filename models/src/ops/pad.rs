//! ONNX `Pad` in constant mode (`nn.ZeroPad2d`, `F.pad`): a fixed value added before and after
//! each axis. The backward pass crops the signal back to the input.

use candle_core::{Result, Tensor};

use super::strided::pad_with_value;

/// Constant padding of every axis.
#[derive(Clone, Debug, PartialEq)]
pub struct Pad {
    /// (before, after) per axis, one entry per input axis.
    pub pads: Vec<(usize, usize)>,
    /// The value padded in.
    pub value: f64,
}

impl Pad {
    fn check(&self, x: &Tensor) -> Result<()> {
        if self.pads.len() != x.rank() {
            candle_core::bail!("{} pads for a rank-{} tensor", self.pads.len(), x.rank());
        }
        Ok(())
    }

    /// The padded `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.check(x)?;
        let mut y = x.clone();
        for (axis, &(before, after)) in self.pads.iter().enumerate() {
            if before + after > 0 {
                y = pad_with_value(&y, axis, before, after, self.value)?;
            }
        }
        Ok(y)
    }

    /// The signal at the input: the output's signal without the padded border.
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        self.check(x)?;
        let mut g = grad.clone();
        for (axis, &(before, _)) in self.pads.iter().enumerate() {
            g = g.narrow(axis, before, x.dim(axis)?)?;
        }
        g.contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn pads_and_crops_back() {
        let x = Tensor::arange(1f32, 7., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 3))
            .unwrap();
        let pad = Pad {
            pads: vec![(0, 0), (0, 0), (1, 0), (0, 2)],
            value: -1.0,
        };
        let y = pad.forward(&x).unwrap();
        assert_eq!(
            y.squeeze(0)
                .unwrap()
                .squeeze(0)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap(),
            vec![
                vec![-1., -1., -1., -1., -1.],
                vec![1., 2., 3., -1., -1.],
                vec![4., 5., 6., -1., -1.]
            ]
        );
        // y is affine in x with slope 1 where x lands, so the gradient of sum(w * y) is w there.
        let w = Tensor::arange(0f32, 15., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 3, 5))
            .unwrap();
        let g = pad.backward(&x, &w).unwrap();
        assert_eq!(
            g.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![5., 6., 7., 10., 11., 12.]
        );
    }
}
