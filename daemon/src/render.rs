//! Explanations as pictures: the overlay of a map on the preprocessed photo, and PNG encoding
//! for the wire.

use convlens_models::explain::Explanation;
use convlens_models::render::{
    attribution_magnitude, attribution_overlay, cam_heat, overlay, Colormap,
};
use convlens_shared::array::Png;
use image::RgbImage;

/// The overlay of `e` on `photo`: a CAM upsampled to the photo and blended as pytorch-grad-cam
/// shows it; an attribution's magnitude (Captum's scaling) over the photo in gray, weighted by
/// its value.
pub fn overlay_of(
    e: &Explanation,
    photo: &RgbImage,
    cmap: Colormap,
    alpha: f32,
) -> convlens_models::Result<RgbImage> {
    let (w, h) = photo.dimensions();
    // A map of one value per position (a CAM, RISE's saliency) is a heat map; an input-space
    // attribution [C, H, W] shows its magnitude.
    if e.map.rank() == 2 {
        let heat = cam_heat(&e.map, h as usize, w as usize)?;
        Ok(overlay(photo, &heat, cmap, alpha))
    } else {
        let heat = attribution_magnitude(&e.map)?;
        Ok(attribution_overlay(photo, &heat, cmap, alpha))
    }
}

/// `picture` as a PNG for the wire.
pub fn png(picture: &RgbImage) -> Result<Png, image::ImageError> {
    let mut bytes = Vec::new();
    picture.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    Ok(Png::from_bytes(picture.width(), picture.height(), &bytes))
}
