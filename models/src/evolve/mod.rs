//! Watching a network learn: one view (the first layer's filters, a class activation map of an
//! image, or a unit's activation map) computed in every checkpoint of a training run, in
//! training order, as frames of a strip or an animation.
//!
//! Every checkpoint is loaded with [`Model::load`] on one architecture; a checkpoint that does
//! not load (or is another architecture) is listed with its error and skipped. The filters and
//! unit views draw every frame on **one colour scale shared by all checkpoints** (the largest
//! |w| of any shown filter in any checkpoint; the unit's smallest to largest value over all
//! checkpoints), so that weights and activations growing over training show as change instead
//! of being normalized away. The CAM view scales each frame on its own, as `convlens explain`
//! does (a CAM's scale is arbitrary); its per-checkpoint maximum is in [`Version::summary`]. The
//! CAM's class is the same in every frame: the one asked for, else the last checkpoint's top-1.

mod cam_view;
mod checkpoints;
mod filters_view;
mod frame;
mod output;
mod unit_view;

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use image::RgbImage;
use serde::Serialize;

pub use cam_view::{checkpoint_explanation, map_max, render_explanation};
pub use checkpoints::{
    find_checkpoints, order_checkpoints, step_from_name, Checkpoint, CheckpointList,
    CheckpointOrder,
};
pub use filters_view::{
    checkpoint_filters, filter_norm_mean, render_filters_at_scale, shared_filter_scale,
};
pub use frame::{captioned, enlarge, same_size, CAPTION_HEIGHT, MIN_FRAME_SIDE};
pub use output::{encode_gif, strip, STRIP_GAP};
pub use unit_view::{render_unit_map, unit_map, UnitMap};

use crate::explain::{ExplainOptions, Method, TargetSpec};
use crate::input::load_input;
use crate::progress::Progress;
use crate::render::{input_photo, Colormap};
use crate::units::{FilterBank, FilterGridOptions};
use crate::{Error, LoadOptions, Model, Result};

/// What is shown for each checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// A convolution's kernels (the first convolution's by default).
    Filters,
    /// A class activation map (or attribution) of the image for one class.
    Cam,
    /// One unit's activation map at a layer on the image.
    Unit,
}

impl View {
    /// Parses a `--what` name.
    pub fn from_name(name: &str) -> Result<View> {
        match name {
            "filters" => Ok(View::Filters),
            "cam" => Ok(View::Cam),
            "unit" => Ok(View::Unit),
            other => Err(Error::InvalidArgument(format!(
                "unknown view `{other}`; known: filters, cam, unit"
            ))),
        }
    }

    /// The name of the per-checkpoint number the view reports.
    pub fn summary_name(self) -> &'static str {
        match self {
            View::Filters => "filter_norm_mean",
            View::Cam => "map_max",
            View::Unit => "unit_max",
        }
    }
}

/// The parameters of an evolution.
#[derive(Clone, Debug)]
pub struct EvolveOptions {
    /// The view.
    pub view: View,
    /// The architecture of every checkpoint (inferred from each when `None`, and then all must
    /// agree with the first that loads).
    pub arch: Option<String>,
    /// A `torch.export` program every checkpoint is bound to by state_dict key.
    pub graph: Option<PathBuf>,
    /// The image of the `cam` and `unit` views.
    pub image: Option<PathBuf>,
    /// The layer: a convolution for `filters` (the first when `None`), the CAM layer for `cam`
    /// (the last spatial layer when `None`), required for `unit`.
    pub layer: Option<String>,
    /// The channel of the `unit` view (required there).
    pub unit: Option<usize>,
    /// The `cam` view's method (Grad-CAM by default; any `explain` method works).
    pub method: Method,
    /// The `cam` view's class; the last checkpoint's top-1 when `None`.
    pub target: Option<usize>,
    /// The colormap of the `cam` and `unit` views.
    pub cmap: Colormap,
    /// Filters drawn in the `filters` view (the first ones).
    pub max_filters: usize,
    /// Whether each frame gets a caption with its checkpoint's step or name.
    pub captions: bool,
}

