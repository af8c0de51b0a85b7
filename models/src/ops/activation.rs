//! Pointwise activations: the ReLU family (where backward rules differ) and the smooth ones.

use candle_core::{Result, Tensor};

use super::pointwise_cpu::{self, band_gradient, band_gradient_scaled};
use crate::graph::BackwardRule;

/// A pointwise activation function, with PyTorch's definition and PyTorch's derivative at the kinks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `nn.ReLU`.
    Relu,
    /// `nn.ReLU6`.
    Relu6,
    /// `nn.LeakyReLU` with its negative slope.
    LeakyRelu(f64),
    /// `nn.Hardtanh` / ONNX Clip with bounds other than (0, 6).
    Clip {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// `nn.Sigmoid`.
    Sigmoid,
    /// `nn.Hardsigmoid` (alpha 1/6, beta 1/2) or ONNX HardSigmoid.
    HardSigmoid {
        /// Slope.
        alpha: f64,
        /// Offset.
        beta: f64,
    },
    /// `nn.Hardswish`.
    HardSwish,
    /// `nn.SiLU` (swish).
    Silu,
    /// `nn.Tanh`.
    Tanh,
    /// `nn.GELU()`: x·Φ(x), with the exact normal CDF.
    Gelu,
    /// `nn.GELU(approximate='tanh')`.
    GeluTanh,
    /// `nn.ELU` with its alpha.
    Elu(f64),
}

impl Activation {
    /// PyTorch's `nn.Hardsigmoid`.
    pub const TORCH_HARDSIGMOID: Activation = Activation::HardSigmoid {
        alpha: 1.0 / 6.0,
        beta: 0.5,
    };

