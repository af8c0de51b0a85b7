//! `layer/filters`: a convolution's kernels and their statistics. No image, no forward pass:
//! results are cached by their parameters per model version.

use convlens_models::units::{conv_filters, render_filter_grid, FilterBank, FilterGridOptions};
use convlens_shared::array::{Array, Png};
use convlens_shared::methods::filters::{
    FilterStats, FiltersParams, FiltersResult, KernelStats, LayerFilters,
};

use super::call::{cached, Call};
use super::router::{interactive, Router};
use crate::error::MethodError;
use crate::render::png;

/// Adds `layer/filters`.
pub fn register(r: &mut Router) {
    r.job::<LayerFilters>(interactive, filters);
}

/// The kernels of one convolution.
pub fn filters(call: &Call, p: FiltersParams) -> Result<FiltersResult, MethodError> {
    let loaded = call.service.models.acquire(&p.model_id)?;
    let version = loaded.key();
    let key = format!(
        "layer/filters {}",
        serde_json::to_string(&p).unwrap_or_default()
    );
    cached(call, &version, key, || {
        let bank = conv_filters(&loaded.model.graph, p.layer.as_deref(), p.dead_ratio)?;
        let grid = if p.render {
            let options = FilterGridOptions {
                max_filters: p.max_filters,
                max_inputs: p.max_inputs,
            };
            Some(
                png(&render_filter_grid(&bank, options))
                    .map_err(|e| MethodError::internal(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(result_of(loaded.version, &bank, p.weights, grid))
    })
}

/// The engine's filter bank in the protocol's terms.
fn result_of(version: u64, bank: &FilterBank, weights: bool, grid: Option<Png>) -> FiltersResult {
    let s = &bank.stats;
    FiltersResult {
        version,
        layer: bank.layer.clone(),
        out_channels: bank.out_channels,
        in_channels: bank.in_channels,
        groups: bank.groups,
        kernel_size: [bank.kernel_size.0, bank.kernel_size.1],
        stride: bank.stride,
        dilation: bank.dilation,
        padding: bank.padding.clone(),
        rgb: bank.rgb,
        stats: FilterStats {
            norm_min: s.norm_min,
            norm_median: s.norm_median,
            norm_mean: s.norm_mean,
            norm_max: s.norm_max,
            dead_ratio: s.dead_ratio,
            dead: s.dead.clone(),
            batch_norm_scaled: s.batch_norm_scaled,
        },
        filters: bank
            .filters
            .iter()
            .map(|k| KernelStats {
                filter: k.filter,
                l2_norm: k.l2_norm,
                mean: k.mean,
                min: k.min,
                max: k.max,
                effective_norm: k.effective_norm,
                dead: k.dead,
            })
            .collect(),
        weights: weights.then(|| Array::from_f32(&bank.weights.shape, &bank.weights.data)),
        grid,
    }
}
