//! `unit/deconv`: deconvnet (or guided, or gradient) projections of units of a layer down to
//! pixels, a step of `$/progress` per unit. Results are cached by their full parameters.

use std::path::Path;

use convlens_models::render::input_photo;
use convlens_models::units::{
    reconstruct_with_trace, render_reconstructions, DeconvOptions, Reconstruction, UnitSelection,
};
use convlens_shared::array::Array;
use convlens_shared::methods::deconv::{
    DeconvParams, DeconvResult, ReceptiveField, ReconstructionData, UnitDeconv,
};

use super::call::{cached, Call};
use super::router::{interactive, Router};
use crate::error::MethodError;
use crate::files::ImageKey;
use crate::render::png;

/// Adds `unit/deconv`.
pub fn register(r: &mut Router) {
    r.job::<UnitDeconv>(interactive, deconv);
}

/// The projections of the asked units.
pub fn deconv(call: &Call, p: DeconvParams) -> Result<DeconvResult, MethodError> {
    let options = options_of(&p)?;
    let loaded = call.service.models.acquire(&p.model_id)?;
    let version = loaded.key();
    let image = ImageKey::of(Path::new(&p.image));
    let key = {
        let mut q = p.clone();
        q.work_done_token = None;
        format!(
            "unit/deconv {} {:?}",
            serde_json::to_string(&q).unwrap_or_default(),
            image.stamp
        )
    };
    cached(call, &version, key, || {
        let model = &loaded.model;
        let input = call.service.inputs.get_or_load(&version, model, &image)?;
        // The full forward trace from the activation cache, shared with explain (and predict,
        // when the image before had the same views).
        let trace = call
            .service
            .activations
            .full_trace(&version, model, &image, &input)?;
        let recs = reconstruct_with_trace(&model.graph, &input, &trace, &options, call.progress)?;
        let picture = if p.render {
            let norm = model.normalization();
            let photo = input_photo(&input, norm.mean, norm.std)?;
            let drawn = render_reconstructions(&recs, &photo, p.tile.max(8))?;
            Some(png(&drawn).map_err(|e| MethodError::internal(e.to_string()))?)
        } else {
            None
        };
        Ok(DeconvResult {
            version: loaded.version,
            reconstructions: recs.iter().map(|r| data_of(r, p.signals)).collect(),
            picture,
        })
    })
}

/// The engine's options from the parameters, refusing what does not fit.
fn options_of(p: &DeconvParams) -> Result<DeconvOptions, MethodError> {
    let position = p.position;
    let rule = p.rule;
    let units = match (p.top, p.units.is_empty()) {
        (Some(k), true) => UnitSelection::Strongest(k),
        (None, false) => UnitSelection::Units(p.units.clone()),
        _ => {
            return Err(convlens_models::Error::InvalidArgument(
                "give exactly one of `units` and `top`".into(),
            )
            .into())
        }
    };
    Ok(DeconvOptions {
        layer: p.layer.clone(),
        units,
        position,
        rule,
    })
}

/// One reconstruction in the protocol's terms.
fn data_of(r: &Reconstruction, signal: bool) -> ReconstructionData {
    ReconstructionData {
        layer: r.layer.clone(),
        unit: r.unit,
        position: r.position.name().into(),
        rule: r.rule.clone(),
        location: r.location.map(|(row, col)| [row, col]),
        activation: r.activation,
        receptive_field: r.receptive_field.map(|f| ReceptiveField {
            top: f.top,
            left: f.left,
            bottom: f.bottom,
            right: f.right,
            size: [f.size.0, f.size.1],
        }),
        signal: signal.then(|| Array::from_f32(&r.signal.shape, &r.signal.data)),
    }
}
