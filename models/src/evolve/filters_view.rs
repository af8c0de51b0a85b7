//! The `filters` view: a convolution's kernels in one checkpoint, drawn on a colour scale shared
//! by every checkpoint so that weights growing or shrinking over training stay visible.

use image::{ImageBuffer, Rgb, RgbImage};

use crate::graph::Graph;
use crate::render::grid;
use crate::units::{conv_filters, symmetric_level, FilterBank, FilterGridOptions, TILE_GAP};
use crate::Result;

/// The fraction of the median norm under which `conv_filters` calls a filter dead (only its
/// statistics use it; the view draws every filter).
const DEAD_RATIO: f32 = 0.01;

/// The convolution `layer` (the first convolution when `None`) of one checkpoint's graph.
pub fn checkpoint_filters(graph: &Graph, layer: Option<&str>) -> Result<FilterBank> {
    conv_filters(graph, layer, DEAD_RATIO)
}

/// The view's number for one checkpoint: the mean of the filters' L2 norms (the raw weights, as
/// drawn; not scaled by a following BatchNorm).
pub fn filter_norm_mean(bank: &FilterBank) -> f32 {
    let n = bank.filters.len().max(1);
    bank.filters.iter().map(|f| f.l2_norm).sum::<f32>() / n as f32
}

/// The largest |w| among the filters a grid with `options` shows, over every bank: the one
/// symmetric scale all frames share (±scale is white or black, zero mid-gray).
pub fn shared_filter_scale(banks: &[&FilterBank], options: FilterGridOptions) -> f32 {
    banks
        .iter()
        .flat_map(|bank| {
            let shown = bank.out_channels.min(options.max_filters.max(1));
            (0..shown).map(move |f| bank.filter_scale(f))
        })
        .fold(0f32, f32::max)
}

/// The kernels as [`FilterBank::grid_layout`] lays them out (RGB tiles for a first layer, gray
/// tiles deeper), every weight mapped with [`symmetric_level`] at `scale` rather than at each
/// filter's own maximum as `units::render_filter_grid` does: that per-filter scaling would hide
/// how the weights change between checkpoints.
pub fn render_filters_at_scale(
    bank: &FilterBank,
    options: FilterGridOptions,
    scale: f32,
) -> RgbImage {
    let layout = bank.grid_layout(options);
    let (kh, kw) = bank.kernel_size;
    let factor = layout.factor.max(1);
    let w = &bank.weights;
    let level = |f: usize, c: usize, y: usize, x: usize| {
        let v = symmetric_level(w.at(&[f, c, y, x]).unwrap_or(0.0), scale);
        (v * 255.0).round().clamp(0.0, 255.0) as u8
    };
    let tiles: Vec<RgbImage> = layout
        .tiles
        .iter()
        .map(|&(f, channel)| {
            ImageBuffer::from_fn(kw as u32 * factor, kh as u32 * factor, |px, py| {
                let (y, x) = ((py / factor) as usize, (px / factor) as usize);
                Rgb(match channel {
                    None => [level(f, 0, y, x), level(f, 1, y, x), level(f, 2, y, x)],
                    Some(c) => [level(f, c, y, x); 3],
                })
            })
        })
        .collect();
    grid(&tiles, layout.columns, TILE_GAP)
}
