//! `model/versions` and `model/atVersion`: a watched checkpoint's versions, and any kept one as
//! a frozen model (`m1@3`) that every other method takes.

use convlens_shared::methods::history::{
    AtVersionParams, ModelAtVersion, ModelVersions, VersionsResult,
};
use convlens_shared::methods::model::{LoadResult, ModelRef};

use super::call::Call;
use super::router::{interactive, Router};
use crate::error::MethodError;

/// Adds `model/versions` and `model/atVersion`.
pub fn register(r: &mut Router) {
    r.inline::<ModelVersions>(versions);
    r.job::<ModelAtVersion>(interactive, at_version);
}

/// Every version of a model, oldest first.
pub fn versions(call: &Call, p: ModelRef) -> Result<VersionsResult, MethodError> {
    call.service.models.versions(&p.model_id)
}

/// A kept version as a frozen model, loaded from its copy (or found loaded).
pub fn at_version(call: &Call, p: AtVersionParams) -> Result<LoadResult, MethodError> {
    let (loaded, layers) = call.service.models.at_version(&p.model_id, p.version)?;
    Ok(LoadResult {
        model: call.service.models.info(&loaded.id)?,
        layers,
        note: None,
    })
}
