//! ONNX `MatMul` between two computed tensors (NumPy broadcasting over the leading axes). A
//! product with a constant 2-D matrix becomes `nn.Linear` instead.

use candle_core::{Result, Tensor};

use super::elementwise::sum_to_shape;

/// `a @ b`, both of rank 2 or more.
pub fn forward(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if a.rank() < 2 || b.rank() < 2 {
        candle_core::bail!(
            "MatMul of a rank-{} and a rank-{} tensor",
            a.rank(),
            b.rank()
        );
    }
    a.contiguous()?.broadcast_matmul(&b.contiguous()?)
}

/// Signals at `a` and `b` given the signal `grad` at `a @ b`.
pub fn backward(a: &Tensor, b: &Tensor, grad: &Tensor) -> Result<(Tensor, Tensor)> {
    let ga = grad.broadcast_matmul(&b.t()?.contiguous()?)?;
    let gb = a.t()?.contiguous()?.broadcast_matmul(&grad.contiguous()?)?;
    Ok((sum_to_shape(&ga, a.shape())?, sum_to_shape(&gb, b.shape())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn values(dims: &[usize], seed: f32) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i as f32 + seed) * 0.7).sin()).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    /// The gradient of sum(w * (a @ b)) against central differences, with b broadcast.
    #[test]
    fn backward_matches_finite_differences() {
        let a = values(&[2, 3, 4], 0.0);
        let b = values(&[4, 5], 1.0);
        let w = values(&[2, 3, 5], 2.0);
        let f = |a: &Tensor, b: &Tensor| -> f64 {
            forward(a, b)
                .unwrap()
                .mul(&w)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap() as f64
        };
        let (ga, gb) = backward(&a, &b, &w).unwrap();
        assert_eq!(ga.dims(), a.dims());
        assert_eq!(gb.dims(), b.dims());
        let eps = 1e-2;
        for (t, g, is_a) in [(&a, &ga, true), (&b, &gb, false)] {
            let base = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let grad = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            for i in 0..base.len() {
                let mut plus = base.clone();
                let mut minus = base.clone();
                plus[i] += eps;
                minus[i] -= eps;
                let p = Tensor::from_vec(plus, t.dims(), &Device::Cpu).unwrap();
                let m = Tensor::from_vec(minus, t.dims(), &Device::Cpu).unwrap();
                let difference = if is_a {
                    f(&p, &b) - f(&m, &b)
                } else {
                    f(&a, &p) - f(&a, &m)
                };
                let numeric = difference / (2.0 * eps as f64);
                assert!(
                    (numeric - grad[i] as f64).abs() < 1e-3,
                    "element {i}: {numeric} vs {}",
                    grad[i]
                );
            }
        }
    }
}
