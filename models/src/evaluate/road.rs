//! ROAD, RemOve And Debias (Rong, Leemann, Borisov, Kasneci and Kasneci 2022), as
//! pytorch-grad-cam's `metrics/road.py` computes it: for each percentile p of the map (scaled
//! to [0, 1] at the input's size, see [`super::confidence::cam_multiplier`]), the pixels at or
//! above the map's p-th percentile (NumPy's linear percentile) are removed and filled by
//! [`super::impute::noisy_linear_impute`]; the score is the class's probability after, less
//! before. MoRF ranks the map as it is (at p = 80 the most relevant 20 % go), LeRF ranks
//! 1 − map (the least relevant go); each is averaged over the percentiles (its
//! `ROAD…RelevantFirstAverage`), and their combination is (LeRF − MoRF) / 2 (`ROADCombined`).
//! A faithful map makes MoRF drop far and LeRF little: lower MoRF, higher LeRF and combined.

use candle_core::{DType, Tensor};

use super::causal::class_probabilities;
use super::impute::{noise_rng, noisy_linear_impute};
use crate::progress::Progress;
use crate::{Error, Model, Result};

/// Which pixels go first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoadOrder {
    /// Most relevant first (MoRF).
    MostRelevantFirst,
    /// Least relevant first (LeRF).
    LeastRelevantFirst,
}

/// How ROAD perturbs.
#[derive(Clone, Debug)]
pub struct RoadOptions {
    /// The percentiles of the map that are thresholds (each in [0, 100)).
    pub percentiles: Vec<f64>,
    /// The imputation's noise (standard deviation, in the normalized input's units).
    pub noise: f64,
    /// The noise's seed.
    pub seed: u64,
    /// Copies per forward pass.
    pub batch: usize,
}

impl RoadOptions {
    /// One clear error for options ROAD cannot run with.
    pub fn check(&self) -> Result<()> {
        if self.percentiles.is_empty() || self.batch == 0 {
            return Err(Error::InvalidArgument(
                "ROAD needs at least one percentile and a batch of at least 1".into(),
            ));
        }
        if let Some(p) = self.percentiles.iter().find(|p| !(0.0..100.0).contains(*p)) {
            return Err(Error::InvalidArgument(format!(
                "ROAD percentile {p} is outside 0..100 (100 keeps no pixel to impute from)"
            )));
        }
        if !(self.noise >= 0.0 && self.noise.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "ROAD's noise must be a finite value ≥ 0, not {}",
                self.noise
            )));
        }
        Ok(())
    }
}

impl Default for RoadOptions {
    /// The protocol's defaults (`convlens_shared::defaults::evaluate`): pytorch-grad-cam's.
    fn default() -> Self {
        use convlens_shared::defaults::{evaluate, explain};
        RoadOptions {
            percentiles: evaluate::ROAD_PERCENTILES.to_vec(),
            noise: evaluate::ROAD_NOISE,
            seed: explain::SEED,
            batch: explain::BATCH,
        }
    }
}

/// One order's scores.
#[derive(Clone, Debug, PartialEq)]
pub struct RoadScore {
    /// MoRF or LeRF.
    pub order: RoadOrder,
    /// The change in the class's probability at each percentile.
    pub changes: Vec<f32>,
    /// Their mean.
    pub mean: f32,
    /// How many pixels each percentile removed.
    pub removed: Vec<usize>,
}

/// NumPy's `percentile(values, p)` (its default, linear method) of f32 values, rounded to f32
/// as PyTorch rounds it when it compares an f32 tensor with it.
pub fn numpy_percentile(values: &[f32], p: f64) -> Result<f32> {
    if values.is_empty() || !(0.0..=100.0).contains(&p) || values.iter().any(|v| v.is_nan()) {
        return Err(Error::InvalidArgument(format!(
            "no {p}th percentile of {} values (percentiles lie in 0..100, values not NaN)",
            values.len()
        )));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f32::total_cmp);
    let index = p / 100.0 * (sorted.len() - 1) as f64;
    let below = index.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let t = index - below as f64;
    let (a, b) = (f64::from(sorted[below]), f64::from(sorted[above]));
    let diff = b - a;
    // NumPy's `_lerp`, which counts from the nearer end.
    let value = if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    };
    Ok(value as f32)
}

