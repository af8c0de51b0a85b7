//! A loaded model: its graph, how its inputs are preprocessed, its class names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};

use crate::arch;
use crate::export::{self, ProgramWeights};
use crate::graph::{Graph, LayerTree, WeightSource};
use crate::input::{Normalization, Preprocess};
use crate::ops::Convolutions;
use crate::{labels, weights, Error, Result};

/// The bundled demo: EfficientNet-Lite0 with its ImageNet weights (Apache-2.0).
const DEMO_WEIGHTS: &[u8] = include_bytes!("../assets/efficientnet_lite0.safetensors");

/// How to load a model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadOptions {
    /// The architecture, when it should not be inferred from the weights.
    pub arch: Option<String>,
    /// A class-name file (one a line), instead of ImageNet's.
    pub labels: Option<PathBuf>,
    /// A `torch.export` program the weights file is bound to by state_dict key.
    pub graph: Option<PathBuf>,
    /// Per-channel input mean (0–1 pixel scale), one value or one per channel.
    pub mean: Option<Vec<f32>>,
    /// Per-channel input standard deviation, one value or one per channel.
    pub std: Option<Vec<f32>>,
    /// The shorter image side is resized to this before the centre crop.
    pub resize: Option<u32>,
}

/// A network ready to run, with what it needs to read images and name classes.
#[derive(Debug)]
pub struct Model {
    /// The architecture's name (`resnet18`, `efficientnet_lite0`, `onnx`).
    pub arch: String,
    /// Where it came from (a path, `demo`, `random:ARCH`).
    pub source: String,
    /// The network.
    pub graph: Graph,
    /// Image preprocessing.
    pub preprocess: Preprocess,
    /// Class names, one per output.
    pub labels: Vec<String>,
    /// Where its tensors live.
    pub device: Device,
    /// A choice made for the user that they should hear of (a program found beside the
    /// checkpoint).
    pub note: Option<String>,
    /// The `torch.export` program the weights were bound to (by `--graph` or found beside the
    /// checkpoint); `None` when the model is a program itself or not a program's.
    pub program: Option<PathBuf>,
}

/// One class of a prediction.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClassScore {
    /// Class index.
    pub class: usize,
    /// Class name.
    pub label: String,
    /// Softmax probability.
    pub prob: f32,
}

impl Model {
    /// Loads `spec`: `demo`, `random:ARCH` (synthetic weights), a `torch.export` program, or a
    /// weight file (safetensors, PyTorch checkpoint, ONNX) — bound to `options.graph` when
    /// given. `--mean`, `--std` and `--resize` override the model's own preprocessing.
    pub fn load(spec: &str, options: &LoadOptions, device: &Device) -> Result<Model> {
        let mut model = Self::load_network(spec, options, device)?;
        model.preprocess = override_preprocess(model.preprocess, options)?;
        Ok(model)
    }

