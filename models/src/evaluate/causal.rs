//! Deletion and insertion (Petsiuk, Das and Saenko 2018, "RISE", §4.1, and their published
//! `CausalMetric`): the pixels are ranked by relevance, most relevant first (ties to the
//! earlier pixel, row-major); deletion starts from the input and replaces `step` pixels at a
//! time by the substrate (zeros by default), insertion starts from the substrate (the blurred
//! input by default) and puts the input's pixels back in the same order. After each step the
//! model's probability of the class is read; the curve has one value per step and one for the
//! start, and its area is the trapezoid rule over [0, 1]. A faithful map makes deletion fall
//! fast (a small area) and insertion rise fast (a large one). Every copy is made on the model's
//! device (a mask of ranks against each step's threshold) and run in batches.

use candle_core::{DType, Tensor};

use super::substrate::{substrate_of, Substrate};
use crate::progress::Progress;
use crate::{Error, Model, Result};

/// Which curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CausalMetric {
    /// Remove the most relevant pixels first.
    Deletion,
    /// Add the most relevant pixels first.
    Insertion,
}

impl CausalMetric {
    /// The substrate RISE uses for it: zeros for deletion, the blurred input for insertion.
    pub fn default_substrate(self) -> Substrate {
        match self {
            CausalMetric::Deletion => Substrate::Zero,
            CausalMetric::Insertion => Substrate::Blur,
        }
    }
}

/// How a curve is drawn.
#[derive(Clone, Copy, Debug)]
pub struct CausalOptions {
    /// Deletion or insertion.
    pub metric: CausalMetric,
    /// Pixels changed per step; the input's width when `None` (RISE's 224 for 224×224).
    pub step: Option<usize>,
    /// What replaces the pixels; the metric's default when `None`.
    pub substrate: Option<Substrate>,
    /// Copies per forward pass.
    pub batch: usize,
}

impl CausalOptions {
    /// `metric` with RISE's step and substrate, 16 copies a pass.
    pub fn new(metric: CausalMetric) -> CausalOptions {
        CausalOptions {
            metric,
            step: None,
            substrate: None,
            batch: 16,
        }
    }
}

/// A drawn curve.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CausalCurve {
    /// Deletion or insertion.
    pub metric: CausalMetric,
    /// Pixels changed per step.
    pub step: usize,
    /// What replaced them.
    pub substrate: Substrate,
    /// The class's probability at the start and after each step.
    pub probabilities: Vec<f32>,
    /// The area under the curve, the x axis running from 0 to 1.
    pub auc: f32,
}

/// The curve of `metric` for class `class` of `model` on `input` [1, C, H, W] (normalized, on
/// the model's device) under `relevance` [H, W] (see [`super::relevance::pixel_relevance`]).
pub fn causal_curve(
    model: &Model,
    input: &Tensor,
    relevance: &Tensor,
    class: usize,
    options: &CausalOptions,
    progress: &dyn Progress,
) -> Result<CausalCurve> {
    let (c, h, w) = match input.dims() {
        [1, c, h, w] => (*c, *h, *w),
        other => {
            return Err(Error::InvalidArgument(format!(
                "deletion and insertion take one input [1, C, H, W], got {other:?}"
            )))
        }
    };
    if relevance.dims() != [h, w] {
        return Err(Error::InvalidArgument(format!(
            "a relevance of shape {:?} for an input of {h}×{w}",
            relevance.dims()
        )));
    }
    let pixels = h * w;
    let step = options.step.unwrap_or(w);
    if step == 0 || options.batch == 0 {
        return Err(Error::InvalidArgument(
            "the step and the batch must be at least 1".into(),
        ));
    }
    let substrate = options
        .substrate
        .unwrap_or(options.metric.default_substrate());
    let device = &model.device;
    let input = input.to_device(device)?.to_dtype(DType::F32)?;
    let values = relevance
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if values.iter().any(|v| v.is_nan()) {
        return Err(Error::InvalidArgument("the map holds NaN".into()));
    }
    // Most relevant first; ties (−0 and +0 alike) to the earlier pixel.
    let mut order: Vec<usize> = (0..pixels).collect();
    order.sort_by(|&a, &b| {
        values[b]
            .partial_cmp(&values[a])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(&b))
    });
    let mut rank = vec![0f32; pixels];
    for (r, &p) in order.iter().enumerate() {
        rank[p] = r as f32;
    }
    let rank = Tensor::from_vec(rank, (1, 1, h, w), device)?;
    let blurred = substrate_of(&input, substrate)?;
    let (start, finish) = match options.metric {
        CausalMetric::Deletion => (input, blurred),
        CausalMetric::Insertion => (blurred, input),
    };
    let steps = pixels.div_ceil(step);
    let total = steps + 1;
    let label = match options.metric {
        CausalMetric::Deletion => "deletion",
        CausalMetric::Insertion => "insertion",
    };
    let mut probabilities = Vec::with_capacity(total);
    let mut first = 0;
    while first < total {
        progress.step(first, total, label)?;
        let n = options.batch.min(total - first);
        // Step i has changed the pixels ranked below min(i·step, H·W).
        let thresholds: Vec<f32> = (first..first + n)
            .map(|i| (i * step).min(pixels) as f32)
            .collect();
        let thresholds = Tensor::from_vec(thresholds, (n, 1, 1, 1), device)?;
        let shape = (n, c, h, w);
        let changed = rank
            .broadcast_lt(&thresholds)?
            .broadcast_as(shape)?
            .contiguous()?;
        let copies = changed.where_cond(
            &finish.broadcast_as(shape)?.contiguous()?,
            &start.broadcast_as(shape)?.contiguous()?,
        )?;
        probabilities.extend(
            class_probabilities(&model.logits(&copies)?, class)?
                .into_iter()
                .map(|p| p as f32),
        );
        first += n;
    }
    progress.step(total, total, label)?;
    Ok(CausalCurve {
        metric: options.metric,
        step,
        substrate,
        auc: area(&probabilities),
        probabilities,
    })
}

/// The softmax probability of `class` in each row of `logits` [N, classes] (on the host, in
/// f64); a class beyond the head is refused.
pub fn class_probabilities(logits: &Tensor, class: usize) -> Result<Vec<f64>> {
    let classes = logits.dim(1)?;
    if class >= classes {
        return Err(Error::InvalidArgument(format!(
            "class {class} is beyond the model's {classes} outputs"
        )));
    }
    let rows = logits
        .to_device(&candle_core::Device::Cpu)?
        .to_dtype(DType::F64)?
        .to_vec2::<f64>()?;
    Ok(rows
        .iter()
        .map(|row| {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = row.iter().map(|v| (v - max).exp()).sum();
            (row[class] - max).exp() / sum
        })
        .collect())
}

/// The trapezoid rule over [0, 1] with the values evenly spaced (RISE's `auc`).
pub fn area(values: &[f32]) -> f32 {
    match values {
        [] => 0.0,
        [only] => *only,
        [first, .., last] => {
            let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
            ((sum - f64::from(*first) / 2.0 - f64::from(*last) / 2.0) / (values.len() - 1) as f64)
                as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_area_is_the_trapezoid_rule() {
        assert_eq!(area(&[1.0, 1.0, 1.0]), 1.0);
        assert_eq!(area(&[1.0, 0.0]), 0.5);
        assert!((area(&[0.0, 1.0, 1.0, 1.0]) - 5.0 / 6.0).abs() < 1e-7);
    }
}
