//! `unit/activations`: a layer's feature maps on one image and each channel's numbers. The
//! forward pass comes from the activation cache, so explain and the unit grid of one image
//! share it, and predict's when the image before had the same views.

use std::path::Path;

use convlens_models::units::{layer_activations_from, render_activation_grid, LayerActivations};
use convlens_shared::array::Array;
use convlens_shared::methods::activations::{
    ActivationsParams, ActivationsResult, ChannelStats, UnitActivations,
};

use super::call::{cached, Call};
use super::router::{interactive, Router};
use crate::error::MethodError;
use crate::files::ImageKey;
use crate::render::png;

/// Adds `unit/activations`.
pub fn register(r: &mut Router) {
    r.job::<UnitActivations>(interactive, activations);
}

/// The maps and numbers of one layer on one image.
pub fn activations(call: &Call, p: ActivationsParams) -> Result<ActivationsResult, MethodError> {
    let scale = p.scale;
    let cmap = p.cmap;
    let loaded = call.service.models.acquire(&p.model_id)?;
    let version = loaded.key();
    let image = ImageKey::of(Path::new(&p.image));
    let key = format!(
        "unit/activations {} {:?}",
        serde_json::to_string(&p).unwrap_or_default(),
        image.stamp
    );
    cached(call, &version, key, || {
        let model = &loaded.model;
        let service = call.service;
        let node = model.graph.node_id(&p.layer)?;
        let forward =
            service
                .activations
                .get_or_forward(&version, model, &image, Some(&[node]), || {
                    let input = service.inputs.get_or_load(&version, model, &image)?;
                    if input.rank() != 4 || input.dim(0)? != 1 {
                        return Err(convlens_models::Error::Shape {
                            what: "input".into(),
                            expected: "[1, C, H, W]".into(),
                            found: format!("{:?}", input.dims()),
                        });
                    }
                    Ok(input)
                })?;
        let acts = layer_activations_from(&model.graph, &p.layer, |n| forward.get(n).cloned())?;
        let grid = if p.render {
            Some(
                png(&render_activation_grid(&acts, scale, cmap))
                    .map_err(|e| MethodError::internal(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(result_of(loaded.version, &acts, p.maps, grid))
    })
}

/// The engine's activations in the protocol's terms.
fn result_of(
    version: u64,
    acts: &LayerActivations,
    maps: bool,
    grid: Option<convlens_shared::array::Png>,
) -> ActivationsResult {
    let l = &acts.layer;
    ActivationsResult {
        version,
        layer: l.name.clone(),
        shape: [l.channels, l.height, l.width],
        channels: acts
            .channels
            .iter()
            .map(|c| ChannelStats {
                channel: c.channel,
                mean: c.mean,
                min: c.min,
                max: c.max,
                argmax: [c.argmax.0, c.argmax.1],
                active_fraction: c.active_fraction,
            })
            .collect(),
        maps: maps.then(|| Array::from_f32(&acts.maps.shape, &acts.maps.data)),
        grid,
    }
}
