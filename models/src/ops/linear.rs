//! `nn.Linear`: y = x Wᵀ + b.

use candle_core::{Result, Tensor};

use super::column_invariant_gemm::gemm_rows_into;
use super::conv2d_cpu::all_threads;
use super::cpu_slice::{is_cpu_f32, with_f32};

/// A fully connected layer; fields as in PyTorch's state_dict.
#[derive(Clone, Debug)]
pub struct Linear {
    /// [out_features, in_features].
    pub weight: Tensor,
    /// [out_features], when present.
    pub bias: Option<Tensor>,
}

impl Linear {
    /// The layer's output for `x` [N, in_features], or `[…, in_features]` (a Linear applied to
    /// channels-last maps, as ConvNeXt does).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if x.rank() > 2 {
            // Many rows per image (one per pixel): candle's product, whose widest vectors run
            // along the output features, 2–3× the speed of [`Linear::product_cpu`] here (timed
            // ad hoc at 56×56 pixels of 96 and 384 features).
            let dims = x.dims();
            let (last, lead) = (dims[dims.len() - 1], &dims[..dims.len() - 1]);
            let y = x.reshape(((), last))?.matmul(&self.weight.t()?)?;
            let mut out = lead.to_vec();
            out.push(y.dim(1)?);
            y.reshape(out)?
        } else if is_cpu_f32(x) && is_cpu_f32(&self.weight) {
            self.product_cpu(x)?
        } else {
            x.matmul(&self.weight.t()?)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// x Wᵀ (x [N, in_features]) on the CPU by a product that gives each row (image) the same
    /// bits for any number of rows ([`gemm_rows_into`]): an image's logits do not depend on its
    /// batch (candle's product takes a lone row through the `gemm` crate's matrix–vector kernel,
    /// and a head of few classes through its small-matrix paths). Also 3× candle's speed from
    /// two rows up on a 1280→1000 head; a lone row 0.35–0.44 against candle's 0.15–0.20 ms.
    fn product_cpu(&self, x: &Tensor) -> Result<Tensor> {
        let (n, k) = x.dims2()?;
        let (o, in_features) = self.weight.dims2()?;
        if k != in_features {
            candle_core::bail!(
                "Linear of {in_features} input features given {k} ({:?})",
                x.dims()
            );
        }
        let mut y = vec![0f32; n * o];
        with_f32(x, |xs| {
            with_f32(&self.weight, |w| {
                gemm_rows_into(&mut y, xs, w, (n, o, k), all_threads())
            })
        })?;
        Tensor::from_vec(y, (n, o), x.device())
    }

    /// The signal at the input.
    pub fn input_gradient(&self, grad: &Tensor) -> Result<Tensor> {
        if grad.rank() > 2 {
            let dims = grad.dims();
            let (last, lead) = (dims[dims.len() - 1], &dims[..dims.len() - 1]);
            let g = grad.reshape(((), last))?.matmul(&self.weight)?;
            let mut out = lead.to_vec();
            out.push(g.dim(1)?);
            return g.reshape(out);
        }
        grad.matmul(&self.weight)
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.weight.elem_count() + self.bias.as_ref().map_or(0, Tensor::elem_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_compare::{bits, max_rel};
    use candle_core::Device;

    /// On the CPU an image's logits have the same bits alone and in any batch, for a head of
    /// few classes and of many; and they are candle's product's to rounding.
    #[test]
    fn an_images_output_does_not_depend_on_its_batch() {
        let dev = Device::Cpu;
        for (classes, features) in [(10, 1280), (1000, 512), (64, 600), (256, 700), (257, 700)] {
            let weight = Tensor::randn(0f32, 1f32, (classes, features), &dev).unwrap();
            let bias = Tensor::randn(0f32, 1f32, classes, &dev).unwrap();
            let layer = Linear {
                weight: weight.clone(),
                bias: Some(bias.clone()),
            };
            let x = Tensor::randn(0f32, 1f32, (70, features), &dev).unwrap();
            let all = layer.forward(&x).unwrap();
            let candle = x
                .matmul(&weight.t().unwrap())
                .unwrap()
                .broadcast_add(&bias)
                .unwrap();
            assert!(max_rel(&all, &candle) < 1e-5, "{classes} classes");
            for (start, len) in [(0, 1), (69, 1), (0, 2), (5, 3), (1, 65)] {
                let part = layer.forward(&x.narrow(0, start, len).unwrap()).unwrap();
                assert_eq!(
                    bits(&part),
                    bits(&all.narrow(0, start, len).unwrap()),
                    "{classes} classes: rows {start}..{}",
                    start + len
                );
            }
        }
    }
}