    /// The activation's name as a PyTorch module class.
    pub fn class_name(&self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Relu6 => "ReLU6",
            Activation::LeakyRelu(_) => "LeakyReLU",
            Activation::Clip { .. } => "Hardtanh",
            Activation::Sigmoid => "Sigmoid",
            Activation::HardSigmoid { .. } => "Hardsigmoid",
            Activation::HardSwish => "Hardswish",
            Activation::Silu => "SiLU",
            Activation::Tanh => "Tanh",
            Activation::Gelu | Activation::GeluTanh => "GELU",
            Activation::Elu(_) => "ELU",
        }
    }

    /// Whether the backward rules (guided, deconvnet) act on this activation.
    pub fn is_relu_family(&self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::Relu6 | Activation::LeakyRelu(_)
        ) || matches!(self, Activation::Clip { min, .. } if *min == 0.0)
    }

    /// The activation of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let fast = match *self {
            Activation::Relu => pointwise_cpu::relu(x)?,
            Activation::Relu6 => pointwise_cpu::clamp(x, 0.0, 6.0)?,
            Activation::Clip { min, max } => pointwise_cpu::clamp(x, min as f32, max as f32)?,
            _ => None,
        };
        if let Some(y) = fast {
            return Ok(y);
        }
        match *self {
            Activation::Relu => x.relu(),
            Activation::Relu6 => x.clamp(0f32, 6f32),
            Activation::LeakyRelu(slope) => {
                let negative = x.minimum(0f32)?.affine(slope, 0.0)?;
                x.relu()?.add(&negative)
            }
            Activation::Clip { min, max } => x.clamp(min as f32, max as f32),
            Activation::Sigmoid => sigmoid(x),
            Activation::HardSigmoid { alpha, beta } => x.affine(alpha, beta)?.clamp(0f32, 1f32),
            Activation::HardSwish => x
                .mul(&x.affine(1.0, 3.0)?.clamp(0f32, 6f32)?)?
                .affine(1.0 / 6.0, 0.0),
            Activation::Silu => x.silu(),
            Activation::Tanh => x.tanh(),
            Activation::Gelu => x.gelu_erf(),
            Activation::GeluTanh => x.gelu(),
            Activation::Elu(alpha) => x.elu(alpha),
        }
    }

    /// The signal at the input, given the input `x`, the output `y` and the signal `grad` at the
    /// output, under `rule`.
    pub fn backward(
        &self,
        x: &Tensor,
        y: &Tensor,
        grad: &Tensor,
        rule: BackwardRule,
    ) -> Result<Tensor> {
        if self.is_relu_family() {
            return match rule {
                BackwardRule::Gradient => self.local_gradient(x, y, grad),
                BackwardRule::Guided => self.local_gradient(x, y, grad)?.relu(),
                BackwardRule::Deconvnet => grad.relu(),
            };
        }
        self.local_gradient(x, y, grad)
    }

    /// The gradient at the input of the BatchNorm before this activation, whose per-channel
    /// scale is `scale`: [`Activation::backward`] under [`BackwardRule::Gradient`] and the
    /// BatchNorm's backward map in one pass on the CPU (the same bits as the two), for the
    /// ReLU, ReLU6 and clip; `None` for other activations or off the CPU fast path.
    pub fn gradient_scaled(
        &self,
        y: &Tensor,
        grad: &Tensor,
        scale: &[f32],
    ) -> Result<Option<Tensor>> {
        let band = match *self {
            Activation::Relu => (0.0, None),
            Activation::Relu6 => (0.0, Some(6.0)),
            Activation::Clip { min, max } => (min as f32, Some(max as f32)),
            _ => return Ok(None),
        };
        band_gradient_scaled(y, grad, band, scale)
    }

    /// Whether [`Activation::backward`] reads the values of the activation's input (else only
    /// its output): a ReLU, ReLU6 or clip passes the signal where its output lies strictly
    /// inside its bounds, which is where its input does (`min < clamp(x) < max` exactly when
    /// `min < x < max`), so it reads its output alone and a gradient pass need not keep the
    /// input.
    pub fn backward_reads_input(&self) -> bool {
        !matches!(
            self,
            Activation::Relu | Activation::Relu6 | Activation::Clip { .. }
        )
    }

    /// The exact gradient: `grad` times the derivative at `x`, with PyTorch's choice at the kinks.
    /// The ReLU, ReLU6 and clip read their output `y` only (see
    /// [`Activation::backward_reads_input`]).
    fn local_gradient(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let mask = |m: Tensor| -> Result<Tensor> { grad.mul(&m.to_dtype(grad.dtype())?) };
        match *self {
            Activation::Relu => match band_gradient(y, grad, 0.0, None)? {
                Some(g) => Ok(g),
                None => mask(y.gt(0f32)?),
            },
            Activation::Relu6 => match band_gradient(y, grad, 0.0, Some(6.0))? {
                Some(g) => Ok(g),
                None => mask(y.gt(0f32)?.mul(&y.lt(6f32)?)?),
            },
            Activation::Clip { min, max } => {
                match band_gradient(y, grad, min as f32, Some(max as f32))? {
                    Some(g) => Ok(g),
                    None => mask(y.gt(min as f32)?.mul(&y.lt(max as f32)?)?),
                }
            }
            Activation::LeakyRelu(slope) => {
                let positive = x.gt(0f32)?.to_dtype(grad.dtype())?;
                let factor = positive.affine(1.0 - slope, slope)?;
                grad.mul(&factor)
            }
            Activation::Sigmoid => grad.mul(&y.mul(&y.affine(-1.0, 1.0)?)?),
            Activation::HardSigmoid { alpha, beta } => {
                let z = x.affine(alpha, beta)?;
                let inside = z.gt(0f32)?.mul(&z.lt(1f32)?)?.to_dtype(grad.dtype())?;
                grad.mul(&inside.affine(alpha, 0.0)?)
            }
            Activation::HardSwish => {
                // torch: 0 for x < -3, x/3 + 1/2 for -3 <= x <= 3, 1 above.
                let above = x.gt(3f32)?.to_dtype(grad.dtype())?;
                let middle = x.ge(-3f32)?.mul(&x.le(3f32)?)?.to_dtype(grad.dtype())?;
                let slope = middle.mul(&x.affine(1.0 / 3.0, 0.5)?)?.add(&above)?;
                grad.mul(&slope)
            }
            Activation::Silu => {
                let s = sigmoid(x)?;
                let d = s.mul(&x.mul(&s.affine(-1.0, 1.0)?)?.affine(1.0, 1.0)?)?;
                grad.mul(&d)
            }
            Activation::Tanh => grad.mul(&y.sqr()?.affine(-1.0, 1.0)?),
            Activation::Gelu => {
                // Φ(x) + x·φ(x).
                let cdf = x
                    .affine(std::f64::consts::FRAC_1_SQRT_2, 0.0)?
                    .erf()?
                    .affine(0.5, 0.5)?;
                let pdf = x
                    .sqr()?
                    .affine(-0.5, 0.0)?
                    .exp()?
                    .affine(1.0 / (2.0 * std::f64::consts::PI).sqrt(), 0.0)?;
                grad.mul(&cdf.add(&x.mul(&pdf)?)?)
            }
            Activation::GeluTanh => {
                // u = √(2/π)(x + 0.044715x³): ½(1 + tanh u) + ½x(1 − tanh²u)·√(2/π)(1 + 3·0.044715x²).
                let k = (2.0 / std::f64::consts::PI).sqrt();
                let x2 = x.sqr()?;
                let t = x.mul(&x2.affine(0.044715, 1.0)?)?.affine(k, 0.0)?.tanh()?;
                let du = x2.affine(3.0 * 0.044715 * k, k)?;
                let d = t.affine(0.5, 0.5)?.add(
                    &x.mul(&t.sqr()?.affine(-1.0, 1.0)?)?
                        .mul(&du)?
                        .affine(0.5, 0.0)?,
                )?;
                grad.mul(&d)
            }
            Activation::Elu(alpha) => {
                // 1 above 0, alpha·exp(x) = y + alpha at or below (torch's choice at 0).
                let positive = x.gt(0f32)?.to_dtype(grad.dtype())?;
                let below = y.affine(1.0, alpha)?;
                let d = positive.add(&positive.affine(-1.0, 1.0)?.mul(&below)?)?;
                grad.mul(&d)
            }
        }
    }
}

