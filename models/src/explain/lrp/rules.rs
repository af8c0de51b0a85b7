//! LRP's rules for a convolution or a fully connected layer (Bach et al. 2015; Montavon et al.
//! 2019), as zennit computes them: each rule runs the layer on modified inputs with modified
//! parameters, divides the relevance at the output by that stabilized output, sends the ratio
//! back through the same modified layers and weighs it by the modified inputs.

use candle_core::{Result, Tensor};

use super::layer::AffineLayer;

/// How one layer redistributes the relevance at its output onto its input.
#[derive(Clone, Debug)]
pub enum Rule {
    /// LRP-ε: z = layer(x); R_in = x · layerᵀ(R / (z + ε·sign z)).
    Epsilon(f64),
    /// LRP-z⁺ (α = 1, β = 0): positive inputs through positive weights (and the positive bias)
    /// plus negative inputs through negative weights.
    ZPlus,
    /// LRP-αβ: α times the positive contributions' share minus β times the negative ones'.
    AlphaBeta {
        /// Weight of the positive contributions.
        alpha: f64,
        /// Weight of the negative contributions.
        beta: f64,
    },
    /// Generalized LRP-γ: the contributions that agree with the output's sign are boosted by γ.
    Gamma(f64),
    /// LRP-flat: every input and weight set to one, the bias to zero (the relevance spread
    /// evenly over each output's receptive field).
    Flat,
    /// LRP-z^B for inputs bounded by `low` and `high` (broadcast to the input, [1, C, 1, 1]).
    ZBox {
        /// The lowest value each input channel can take.
        low: Tensor,
        /// The highest.
        high: Tensor,
    },
}

/// zennit's stabilizer for every rule but ε (whose ε plays its part).
pub const STABILIZER: f64 = 1e-6;

impl Rule {
    /// The relevance at `layer`'s input `x` for the relevance `r` at its output.
    pub fn relevance(&self, layer: &AffineLayer, x: &Tensor, r: &Tensor) -> Result<Tensor> {
        match self {
            Rule::Epsilon(eps) => {
                let s = r.div(&stabilize(&layer.forward(x)?, *eps)?)?;
                x.mul(&layer.transposed(x, &s)?)
            }
            Rule::ZPlus => {
                let halves = Halves::of(layer, x)?;
                let s = r.div(&stabilize(&halves.agreeing()?, STABILIZER)?)?;
                halves.back_agreeing(&s)
            }
            Rule::AlphaBeta { alpha, beta } => {
                let halves = Halves::of(layer, x)?;
                let s_pos = r.div(&stabilize(&halves.agreeing()?, STABILIZER)?)?;
                let s_neg = r.div(&stabilize(&halves.opposing()?, STABILIZER)?)?;
                halves
                    .back_agreeing(&s_pos)?
                    .affine(*alpha, 0.0)?
                    .sub(&halves.back_opposing(&s_neg)?.affine(*beta, 0.0)?)
            }
            Rule::Gamma(gamma) => gamma_rule(layer, x, r, *gamma, has_no_negatives(x)?),
            Rule::Flat => {
                let ones = x.ones_like()?;
                let flat = layer.with_parameters(layer.weight().ones_like()?, None);
                let s = r.div(&stabilize(&flat.forward(&ones)?, STABILIZER)?)?;
                flat.transposed(x, &s)
            }
            Rule::ZBox { low, high } => {
                let low = low.broadcast_as(x.shape())?.contiguous()?;
                let high = high.broadcast_as(x.shape())?.contiguous()?;
                let w = layer.weight();
                let b = layer.bias();
                let positive = layer.with_parameters(w.maximum(0.0)?, clamp(b, true)?);
                let negative = layer.with_parameters(w.minimum(0.0)?, clamp(b, false)?);
                let z = layer
                    .forward(x)?
                    .sub(&positive.forward(&low)?)?
                    .sub(&negative.forward(&high)?)?;
                let s = r.div(&stabilize(&z, STABILIZER)?)?;
                x.mul(&layer.transposed(x, &s)?)?
                    .sub(&low.mul(&positive.transposed(x, &s)?)?)?
                    .sub(&high.mul(&negative.transposed(x, &s)?)?)
            }
        }
    }
}

/// `z + ε·sign(z)` with the sign of zero taken as +1 (zennit's `stabilize`).
pub fn stabilize(z: &Tensor, eps: f64) -> Result<Tensor> {
    let sign = z.ge(0.0)?.to_dtype(z.dtype())?.affine(2.0, -1.0)?;
    z.add(&sign.affine(eps, 0.0)?)
}

