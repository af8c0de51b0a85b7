//! The cosine similarity of each row of a batch of codes [N, D] to a fixed reference code [D]
//! (`torch.nn.CosineSimilarity(dim=0)` per row): the output of a similarity target.

use candle_core::{Result, Tensor};

/// torch's `eps` of `cosine_similarity`: a norm below it counts as it.
const EPS: f64 = 1e-8;

/// cos(x, reference) for each row of x.
#[derive(Clone, Debug)]
pub struct Cosine {
    /// The reference code [D].
    pub reference: Tensor,
}

impl Cosine {
    /// [N, 1]: each row's cosine similarity to the reference.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (dot, xn, rn) = self.parts(x)?;
        dot.div(&xn.affine(rn, 0.0)?)
    }

    /// The signal at x for `grad` [N, 1] at the output: g · (r / (|x||r|) − cos · x / |x|²).
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (dot, xn, rn) = self.parts(x)?;
        let cos = dot.div(&xn.affine(rn, 0.0)?)?;
        let towards = self
            .reference
            .unsqueeze(0)?
            .broadcast_div(&xn.affine(rn, 0.0)?)?;
        let away = x.broadcast_mul(&cos.div(&xn.sqr()?)?)?;
        towards.broadcast_sub(&away)?.broadcast_mul(grad)
    }

    /// x·r [N, 1], max(|x|, eps) [N, 1], max(|r|, eps).
    fn parts(&self, x: &Tensor) -> Result<(Tensor, Tensor, f64)> {
        let r = self.reference.to_dtype(x.dtype())?;
        let dot = x.broadcast_mul(&r.unsqueeze(0)?)?.sum_keepdim(1)?;
        let xn = x.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(EPS)?;
        let rn = r
            .sqr()?
            .sum_all()?
            .sqrt()?
            .to_dtype(candle_core::DType::F64)?
            .to_scalar::<f64>()?
            .max(EPS);
        Ok((dot, xn, rn))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::*;

    /// The backward pass is the derivative: central differences agree.
    #[test]
    fn the_backward_pass_is_the_derivative() {
        let d = Device::Cpu;
        let x = Tensor::new(&[[0.3f64, -1.2, 0.7, 2.0]], &d).unwrap();
        let op = Cosine {
            reference: Tensor::new(&[1.0f64, 0.5, -0.25, 0.8], &d).unwrap(),
        };
        let g = op
            .backward(&x, &Tensor::new(&[[1.0f64]], &d).unwrap())
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        let at = |v: Vec<f64>| {
            op.forward(
                &Tensor::new(v.as_slice(), &d)
                    .unwrap()
                    .reshape((1, 4))
                    .unwrap(),
            )
            .unwrap()
            .to_vec2::<f64>()
            .unwrap()[0][0]
        };
        let base = x.to_vec2::<f64>().unwrap()[0].clone();
        for i in 0..4 {
            let (mut up, mut down) = (base.clone(), base.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric = (at(up) - at(down)) / 2e-6;
            assert!(
                (numeric - g[0][i]).abs() < 1e-6,
                "{i}: {numeric} vs {}",
                g[0][i]
            );
        }
    }
}
