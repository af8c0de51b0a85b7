//! The view-model data the daemon's answers are turned into: what the views draw, free of any
//! wire format.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A decoded picture (a photo, a reconstruction, an overlay), cheap to clone. Its `id` names
/// its pixels for the terminal-image cache: two pictures with the same id are the same picture.
#[derive(Clone)]
pub struct Picture {
    /// Unique per decoded picture.
    pub id: u64,
    /// The pixels.
    pub image: Arc<image::RgbaImage>,
}

impl Picture {
    /// Wraps pixels under a fresh id.
    pub fn new(image: image::RgbaImage) -> Picture {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Picture {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            image: Arc::new(image),
        }
    }

    /// Decodes an encoded picture (PNG, JPEG, ...), shrinking it to at most `max_side` pixels on
    /// its longer side (the terminal never shows more).
    pub fn decode(bytes: &[u8], max_side: u32) -> Result<Picture, String> {
        let image = image::load_from_memory(bytes).map_err(|e| format!("bad picture: {e}"))?;
        Ok(Picture::new(shrink(image, max_side).to_rgba8()))
    }

    /// Width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        self.image.dimensions()
    }
}

/// `image` shrunk to fit `max_side` (kept as is when it already fits).
pub fn shrink(image: image::DynamicImage, max_side: u32) -> image::DynamicImage {
    if image.width().max(image.height()) <= max_side {
        image
    } else {
        image.resize(max_side, max_side, image::imageops::FilterType::Triangle)
    }
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (w, h) = self.size();
        write!(f, "Picture#{}({w}x{h})", self.id)
    }
}

impl PartialEq for Picture {
    fn eq(&self, other: &Picture) -> bool {
        self.id == other.id
    }
}

/// One module of the model's tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// Full module path (`_blocks.3._project_conv`).
    pub path: String,
    /// Op class for a leaf (`Conv2d`), `Module` for a container.
    pub class_name: String,
    /// Nesting depth (0 for top-level modules).
    pub depth: usize,
    /// Output shape for one input image (`[1, 40, 28, 28]`).
    pub output_shape: Vec<usize>,
    /// Parameters in the module and its children.
    pub params: usize,
    /// Whether it has no children.
    pub is_leaf: bool,
}

impl Layer {
    /// The last part of the path, shown in the tree under its parent.
    pub fn short_name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }

    /// Channels of its output (the second dimension), 0 for a scalar output.
    pub fn channels(&self) -> usize {
        self.output_shape.get(1).copied().unwrap_or(0)
    }

    /// Whether it is a convolution (the only layers with a filters view).
    pub fn is_conv(&self) -> bool {
        self.class_name == "Conv2d"
    }
}

/// The open model as the daemon describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelView {
    /// The daemon's id for it.
    pub model_id: String,
    /// Architecture (`efficientnet_lite0`).
    pub arch: String,
    /// Where it came from (`demo`, a path).
    pub source: String,
    /// Checkpoint version: 1 when loaded, one more each reload.
    pub version: u64,
    /// Number of classes.
    pub classes: usize,
    /// Total parameters.
    pub total_params: usize,
    /// Modules in pre-order.
    pub layers: Vec<Layer>,
    /// What the daemon chose for the user (a torch.export program found beside the checkpoint).
    pub note: Option<String>,
}

/// A class and its probability.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassScore {
    /// Class index.
    pub class: usize,
    /// Class name.
    pub label: String,
    /// Softmax probability.
    pub prob: f32,
}

/// Top-k classes of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The image.
    pub image: PathBuf,
    /// Best first.
    pub top: Vec<ClassScore>,
}

/// Statistics of one unit (channel) over an image or a folder.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UnitStats {
    /// Mean activation.
    pub mean: f32,
    /// Maximum activation.
    pub max: f32,
    /// Fraction of positions with a positive activation.
    pub frac_active: f32,
}

