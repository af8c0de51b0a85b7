//! ONNX `Slice` with positive steps (`x[:, :8]`, `x[..., 1:5, ::2]`): the bounds are resolved
//! against the input's shape at run time with ONNX's rules (negative from the end, clamped).
//! The backward pass puts the signal back where the slice took it and zeros elsewhere.

use candle_core::{Result, Tensor};

use super::strided::{place_strided, take_strided};

/// One axis of a slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceAxis {
    /// The axis.
    pub axis: usize,
    /// First index (negative: from the end).
    pub start: i64,
    /// One past the last index (negative: from the end; clamped to the axis).
    pub end: i64,
    /// Step, 1 or more.
    pub step: usize,
}

/// A slice along some axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slice {
    /// The sliced axes.
    pub axes: Vec<SliceAxis>,
}

impl SliceAxis {
    /// (start, count) for an axis of length `len`.
    fn resolve(&self, len: usize) -> Result<(usize, usize)> {
        if self.step == 0 {
            candle_core::bail!("slice with step 0");
        }
        let len = len as i64;
        let clamp = |v: i64| (if v < 0 { v.saturating_add(len) } else { v }).clamp(0, len);
        let (start, end) = (clamp(self.start), clamp(self.end));
        let count = if end > start {
            ((end - start) as usize).div_ceil(self.step)
        } else {
            0
        };
        Ok((start as usize, count))
    }
}

impl Slice {
    /// The slice of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = x.clone();
        for a in &self.axes {
            let (start, count) = a.resolve(y.dim(a.axis)?)?;
            y = take_strided(&y, a.axis, start, count, a.step)?;
        }
        y.contiguous()
    }

    /// The signal at the input: `grad` placed at the sliced positions.
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let mut g = grad.clone();
        for a in self.axes.iter().rev() {
            let len = x.dim(a.axis)?;
            let (start, _) = a.resolve(len)?;
            g = place_strided(&g, a.axis, start, a.step, len)?;
        }
        g.contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn slices_like_numpy_and_backward_is_the_adjoint() {
        let x = Tensor::arange(0f32, 24., &Device::Cpu)
            .unwrap()
            .reshape((2, 3, 4))
            .unwrap();
        let s = Slice {
            axes: vec![
                SliceAxis {
                    axis: 2,
                    start: -3,
                    end: i64::MAX,
                    step: 2,
                },
                SliceAxis {
                    axis: 1,
                    start: 0,
                    end: 2,
                    step: 1,
                },
            ],
        };
        let y = s.forward(&x).unwrap();
        // x[:, 0:2, -3::2]
        assert_eq!(
            y.to_vec3::<f32>().unwrap(),
            vec![
                vec![vec![1., 3.], vec![5., 7.]],
                vec![vec![13., 15.], vec![17., 19.]]
            ]
        );
        // y is a selection of x, so d sum(w * y) / dx is w at the selected places and 0 elsewhere.
        let w = Tensor::arange(1f32, 9., &Device::Cpu)
            .unwrap()
            .reshape((2, 2, 2))
            .unwrap();
        let g = s.backward(&x, &w).unwrap();
        assert_eq!(g.dims(), x.dims());
        let lhs = y
            .mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let rhs = g
            .mul(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert_eq!(lhs, rhs);
        let row = g.get(0).unwrap().get(1).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(row, vec![0., 3., 0., 4.]);
        let empty = Slice {
            axes: vec![SliceAxis {
                axis: 0,
                start: 5,
                end: 9,
                step: 1,
            }],
        };
        assert_eq!(empty.forward(&x).unwrap().dims(), &[0, 3, 4]);
    }
}