    fn load_network(spec: &str, options: &LoadOptions, device: &Device) -> Result<Model> {
        // The architecture inferred from a weight file's keys, when it had to be.
        let mut inferred = None;
        let (arch_name, dict, source) = if spec == "demo" {
            let dict = candle_core::safetensors::load_buffer(DEMO_WEIGHTS, &Device::Cpu)?;
            (
                Some("efficientnet_lite0".to_string()),
                Some(dict.into_iter().collect()),
                "demo".to_string(),
            )
        } else if let Some(name) = spec.strip_prefix("random:") {
            (Some(name.to_string()), None, spec.to_string())
        } else {
            let path = Path::new(spec);
            if !path.exists() {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such file (or use `demo`)",
                    ),
                });
            }
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
            {
                return Self::load_onnx(path, options, device);
            }
            if let Some(program) = &options.graph {
                if !export::is_program_file(program) {
                    return Err(Error::InvalidArgument(format!(
                        "--graph {}: not a torch.export program (.pt2). Checkpoints bind to a \
                         program by state_dict key; an ONNX export cannot serve (its exporter \
                         folds BatchNorm into the convolutions and renames what it keeps): save \
                         the model with torch.export.save(torch.export.export(model.eval(), (x,)), \
                         'net.pt2')",
                        program.display()
                    )));
                }
                let dict = weights::load_state_dict(path)?;
                return Self::load_program(
                    program,
                    ProgramWeights::StateDict(dict),
                    spec,
                    options,
                    device,
                );
            }
            if export::is_program_file(path) {
                return Self::load_program(path, ProgramWeights::Archive, spec, options, device);
            }
            let dict = weights::load_state_dict(path)?;
            if options.arch.is_none() {
                match arch::infer_architecture(&dict) {
                    Ok(found) => inferred = Some(found),
                    Err(not_inferred) => {
                        let Some(program) = export::program_beside(path) else {
                            return Err(not_inferred);
                        };
                        let mut model = Self::load_program(
                            &program,
                            ProgramWeights::StateDict(dict),
                            spec,
                            options,
                            device,
                        )
                        .map_err(|e| {
                            Error::Weights(format!(
                                "{not_inferred}; the torch.export program {} beside it does not \
                                 fit either: {e}",
                                program.display()
                            ))
                        })?;
                        model.note = Some(format!(
                            "{spec}: bound to the torch.export program {} found beside it \
                             (--graph chooses another)",
                            program.display()
                        ));
                        return Ok(model);
                    }
                }
            }
            (options.arch.clone(), Some(dict), spec.to_string())
        };
        let arch_name = options.arch.clone().or(arch_name);
        // Input channels, head and class count come from the weights' shapes (a grayscale
        // stem, a replaced `fc`), defaults where the weights do not show them.
        let (architecture, config) = match (&arch_name, &dict) {
            (Some(name), Some(dict)) => {
                let a = arch::find(name)?;
                (a, a.config_for(dict))
            }
            (Some(name), None) => {
                let a = arch::find(name)?;
                (a, a.default_config())
            }
            (None, Some(dict)) => match inferred {
                Some(found) => found,
                None => arch::infer_architecture(dict)?,
            },
            (None, None) => {
                return Err(Error::InvalidArgument(
                    "no weights and no architecture".into(),
                ))
            }
        };
        let source_weights = match dict {
            Some(d) => WeightSource::StateDict(d),
            None => WeightSource::Synthetic { seed: 0 },
        };
        let classes = config.num_classes;
        let graph = architecture
            .build_graph(source_weights, &config, device)
            .map_err(|e| match e {
                Error::Weights(m) => Error::Weights(format!("{source}: {m}")),
                other => other,
            })?;
        let labels = match &options.labels {
            Some(path) => labels::from_file(path)?,
            None => architecture.default_labels(classes),
        };
        Ok(Model {
            arch: architecture.name.to_string(),
            source,
            graph,
            preprocess: architecture.preprocess_for(&config),
            labels,
            device: device.clone(),
            note: None,
            program: None,
        })
    }

    /// A `torch.export` program with `weights`: its input size as the crop, its channels, the
    /// preprocessing and labels of its `extra/convlens.json` unless flags say otherwise.
    fn load_program(
        program: &Path,
        weights: ProgramWeights,
        source: &str,
        options: &LoadOptions,
        device: &Device,
    ) -> Result<Model> {
        let bound = match weights {
            ProgramWeights::StateDict(_) => Some(program.to_path_buf()),
            _ => None,
        };
        let loaded = export::load_program(program, weights, device).map_err(|e| match e {
            Error::Weights(m) => Error::Weights(format!("{source}: {m}")),
            other => other,
        })?;
        let [channels, h, w] = loaded.input_chw;
        let channels = channels.unwrap_or(3);
        let normalization = if channels == 3 {
            Normalization::IMAGENET
        } else {
            Normalization::PLAIN.with_channels(channels)
        };
        let preprocess = Preprocess::for_input(normalization, h, w);
        let extra = &loaded.extra;
        let from_extra = LoadOptions {
            mean: extra.mean.clone(),
            std: extra.std.clone(),
            resize: extra.resize,
            ..LoadOptions::default()
        };
        let preprocess = override_preprocess(preprocess, &from_extra)
            .map_err(|e| Error::format(program, format!("extra/{}: {e}", export::EXTRA_FILE)))?;
        let classes = output_classes(&loaded.graph, &preprocess, device)?;
        let labels = match (&options.labels, &extra.labels) {
            (Some(file), _) => labels::from_file(file)?,
            (None, Some(names)) if names.len() == classes => names.clone(),
            (None, Some(names)) => {
                return Err(Error::format(
                    program,
                    format!(
                        "extra/{} names {} labels for {classes} outputs",
                        export::EXTRA_FILE,
                        names.len()
                    ),
                ))
            }
            (None, None) => labels::default_for(classes),
        };
        Ok(Model {
            arch: "torch.export".into(),
            source: source.to_string(),
            graph: loaded.graph,
            preprocess,
            labels,
            device: device.clone(),
            note: None,
            program: bound,
        })
    }

    /// An ONNX export: its graph as is, ImageNet normalization (or that of `--arch`), its input
    /// size as the crop.
    fn load_onnx(path: &Path, options: &LoadOptions, device: &Device) -> Result<Model> {
        let imported = crate::onnx::import_onnx(path, device)?;
        let normalization = match &options.arch {
            Some(name) => arch::find(name)?.normalization,
            None => Normalization::IMAGENET,
        };
        let dims = &imported.input_shape;
        let side = |i: usize| dims.get(i).copied().flatten();
        let preprocess = Preprocess::for_input(normalization, side(2), side(3));
        let classes = output_classes(&imported.graph, &preprocess, device)?;
        let labels = match &options.labels {
            Some(file) => labels::from_file(file)?,
            None => labels::default_for(classes),
        };
        Ok(Model {
            arch: "onnx".into(),
            source: path.display().to_string(),
            graph: imported.graph,
            preprocess,
            labels,
            device: device.clone(),
            note: None,
            program: None,
        })
    }

    /// The same model (preprocessing, labels, device) with another graph: one whose layers were
    /// changed, as the randomization sanity check does.
    pub fn with_graph(&self, graph: Graph) -> Model {
        Model {
            arch: self.arch.clone(),
            source: self.source.clone(),
            graph,
            preprocess: self.preprocess,
            labels: self.labels.clone(),
            device: self.device.clone(),
            note: self.note.clone(),
            program: self.program.clone(),
        }
    }

    /// The normalization inputs need.
    pub fn normalization(&self) -> Normalization {
        self.preprocess.normalization
    }

    /// Logits [N, classes] for a batch of inputs, by the fastest convolutions (no gradient
    /// follows this pass; see [`Convolutions`]).
    pub fn logits(&self, input: &Tensor) -> Result<Tensor> {
        self.logits_by(input, Convolutions::Fastest)
    }

    /// Logits [N, classes] for a batch of inputs, the convolutions computed by `convolutions`.
    pub fn logits_by(&self, input: &Tensor, convolutions: Convolutions) -> Result<Tensor> {
        let trace = self.graph.forward_by(input, Some(&[]), convolutions)?;
        trace
            .output()
            .cloned()
            .ok_or_else(|| Error::InvalidArgument("the network produced no output".into()))
    }

    /// The module tree with output shapes for a square input of `size` pixels.
    pub fn layer_tree(&self, size: usize) -> Result<LayerTree> {
        let c = self.preprocess.normalization.channels;
        let x = Tensor::zeros((1, c, size, size), DType::F32, &self.device)?;
        let trace = self.graph.forward(&x, None)?;
        Ok(LayerTree::new(&self.graph, &trace))
    }

    /// The `k` most probable classes of each row of `logits`; for a segmentation model
    /// ([N, classes, H, W]), the `k` classes that hold the most pixels, each with its share.
    pub fn top_k(&self, logits: &Tensor, k: usize) -> Result<Vec<Vec<ClassScore>>> {
        let rows = if logits.rank() == 4 {
            pixel_shares(logits)?
        } else {
            softmax_rows(logits)?.to_vec2::<f32>()?
        };
        Ok(rows
            .into_iter()
            .map(|row| {
                let mut order: Vec<usize> = (0..row.len()).collect();
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                order
                    .into_iter()
                    .take(k)
                    .map(|class| ClassScore {
                        class,
                        label: self
                            .labels
                            .get(class)
                            .cloned()
                            .unwrap_or_else(|| format!("class {class}")),
                        prob: row[class],
                    })
                    .collect()
            })
            .collect())
    }
}