impl Default for EvolveOptions {
    fn default() -> Self {
        EvolveOptions {
            view: View::Filters,
            arch: None,
            graph: None,
            image: None,
            layer: None,
            unit: None,
            method: convlens_shared::defaults::explain::METHOD,
            target: None,
            cmap: convlens_shared::defaults::explain::CMAP,
            max_filters: 64,
            captions: true,
        }
    }
}

/// One checkpoint that was shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Version {
    /// The file.
    pub path: PathBuf,
    /// The step number in its name.
    pub step: Option<u64>,
    /// Its caption.
    pub label: String,
    /// The view's number for it ([`View::summary_name`]): the mean filter L2 norm, the raw
    /// map's maximum, or the unit's maximum.
    pub summary: f32,
}

/// A checkpoint that was not shown, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SkippedCheckpoint {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped (the load error, or the architecture that differs).
    pub error: String,
}

/// The value range every frame of the `filters` or `unit` view is drawn on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SharedScale {
    /// The value drawn at the bottom of the colour scale (black, or the colormap's start).
    pub min: f32,
    /// The value drawn at the top (white, or the colormap's end).
    pub max: f32,
}

/// The view in every checkpoint of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Evolution {
    /// The view.
    pub view: View,
    /// How the checkpoints were ordered.
    pub order: CheckpointOrder,
    /// Why, in words.
    pub order_reason: String,
    /// The architecture of every shown checkpoint.
    pub arch: String,
    /// The layer shown (the convolution, the CAM layer, or the unit's layer).
    pub layer: Option<String>,
    /// The unit of the `unit` view.
    pub unit: Option<usize>,
    /// The class of the `cam` view.
    pub target: Option<usize>,
    /// Its name.
    pub target_label: Option<String>,
    /// The `cam` view's method.
    pub method: Option<String>,
    /// The range shared by all frames (`filters`: ±the largest |w|; `unit`: the smallest to the
    /// largest value); `None` for `cam`, whose frames are scaled each on its own.
    pub scale: Option<SharedScale>,
    /// What [`Version::summary`] is.
    pub summary_name: &'static str,
    /// The checkpoints shown, in training order.
    pub versions: Vec<Version>,
    /// The checkpoints skipped, in training order.
    pub skipped: Vec<SkippedCheckpoint>,
    /// One frame per shown checkpoint, all the same size, captioned when asked.
    #[serde(skip)]
    pub frames: Vec<RgbImage>,
}

/// What one checkpoint gave before the frames are drawn (the shared scale needs them all).
enum Computed {
    Filters(Box<FilterBank>),
    Unit(UnitMap),
    Cam { max: f32, picture: RgbImage },
}

/// What every checkpoint is checked against and computed on: the first one that loaded.
struct Reference {
    arch: String,
    path: PathBuf,
    input: Option<Tensor>,
    photo: Option<RgbImage>,
}

/// Reports the checkpoint being computed to the outer progress while a long inner computation
/// (an explanation's batches) runs, so that a cancel stops it between batches.
struct Within<'a> {
    outer: &'a dyn Progress,
    done: usize,
    total: usize,
    message: &'a str,
}

impl Progress for Within<'_> {
    fn step(&self, _done: usize, _total: usize, _message: &str) -> Result<()> {
        self.outer.step(self.done, self.total, self.message)
    }
}