/// Every channel of one layer for one image: a small map per channel and its statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerActivations {
    /// The layer.
    pub layer: String,
    /// The image.
    pub image: PathBuf,
    /// Map height (1 for a vector output).
    pub height: usize,
    /// Map width.
    pub width: usize,
    /// `channels × height × width` values, row-major.
    pub maps: Vec<f32>,
    /// One entry per channel.
    pub stats: Vec<UnitStats>,
}

impl LayerActivations {
    /// Number of channels (units).
    pub fn channels(&self) -> usize {
        self.stats.len()
    }

    /// The map of channel `unit` (empty when out of range).
    pub fn map(&self, unit: usize) -> &[f32] {
        let n = self.height * self.width;
        self.maps.get(unit * n..(unit + 1) * n).unwrap_or(&[])
    }

    /// The largest |value| over every map (the shared colour scale of the grid).
    pub fn scale(&self) -> f32 {
        self.maps.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    }
}

/// `channels` maps of `height × width` (row-major, one after the other) averaged down to at
/// most `max_side` positions a side; returns the maps and their new height and width.
pub fn shrink_maps(
    maps: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    max_side: usize,
) -> Result<(Vec<f32>, usize, usize), String> {
    if maps.len() != channels * height * width {
        return Err(format!(
            "{} values for {channels} maps of {height}×{width}",
            maps.len()
        ));
    }
    let (th, tw) = (height.min(max_side).max(1), width.min(max_side).max(1));
    if (th, tw) == (height, width) {
        return Ok((maps.to_vec(), height, width));
    }
    let mut out = Vec::with_capacity(channels * th * tw);
    for map in maps.chunks_exact((height * width).max(1)) {
        for ty in 0..th {
            let (y0, y1) = (ty * height / th, ((ty + 1) * height).div_ceil(th));
            for tx in 0..tw {
                let (x0, x1) = (tx * width / tw, ((tx + 1) * width).div_ceil(tw));
                let mut sum = 0.0;
                for y in y0..y1 {
                    sum += map[y * width + x0..y * width + x1].iter().sum::<f32>();
                }
                out.push(sum / ((y1 - y0) * (x1 - x0)) as f32);
            }
        }
    }
    Ok((out, th, tw))
}

/// The colour between the input channels of a grey filter tile (the CLI grid's gap colour).
const CHANNEL_GAP: [u8; 3] = [24, 24, 24];

/// The tiles of a kernel `[out, in, kh, kw]`, one per filter, showing what `convlens filters`
/// draws for it: with `rgb` (three inputs) the inputs as red, green and blue; otherwise each of
/// its first `max_inputs` input channels' kernels in grey, side by side in a near-square block
/// with a one-pixel gap (a 1×1 convolution's filter is a block of its input weights). Each
/// filter is scaled symmetrically around zero (mid-grey) by its own largest |weight|.
pub fn filter_tiles(
    values: &[f32],
    shape: &[usize],
    rgb: bool,
    max_inputs: usize,
) -> Result<Vec<Tile>, String> {
    let &[out, inputs, kh, kw] = shape else {
        return Err(format!(
            "a kernel of shape {shape:?}, expected [out, in, kh, kw]"
        ));
    };
    if values.len() != out * inputs * kh * kw || inputs == 0 || kh == 0 || kw == 0 {
        return Err(format!(
            "{} weights for a kernel of shape {shape:?}",
            values.len()
        ));
    }
    let rgb = rgb && inputs == 3;
    let grey = |v: f32, scale: f32| (127.5 + 127.5 * v / scale).round().clamp(0.0, 255.0) as u8;
    let shown = inputs.min(max_inputs.max(1));
    let columns = if rgb { 1 } else { square_columns(shown) };
    let rows = if rgb { 1 } else { shown.div_ceil(columns) };
    let (width, height) = (columns * (kw + 1) - 1, rows * (kh + 1) - 1);
    Ok(values
        .chunks_exact(inputs * kh * kw)
        .map(|filter| {
            let scale = filter.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let scale = if scale > 0.0 { scale } else { 1.0 };
            let at = |channel: usize, p: usize| filter[channel * kh * kw + p];
            let pixels = if rgb {
                (0..kh * kw)
                    .map(|p| {
                        [
                            grey(at(0, p), scale),
                            grey(at(1, p), scale),
                            grey(at(2, p), scale),
                        ]
                    })
                    .collect()
            } else {
                let mut pixels = vec![CHANNEL_GAP; width * height];
                for channel in 0..shown {
                    let (x0, y0) = (
                        (channel % columns) * (kw + 1),
                        (channel / columns) * (kh + 1),
                    );
                    for p in 0..kh * kw {
                        let g = grey(at(channel, p), scale);
                        pixels[(y0 + p / kw) * width + x0 + p % kw] = [g, g, g];
                    }
                }
                pixels
            };
            Tile {
                width,
                height,
                pixels,
            }
        })
        .collect())
}

