//! `nn.LayerNorm` over the trailing axes and `nn.GroupNorm` over channel groups: both normalize
//! slices of the input by their own mean and variance, then apply an elementwise affine map.

use candle_core::{Result, Tensor};

/// `F.layer_norm(x, normalized_shape, weight, bias, eps)`.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    /// How many trailing axes are normalized together (`len(normalized_shape)`).
    pub axes: usize,
    /// Scale, shaped like the normalized axes, when present.
    pub weight: Option<Tensor>,
    /// Shift, shaped like the normalized axes, when present.
    pub bias: Option<Tensor>,
    /// Added to the variance.
    pub eps: f64,
}

/// `F.group_norm(x, groups, weight, bias, eps)` on an `[N, C, …]` input.
#[derive(Clone, Debug)]
pub struct GroupNorm {
    /// Number of channel groups.
    pub groups: usize,
    /// Per-channel scale, when present.
    pub weight: Option<Tensor>,
    /// Per-channel shift, when present.
    pub bias: Option<Tensor>,
    /// Added to the variance.
    pub eps: f64,
}

/// `x` as `[rows, n]` with each row standardized, its reciprocal standard deviation `[rows, 1]`.
fn standardize(x: &Tensor, rows: usize, eps: f64) -> Result<(Tensor, Tensor)> {
    let flat = x.reshape((rows, ()))?;
    let centered = flat.broadcast_sub(&flat.mean_keepdim(1)?)?;
    let inv_std = centered
        .sqr()?
        .mean_keepdim(1)?
        .affine(1.0, eps)?
        .sqrt()?
        .recip()?;
    Ok((centered.broadcast_mul(&inv_std)?, inv_std))
}

/// The signal at a standardized input: `inv_std · (g − mean(g) − x̂ · mean(g ⊙ x̂))` per row.
fn standardize_backward(xhat: &Tensor, inv_std: &Tensor, g: &Tensor) -> Result<Tensor> {
    let mean_g = g.mean_keepdim(1)?;
    let mean_gx = g.mul(xhat)?.mean_keepdim(1)?;
    g.broadcast_sub(&mean_g)?
        .sub(&xhat.broadcast_mul(&mean_gx)?)?
        .broadcast_mul(inv_std)
}

impl LayerNorm {
    fn rows(&self, x: &Tensor) -> Result<usize> {
        let dims = x.dims();
        if self.axes == 0 || self.axes > dims.len() {
            candle_core::bail!(
                "layer_norm over {} axes of a rank-{} tensor",
                self.axes,
                dims.len()
            );
        }
        Ok(dims[..dims.len() - self.axes].iter().product())
    }

    /// The normalized `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (xhat, _) = standardize(x, self.rows(x)?, self.eps)?;
        let mut y = xhat.reshape(x.shape())?;
        if let Some(w) = &self.weight {
            y = y.broadcast_mul(w)?;
        }
        if let Some(b) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        Ok(y)
    }

    /// The signal at the input (exact under every rule).
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let rows = self.rows(x)?;
        let g = match &self.weight {
            Some(w) => grad.broadcast_mul(w)?,
            None => grad.clone(),
        };
        let (xhat, inv_std) = standardize(x, rows, self.eps)?;
        standardize_backward(&xhat, &inv_std, &g.reshape((rows, ()))?)?.reshape(x.shape())
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.weight.as_ref().map_or(0, Tensor::elem_count)
            + self.bias.as_ref().map_or(0, Tensor::elem_count)
    }
}

impl GroupNorm {
    /// The per-channel affine parameters shaped to broadcast over `[N, C, …]`.
    fn channel_shape(&self, x: &Tensor) -> Result<Vec<usize>> {
        let mut shape = vec![1; x.rank()];
        if x.rank() < 2 {
            candle_core::bail!("group_norm on a rank-{} tensor", x.rank());
        }
        shape[1] = x.dim(1)?;
        Ok(shape)
    }

    fn rows(&self, x: &Tensor) -> Result<usize> {
        let c = x.dim(1)?;
        if self.groups == 0 || !c.is_multiple_of(self.groups) {
            candle_core::bail!("group_norm of {c} channels into {} groups", self.groups);
        }
        Ok(x.dim(0)? * self.groups)
    }