/// ROAD in `order` for class `class` of `model` on `input` [1, C, H, W] (normalized) under
/// `cam` [H, W] (the map scaled to [0, 1]).
pub fn road(
    model: &Model,
    input: &Tensor,
    cam: &Tensor,
    class: usize,
    order: RoadOrder,
    options: &RoadOptions,
    progress: &dyn Progress,
) -> Result<RoadScore> {
    let (_, h, w) = match input.dims() {
        [1, c, h, w] => (*c, *h, *w),
        other => {
            return Err(Error::InvalidArgument(format!(
                "ROAD takes one input [1, C, H, W], got {other:?}"
            )))
        }
    };
    if cam.dims() != [h, w] {
        return Err(Error::InvalidArgument(format!(
            "a map of shape {:?} for an input of {h}×{w}",
            cam.dims()
        )));
    }
    options.check()?;
    let device = &model.device;
    let input = input.to_device(device)?.to_dtype(DType::F32)?;
    let mut ranked = cam
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_device(&candle_core::Device::Cpu)?
        .to_vec1::<f32>()?;
    if order == RoadOrder::LeastRelevantFirst {
        for v in &mut ranked {
            *v = 1.0 - *v;
        }
    }
    let label = match order {
        RoadOrder::MostRelevantFirst => "ROAD most relevant first",
        RoadOrder::LeastRelevantFirst => "ROAD least relevant first",
    };
    let total = options.percentiles.len();
    let image = input.squeeze(0)?;
    let mut rng = noise_rng(options.seed);
    let mut copies = Vec::with_capacity(total);
    let mut removed_counts = Vec::with_capacity(total);
    for (i, &p) in options.percentiles.iter().enumerate() {
        progress.step(i, total + 1, label)?;
        let threshold = numpy_percentile(&ranked, p)?;
        // pytorch-grad-cam keeps the pixels below the threshold (no value is NaN: see above).
        let removed: Vec<bool> = ranked.iter().map(|&v| v >= threshold).collect();
        let count = removed.iter().filter(|&&r| r).count();
        if count == removed.len() {
            // pytorch-grad-cam then solves a singular system (NaN).
            return Err(Error::InvalidArgument(format!(
                "ROAD: the map's {p}th percentile is its minimum ({threshold}): no pixel lies \
                 below it, so none is kept to impute from (the map is flat at its minimum over \
                 more than {p} % of the image)"
            )));
        }
        removed_counts.push(count);
        copies.push(noisy_linear_impute(
            &image,
            &removed,
            options.noise,
            &mut rng,
        )?);
    }
    progress.step(total, total + 1, label)?;
    let before = class_probabilities(&model.logits(&input)?, class)?[0];
    let mut after = Vec::with_capacity(total);
    for chunk in copies.chunks(options.batch) {
        let batch = Tensor::stack(chunk, 0)?;
        after.extend(class_probabilities(&model.logits(&batch)?, class)?);
    }
    progress.step(total + 1, total + 1, label)?;
    // pytorch-grad-cam subtracts f32 probabilities.
    let changes: Vec<f32> = after
        .iter()
        .map(|&a| (a as f32) - (before as f32))
        .collect();
    let mean = (changes.iter().map(|&c| f64::from(c)).sum::<f64>() / changes.len() as f64) as f32;
    Ok(RoadScore {
        order,
        changes,
        mean,
        removed: removed_counts,
    })
}

/// pytorch-grad-cam's `ROADCombined`: (LeRF − MoRF) / 2 of the averages.
pub fn road_combined(most: &RoadScore, least: &RoadScore) -> f32 {
    (least.mean - most.mean) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_percentile_is_numpys_linear_one() {
        let v = [3.0f32, 1.0, 2.0, 4.0];
        assert_eq!(numpy_percentile(&v, 0.0).unwrap(), 1.0);
        assert_eq!(numpy_percentile(&v, 100.0).unwrap(), 4.0);
        assert_eq!(numpy_percentile(&v, 50.0).unwrap(), 2.5);
        // np.percentile([1, 2, 3, 4], 10) == 1.3
        assert!((numpy_percentile(&v, 10.0).unwrap() - 1.3).abs() < 1e-6);
        assert!(numpy_percentile(&v, 101.0).is_err());
        assert!(numpy_percentile(&[], 10.0).is_err());
    }
}
