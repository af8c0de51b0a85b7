//! ONNX `ReduceMean` over any set of axes (`x.mean(axes, keepdim)`); the spatial mean with
//! `keepdim` is [`super::Op::SpatialMean`].

use candle_core::{Result, Tensor};

/// The mean over `axes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReduceMean {
    /// The axes, ascending and distinct.
    pub axes: Vec<usize>,
    /// Keep the reduced axes with size 1.
    pub keepdim: bool,
}

impl ReduceMean {
    fn kept_dims(&self, x: &Tensor) -> Result<Vec<usize>> {
        let mut dims = x.dims().to_vec();
        for &a in &self.axes {
            match dims.get_mut(a) {
                Some(d) => *d = 1,
                None => candle_core::bail!("mean over axis {a} of a rank-{} tensor", x.rank()),
            }
        }
        Ok(dims)
    }

    /// The mean of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let kept = self.kept_dims(x)?;
        let mut y = x.clone();
        for &a in self.axes.iter().rev() {
            y = y.mean_keepdim(a)?;
        }
        if self.keepdim {
            return Ok(y);
        }
        let dims: Vec<usize> = kept
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.axes.contains(i))
            .map(|(_, &d)| d)
            .collect();
        y.reshape(dims)
    }

    /// The signal at the input: each output's signal shared equally over what it averaged.
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let kept = self.kept_dims(x)?;
        let count: usize = self.axes.iter().map(|&a| x.dims()[a]).product();
        grad.reshape(kept)?
            .affine(1.0 / count.max(1) as f64, 0.0)?
            .broadcast_as(x.shape())?
            .contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mean_and_its_gradient() {
        let x = Tensor::arange(0f32, 24., &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let op = ReduceMean {
            axes: vec![0, 2],
            keepdim: false,
        };
        let y = op.forward(&x).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), vec![7.5, 11.5, 15.5]);
        // d mean / d x = 1 / 8 for every element averaged into an output.
        let g = Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap();
        let gx = op.backward(&x, &g).unwrap();
        assert_eq!(gx.dims(), &[2, 3, 4]);
        let v = gx.to_vec3::<f32>().unwrap();
        assert_eq!(v[1][2][3], 3.0 / 8.0);
        assert_eq!(v[0][0][0], 1.0 / 8.0);
        let keep = ReduceMean {
            axes: vec![1],
            keepdim: true,
        };
        assert_eq!(keep.forward(&x).unwrap().dims(), &[2, 1, 4]);
    }
}
