//! One batched pass of the network over a folder: for every readable image, the chosen layer's
//! code (its output averaged over positions, the "CNN code"), each unit's maximum over positions
//! and where it is, and the top-1 class; unreadable files are listed and skipped.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};

use super::folder::list_images;
use super::pass::stream_files;
use crate::graph::NodeId;
use crate::input::Preprocess;
use crate::ops::{Convolutions, Op};
use crate::progress::Progress;
use crate::{Error, Model, Result};

/// How the pass runs.
#[derive(Clone, Debug)]
pub struct SummaryOptions {
    /// The layer (a module path); the penultimate layer, the input of the classifier, when `None`.
    pub layer: Option<String>,
    /// Images per forward pass.
    pub batch: usize,
    /// Where summaries are cached; no cache when `None`.
    pub cache_dir: Option<PathBuf>,
    /// How images are resized, cropped and normalized; the model's own preprocessing when
    /// `None`.
    pub preprocess: Option<Preprocess>,
    /// Whether a reader thread decodes images ahead of the network (else in turn with it).
    pub prefetch: bool,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            layer: None,
            batch: 32,
            cache_dir: None,
            preprocess: None,
            prefetch: true,
        }
    }
}

/// A layer's units and the positions each is computed at (1×1 for a layer without space).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LayerShape {
    /// Channels (or features).
    pub units: usize,
    /// Rows of positions.
    pub height: usize,
    /// Columns of positions.
    pub width: usize,
}

/// The layer summary of one image.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ImageSummary {
    /// Per unit, the mean over positions (the code).
    pub code: Vec<f32>,
    /// Per unit, the maximum over positions.
    pub max: Vec<f32>,
    /// Per unit, the first position (`y * width + x`) holding the maximum.
    pub argmax: Vec<u32>,
    /// The most probable class.
    pub top1_class: u32,
    /// Its softmax probability.
    pub top1_prob: f32,
}

/// A file that could not be used, and why.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// The layer summaries of every readable image of a folder (row `i` of each array belongs to
/// `paths[i]`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct FolderSummary {
    /// The layer's path.
    pub layer: String,
    /// Its units and positions.
    pub shape: LayerShape,
    /// The images summarized, sorted by path.
    pub paths: Vec<PathBuf>,
    /// Codes, `paths.len() × units`, row-major.
    pub codes: Vec<f32>,
    /// Maxima over positions, `paths.len() × units`.
    pub max: Vec<f32>,
    /// Positions of the maxima, `paths.len() × units`.
    pub argmax: Vec<u32>,
    /// Top-1 class per image.
    pub top1_class: Vec<u32>,
    /// Top-1 probability per image.
    pub top1_prob: Vec<f32>,
    /// Files with an image extension that could not be read or decoded.
    pub skipped: Vec<SkippedFile>,
    /// Files without an image extension that were passed over.
    pub other_files: usize,
    /// Images that went through the network in this pass.
    pub computed: usize,
    /// Images whose summary came from the cache.
    pub cached: usize,
    /// Forward passes (batches) run.
    pub forward_passes: usize,
    /// The cache file, when one was used.
    pub cache_file: Option<PathBuf>,
}

impl FolderSummary {
    /// How many images were summarized.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether no image was.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The code of image `i`.
    pub fn code(&self, i: usize) -> &[f32] {
        let u = self.shape.units;
        &self.codes[i * u..(i + 1) * u]
    }
}

/// The node and name of `layer`, or of the penultimate layer: walking back from the output node
/// along first inputs, over dropout and flattening, to the node that feeds the classifier.
pub fn resolve_layer(model: &Model, layer: Option<&str>) -> Result<(NodeId, String)> {
    let graph = &model.graph;
    if let Some(name) = layer {
        let id = graph.node_id(name)?;
        return Ok((id, name.to_string()));
    }
    let nodes = graph.nodes();
    let mut id = nodes[graph.output_id()]
        .inputs
        .first()
        .copied()
        .unwrap_or(0);
    while id > 0
        && matches!(
            nodes[id].op,
            Op::Identity | Op::Flatten { .. } | Op::Reshape(crate::ops::Reshape::Flatten2d(_))
        )
    {
        id = nodes[id].inputs.first().copied().unwrap_or(0);
    }
    if id == 0 {
        return Err(Error::InvalidArgument(
            "the model has no layer before its output to take codes from; name one with --layer"
                .into(),
        ));
    }
    Ok((id, graph.name(id).to_string()))
}