    /// The normalized `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (xhat, _) = standardize(x, self.rows(x)?, self.eps)?;
        let mut y = xhat.reshape(x.shape())?;
        let shape = self.channel_shape(x)?;
        if let Some(w) = &self.weight {
            y = y.broadcast_mul(&w.reshape(shape.as_slice())?)?;
        }
        if let Some(b) = &self.bias {
            y = y.broadcast_add(&b.reshape(shape.as_slice())?)?;
        }
        Ok(y)
    }

    /// The signal at the input (exact under every rule).
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let rows = self.rows(x)?;
        let g = match &self.weight {
            Some(w) => grad.broadcast_mul(&w.reshape(self.channel_shape(x)?.as_slice())?)?,
            None => grad.clone(),
        };
        let (xhat, inv_std) = standardize(x, rows, self.eps)?;
        standardize_backward(&xhat, &inv_std, &g.reshape((rows, ()))?)?.reshape(x.shape())
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.weight.as_ref().map_or(0, Tensor::elem_count)
            + self.bias.as_ref().map_or(0, Tensor::elem_count)
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::*;
    use crate::ops::test_compare::max_abs;

    /// The exact gradient of `sum(forward(x) * g)` by central differences, in f64.
    fn numeric_gradient(f: &impl Fn(&Tensor) -> Tensor, x: &Tensor, g: &Tensor) -> Vec<f64> {
        let base = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let h = 1e-5;
        (0..base.len())
            .map(|i| {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[i] += d;
                    let xi = Tensor::from_vec(v, x.shape(), &Device::Cpu).unwrap();
                    f(&xi)
                        .mul(g)
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap()
                };
                (at(h) - at(-h)) / (2.0 * h)
            })
            .collect()
    }

    fn random(shape: &[usize], seed: u64) -> Tensor {
        let v = crate::weights::synthetic::uniform_stream(seed, shape.iter().product());
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// `backward` equals the numeric gradient of `forward` at a random point of `shape`.
    fn check_backward(
        shape: &[usize],
        forward: impl Fn(&Tensor) -> Tensor,
        backward: impl Fn(&Tensor, &Tensor) -> Tensor,
    ) {
        let x = random(shape, 1);
        let g = random(shape, 2);
        let numeric = numeric_gradient(&forward, &x, &g);
        let numeric = Tensor::from_vec(numeric, x.shape(), &Device::Cpu).unwrap();
        let analytic = backward(&x, &g);
        let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        assert!(max_abs(&f32(&analytic), &f32(&numeric)) < 1e-5);
    }

    #[test]
    fn layer_norm_backward_is_the_exact_gradient() {
        let op = LayerNorm {
            axes: 1,
            weight: Some(random(&[5], 3)),
            bias: Some(random(&[5], 4)),
            eps: 1e-6,
        };
        check_backward(
            &[2, 3, 4, 5],
            |t| op.forward(t).unwrap(),
            |x, g| op.backward(x, g).unwrap(),
        );
    }

    #[test]
    fn group_norm_backward_is_the_exact_gradient() {
        let op = GroupNorm {
            groups: 3,
            weight: Some(random(&[6], 7)),
            bias: None,
            eps: 1e-5,
        };
        check_backward(
            &[2, 6, 3, 3],
            |t| op.forward(t).unwrap(),
            |x, g| op.backward(x, g).unwrap(),
        );
    }

    #[test]
    fn layer_norm_matches_its_definition() {
        let x = Tensor::new(&[[1f32, 2., 3., 6.]], &Device::Cpu).unwrap();
        let op = LayerNorm {
            axes: 1,
            weight: None,
            bias: None,
            eps: 0.0,
        };
        let y = op.forward(&x).unwrap().to_vec2::<f32>().unwrap();
        // mean 3, variance (4 + 1 + 0 + 9) / 4 = 3.5
        let s = 3.5f32.sqrt();
        let want = [-2.0 / s, -1.0 / s, 0.0, 3.0 / s];
        for (a, b) in y[0].iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