/// The number of classes an imported graph gives: its output's last size on a zero input.
fn output_classes(graph: &Graph, preprocess: &Preprocess, device: &Device) -> Result<usize> {
    let (c, size) = (preprocess.normalization.channels, preprocess.crop as usize);
    let probe = Tensor::zeros((1, c, size, size), DType::F32, device)?;
    Ok(graph
        .forward(&probe, Some(&[]))?
        .output()
        .map(|t| t.dims().last().copied().unwrap_or(0))
        .unwrap_or(0))
}

/// `preprocess` with the mean, standard deviation and resize of `options` where given: one value
/// stands for every channel, else one per channel.
fn override_preprocess(mut preprocess: Preprocess, options: &LoadOptions) -> Result<Preprocess> {
    let channels = preprocess.normalization.channels;
    let per_channel = |values: &Option<Vec<f32>>,
                       what: &str,
                       current: [f32; 3]|
     -> Result<[f32; 3]> {
        let Some(v) = values else {
            return Ok(current);
        };
        if v.iter().any(|x| !x.is_finite()) || (what == "std" && v.iter().any(|&x| x <= 0.0)) {
            return Err(Error::InvalidArgument(format!(
                "--{what} {v:?}: values must be finite{}",
                if what == "std" { " and positive" } else { "" }
            )));
        }
        match v.as_slice() {
            [one] => Ok([*one; 3]),
            many if many.len() == channels && channels <= 3 => {
                let mut out = [many[0]; 3];
                out[..channels].copy_from_slice(many);
                Ok(out)
            }
            many => Err(Error::InvalidArgument(format!(
                "--{what} has {} values; the network takes {channels} channels (give 1 or {channels})",
                many.len()
            ))),
        }
    };
    preprocess.normalization.mean =
        per_channel(&options.mean, "mean", preprocess.normalization.mean)?;
    preprocess.normalization.std = per_channel(&options.std, "std", preprocess.normalization.std)?;
    if let Some(resize) = options.resize {
        if resize < preprocess.crop || resize > 1 << 14 {
            return Err(Error::InvalidArgument(format!(
                "--resize {resize}: must be at least the crop ({}) and at most {}",
                preprocess.crop,
                1 << 14
            )));
        }
        preprocess.resize = resize;
    }
    Ok(preprocess)
}

/// Softmax over the last axis, on the CPU in f32.
fn softmax_rows(logits: &Tensor) -> Result<Tensor> {
    let x = logits.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
    let e = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
    Ok(e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?)
}

/// A state_dict from `pairs` (for callers that build one by hand).
pub fn state_dict_from(
    pairs: impl IntoIterator<Item = (String, Tensor)>,
) -> BTreeMap<String, Tensor> {
    pairs.into_iter().collect()
}

/// For a segmentation model's logits [N, classes, H, W]: the share of each row's pixels whose
/// most likely class each class is, [N][classes].
fn pixel_shares(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    let (_, classes, h, w) = logits.dims4()?;
    let labels = logits.argmax(1)?.flatten_from(1)?.to_vec2::<u32>()?;
    Ok(labels
        .into_iter()
        .map(|row| {
            let mut counts = vec![0f32; classes];
            for c in row {
                if let Some(n) = counts.get_mut(c as usize) {
                    *n += 1.0;
                }
            }
            counts.iter().map(|n| n / (h * w) as f32).collect()
        })
        .collect())
}