/// Whether `x` is nowhere negative (the output of a ReLU): then x⁻ is zero and the terms it
/// weighs vanish exactly, so they are not computed.
fn has_no_negatives(x: &Tensor) -> Result<bool> {
    Ok(x.min_all()?
        .to_dtype(candle_core::DType::F64)?
        .to_scalar::<f64>()?
        >= 0.0)
}

/// The positive (`true`) or negative part of an optional bias.
fn clamp(bias: Option<&Tensor>, positive: bool) -> Result<Option<Tensor>> {
    bias.map(|b| {
        if positive {
            b.maximum(0.0)
        } else {
            b.minimum(0.0)
        }
    })
    .transpose()
}

/// A layer split by the signs of its inputs and weights, for z⁺ and αβ: x⁺ and x⁻, and the
/// layer with only its positive or only its negative weights.
struct Halves {
    x_pos: Tensor,
    x_neg: Tensor,
    /// Whether x⁻ is zero everywhere (the input of a ReLU): its terms vanish exactly and are
    /// not computed.
    x_neg_zero: bool,
    /// Positive weights, positive bias.
    w_pos: AffineLayer,
    /// Negative weights, negative bias.
    w_neg: AffineLayer,
    /// Positive weights, no bias.
    w_pos_unbiased: AffineLayer,
    /// Negative weights, no bias.
    w_neg_unbiased: AffineLayer,
}

impl Halves {
    fn of(layer: &AffineLayer, x: &Tensor) -> Result<Halves> {
        let w = layer.weight();
        let (wp, wn) = (w.maximum(0.0)?, w.minimum(0.0)?);
        let b = layer.bias();
        Ok(Halves {
            x_pos: x.maximum(0.0)?,
            x_neg: x.minimum(0.0)?,
            x_neg_zero: has_no_negatives(x)?,
            w_pos: layer.with_parameters(wp.clone(), clamp(b, true)?),
            w_neg: layer.with_parameters(wn.clone(), clamp(b, false)?),
            w_pos_unbiased: layer.with_parameters(wp, None),
            w_neg_unbiased: layer.with_parameters(wn, None),
        })
    }

    /// The contributions that are positive: x⁺ through w⁺ (with b⁺) plus x⁻ through w⁻.
    fn agreeing(&self) -> Result<Tensor> {
        let z = self.w_pos.forward(&self.x_pos)?;
        if self.x_neg_zero {
            return Ok(z);
        }
        z.add(&self.w_neg_unbiased.forward(&self.x_neg)?)
    }

    /// The contributions that are negative: x⁺ through w⁻ (with b⁻) plus x⁻ through w⁺.
    fn opposing(&self) -> Result<Tensor> {
        let z = self.w_neg.forward(&self.x_pos)?;
        if self.x_neg_zero {
            return Ok(z);
        }
        z.add(&self.w_pos_unbiased.forward(&self.x_neg)?)
    }

    /// x⁺ · w⁺ᵀ(s) + x⁻ · w⁻ᵀ(s).
    fn back_agreeing(&self, s: &Tensor) -> Result<Tensor> {
        let r = self.x_pos.mul(&self.w_pos.transposed(&self.x_pos, s)?)?;
        if self.x_neg_zero {
            return Ok(r);
        }
        r.add(&self.x_neg.mul(&self.w_neg.transposed(&self.x_neg, s)?)?)
    }

    /// x⁺ · w⁻ᵀ(s) + x⁻ · w⁺ᵀ(s).
    fn back_opposing(&self, s: &Tensor) -> Result<Tensor> {
        let r = self.x_pos.mul(&self.w_neg.transposed(&self.x_pos, s)?)?;
        if self.x_neg_zero {
            return Ok(r);
        }
        r.add(&self.x_neg.mul(&self.w_pos.transposed(&self.x_neg, s)?)?)
    }
}