/// Summarizes every image under `dir` (recursively) at `options.layer`.
pub fn summarize_folder(
    model: &Model,
    dir: &Path,
    options: &SummaryOptions,
    progress: &dyn Progress,
) -> Result<FolderSummary> {
    let listing = list_images(dir)?;
    let mut summary = summarize_files(model, &listing.images, options, progress)?;
    summary.other_files = listing.other_files;
    summary.skipped.extend(
        listing
            .unlistable
            .into_iter()
            .map(|(path, reason)| SkippedFile { path, reason }),
    );
    Ok(summary)
}

/// Summarizes `files` (in that order; unreadable ones are skipped) at `options.layer`: the
/// streamed pass ([`super::pass::stream_files`]) collected.
pub fn summarize_files(
    model: &Model,
    files: &[PathBuf],
    options: &SummaryOptions,
    progress: &dyn Progress,
) -> Result<FolderSummary> {
    let mut rows: Vec<(usize, ImageSummary)> = Vec::new();
    let mut listed = files.iter().cloned();
    let info = stream_files(
        model,
        &mut listed,
        files.len(),
        options,
        progress,
        &mut |slot, _, summary| {
            rows.push((slot, summary));
            Ok(())
        },
    )?;
    let mut out = FolderSummary {
        layer: info.layer,
        shape: info.shape,
        paths: Vec::with_capacity(rows.len()),
        codes: Vec::new(),
        max: Vec::new(),
        argmax: Vec::new(),
        top1_class: Vec::with_capacity(rows.len()),
        top1_prob: Vec::with_capacity(rows.len()),
        skipped: info.skipped,
        other_files: 0,
        computed: info.computed,
        cached: info.cached,
        forward_passes: info.forward_passes,
        cache_file: info.cache_file,
    };
    for (slot, s) in rows {
        out.paths.push(files[slot].clone());
        out.codes.extend_from_slice(&s.code);
        out.max.extend_from_slice(&s.max);
        out.argmax.extend_from_slice(&s.argmax);
        out.top1_class.push(s.top1_class);
        out.top1_prob.push(s.top1_prob);
    }
    out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The message of an engine error, without the path (which the listing shows).
pub(crate) fn reason_of(e: &Error) -> String {
    match e {
        Error::Io { source, .. } => source.to_string(),
        Error::Format { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Decodes and preprocesses one file into a [C, H, W] tensor on the CPU, as
/// [`crate::input::load_input`] does.
pub(crate) fn preprocess_file(
    preprocess: &Preprocess,
    path: &Path,
    bytes: Option<&[u8]>,
) -> std::result::Result<Tensor, String> {
    let read;
    let bytes = match bytes {
        Some(b) => b,
        None => {
            read = std::fs::read(path).map_err(|e| e.to_string())?;
            &read
        }
    };
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let image = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| format!("not a readable image: {e}"))?;
    let cropped = preprocess.crop_image(&image);
    preprocess
        .normalize(&cropped, &Device::Cpu)
        .map_err(|e| e.to_string())
}

/// The layer's shape, from one forward pass of a blank input (for a pass that read no image).
pub(crate) fn probe_shape(model: &Model, p: &Preprocess, layer_id: NodeId) -> Result<LayerShape> {
    let size = p.crop as usize;
    let x = Tensor::zeros(
        (1, p.normalization.channels, size, size),
        DType::F32,
        &model.device,
    )?;
    let trace = model.graph.forward(&x, Some(&[layer_id]))?;
    let out = layer_output(model, &trace, layer_id)?;
    shape_of(model, layer_id, out)
}

fn layer_output<'a>(
    model: &Model,
    trace: &'a crate::graph::Trace,
    layer_id: NodeId,
) -> Result<&'a Tensor> {
    trace.get(layer_id).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the forward pass kept no output for `{}`",
            model.graph.name(layer_id)
        ))
    })
}

