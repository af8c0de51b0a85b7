//! DeepLift with the rescale rule (Shrikumar et al. 2017) and DeepLiftShap, as Captum computes
//! them: the input and its baselines go through the network as one batch, and the backward pass
//! replaces each nonlinearity's derivative by the ratio of the output's to the input's difference
//! from the baseline.

use candle_core::Tensor;

use super::target::{check_classes, multi_hot, summed_scores};
use crate::graph::{BackwardRule, Node};
use crate::ops::{pointwise_cpu, Op};
use crate::progress::Progress;
use crate::{Error, Model, Result};

/// Below this difference from the baseline a unit's plain derivative is used (Captum's `eps`).
const EPS: f32 = 1e-10;

/// DeepLift's attribution [C, H, W] of `input` [1, C, H, W] for the sum of the `classes`'
/// logits (one class, most often), averaged over `baselines` [B, C, H, W] (DeepLift for one
/// baseline, DeepLiftShap for several), with the summation-to-delta gap Σattr − mean_b (F(x) − F(b)). `batch` baselines go through the network
/// at a time, each beside a copy of the input.
///
/// The rescale rule applies to every pointwise activation (ReLU, ReLU6, sigmoid, …); every other
/// op passes its gradient. Captum applies the rule to the activation modules it lists (ReLU, ELU,
/// LeakyReLU, Sigmoid, Tanh, Softplus), so on a network with other activations (ReLU6 in the
/// demo) its numbers differ from the method's: tests/fixtures/make_explain_more.py registers
/// ReLU6 with Captum for the comparison.
///
/// Max pooling passes its gradient (the signal goes to each window's maximum), the original
/// DeepLIFT's default (`MaxPoolDeepLiftMode.gradient`). Captum defines a rule of its own for
/// max pooling, but its backward hook has no effect when the pool follows an activation module,
/// as in every network here (make_explain_more.py shows it: Captum's numbers do not change when
/// the rule is removed), so Captum computes this too. Summation-to-delta then holds only up to
/// the pools: the returned gap says by how much.
pub fn deeplift(
    model: &Model,
    input: &Tensor,
    classes: &[usize],
    baselines: &Tensor,
    batch: usize,
    progress: &dyn Progress,
) -> Result<(Tensor, f32)> {
    if input.rank() != 4 || input.dim(0)? != 1 {
        return Err(Error::Shape {
            what: "DeepLift input".into(),
            expected: "[1, C, H, W]".into(),
            found: format!("{:?}", input.dims()),
        });
    }
    let count = if baselines.rank() == 4 {
        baselines.dim(0)?
    } else {
        0
    };
    if count == 0 {
        return Err(Error::InvalidArgument(format!(
            "DeepLift needs baselines [B, C, H, W] with B ≥ 1, not {:?}",
            baselines.dims()
        )));
    }
    if baselines.dims()[1..] != input.dims()[1..] {
        return Err(Error::Shape {
            what: "DeepLift baselines".into(),
            expected: format!("[B, {:?}]", &input.dims()[1..]),
            found: format!("{:?}", baselines.dims()),
        });
    }
    let graph = &model.graph;
    let mut total: Option<Tensor> = None;
    let mut gap = 0f64;
    let mut start = 0;
    while start < count {
        let len = batch.max(1).min(count - start);
        let base = baselines.narrow(0, start, len)?;
        let mut reps = vec![1usize; input.rank()];
        reps[0] = len;
        let inputs = input.repeat(reps)?;
        let trace = graph.forward(&Tensor::cat(&[&inputs, &base], 0)?, None)?;
        let logits = trace
            .output()
            .ok_or_else(|| Error::InvalidArgument("the network produced no output".into()))?;
        check_classes(classes, logits.dim(1)?)?;
        // Captum differentiates the target logit of both halves: the same signal goes back
        // from each.
        let signal = multi_hot(2 * len, logits.dim(1)?, classes, input.device())?;
        let g = graph.backward_by(&trace, graph.output_id(), &signal, 0, &rescale_step)?;
        let diff = inputs.sub(&base)?;
        let part = diff.mul(&g.narrow(0, 0, len)?)?.sum_keepdim(0)?;
        total = Some(match total {
            Some(t) => t.add(&part)?,
            None => part,
        });
        let ends = summed_scores(logits, classes)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?;
        gap += (0..len)
            .map(|i| f64::from(ends[i]) - f64::from(ends[len + i]))
            .sum::<f64>();
        start += len;
        progress.step(start, count, "explain")?;
    }
    let total = total.ok_or_else(|| Error::InvalidArgument("no baselines".into()))?;
    let attribution = total.affine(1.0 / count as f64, 0.0)?.squeeze(0)?;
    let sum = f64::from(attribution.sum_all()?.to_scalar::<f32>()?);
    Ok((attribution, (sum - gap / count as f64) as f32))
}

/// One node's backward step under the rescale rule, on a batch whose first half are the inputs
/// and second half their baselines.
fn rescale_step(
    node: &Node,
    inputs: &[&Tensor],
    output: &Tensor,
    grad: &Tensor,
) -> candle_core::Result<Vec<Tensor>> {
    let plain = || {
        node.op
            .backward(inputs, output, grad, BackwardRule::Gradient)
    };
    let x = match inputs {
        [x] => *x,
        _ => return plain(),
    };
    match &node.op {
        Op::Activation(activation) => {
            let exact = activation.backward(x, output, grad, BackwardRule::Gradient)?;
            if let Some(signal) = pointwise_cpu::rescale(x, output, grad, &exact, EPS)? {
                return Ok(vec![signal]);
            }
            let delta_in = halves_difference(x)?;
            let delta_out = halves_difference(output)?;
            let rescaled = grad.mul(&delta_out)?.div(&delta_in)?;
            Ok(vec![delta_in
                .abs()?
                .lt(EPS)?
                .where_cond(&exact, &rescaled)?])
        }
        _ => plain(),
    }
}

/// The first half of a batch minus its second half, repeated for both halves.
fn halves_difference(t: &Tensor) -> candle_core::Result<Tensor> {
    let n = t.dim(0)? / 2;
    let d = t.narrow(0, 0, n)?.sub(&t.narrow(0, n, n)?)?;
    Tensor::cat(&[&d, &d], 0)
}
