//! Pictures of a 2-D map of codes: a scatter coloured by predicted class with a legend, or
//! Karpathy's t-SNE grid, where each image's thumbnail is snapped to a cell of a lattice.
//!
//! Text is drawn with [`crate::render::text::draw_text`].

use std::collections::BTreeMap;
use std::path::Path;

use image::{imageops, Rgb, RgbImage};

use crate::input::{open_image, Preprocess};
use crate::progress::Progress;
use crate::render::text::draw_text;
use crate::Result;

/// matplotlib's `tab20` colours, the even entries first (they are `tab10`).
pub(crate) const PALETTE: [[u8; 3]; 20] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
    [174, 199, 232],
    [255, 187, 120],
    [152, 223, 138],
    [255, 152, 150],
    [197, 176, 213],
    [196, 156, 148],
    [247, 182, 210],
    [199, 199, 199],
    [219, 219, 141],
    [158, 218, 229],
];
const OTHER: [u8; 3] = [190, 190, 190];

/// Fills the disc of radius `r` around (`cx`, `cy`) (clipped to the picture).
pub(crate) fn fill_disc(img: &mut RgbImage, cx: f32, cy: f32, r: f32, color: [u8; 3]) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let r2 = r * r;
    for y in (cy - r).floor() as i64..=(cy + r).ceil() as i64 {
        for x in (cx - r).floor() as i64..=(cx + r).ceil() as i64 {
            let (dx, dy) = (x as f32 - cx, y as f32 - cy);
            if x >= 0 && y >= 0 && x < w && y < h && dx * dx + dy * dy <= r2 {
                img.put_pixel(x as u32, y as u32, Rgb(color));
            }
        }
    }
}

/// Points scaled into `[0, 1]²` (the longer extent fills it; the other is centred).
pub fn normalize_points(points: &[[f32; 2]]) -> Vec<[f32; 2]> {
    let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for p in points {
        for a in 0..2 {
            lo[a] = lo[a].min(p[a]);
            hi[a] = hi[a].max(p[a]);
        }
    }
    let span = (hi[0] - lo[0]).max(hi[1] - lo[1]);
    if span.is_nan() || span <= 0.0 || span.is_infinite() {
        return vec![[0.5, 0.5]; points.len()];
    }
    let offset = [
        (span - (hi[0] - lo[0])) / 2.0,
        (span - (hi[1] - lo[1])) / 2.0,
    ];
    points
        .iter()
        .map(|p| {
            [
                (p[0] - lo[0] + offset[0]) / span,
                (p[1] - lo[1] + offset[1]) / span,
            ]
        })
        .collect()
}

