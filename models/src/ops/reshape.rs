//! Ops that only move elements around: reshape (ONNX's `Reshape` and `Flatten` at any axis) and
//! axis permutation (`Transpose`). Their backward passes undo the move.

use candle_core::{Result, Tensor};

/// A reshape whose target is worked out from the input's shape at run time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reshape {
    /// ONNX `Reshape`: each entry a size, `0` to copy the input's size on that axis, or one `-1`
    /// for whatever is left.
    Shape(Vec<i64>),
    /// ONNX `Flatten(axis)`: `[d0·…·d(axis-1), d(axis)·…·d(n-1)]`.
    Flatten2d(usize),
}

impl Reshape {
    /// The output shape for an input of shape `input`.
    pub fn output_dims(&self, input: &[usize]) -> Result<Vec<usize>> {
        let total: usize = input.iter().product();
        match self {
            Reshape::Flatten2d(axis) => {
                if *axis > input.len() {
                    candle_core::bail!("flatten at axis {axis} of a rank-{} tensor", input.len());
                }
                let outer: usize = input[..*axis].iter().product();
                Ok(vec![outer, input[*axis..].iter().product()])
            }
            Reshape::Shape(shape) => {
                let mut dims = Vec::with_capacity(shape.len());
                let mut infer = None;
                for (i, &s) in shape.iter().enumerate() {
                    match s {
                        0 => match input.get(i) {
                            Some(&d) => dims.push(d),
                            None => candle_core::bail!(
                                "reshape copies axis {i} of a rank-{} tensor",
                                input.len()
                            ),
                        },
                        -1 if infer.is_none() => {
                            infer = Some(i);
                            dims.push(1);
                        }
                        s if s > 0 => dims.push(s as usize),
                        _ => candle_core::bail!("invalid reshape target {shape:?}"),
                    }
                }
                let Some(known) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
                    candle_core::bail!("cannot reshape {input:?} to {shape:?}");
                };
                if let Some(i) = infer {
                    if known == 0 || !total.is_multiple_of(known) {
                        candle_core::bail!("cannot reshape {input:?} to {shape:?}");
                    }
                    dims[i] = total / known;
                } else if known != total {
                    candle_core::bail!("cannot reshape {input:?} to {shape:?}");
                }
                Ok(dims)
            }
        }
    }

    /// The reshaped `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.reshape(self.output_dims(x.dims())?)
    }

    /// The signal at the input: the output's signal in the input's shape.
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        grad.reshape(x.shape())
    }
}

/// ONNX `Transpose` (`x.permute(perm)`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transpose {
    /// Output axis `i` is input axis `perm[i]`.
    pub perm: Vec<usize>,
}

impl Transpose {
    /// The permuted `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.permute(self.perm.clone())?.contiguous()
    }

    /// The signal at the input: the output's signal permuted back.
    pub fn backward(&self, grad: &Tensor) -> Result<Tensor> {
        let mut inverse = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            match inverse.get_mut(p) {
                Some(slot) => *slot = i,
                None => candle_core::bail!("invalid permutation {:?}", self.perm),
            }
        }
        grad.permute(inverse)?.contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn ramp(dims: &[usize]) -> Tensor {
        let n: usize = dims.iter().product();
        Tensor::arange(0f32, n as f32, &Device::Cpu)
            .unwrap()
            .reshape(dims)
            .unwrap()
    }

    /// <grad, f(x)> = <backward(grad), x> for a linear f: the backward pass is f's adjoint.
    fn dot(a: &Tensor, b: &Tensor) -> f32 {
        a.flatten_all()
            .unwrap()
            .mul(&b.flatten_all().unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    #[test]
    fn reshape_resolves_zero_and_minus_one() {
        let r = Reshape::Shape(vec![0, -1]);
        assert_eq!(r.output_dims(&[2, 3, 4, 5]).unwrap(), vec![2, 60]);
        assert_eq!(
            Reshape::Shape(vec![-1, 3]).output_dims(&[6]).unwrap(),
            vec![2, 3]
        );
        assert!(Reshape::Shape(vec![-1, 4]).output_dims(&[6]).is_err());
        assert!(Reshape::Shape(vec![-1, -1]).output_dims(&[6]).is_err());
        assert!(Reshape::Shape(vec![0, 0, 0]).output_dims(&[6, 1]).is_err());
        assert_eq!(
            Reshape::Flatten2d(2).output_dims(&[2, 3, 4, 5]).unwrap(),
            vec![6, 20]
        );
        assert_eq!(
            Reshape::Flatten2d(0).output_dims(&[2, 3]).unwrap(),
            vec![1, 6]
        );
    }

    #[test]
    fn reshape_and_transpose_backward_are_adjoint() {
        let x = ramp(&[2, 3, 4]);
        let r = Reshape::Flatten2d(2);
        let y = r.forward(&x).unwrap();
        let g = ramp(y.dims()).affine(0.5, -1.0).unwrap();
        let gx = r.backward(&x, &g).unwrap();
        assert_eq!(gx.dims(), x.dims());
        assert_eq!(dot(&g, &y), dot(&gx, &x));

        let t = Transpose {
            perm: vec![2, 0, 1],
        };
        let y = t.forward(&x).unwrap();
        assert_eq!(y.dims(), &[4, 2, 3]);
        let g = ramp(y.dims()).affine(-0.25, 2.0).unwrap();
        let gx = t.backward(&g).unwrap();
        assert_eq!(gx.dims(), x.dims());
        assert_eq!(dot(&g, &y), dot(&gx, &x));
    }
}
