//! The picture of units' top images: one row per unit, each image cropped (as the model sees it)
//! to the unit's receptive field around the position of its maximum, as deepvis shows them.

use image::{imageops, Rgb, RgbImage};

use super::map_render::draw_text;
use super::receptive_field::ReceptiveField;
use super::top_units::TopUnits;
use crate::input::{open_image, Preprocess};
use crate::progress::Progress;
use crate::Result;

/// Width of the label column on the left of each row.
const LABEL_WIDTH: u32 = 64;
/// Pixels between tiles.
const GAP: u32 = 2;

/// The crop of one top image: the receptive field of the unit at (`y`, `x`), clipped to the
/// model's input, resized to `tile`×`tile` (a grey tile when the image cannot be read).
pub fn field_crop(
    path: &std::path::Path,
    preprocess: &Preprocess,
    field: &ReceptiveField,
    (y, x): (usize, usize),
    tile: u32,
) -> RgbImage {
    let Ok(image) = open_image(path) else {
        return RgbImage::from_pixel(tile, tile, Rgb([128, 128, 128]));
    };
    let seen = preprocess.crop_image(&image).to_rgb8();
    let (top, left, bottom, right) =
        field.rect(y, x, seen.height() as usize, seen.width() as usize);
    let crop = imageops::crop_imm(
        &seen,
        left as u32,
        top as u32,
        (right - left + 1) as u32,
        (bottom - top + 1) as u32,
    )
    .to_image();
    imageops::resize(&crop, tile, tile, imageops::FilterType::Triangle)
}

/// One row per unit of `top`, its images left to right, best first, under a "unit N" label.
pub fn render_top_grid(
    top: &TopUnits,
    preprocess: &Preprocess,
    field: &ReceptiveField,
    tile: u32,
    progress: &dyn Progress,
) -> Result<RgbImage> {
    let k = top
        .units
        .iter()
        .map(|u| u.top.len())
        .max()
        .unwrap_or(0)
        .max(1) as u32;
    let rows = top.units.len().max(1) as u32;
    let width = LABEL_WIDTH + k * (tile + GAP) + GAP;
    let height = rows * (tile + GAP) + GAP;
    let mut img = RgbImage::from_pixel(width, height, Rgb([24, 24, 24]));
    for (r, unit) in top.units.iter().enumerate() {
        let y0 = GAP + r as u32 * (tile + GAP);
        draw_text(
            &mut img,
            4,
            i64::from(y0 + tile / 2) - 4,
            &format!("unit {}", unit.unit),
            [230, 230, 230],
            1,
        );
        for (c, entry) in unit.top.iter().enumerate() {
            let crop = field_crop(&entry.path, preprocess, field, (entry.y, entry.x), tile);
            let x0 = LABEL_WIDTH + GAP + c as u32 * (tile + GAP);
            imageops::overlay(&mut img, &crop, x0.into(), y0.into());
        }
        progress.step(r + 1, top.units.len(), "drawing the top images")?;
    }
    Ok(img)
}
