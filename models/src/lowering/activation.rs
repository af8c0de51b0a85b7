//! Pointwise activations: the bounds of a clip (ONNX `Clip`, ATen `hardtanh` / `clamp`) as the
//! ReLU family where they are one, and the functional name of each activation.

use crate::ops::Activation;

/// `clamp(x, min, max)`: ReLU6 for (0, 6), ReLU for (0, ∞), else a clip — so guided backprop
/// and deconvnet treat a clamp at 0 as the ReLU it is.
pub fn clip(min: f64, max: f64) -> Activation {
    if min == 0.0 && max == 6.0 {
        Activation::Relu6
    } else if min == 0.0 && max == f64::INFINITY {
        Activation::Relu
    } else {
        Activation::Clip { min, max }
    }
}

/// The lower-case name an activation gets as a functional call inside a module (`relu6`).
pub fn label(a: Activation) -> &'static str {
    match a {
        Activation::Relu => "relu",
        Activation::Relu6 => "relu6",
        Activation::LeakyRelu(_) => "leaky_relu",
        Activation::Clip { .. } => "clamp",
        Activation::Sigmoid => "sigmoid",
        Activation::HardSigmoid { .. } => "hardsigmoid",
        Activation::HardSwish => "hardswish",
        Activation::Silu => "silu",
        Activation::Tanh => "tanh",
        Activation::Gelu | Activation::GeluTanh => "gelu",
        Activation::Elu(_) => "elu",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_at_zero_are_the_relu_family() {
        assert_eq!(clip(0.0, 6.0), Activation::Relu6);
        assert_eq!(clip(0.0, f64::INFINITY), Activation::Relu);
        assert_eq!(
            clip(-1.0, 1.0),
            Activation::Clip {
                min: -1.0,
                max: 1.0
            }
        );
        assert!(clip(0.0, 2.0).is_relu_family());
    }
}