/// The logistic function, 1 / (1 + exp(-x)).
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    x.neg()?.exp()?.affine(1.0, 1.0)?.recip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_compare::bits;
    use candle_core::Device;

    /// The ReLU, ReLU6 and clip read their output for the gradient: the same mask, to the bit,
    /// as the input's (`min < x < max`), at the bounds, signed zeros and infinities included.
    #[test]
    fn the_relu_familys_gradient_from_its_output_is_the_inputs_mask() {
        let dev = Device::Cpu;
        let mut values = vec![
            0.0f32,
            -0.0,
            6.0,
            -1.0,
            2.0,
            1e-30,
            -1e-30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            5.999_999_5,
            6.000_000_5,
        ];
        values.extend((0..2000).map(|i| (i as f32 * 0.618_034).sin() * 9.0));
        let x = Tensor::from_slice(&values, values.len(), &dev).unwrap();
        let g = Tensor::randn(0f32, 1f32, values.len(), &dev).unwrap();
        for (act, lo, hi) in [
            (Activation::Relu, 0.0, None),
            (Activation::Relu6, 0.0, Some(6.0)),
            (
                Activation::Clip {
                    min: -1.0,
                    max: 2.0,
                },
                -1.0,
                Some(2.0),
            ),
        ] {
            assert!(!act.backward_reads_input());
            let y = act.forward(&x).unwrap();
            // What the gradient was when it read the input.
            let want = band_gradient(&x, &g, lo, hi).unwrap().unwrap();
            // The input given is not read: a tensor of NaNs in its place changes nothing.
            let nan = x.affine(0.0, f64::NAN).unwrap();
            for rule in [BackwardRule::Gradient, BackwardRule::Guided] {
                let got = act.backward(&nan, &y, &g, rule).unwrap();
                // Guided backprop acts on the ReLU family (a clip from 0) only.
                let want = match rule {
                    BackwardRule::Guided if act.is_relu_family() => want.relu().unwrap(),
                    _ => want.clone(),
                };
                assert_eq!(bits(&got), bits(&want), "{act:?} {rule:?}");
            }
            // The candle masks (every other device) agree too.
            let mask = |t: &Tensor| -> Vec<u8> {
                let above = t.gt(lo).unwrap();
                let inside = match hi {
                    Some(hi) => above.mul(&t.lt(hi).unwrap()).unwrap(),
                    None => above,
                };
                inside.to_vec1::<u8>().unwrap()
            };
            assert_eq!(mask(&y), mask(&x), "{act:?}: masks");
        }
    }
}
