//! `image/list`: the images of a folder.

use std::path::Path;

use convlens_shared::methods::images::{FolderParams, ImageList, ImageListResult};

use super::call::Call;
use super::router::Router;
use crate::error::MethodError;
use crate::files::list_images;

/// Adds `image/list`.
pub fn register(r: &mut Router) {
    r.inline::<ImageList>(list);
}

/// The images directly inside the folder, sorted.
pub fn list(_: &Call, p: FolderParams) -> Result<ImageListResult, MethodError> {
    let images = list_images(Path::new(&p.folder)).map_err(|source| {
        MethodError::from(convlens_models::Error::Io {
            path: p.folder.clone().into(),
            source,
        })
    })?;
    Ok(ImageListResult {
        folder: p.folder,
        images: images.into_iter().collect(),
    })
}