fn shape_of(model: &Model, layer_id: NodeId, t: &Tensor) -> Result<LayerShape> {
    match t.dims() {
        [_, c] => Ok(LayerShape {
            units: *c,
            height: 1,
            width: 1,
        }),
        [_, c, h, w] => Ok(LayerShape {
            units: *c,
            height: *h,
            width: *w,
        }),
        [_, c, l] => Ok(LayerShape {
            units: *c,
            height: 1,
            width: *l,
        }),
        dims => Err(Error::Shape {
            what: model.graph.name(layer_id).to_string(),
            expected: "[N, C], [N, C, L] or [N, C, H, W]".into(),
            found: format!("{dims:?}"),
        }),
    }
}

/// One forward pass of the batch `x`: each image's summary at `layer_id`, reduced on the device.
/// The pass takes a batch's paths even for one image
/// ([`Convolutions::FastestBatchInvariant`]), and on the CPU the convolutions and the
/// classifier give an image the same bits whatever else is in its batch, so its code, maxima
/// and their positions, top-1 class and probability do not depend on the batch (a sharded
/// sweep merges into the unsharded one exactly). Off the CPU, where candle's kernels may
/// follow the batch's size, a lone image still runs as two copies of itself, the way every
/// device's did before.
pub fn run_batch(
    model: &Model,
    layer_id: NodeId,
    x: &Tensor,
) -> Result<(LayerShape, Vec<ImageSummary>)> {
    if x.dim(0)? == 1 && !x.device().is_cpu() {
        let (shape, mut summaries) = run_batch(model, layer_id, &Tensor::cat(&[x, x], 0)?)?;
        summaries.truncate(1);
        return Ok((shape, summaries));
    }
    // Codes are read, never differentiated: the fastest convolutions.
    let trace =
        model
            .graph
            .forward_by(x, Some(&[layer_id]), Convolutions::FastestBatchInvariant)?;
    let out = layer_output(model, &trace, layer_id)?;
    let shape = shape_of(model, layer_id, out)?;
    let b = out.dim(0)?;
    let flat = out
        .to_dtype(DType::F32)?
        .reshape((b, shape.units, shape.height * shape.width))?;
    let code = flat.mean(D::Minus1)?;
    let max = flat.max(D::Minus1)?;
    let argmax = flat.argmax(D::Minus1)?;
    let logits = trace
        .output()
        .ok_or_else(|| Error::InvalidArgument("the network produced no output".into()))?
        .to_dtype(DType::F32)?
        .flatten_from(1)?;
    let host = |t: Tensor| t.to_device(&Device::Cpu);
    let code = host(code)?.to_vec2::<f32>()?;
    let max = host(max)?.to_vec2::<f32>()?;
    let argmax = host(argmax.to_dtype(DType::U32)?)?.to_vec2::<u32>()?;
    // The top-1 class and its probability per image, on the host in f64: a vectorized exp over
    // the whole batch would round each image by where it falls in the batch.
    let (top1, prob): (Vec<u32>, Vec<f32>) = host(logits)?
        .to_vec2::<f32>()?
        .iter()
        .map(|row| top1_of(row))
        .unzip();
    let summaries = code
        .into_iter()
        .zip(max)
        .zip(argmax)
        .zip(top1.into_iter().zip(prob))
        .map(
            |(((code, max), argmax), (top1_class, top1_prob))| ImageSummary {
                code,
                max,
                argmax,
                top1_class,
                top1_prob,
            },
        )
        .collect();
    Ok((shape, summaries))
}

/// The most probable class of one image's logits (the first of equals) and its softmax
/// probability, 1 / Σ exp(l − max l), summed in f64.
fn top1_of(logits: &[f32]) -> (u32, f32) {
    let (best, max) =
        logits.iter().enumerate().fold(
            (0, f32::NEG_INFINITY),
            |(b, m), (i, &l)| if l > m { (i, l) } else { (b, m) },
        );
    let sum: f64 = logits
        .iter()
        .map(|&l| (f64::from(l) - f64::from(max)).exp())
        .sum();
    (best as u32, (1.0 / sum) as f32)
}
