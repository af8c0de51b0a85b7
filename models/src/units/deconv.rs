//! Deconvnet reconstructions (Zeiler & Fergus 2014): keep one unit's activation, zero every
//! other activation of its layer, and project it down to pixels through the network under the
//! deconvnet rule (ReLU on the backward signal, max-pool switches, transposed filters), or under
//! guided backprop or the exact gradient.

use candle_core::{DType, Tensor};
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};
use serde::Serialize;

use super::activations::check_single_image;
use super::array::HostArray;
use super::feature_layer::feature_layer;
use super::receptive_field::{receptive_field, ReceptiveField};
use super::tiles::to_byte;
use crate::graph::{BackwardRule, Graph, Trace};
use crate::progress::Progress;
use crate::render::figure::captioned;
use crate::render::grid;
use crate::{Error, Result};

/// Which of the unit's activations are kept (`convlens_shared::choices`).
pub use convlens_shared::choices::UnitPosition;

/// Which units to project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnitSelection {
    /// These channels, in this order.
    Units(Vec<usize>),
    /// The `k` channels with the largest activation on the image, strongest first.
    Strongest(usize),
}

/// What to reconstruct.
#[derive(Clone, Debug)]
pub struct DeconvOptions {
    /// The layer (a leaf path, or a module path standing for its output).
    pub layer: String,
    /// The units (channels).
    pub units: UnitSelection,
    /// Which activations of each unit are kept.
    pub position: UnitPosition,
    /// How the signal passes the ReLU family: deconvnet, guided backprop or the exact gradient.
    pub rule: BackwardRule,
}

/// One unit's projection down to pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Reconstruction {
    /// The layer's node name.
    pub layer: String,
    /// The unit (channel).
    pub unit: usize,
    /// Which activations were kept.
    pub position: UnitPosition,
    /// The backward rule's name.
    pub rule: String,
    /// The kept position (row, column) of the layer's map, for [`UnitPosition::Max`].
    pub location: Option<(usize, usize)>,
    /// The kept activation (the map's largest value for [`UnitPosition::All`]).
    pub activation: f32,
    /// The input rectangle the kept position sees, for [`UnitPosition::Max`].
    pub receptive_field: Option<ReceptiveField>,
    /// The signal at the input, [C, H, W] (unnormalized float32).
    pub signal: HostArray,
}

/// Projects each selected unit of `options.layer` down to the input for `input` [1, C, H, W]:
/// one forward pass, then one backward pass per unit, reporting each to `progress`.
pub fn reconstruct(
    graph: &Graph,
    input: &Tensor,
    options: &DeconvOptions,
    progress: &dyn Progress,
) -> Result<Vec<Reconstruction>> {
    check_single_image(input)?;
    let trace = graph.forward(input, None)?;
    reconstruct_with_trace(graph, input, &trace, options, progress)
}

/// [`reconstruct`] from a full forward trace of `input` already made (the daemon keeps them per
/// image): no forward pass of its own. A trace that does not keep every node's output is refused.
pub fn reconstruct_with_trace(
    graph: &Graph,
    input: &Tensor,
    trace: &Trace,
    options: &DeconvOptions,
    progress: &dyn Progress,
) -> Result<Vec<Reconstruction>> {
    check_single_image(input)?;
    if !trace.is_complete(graph.nodes().len()) {
        return Err(Error::InvalidArgument(
            "a reconstruction needs the forward trace of every node; this one keeps only some"
                .into(),
        ));
    }
    let layer = feature_layer(graph, trace, &options.layer)?;
    let output = trace
        .get(layer.node)
        .ok_or_else(|| Error::InvalidArgument(format!("no output for `{}`", layer.name)))?;
    let (c, h, w) = (layer.channels, layer.height, layer.width);
    let maxima: Vec<f32> = output
        .to_dtype(DType::F32)?
        .reshape((c, h * w))?
        .max(1)?
        .to_vec1()?;
    let units = match &options.units {
        UnitSelection::Units(units) => units
            .iter()
            .map(|&u| layer.check_unit(u))
            .collect::<Result<Vec<usize>>>()?,
        UnitSelection::Strongest(k) => {
            let mut order: Vec<usize> = (0..c).collect();
            order.sort_by(|&a, &b| maxima[b].total_cmp(&maxima[a]).then(a.cmp(&b)));
            order.truncate((*k).max(1));
            order
        }
    };
    let total = units.len();
    let mut results = Vec::with_capacity(total);
    for (done, &unit) in units.iter().enumerate() {
        progress.step(done, total, &format!("unit {unit} of `{}`", layer.name))?;
        let map = output.narrow(1, unit, 1)?;
        let (kept, location) = match options.position {
            UnitPosition::Max => {
                let index = map.flatten_all()?.argmax(0)?.to_scalar::<u32>()? as usize;
                let mut onehot = vec![0f32; h * w];
                onehot[index] = 1.0;
                let onehot =
                    Tensor::from_vec(onehot, (1, 1, h, w), map.device())?.to_dtype(map.dtype())?;
                (map.mul(&onehot)?, Some((index / w, index % w)))
            }
            UnitPosition::All => (map.clone(), None),
        };
        let signal = place_channel(&kept, unit, c)?;
        let back = graph.backward(trace, layer.node, &signal, 0, options.rule)?;
        let receptive_field = match location {
            Some((row, col)) => Some(receptive_field(graph, trace, layer.node, row, col)?),
            None => None,
        };
        results.push(Reconstruction {
            layer: layer.name.clone(),
            unit,
            position: options.position,
            rule: options.rule.name().to_string(),
            location,
            activation: maxima[unit],
            receptive_field,
            signal: HostArray::from_tensor(&back.squeeze(0)?)?,
        });
    }
    progress.step(total, total, "done")?;
    Ok(results)
}

