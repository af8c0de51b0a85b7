//! Per-unit statistics over a folder: mean activation, maximum, how often the unit fires, and
//! which units never do.

use super::codes::FolderSummary;

/// The statistics of one unit.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UnitStat {
    /// The unit (channel) index.
    pub unit: usize,
    /// Mean activation over images and positions.
    pub mean: f32,
    /// Largest activation over images and positions.
    pub max: f32,
    /// Fraction of images on which the unit is active (its maximum over positions is above 0).
    pub active_fraction: f32,
}

/// Statistics of every unit of a layer over a folder.
#[derive(Clone, Debug, serde::Serialize)]
pub struct UnitStats {
    /// The layer's path.
    pub layer: String,
    /// Images counted.
    pub images: usize,
    /// One entry per unit.
    pub units: Vec<UnitStat>,
    /// Units never active on any image.
    pub dead: Vec<usize>,
}

/// The statistics of every unit of `summary`'s layer.
pub fn unit_stats(summary: &FolderSummary) -> UnitStats {
    let c = summary.shape.units;
    let n = summary.len();
    let mut sum = vec![0f64; c];
    let mut max = vec![f32::NEG_INFINITY; c];
    let mut active = vec![0usize; c];
    for i in 0..n {
        for u in 0..c {
            sum[u] += f64::from(summary.codes[i * c + u]);
            let m = summary.max[i * c + u];
            max[u] = max[u].max(m);
            if m > 0.0 {
                active[u] += 1;
            }
        }
    }
    let units: Vec<UnitStat> = (0..c)
        .map(|u| UnitStat {
            unit: u,
            mean: if n > 0 {
                (sum[u] / n as f64) as f32
            } else {
                0.0
            },
            max: if n > 0 { max[u] } else { 0.0 },
            active_fraction: if n > 0 {
                active[u] as f32 / n as f32
            } else {
                0.0
            },
        })
        .collect();
    let dead = (0..c).filter(|&u| n > 0 && active[u] == 0).collect();
    UnitStats {
        layer: summary.layer.clone(),
        images: n,
        units,
        dead,
    }
}

/// [`unit_stats`] over a pass that streams by: the same sums in the same order, so the same
/// bits, holding one row of numbers per unit and never the folder.
#[derive(Clone, Debug, Default)]
pub struct StatsAccumulator {
    sum: Vec<f64>,
    max: Vec<f32>,
    active: Vec<usize>,
    images: usize,
}

impl StatsAccumulator {
    /// Takes the next image's code (per unit, the mean over positions) and maxima.
    pub fn push(&mut self, code: &[f32], max: &[f32]) {
        if self.images == 0 {
            self.sum = vec![0.0; code.len()];
            self.max = vec![f32::NEG_INFINITY; code.len()];
            self.active = vec![0; code.len()];
        }
        for u in 0..self.sum.len().min(code.len()).min(max.len()) {
            self.sum[u] += f64::from(code[u]);
            self.max[u] = self.max[u].max(max[u]);
            if max[u] > 0.0 {
                self.active[u] += 1;
            }
        }
        self.images += 1;
    }

    /// The statistics of a layer of `units` units called `layer`.
    pub fn finish(self, layer: &str, units: usize) -> UnitStats {
        let n = self.images;
        let stat = |u: usize| UnitStat {
            unit: u,
            mean: if n > 0 {
                (self.sum[u] / n as f64) as f32
            } else {
                0.0
            },
            max: if n > 0 { self.max[u] } else { 0.0 },
            active_fraction: if n > 0 {
                self.active[u] as f32 / n as f32
            } else {
                0.0
            },
        };
        UnitStats {
            layer: layer.to_string(),
            images: n,
            units: (0..units).map(stat).collect(),
            dead: (0..units)
                .filter(|&u| n > 0 && self.active[u] == 0)
                .collect(),
        }
    }
}
