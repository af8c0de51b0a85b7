//! The images that excite each unit most (deepvis's "top 9"): images ranked by the unit's maximum
//! over positions, with the position of that maximum.

use std::path::PathBuf;

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
