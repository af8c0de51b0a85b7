//! `model/load`, `model/list`, `model/unload`, `model/layers`.

use convlens_shared::methods::model::{
    LayerInfo, LayersParams, LayersResult, ListResult, LoadParams, LoadResult, ModelLayers,
    ModelList, ModelLoad, ModelRef, ModelUnload,
};
use convlens_shared::methods::NoParams;

use super::call::{cached, Call};
use super::router::{interactive, Router};
use crate::error::MethodError;
use crate::files::FileStamp;
use crate::registry::LoadKey;
use crate::watch::Owner;

/// Adds the `model/*` methods.
pub fn register(r: &mut Router) {
    r.job::<ModelLoad>(interactive, load);
    r.inline::<ModelList>(list);
    r.inline::<ModelUnload>(unload);
    r.job::<ModelLayers>(interactive, layers);
}

/// Loads a model (or finds it loaded) and watches its file when asked.
pub fn load(call: &Call, p: LoadParams) -> Result<LoadResult, MethodError> {
    let key = LoadKey {
        path: p.path,
        options: convlens_models::LoadOptions {
            arch: p.arch,
            labels: p.labels.map(Into::into),
            graph: p.graph.map(Into::into),
            mean: p.mean,
            std: p.std,
            resize: p.resize,
        },
    };
    let watch = p.watch.unwrap_or(true) && key.is_file();
    let stamp = watch
        .then(|| FileStamp::of(std::path::Path::new(&key.path)))
        .flatten();
    let (loaded, layers) = call.service.models.load(&key, watch, call.client)?;
    if watch {
        if let Err(e) = call.service.watches.add_checkpoint(
            std::path::Path::new(&key.path),
            Owner::Model(loaded.id.clone()),
            stamp,
        ) {
            tracing::warn!(path = %key.path, "cannot watch the checkpoint: {}", e.message);
        }
    }
    Ok(LoadResult {
        model: call.service.models.info(&loaded.id)?,
        layers,
        note: loaded.model.note.clone(),
    })
}

/// Every model.
pub fn list(call: &Call, _: NoParams) -> Result<ListResult, MethodError> {
    Ok(ListResult {
        models: call.service.models.list(),
    })
}

/// Forgets a model, its caches and its watch.
pub fn unload(call: &Call, p: ModelRef) -> Result<(), MethodError> {
    call.service.models.unload(&p.model_id)?;
    call.service.drop_caches(&p.model_id, None);
    call.service
        .watches
        .remove_owner(&Owner::Model(p.model_id.clone()));
    call.service.release_free_memory();
    Ok(())
}

/// The layer tree for a square input.
pub fn layers(call: &Call, p: LayersParams) -> Result<LayersResult, MethodError> {
    let loaded = call.service.models.acquire(&p.model_id)?;
    let version = loaded.key();
    let size = match p.input_size {
        0 => loaded.model.preprocess.crop as usize,
        n => n,
    };
    cached(call, &version, format!("model/layers {size}"), || {
        let model = &loaded.model;
        let tree = model.layer_tree(size)?;
        Ok(LayersResult {
            arch: model.arch.clone(),
            source: model.source.clone(),
            version: loaded.version,
            channels: model.preprocess.normalization.channels,
            input_size: size,
            total_params: tree.total_params(),
            layers: tree
                .layers
                .iter()
                .map(|l| LayerInfo {
                    path: l.path.clone(),
                    class_name: l.class_name.clone(),
                    depth: l.depth,
                    output_shape: l.output_shape.clone(),
                    params: l.params,
                    is_leaf: l.is_leaf,
                    node: l.node,
                })
                .collect(),
        })
    })
}