/// Computes `options.view` in every checkpoint of `list` on `device`, reporting each checkpoint
/// to `progress` (which may cancel). Checkpoints that do not load are skipped and listed; an
/// error in the view itself (an unknown layer, a unit out of range, an unreadable image) stops
/// the whole run, since it would fail in every checkpoint alike.
pub fn evolve(
    list: &CheckpointList,
    options: &EvolveOptions,
    device: &Device,
    progress: &dyn Progress,
) -> Result<Evolution> {
    check_options(options)?;
    let n = list.checkpoints.len();
    // Without a class, the CAM view explains the last checkpoint's top-1: going backwards
    // finds it first, with no extra pass.
    let backwards = options.view == View::Cam && options.target.is_none();
    let visit: Vec<usize> = if backwards {
        (0..n).rev().collect()
    } else {
        (0..n).collect()
    };
    let mut computed: Vec<Option<Computed>> = (0..n).map(|_| None).collect();
    let mut skipped: Vec<(usize, SkippedCheckpoint)> = Vec::new();
    let mut reference: Option<Reference> = None;
    let mut target = options.target;
    let mut target_label = None;
    let mut layer: Option<String> = None;
    let load = LoadOptions {
        arch: options.arch.clone(),
        graph: options.graph.clone(),
        ..LoadOptions::default()
    };
    for (done, &i) in visit.iter().enumerate() {
        let checkpoint = &list.checkpoints[i];
        let message = checkpoint.label();
        progress.step(done, n, &message)?;
        let spec = checkpoint.path.to_string_lossy();
        let model = match Model::load(&spec, &load, device) {
            Ok(model) => model,
            Err(e) => {
                skipped.push((i, skip(checkpoint, e.to_string())));
                continue;
            }
        };
        if let Some(r) = reference.as_ref().filter(|r| r.arch != model.arch) {
            let error = format!(
                "architecture `{}`, not `{}` like {} (pass --arch to force one)",
                model.arch,
                r.arch,
                r.path.display()
            );
            skipped.push((i, skip(checkpoint, error)));
            continue;
        }
        if reference.is_none() {
            reference = Some(reference_of(&model, checkpoint, options, device)?);
        }
        let Some(reference) = &reference else {
            continue;
        };
        let inner = Within {
            outer: progress,
            done,
            total: n,
            message: &message,
        };
        let result = match options.view {
            View::Filters => {
                let bank = checkpoint_filters(&model.graph, options.layer.as_deref())?;
                layer = Some(bank.layer.clone());
                Computed::Filters(Box::new(bank))
            }
            View::Unit => {
                let (name, unit) = unit_request(options)?;
                let map = unit_map(&model.graph, needed(&reference.input)?, name, unit)?;
                layer = Some(map.layer.clone());
                Computed::Unit(map)
            }
            View::Cam => {
                let explain = ExplainOptions {
                    method: options.method,
                    target: target.map(TargetSpec::class),
                    layer: options.layer.clone(),
                    ..ExplainOptions::default()
                };
                let e =
                    checkpoint_explanation(&model, needed(&reference.input)?, &explain, &inner)?;
                if target.is_none() {
                    target = Some(e.target());
                }
                if target_label.is_none() {
                    target_label = model.labels.get(e.target()).cloned();
                }
                layer = e.layer.clone().or(layer);
                let picture = render_explanation(&e, needed(&reference.photo)?, options.cmap)?;
                Computed::Cam {
                    max: map_max(&e)?,
                    picture,
                }
            }
        };
        computed[i] = Some(result);
    }
    progress.step(n, n, "drawing frames")?;
    skipped.sort_by_key(|(i, _)| *i);
    let skipped: Vec<SkippedCheckpoint> = skipped.into_iter().map(|(_, s)| s).collect();
    let Some(reference) = reference else {
        let first = skipped
            .first()
            .map(|s| format!("; {}: {}", s.path.display(), s.error))
            .unwrap_or_default();
        return Err(Error::InvalidArgument(format!(
            "none of the {n} checkpoints loaded{first}"
        )));
    };
    let shown: Vec<(&Checkpoint, Computed)> = list
        .checkpoints
        .iter()
        .zip(computed)
        .filter_map(|(c, r)| r.map(|r| (c, r)))
        .collect();
    let grid_options = FilterGridOptions {
        max_filters: options.max_filters,
        ..FilterGridOptions::default()
    };
    let scale = shared_scale(&shown, grid_options);
    let mut versions = Vec::with_capacity(shown.len());
    let mut frames = Vec::with_capacity(shown.len());
    for (checkpoint, result) in &shown {
        let (summary, picture) = match result {
            Computed::Filters(bank) => (
                filter_norm_mean(bank),
                render_filters_at_scale(bank, grid_options, scale.map_or(0.0, |s| s.max)),
            ),
            Computed::Unit(map) => {
                let (lo, hi) = scale.map_or((0.0, 0.0), |s| (s.min, s.max));
                (map.max(), render_unit_map(map, lo, hi, options.cmap))
            }
            Computed::Cam { max, picture } => (*max, picture.clone()),
        };
        let label = checkpoint.label();
        let picture = enlarge(&picture);
        frames.push(if options.captions {
            captioned(&picture, &label)
        } else {
            picture
        });
        versions.push(Version {
            path: checkpoint.path.clone(),
            step: checkpoint.step,
            label,
            summary,
        });
    }
    Ok(Evolution {
        view: options.view,
        order: list.order,
        order_reason: list.order_reason.clone(),
        arch: reference.arch,
        layer,
        unit: (options.view == View::Unit)
            .then_some(options.unit)
            .flatten(),
        target: (options.view == View::Cam).then_some(target).flatten(),
        target_label: (options.view == View::Cam)
            .then_some(target_label)
            .flatten(),
        method: (options.view == View::Cam).then(|| options.method.name().to_string()),
        scale,
        summary_name: options.view.summary_name(),
        versions,
        skipped,
        frames: same_size(frames),
    })
}

