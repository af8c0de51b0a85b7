//! What activation maximization drives up: a class logit, the mean activation of one channel of
//! a layer, or one neuron (the channel's value at the centre position, Lucid's `neuron`).
//!
//! Each objective is linear in one layer's output, `value_b = Σ mask ⊙ output_b`, so the signal
//! that the backward pass sends from that layer is the mask itself.

use candle_core::{DType, Device, Tensor};

use crate::graph::{Graph, NodeId, Trace};
use crate::{Error, Model, Result};

/// What to maximize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Objective {
    /// The logit (pre-softmax output) of a class.
    Class(usize),
    /// The mean over positions of channel `unit` of `layer`'s output.
    Channel {
        /// Layer path (`_blocks.10`).
        layer: String,
        /// Channel index.
        unit: usize,
    },
    /// Channel `unit` of `layer` at the centre position (row h/2, column w/2).
    Neuron {
        /// Layer path.
        layer: String,
        /// Channel index.
        unit: usize,
    },
}

impl Objective {
    /// A short description (`class 207`, `channel _blocks.10:5`, `neuron _blocks.10:5`).
    pub fn describe(&self) -> String {
        match self {
            Objective::Class(c) => format!("class {c}"),
            Objective::Channel { layer, unit } => format!("channel {layer}:{unit}"),
            Objective::Neuron { layer, unit } => format!("neuron {layer}:{unit}"),
        }
    }
}

impl Objective {
    /// The objective's size at the mean image (the zero input) of side `size`: the mean |logit|
    /// over classes for a class, the mean |activation| of the channel over positions for a
    /// channel or a neuron. What "ten times its value" is measured against when the start is
    /// near zero or below.
    pub fn scale_at_mean_image(&self, model: &Model, size: usize) -> Result<f32> {
        let channels = model.normalization().channels;
        let x = Tensor::zeros((1, channels, size, size), DType::F32, &model.device)?;
        let trace = model.graph.forward(&x, None)?;
        let kept = |node: NodeId| {
            trace.get(node).cloned().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "the forward pass did not keep the output of `{}`",
                    model.graph.name(node)
                ))
            })
        };
        let values = match self {
            Objective::Class(_) => kept(model.graph.output_id())?,
            Objective::Channel { layer, unit } | Objective::Neuron { layer, unit } => {
                kept(model.graph.node_id(layer)?)?.narrow(1, *unit, 1)?
            }
        };
        Ok(values
            .abs()?
            .mean_all()?
            .to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?
            .to_scalar::<f32>()?)
    }
}

/// An objective bound to a graph: the node it reads and which entry of that node.
#[derive(Clone, Debug)]
pub struct BoundObjective {
    /// The node whose output the objective reads (the network's output for a class).
    pub node: NodeId,
    objective: Objective,
}

impl BoundObjective {
    /// Resolves `objective` against `graph`, checking it against the output shapes of `trace`
    /// (a forward pass that kept every node): the class, layer and unit must exist, and a
    /// channel or neuron needs a layer whose output is [N, C, H, W].
    pub fn bind(objective: &Objective, graph: &Graph, trace: &Trace) -> Result<Self> {
        let node = match objective {
            Objective::Class(class) => {
                let output = graph.output_id();
                let dims = output_dims(graph, trace, output)?;
                if dims.len() != 2 {
                    return Err(Error::InvalidArgument(format!(
                        "the network's output is {dims:?}, not [N, classes]: use --layer and --unit"
                    )));
                }
                if *class >= dims[1] {
                    return Err(Error::InvalidArgument(format!(
                        "class {class} is out of range: the model has {} classes (0..={})",
                        dims[1],
                        dims[1].saturating_sub(1)
                    )));
                }
                output
            }
            Objective::Channel { layer, unit } | Objective::Neuron { layer, unit } => {
                let node = graph.node_id(layer)?;
                if node == 0 {
                    return Err(Error::InvalidArgument(
                        "the input is not a layer to maximize: name a layer after it".into(),
                    ));
                }
                // The layer as asked for, and the node it stands for when that differs
                // (`_blocks.10` is its last node, `_blocks.10.add`).
                let leaf = graph.name(node);
                let name = if leaf == layer {
                    format!("{layer}`")
                } else {
                    format!("{layer}` (`{leaf}`)")
                };
                let dims = output_dims(graph, trace, node)?;
                if dims.len() != 4 {
                    return Err(Error::InvalidArgument(format!(
                        "layer `{name} has no channels: its output is {dims:?}, and --layer needs a [N, C, H, W] output (use --class for the logits)"
                    )));
                }
                if *unit >= dims[1] {
                    return Err(Error::InvalidArgument(format!(
                        "unit {unit} is out of range: layer `{name} has {} channels (0..={})",
                        dims[1],
                        dims[1].saturating_sub(1)
                    )));
                }
                node
            }
        };
        Ok(BoundObjective {
            node,
            objective: objective.clone(),
        })
    }

    /// The mask [1, ...] for a layer output of shape `dims` (batch first): the objective is
    /// `Σ mask ⊙ output` per image, and the mask is its gradient.
    pub fn mask(&self, dims: &[usize], device: &Device) -> Result<Tensor> {
        let mut shape = dims.to_vec();
        if let Some(b) = shape.first_mut() {
            *b = 1;
        }
        let count: usize = shape.iter().product();
        let mut data = vec![0f32; count];
        match &self.objective {
            Objective::Class(class) => data[*class] = 1.0,
            Objective::Channel { unit, .. } => {
                let plane = dims[2] * dims[3];
                let weight = 1.0 / plane as f32;
                data[unit * plane..(unit + 1) * plane].fill(weight);
            }
            Objective::Neuron { unit, .. } => {
                let (h, w) = (dims[2], dims[3]);
                data[unit * h * w + (h / 2) * w + w / 2] = 1.0;
            }
        }
        Ok(Tensor::from_vec(data, shape, device)?)
    }

    /// The objective of each image of a batch, [B], from the node's output and its mask.
    pub fn values(&self, output: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let b = output.dim(0)?;
        Ok(output
            .to_dtype(DType::F32)?
            .broadcast_mul(mask)?
            .reshape((b, ()))?
            .sum(1)?)
    }

    /// The objective as given.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }
}

fn output_dims(graph: &Graph, trace: &Trace, node: NodeId) -> Result<Vec<usize>> {
    trace.get(node).map(|t| t.dims().to_vec()).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the forward pass did not keep the output of `{}`",
            graph.name(node)
        ))
    })
}