/// A scatter plot of `points`, `size` pixels square plus a legend on the right: each point a dot
/// coloured by `classes[i]`, the legend naming the classes (most frequent first; past 19 of
/// them the rest share a grey "other").
pub fn render_scatter(
    points: &[[f32; 2]],
    classes: &[u32],
    label: &dyn Fn(u32) -> String,
    size: u32,
) -> RgbImage {
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for &c in classes {
        *counts.entry(c).or_default() += 1;
    }
    let mut by_count: Vec<(u32, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let shown = if by_count.len() > PALETTE.len() {
        PALETTE.len() - 1
    } else {
        by_count.len()
    };
    let color_of: BTreeMap<u32, [u8; 3]> = by_count
        .iter()
        .take(shown)
        .enumerate()
        .map(|(i, &(c, _))| (c, PALETTE[i]))
        .collect();
    let mut legend: Vec<(String, [u8; 3])> = by_count
        .iter()
        .take(shown)
        .map(|&(c, n)| (format!("{} ({n})", label(c)), color_of[&c]))
        .collect();
    if by_count.len() > shown {
        let rest: usize = by_count.iter().skip(shown).map(|x| x.1).sum();
        legend.push((format!("other ({rest})"), OTHER));
    }
    let text_width = legend
        .iter()
        .map(|(t, _)| t.chars().count().min(40))
        .max()
        .unwrap_or(0) as u32;
    let legend_width = 40 + 8 * text_width;
    let size = size.max(64);
    let mut img = RgbImage::from_pixel(
        size + legend_width,
        size.max(24 + 14 * legend.len() as u32),
        Rgb([255, 255, 255]),
    );
    let margin = 12.0;
    let inner = size as f32 - 2.0 * margin;
    let radius = if points.len() > 5000 { 1.5 } else { 3.0 };
    for (p, c) in normalize_points(points).iter().zip(classes) {
        let color = color_of.get(c).copied().unwrap_or(OTHER);
        // Image rows grow downwards: flip y so the map reads like a plot.
        fill_disc(
            &mut img,
            margin + p[0] * inner,
            margin + (1.0 - p[1]) * inner,
            radius,
            color,
        );
    }
    for (i, (text, color)) in legend.iter().enumerate() {
        let y = 12 + 14 * i as i64;
        let x = i64::from(size) + 8;
        fill_disc(&mut img, x as f32 + 5.0, y as f32 + 4.0, 4.5, *color);
        let text: String = text.chars().take(40).collect();
        draw_text(&mut img, x + 16, y, &text, [0, 0, 0], 1);
    }
    img
}

/// Snaps `points` to a `columns`×`rows` lattice: cells are visited row by row and each takes the
/// nearest point not yet placed (in normalized map coordinates). Returns the point in each cell,
/// row-major; cells left over when there are fewer points are `None`.
pub fn snap_to_grid(points: &[[f32; 2]], columns: usize, rows: usize) -> Vec<Option<usize>> {
    let normalized = normalize_points(points);
    let mut used = vec![false; points.len()];
    let mut cells = Vec::with_capacity(columns * rows);
    for r in 0..rows {
        for c in 0..columns {
            let centre = [
                (c as f32 + 0.5) / columns as f32,
                1.0 - (r as f32 + 0.5) / rows as f32,
            ];
            let best = normalized
                .iter()
                .enumerate()
                .filter(|(i, _)| !used[*i])
                .map(|(i, p)| (i, (p[0] - centre[0]).powi(2) + (p[1] - centre[1]).powi(2)))
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            cells.push(best.map(|(i, _)| {
                used[i] = true;
                i
            }));
        }
    }
    cells
}

/// A thumbnail of `path`, cropped as the model sees it and resized to `tile`×`tile`; a grey tile
/// when it cannot be read.
pub fn thumbnail(path: &Path, preprocess: &Preprocess, tile: u32) -> RgbImage {
    match open_image(path) {
        Ok(image) => {
            let cropped = preprocess.crop_image(&image).to_rgb8();
            imageops::resize(&cropped, tile, tile, imageops::FilterType::Triangle)
        }
        Err(_) => RgbImage::from_pixel(tile, tile, Rgb([128, 128, 128])),
    }
}

/// Karpathy's t-SNE grid: every image's thumbnail in the lattice cell its point snapped to
/// ([`snap_to_grid`] on a square lattice just large enough). Reports progress per row.
pub fn render_grid(
    points: &[[f32; 2]],
    paths: &[impl AsRef<Path>],
    preprocess: &Preprocess,
    tile: u32,
    progress: &dyn Progress,
) -> Result<RgbImage> {
    let side = (points.len() as f64).sqrt().ceil().max(1.0) as usize;
    let cells = snap_to_grid(points, side, side);
    let mut img =
        RgbImage::from_pixel(side as u32 * tile, side as u32 * tile, Rgb([255, 255, 255]));
    for (row, chunk) in cells.chunks(side).enumerate() {
        for (col, cell) in chunk.iter().enumerate() {
            if let Some(&i) = cell.as_ref() {
                let thumb = thumbnail(paths[i].as_ref(), preprocess, tile);
                imageops::overlay(
                    &mut img,
                    &thumb,
                    (col as u32 * tile).into(),
                    (row as u32 * tile).into(),
                );
            }
        }
        progress.step(row + 1, side, "drawing the grid")?;
    }
    Ok(img)
}