/// Refuses a view without what it needs, before any checkpoint is loaded.
fn check_options(options: &EvolveOptions) -> Result<()> {
    if matches!(options.view, View::Cam | View::Unit) && options.image.is_none() {
        let name = if options.view == View::Cam {
            "cam"
        } else {
            "unit"
        };
        return Err(Error::InvalidArgument(format!(
            "the `{name}` view needs an image (--image IMG)"
        )));
    }
    if options.view == View::Unit {
        unit_request(options)?;
    }
    Ok(())
}

/// The `unit` view's layer and channel, or an error saying which is missing.
fn unit_request(options: &EvolveOptions) -> Result<(&str, usize)> {
    match (&options.layer, options.unit) {
        (Some(layer), Some(unit)) => Ok((layer, unit)),
        _ => Err(Error::InvalidArgument(
            "the `unit` view needs a layer and a unit (--layer L --unit U)".into(),
        )),
    }
}

/// The image input and photo, read once with the first loaded checkpoint's preprocessing
/// (every other checkpoint has the same architecture, so the same preprocessing).
fn reference_of(
    model: &Model,
    checkpoint: &Checkpoint,
    options: &EvolveOptions,
    device: &Device,
) -> Result<Reference> {
    let (input, photo) = match &options.image {
        Some(path) if options.view != View::Filters => {
            let input = load_input(path, &model.preprocess, device)?;
            let n = model.normalization();
            let photo = input_photo(&input, n.mean, n.std)?;
            (Some(input), Some(photo))
        }
        _ => (None, None),
    };
    Ok(Reference {
        arch: model.arch.clone(),
        path: checkpoint.path.clone(),
        input,
        photo,
    })
}

fn needed<T>(value: &Option<T>) -> Result<&T> {
    value
        .as_ref()
        .ok_or_else(|| Error::InvalidArgument("this view needs an image (--image IMG)".into()))
}

fn skip(checkpoint: &Checkpoint, error: String) -> SkippedCheckpoint {
    SkippedCheckpoint {
        path: checkpoint.path.clone(),
        error,
    }
}

/// The one range every frame is drawn on: ±(largest shown |w|) for filters, the unit's range
/// over all checkpoints for a unit; `None` for CAMs.
fn shared_scale(shown: &[(&Checkpoint, Computed)], grid: FilterGridOptions) -> Option<SharedScale> {
    let banks: Vec<&FilterBank> = shown
        .iter()
        .filter_map(|(_, r)| match r {
            Computed::Filters(bank) => Some(bank.as_ref()),
            _ => None,
        })
        .collect();
    if !banks.is_empty() {
        let s = shared_filter_scale(&banks, grid);
        return Some(SharedScale { min: -s, max: s });
    }
    let maps: Vec<&UnitMap> = shown
        .iter()
        .filter_map(|(_, r)| match r {
            Computed::Unit(map) => Some(map),
            _ => None,
        })
        .collect();
    if maps.is_empty() {
        return None;
    }
    Some(SharedScale {
        min: maps.iter().map(|m| m.min()).fold(f32::INFINITY, f32::min),
        max: maps
            .iter()
            .map(|m| m.max())
            .fold(f32::NEG_INFINITY, f32::max),
    })
}