/// Columns of a near-square block of `n` (the ceiling of its square root).
fn square_columns(n: usize) -> usize {
    (1..=n.max(1)).find(|c| c * c >= n).unwrap_or(1)
}

/// One unit of a layer over the whole folder: its statistics and the images that excite it most.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitOverFolder {
    /// Mean and maximum over images and positions; `frac_active` is the fraction of images on
    /// which the unit is active (its maximum above 0).
    pub stats: UnitStats,
    /// Whether it is never active on any image of the folder.
    pub dead: bool,
    /// Its top images, best first.
    pub top: Vec<TopImage>,
}

/// Every unit of one layer over the folder, from one pass (`folder/top`): moving between the
/// layer's units needs no other request.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerOverFolder {
    /// The layer.
    pub layer: String,
    /// Images the pass used.
    pub images: usize,
    /// Files that could not be read.
    pub skipped: usize,
    /// One entry per unit, in unit order.
    pub units: Vec<UnitOverFolder>,
}

impl LayerOverFolder {
    /// Unit `unit`, when the layer has it.
    pub fn unit(&self, unit: usize) -> Option<&UnitOverFolder> {
        self.units.get(unit)
    }

    /// How many units are dead.
    pub fn dead(&self) -> usize {
        self.units.iter().filter(|u| u.dead).count()
    }
}

/// An image that excites a unit, with its score.
#[derive(Clone, Debug, PartialEq)]
pub struct TopImage {
    /// The image.
    pub image: PathBuf,
    /// Its activation (the unit's max over the image).
    pub score: f32,
}

/// An attribution drawn over the image.
#[derive(Clone, Debug, PartialEq)]
pub struct Explanation {
    /// The method's name.
    pub method: String,
    /// The explained class.
    pub class: usize,
    /// Its name.
    pub label: Option<String>,
    /// The layer a CAM was computed at.
    pub layer: Option<String>,
    /// Whether the map is flat (every value equal): the overlay shows nothing.
    pub flat: bool,
    /// The overlay.
    pub overlay: Picture,
    /// On a segmentation model, its classes over the photo with the region explained
    /// outlined, shown beside the overlay.
    pub segmentation: Option<Picture>,
}

/// Several methods' explanations of one image (`all`): the whole answer, or one piece of it
/// (a partial result, holding only what is new).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Explanations {
    /// The photo the overlays are drawn on (in the first piece and in the whole answer).
    pub photo: Option<Picture>,
    /// The methods done.
    pub explanations: Vec<Explanation>,
    /// The methods skipped because they do not apply to the model.
    pub skipped: Vec<SkippedMethod>,
}

/// A method `all` skipped, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct SkippedMethod {
    /// The method's name.
    pub method: String,
    /// Why.
    pub error: String,
}

/// One method's faithfulness scores (`image/evaluate`): the areas under RISE's deletion curve
/// (lower is more faithful) and insertion curve (higher is more faithful), ROAD combined
/// (higher is more faithful), and the randomization sanity check's mean rank correlation (lower
/// passes).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faithfulness {
    /// The deletion area, when scored.
    pub deletion: Option<f32>,
    /// The insertion area, when scored.
    pub insertion: Option<f32>,
    /// ROAD combined, when scored.
    pub road: Option<f32>,
    /// The randomization check's mean Spearman correlation, when scored (one method at a
    /// time).
    pub randomization: Option<f32>,
}