/// `kept` [1, 1, h, w] as channel `unit` of a [1, channels, h, w] signal, zeros elsewhere.
fn place_channel(kept: &Tensor, unit: usize, channels: usize) -> Result<Tensor> {
    let (_, _, h, w) = kept.dims4()?;
    let zeros = |n: usize| Tensor::zeros((1, n, h, w), kept.dtype(), kept.device());
    let mut parts = Vec::with_capacity(3);
    if unit > 0 {
        parts.push(zeros(unit)?);
    }
    parts.push(kept.clone());
    if unit + 1 < channels {
        parts.push(zeros(channels - unit - 1)?);
    }
    Ok(Tensor::cat(&parts, 1)?)
}

/// Each reconstruction beside the same part of `photo`: the receptive field's crop (fitted into a
/// `tile`-pixel square) for [`UnitPosition::Max`], the whole image for [`UnitPosition::All`];
/// pairs in a grid, four a row.
/// The signal is drawn symmetrically around zero (mid-gray), scaled so that its 99.5th
/// percentile magnitude inside the shown part reaches white or black.
pub fn render_reconstructions(
    recs: &[Reconstruction],
    photo: &RgbImage,
    tile: u32,
) -> Result<RgbImage> {
    let pairs = recs
        .iter()
        .map(|r| {
            let picture = signal_picture(&r.signal, r.receptive_field)?;
            let (photo, picture) = match r.receptive_field {
                Some(rf) => {
                    let crop = |img: &RgbImage| {
                        imageops::crop_imm(
                            img,
                            rf.left as u32,
                            rf.top as u32,
                            (rf.right - rf.left) as u32,
                            (rf.bottom - rf.top) as u32,
                        )
                        .to_image()
                    };
                    (fit(&crop(photo), tile), fit(&crop(&picture), tile))
                }
                None => (photo.clone(), picture),
            };
            let what = match r.position {
                UnitPosition::Max => format!("unit {}, max {:.2}", r.unit, r.activation),
                UnitPosition::All => format!("unit {}, whole map", r.unit),
            };
            Ok(captioned(&side_by_side(&photo, &picture), &what))
        })
        .collect::<Result<Vec<RgbImage>>>()?;
    Ok(if pairs.len() == 1 {
        pairs
            .into_iter()
            .next()
            .unwrap_or_else(|| RgbImage::new(1, 1))
    } else {
        grid(&pairs, pairs.len().min(4), 6)
    })
}

/// The magnitude quantile that maps to full white or black: the top half percent of a
/// reconstruction (a few pixels under a strided layer's footprint) would otherwise leave the
/// rest near mid-gray.
const DISPLAY_QUANTILE: f64 = 0.995;

/// A [C, H, W] signal as a picture: 0.5 + 0.5·s / q per pixel and channel, clipped, where q is
/// the [`DISPLAY_QUANTILE`] of |s| inside `rf` (the whole image when `None`).
fn signal_picture(signal: &HostArray, rf: Option<ReceptiveField>) -> Result<RgbImage> {
    let [c, h, w] = signal.shape[..] else {
        return Err(Error::Shape {
            what: "reconstruction".into(),
            expected: "[C, H, W]".into(),
            found: format!("{:?}", signal.shape),
        });
    };
    let (top, bottom, left, right) =
        rf.map_or((0, h, 0, w), |r| (r.top, r.bottom, r.left, r.right));
    let mut magnitudes: Vec<f32> = (0..c)
        .flat_map(|ch| (top..bottom).flat_map(move |y| (left..right).map(move |x| (ch, y, x))))
        .filter_map(|(ch, y, x)| signal.data.get((ch * h + y) * w + x).map(|v| v.abs()))
        .collect();
    magnitudes.sort_by(f32::total_cmp);
    let at = ((magnitudes.len().saturating_sub(1)) as f64 * DISPLAY_QUANTILE).round() as usize;
    let mut scale = magnitudes.get(at).copied().unwrap_or(0.0);
    if scale <= 0.0 {
        scale = magnitudes.last().copied().unwrap_or(0.0);
    }
    let mut img = RgbImage::new(w as u32, h as u32);
    for (x, y, p) in img.enumerate_pixels_mut() {
        let mut px = [0u8; 3];
        for (ch, slot) in px.iter_mut().enumerate() {
            let src = ch.min(c.saturating_sub(1));
            let v = signal.data[(src * h + y as usize) * w + x as usize];
            *slot = to_byte(if scale > 0.0 {
                (0.5 + 0.5 * v / scale).clamp(0.0, 1.0)
            } else {
                0.5
            });
        }
        *p = Rgb(px);
    }
    Ok(img)
}

/// `img` scaled to fit a `side`×`side` square (keeping its aspect), centred on dark gray.
fn fit(img: &RgbImage, side: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let ratio = f64::from(side) / f64::from(w.max(h).max(1));
    let (nw, nh) = (
        ((f64::from(w) * ratio).round() as u32).clamp(1, side),
        ((f64::from(h) * ratio).round() as u32).clamp(1, side),
    );
    let filter = if ratio >= 1.0 {
        FilterType::Nearest
    } else {
        FilterType::Triangle
    };
    let scaled = imageops::resize(img, nw, nh, filter);
    let mut out = RgbImage::from_pixel(side, side, Rgb([24, 24, 24]));
    imageops::overlay(
        &mut out,
        &scaled,
        i64::from((side - nw) / 2),
        i64::from((side - nh) / 2),
    );
    out
}

/// `a` and `b` (the same height) next to each other with a thin gap.
fn side_by_side(a: &RgbImage, b: &RgbImage) -> RgbImage {
    grid(&[a.clone(), b.clone()], 2, 2)
}