/// Generalized LRP-γ (zennit's `Gamma`): where the output is positive, x⁺ through w + γw⁺
/// (bias b + γb⁺) and x⁻ through w + γw⁻ share the relevance; where it is negative, x⁺ through
/// w + γw⁻ (bias b + γb⁻) and x⁻ through w + γw⁺. With `no_negatives` (x⁻ = 0) the x⁻ terms
/// are left out.
fn gamma_rule(
    layer: &AffineLayer,
    x: &Tensor,
    r: &Tensor,
    gamma: f64,
    no_negatives: bool,
) -> Result<Tensor> {
    let w = layer.weight();
    let b = layer.bias();
    let boosted = |positive: bool| -> Result<(Tensor, Option<Tensor>)> {
        let part = |t: &Tensor| {
            if positive {
                t.maximum(0.0)
            } else {
                t.minimum(0.0)
            }
        };
        let weight = w.add(&part(w)?.affine(gamma, 0.0)?)?;
        let bias = b
            .map(|b| b.add(&part(b)?.affine(gamma, 0.0)?))
            .transpose()?;
        Ok((weight, bias))
    };
    let (w_up, b_up) = boosted(true)?;
    let (w_down, b_down) = boosted(false)?;
    let up = layer.with_parameters(w_up.clone(), b_up);
    let up_unbiased = layer.with_parameters(w_up, None);
    let down = layer.with_parameters(w_down.clone(), b_down);
    let down_unbiased = layer.with_parameters(w_down, None);
    let (x_pos, x_neg) = (x.maximum(0.0)?, x.minimum(0.0)?);
    let z = layer.forward(x)?;
    let dtype = z.dtype();
    let where_positive = z.gt(0.0)?.to_dtype(dtype)?;
    let where_negative = z.lt(0.0)?.to_dtype(dtype)?;
    let (mut z_pos, mut z_neg) = (up.forward(&x_pos)?, down.forward(&x_pos)?);
    if !no_negatives {
        z_pos = z_pos.add(&down_unbiased.forward(&x_neg)?)?;
        z_neg = z_neg.add(&up_unbiased.forward(&x_neg)?)?;
    }
    let s_pos = where_positive
        .mul(r)?
        .div(&stabilize(&z_pos, STABILIZER)?)?;
    let s_neg = where_negative
        .mul(r)?
        .div(&stabilize(&z_neg, STABILIZER)?)?;
    let from_positive = x_pos.mul(
        &up.transposed(x, &s_pos)?
            .add(&down.transposed(x, &s_neg)?)?,
    )?;
    if no_negatives {
        return Ok(from_positive);
    }
    from_positive.add(
        &x_neg.mul(
            &down
                .transposed(x, &s_pos)?
                .add(&up.transposed(x, &s_neg)?)?,
        )?,
    )
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;
    use crate::ops::{Conv2d, Padding};

    /// A ReLU's output [1, 3, 6, 6] and a relevance [1, 4, 6, 6] for [`conv`].
    fn relu_input_and_relevance() -> (Tensor, Tensor) {
        let d = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (1, 3, 6, 6), &d)
            .unwrap()
            .relu()
            .unwrap();
        (x, Tensor::randn(0f32, 1.0, (1, 4, 6, 6), &d).unwrap())
    }

    fn conv() -> AffineLayer {
        let d = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (4, 3, 3, 3), &d).unwrap();
        let b = Tensor::randn(0f32, 1.0, 4, &d).unwrap();
        AffineLayer::Conv(Conv2d::new(w, Some(b), 1, Padding::symmetric(1), 1, 1))
    }

    /// Skipping x⁻'s terms for an input without negative values (after a ReLU) is exact.
    #[test]
    fn skipping_a_zero_negative_part_changes_nothing() {
        let layer = conv();
        let (x, s) = relu_input_and_relevance();
        let fast = Halves::of(&layer, &x).unwrap();
        assert!(fast.x_neg_zero);
        let full = Halves {
            x_neg_zero: false,
            ..Halves::of(&layer, &x).unwrap()
        };
        let same = |a: Tensor, b: Tensor| {
            let d = a.sub(&b).unwrap().abs().unwrap().max_all().unwrap();
            assert_eq!(d.to_scalar::<f32>().unwrap(), 0.0);
        };
        same(fast.agreeing().unwrap(), full.agreeing().unwrap());
        same(fast.opposing().unwrap(), full.opposing().unwrap());
        same(
            fast.back_agreeing(&s).unwrap(),
            full.back_agreeing(&s).unwrap(),
        );
        same(
            fast.back_opposing(&s).unwrap(),
            full.back_opposing(&s).unwrap(),
        );
    }

    /// The γ rule without x⁻'s terms, for an input without negative values, is exact too.
    #[test]
    fn the_gamma_rule_skips_a_zero_negative_part_exactly() {
        let layer = conv();
        let (x, r) = relu_input_and_relevance();
        let fast = gamma_rule(&layer, &x, &r, 0.25, true).unwrap();
        let full = gamma_rule(&layer, &x, &r, 0.25, false).unwrap();
        let diff = fast.sub(&full).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() <= 1e-6);
    }

    /// The stabilizer moves zero and positive values up, negative ones down.
    #[test]
    fn stabilize_takes_the_sign_of_zero_as_positive() {
        let z = Tensor::new(&[-2f32, 0.0, 3.0], &Device::Cpu).unwrap();
        let got = stabilize(&z, 0.5).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(got, vec![-2.5, 0.5, 3.5]);
    }
}