/// The faithfulness scores of one method's (or every method's) explanation of one image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Evaluation {
    /// The class explained and scored.
    pub class: usize,
    /// Its name.
    pub label: Option<String>,
    /// Each method scored (by name), in display order.
    pub methods: Vec<(String, Faithfulness)>,
    /// The methods skipped because they do not apply to the model.
    pub skipped: Vec<SkippedMethod>,
}

impl Evaluation {
    /// The scores of the method named `method`, when it was scored.
    pub fn of(&self, method: &str) -> Option<&Faithfulness> {
        self.methods
            .iter()
            .find(|(name, _)| name == method)
            .map(|(_, f)| f)
    }
}

/// A small RGB picture drawn cell by cell (a filter's weights).
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major pixels.
    pub pixels: Vec<[u8; 3]>,
}

/// The filters of a convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct FilterBank {
    /// The layer.
    pub layer: String,
    /// One tile per output channel.
    pub tiles: Vec<Tile>,
    /// How the weights were turned into colours (`RGB of the 3 input channels`).
    pub note: String,
}

/// One image placed on the folder map.
#[derive(Clone, Debug, PartialEq)]
pub struct MapPoint {
    /// The image.
    pub image: PathBuf,
    /// Position, in any unit.
    pub x: f64,
    /// Position, in any unit.
    pub y: f64,
    /// Its predicted (top-1) class.
    pub class: usize,
    /// That class's name.
    pub label: String,
    /// Its softmax probability.
    pub prob: f32,
}

/// A predicted class on the folder map and how many images have it.
#[derive(Clone, Debug, PartialEq)]
pub struct MapClass {
    /// Class index.
    pub class: usize,
    /// Class name.
    pub label: String,
    /// Images predicted as it.
    pub count: usize,
}

/// The t-SNE map of the folder.
#[derive(Clone, Debug, PartialEq)]
pub struct FolderMap {
    /// The layer whose embeddings were mapped.
    pub layer: String,
    /// One point per image.
    pub points: Vec<MapPoint>,
    /// Files that could not be read.
    pub skipped: usize,
}

