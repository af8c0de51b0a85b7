//! The images that excite each unit most (deepvis's "top 9"): images ranked by the unit's maximum
//! over positions, with the position of that maximum.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::codes::{FolderSummary, LayerShape};
use crate::{Error, Result};

/// One image in a unit's ranking.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TopEntry {
    /// Index of the image in the summary.
    pub image: usize,
    /// The image file.
    pub path: PathBuf,
    /// The unit's maximum over positions on this image.
    pub value: f32,
    /// Row of that maximum.
    pub y: usize,
    /// Column of that maximum.
    pub x: usize,
}

/// A unit's top images, best first.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UnitTop {
    /// The unit (channel) index.
    pub unit: usize,
    /// Its top images.
    pub top: Vec<TopEntry>,
}

/// The top images of some units of a layer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TopUnits {
    /// The layer's path.
    pub layer: String,
    /// Its units and positions.
    pub shape: LayerShape,
    /// Images per unit asked for.
    pub k: usize,
    /// One ranking per unit asked for.
    pub units: Vec<UnitTop>,
}

/// The `k` images with the highest maximum of each unit in `units` (every unit when `None`).
/// Ties are broken by image order, so the ranking is deterministic.
pub fn top_images(summary: &FolderSummary, k: usize, units: Option<&[usize]>) -> Result<TopUnits> {
    let shape = summary.shape;
    let c = shape.units;
    let all: Vec<usize>;
    let units = match units {
        Some(u) => u,
        None => {
            all = (0..c).collect();
            &all
        }
    };
    if let Some(&bad) = units.iter().find(|&&u| u >= c) {
        return Err(Error::InvalidArgument(format!(
            "unit {bad} is out of range: layer `{}` has {c} units",
            summary.layer
        )));
    }
    let n = summary.len();
    let mut out = Vec::with_capacity(units.len());
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for &unit in units {
        let value = |i: usize| summary.max[i * c + unit];
        let rank = |a: &usize, b: &usize| value(*b).total_cmp(&value(*a)).then(a.cmp(b));
        order.clear();
        order.extend(0..n);
        let keep = k.min(n);
        if keep > 0 && keep < n {
            order.select_nth_unstable_by(keep - 1, rank);
            order.truncate(keep);
        }
        order.sort_by(rank);
        order.truncate(keep);
        let top = order
            .iter()
            .map(|&i| {
                let pos = summary.argmax[i * c + unit] as usize;
                TopEntry {
                    image: i,
                    path: summary.paths[i].clone(),
                    value: value(i),
                    y: pos / shape.width.max(1),
                    x: pos % shape.width.max(1),
                }
            })
            .collect();
        out.push(UnitTop { unit, top });
    }
    Ok(TopUnits {
        layer: summary.layer.clone(),
        shape,
        k,
        units: out,
    })
}

/// One image kept in a unit's ranking while a pass streams by (its path shared by every unit
/// that keeps it).
#[derive(Clone, Debug)]
struct Kept {
    value: f32,
    image: usize,
    path: Arc<PathBuf>,
    position: u32,
}

impl Kept {
    /// The ranking's order, best first: larger value, then earlier image.
    fn rank(&self, other: &Kept) -> std::cmp::Ordering {
        other
            .value
            .total_cmp(&self.value)
            .then(self.image.cmp(&other.image))
    }
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.rank(other).is_eq()
    }
}

impl Eq for Kept {}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kept {
    /// The worst kept is the heap's top.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.rank(other)
    }
}

/// [`top_images`] over a pass that streams by, holding `k` images per unit (and their paths)
/// and never the folder: the same rankings (ties broken by image order alike).
pub struct TopAccumulator {
    layer: String,
    k: usize,
    units: Vec<usize>,
    heaps: Vec<std::collections::BinaryHeap<Kept>>,
    images: usize,
}

impl TopAccumulator {
    /// Keeps the `k` best images of each of `units` of `layer` (every unit when `None`, known
    /// at the first row).
    pub fn new(layer: &str, k: usize, units: Option<&[usize]>) -> TopAccumulator {
        let units = units.map(<[usize]>::to_vec).unwrap_or_default();
        TopAccumulator {
            layer: layer.to_string(),
            k,
            heaps: vec![std::collections::BinaryHeap::new(); units.len()],
            units,
            images: 0,
        }
    }

    /// Takes the next image's path, maxima and their positions.
    pub fn push(&mut self, path: &Path, max: &[f32], argmax: &[u32]) -> Result<()> {
        if self.images == 0 && self.units.is_empty() {
            self.units = (0..max.len()).collect();
            self.heaps = vec![std::collections::BinaryHeap::new(); max.len()];
        }
        let mut shared: Option<Arc<PathBuf>> = None;
        for (heap, &unit) in self.heaps.iter_mut().zip(&self.units) {
            let (Some(&value), Some(&position)) = (max.get(unit), argmax.get(unit)) else {
                return Err(Error::InvalidArgument(format!(
                    "unit {unit} is out of range: layer `{}` has {} units",
                    self.layer,
                    max.len()
                )));
            };
            // The worst kept is the heap's top: a later image that does not beat it never will.
            let full = heap.len() >= self.k;
            if full
                && heap
                    .peek()
                    .is_none_or(|worst| value.total_cmp(&worst.value).is_le())
            {
                continue;
            }
            let path = shared
                .get_or_insert_with(|| Arc::new(path.to_path_buf()))
                .clone();
            heap.push(Kept {
                value,
                image: self.images,
                path,
                position,
            });
            if heap.len() > self.k {
                heap.pop();
            }
        }
        self.images += 1;
        Ok(())
    }

    /// The rankings, as [`top_images`] gives them.
    pub fn finish(mut self, shape: LayerShape) -> Result<TopUnits> {
        if self.images == 0 && self.units.is_empty() {
            // No image came: every unit, each with an empty ranking (as `top_images` gives).
            self.units = (0..shape.units).collect();
            self.heaps = vec![std::collections::BinaryHeap::new(); shape.units];
        }
        if let Some(&bad) = self.units.iter().find(|&&u| u >= shape.units) {
            return Err(Error::InvalidArgument(format!(
                "unit {bad} is out of range: layer `{}` has {} units",
                self.layer, shape.units
            )));
        }
        let width = shape.width.max(1);
        let units = self
            .units
            .iter()
            .zip(self.heaps)
            .map(|(&unit, heap)| UnitTop {
                unit,
                top: heap
                    .into_sorted_vec()
                    .into_iter()
                    .map(|kept| TopEntry {
                        image: kept.image,
                        path: Arc::unwrap_or_clone(kept.path),
                        value: kept.value,
                        y: kept.position as usize / width,
                        x: kept.position as usize % width,
                    })
                    .collect(),
            })
            .collect();
        Ok(TopUnits {
            layer: self.layer,
            shape,
            k: self.k,
            units,
        })
    }
}