impl FolderMap {
    /// The predicted classes, the most frequent first (ties: the smaller class index first).
    pub fn classes(&self) -> Vec<MapClass> {
        let mut out: Vec<MapClass> = Vec::new();
        for p in &self.points {
            match out.iter_mut().find(|c| c.class == p.class) {
                Some(c) => c.count += 1,
                None => out.push(MapClass {
                    class: p.class,
                    label: p.label.clone(),
                    count: 1,
                }),
            }
        }
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.class.cmp(&b.class)));
        out
    }

    /// The x and y ranges of the points, never empty.
    pub fn bounds(&self) -> ([f64; 2], [f64; 2]) {
        let mut x = [f64::INFINITY, f64::NEG_INFINITY];
        let mut y = x;
        for p in &self.points {
            x = [x[0].min(p.x), x[1].max(p.x)];
            y = [y[0].min(p.y), y[1].max(p.y)];
        }
        let widen = |r: [f64; 2]| {
            if !r[0].is_finite() {
                [-1.0, 1.0]
            } else if r[1] - r[0] < 1e-9 {
                [r[0] - 1.0, r[1] + 1.0]
            } else {
                let pad = (r[1] - r[0]) * 0.05;
                [r[0] - pad, r[1] + pad]
            }
        };
        (widen(x), widen(y))
    }

    /// The index of the point nearest to `(x, y)` (in the map's units, scaled by the ranges so
    /// that both axes count alike).
    pub fn nearest(&self, x: f64, y: f64) -> Option<usize> {
        let (bx, by) = self.bounds();
        let (sx, sy) = (bx[1] - bx[0], by[1] - by[0]);
        self.points
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (dx, dy) = ((p.x - x) / sx, (p.y - y) / sy);
                (i, dx * dx + dy * dy)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_shrink_by_averaging() {
        let maps: Vec<f32> = (0..2 * 4 * 4).map(|v| v as f32).collect();
        let (out, h, w) = shrink_maps(&maps, 2, 4, 4, 2).unwrap();
        assert_eq!((h, w), (2, 2));
        assert_eq!(out, vec![2.5, 4.5, 10.5, 12.5, 18.5, 20.5, 26.5, 28.5]);
        let (same, h, w) = shrink_maps(&maps, 2, 4, 4, 16).unwrap();
        assert_eq!((same.len(), h, w), (32, 4, 4));
        assert!(shrink_maps(&maps, 3, 4, 4, 2).is_err());
    }

    #[test]
    fn map_classes_are_counted_most_frequent_first() {
        let classes = [5usize, 2, 5, 9, 2, 5, 7];
        let map = FolderMap {
            layer: "fc".into(),
            points: classes
                .iter()
                .enumerate()
                .map(|(i, &class)| MapPoint {
                    image: PathBuf::from(format!("/f/{i}.png")),
                    x: i as f64,
                    y: 0.0,
                    class,
                    label: format!("class {class}"),
                    prob: 0.5,
                })
                .collect(),
            skipped: 0,
        };
        let got = map.classes();
        // Brute force: each distinct class with its count.
        for c in &got {
            assert_eq!(c.count, classes.iter().filter(|k| **k == c.class).count());
            assert_eq!(c.label, format!("class {}", c.class));
        }
        let order: Vec<usize> = got.iter().map(|c| c.class).collect();
        assert_eq!(order, vec![5, 2, 7, 9]);
    }

    #[test]
    fn filters_become_tiles_around_mid_grey() {
        // Two filters of one 1x2 kernel over three inputs.
        let w = [1.0, -1.0, 0.0, 0.5, -0.5, 0.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        let rgb = filter_tiles(&w, &[2, 3, 1, 2], true, 32).unwrap();
        assert_eq!(rgb[0].pixels, vec![[255, 128, 64], [0, 191, 128]]);
        // In grey, each input channel's 1x2 kernel: two columns by two rows of channels.
        let grey = filter_tiles(&w, &[2, 3, 1, 2], false, 32).unwrap();
        let (g, gap) = (|v: u8| [v, v, v], CHANNEL_GAP);
        assert_eq!((grey[0].width, grey[0].height), (5, 3));
        #[rustfmt::skip]
        assert_eq!(grey[0].pixels, vec![
            g(255), g(0), gap, g(128), g(191),
            gap, gap, gap, gap, gap,
            g(64), g(128), gap, gap, gap,
        ]);
        assert!(grey[1].pixels.iter().all(|p| *p == g(255) || *p == gap));
        // Only the first `max_inputs` channels.
        let first = filter_tiles(&w, &[2, 3, 1, 2], false, 1).unwrap();
        assert_eq!(first[0].pixels, vec![g(255), g(0)]);
        assert!(filter_tiles(&w, &[2, 3, 2, 2], true, 32).is_err());
    }

    #[test]
    fn a_pointwise_filter_shows_every_input_weight() {
        // A 1x1 convolution: one filter over four inputs is a 2x2 block of its four weights
        // (as `convlens filters` draws it), not one grey mean.
        let tiles = filter_tiles(&[1.0, -1.0, 0.0, 0.5], &[1, 4, 1, 1], false, 32).unwrap();
        let g = |v: u8| [v, v, v];
        assert_eq!((tiles[0].width, tiles[0].height), (3, 3));
        assert_eq!(tiles[0].pixels[0], g(255));
        assert_eq!(tiles[0].pixels[2], g(0));
        assert_eq!(tiles[0].pixels[6], g(128));
        assert_eq!(tiles[0].pixels[8], g(191));
    }
}
