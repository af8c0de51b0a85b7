//! Builds a graph the way a PyTorch module's `forward` reads: named layers inside named scopes,
//! each layer taking its parameters from the weight source under its state_dict key.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use candle_core::{Device, Tensor};

use super::{Graph, Node, NodeId};
use crate::ops::{
    Activation, AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, Op, Padding,
    PoolWindow,
};
use crate::weights::synthetic::synthetic_tensor;
use crate::{Error, Result};

/// Where a graph's parameters come from.
pub enum WeightSource {
    /// A loaded state_dict (CPU tensors).
    StateDict(BTreeMap<String, Tensor>),
    /// Deterministic synthetic weights (see [`crate::weights::synthetic`]).
    Synthetic {
        /// The seed.
        seed: u64,
    },
}

/// The shape and options of a convolution, as `nn.Conv2d`'s arguments.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    /// in_channels.
    pub in_channels: usize,
    /// out_channels.
    pub out_channels: usize,
    /// kernel_size (square).
    pub kernel: usize,
    /// stride.
    pub stride: usize,
    /// padding.
    pub padding: Padding,
    /// dilation.
    pub dilation: usize,
    /// groups.
    pub groups: usize,
    /// bias.
    pub bias: bool,
}

impl ConvSpec {
    /// `nn.Conv2d(in, out, kernel, bias=False)`, stride 1, no padding.
    pub fn new(in_channels: usize, out_channels: usize, kernel: usize) -> Self {
        ConvSpec {
            in_channels,
            out_channels,
            kernel,
            stride: 1,
            padding: Padding::symmetric(0),
            dilation: 1,
            groups: 1,
            bias: false,
        }
    }
    /// With `stride`.
    pub fn stride(mut self, stride: usize) -> Self {
        self.stride = stride;
        self
    }
    /// With symmetric `padding`.
    pub fn padding(mut self, padding: usize) -> Self {
        self.padding = Padding::symmetric(padding);
        self
    }
    /// With TF-style 'same' padding.
    pub fn same_padding(mut self) -> Self {
        self.padding = Padding::Same;
        self
    }
    /// With `dilation`.
    pub fn dilation(mut self, dilation: usize) -> Self {
        self.dilation = dilation;
        self
    }
    /// With `groups`.
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
    /// With a bias.
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
}

/// Assembles a [`Graph`], reading parameters by their state_dict keys.
pub struct GraphBuilder {
    nodes: Vec<Node>,
    scope: Vec<String>,
    source: WeightSource,
    device: Device,
    used: BTreeSet<String>,
    parameters: Vec<(String, Vec<usize>)>,
    missing: Vec<String>,
    mismatched: Vec<String>,
    calls: HashMap<String, usize>,
    ignored_prefixes: Vec<String>,
}

impl GraphBuilder {
    /// A builder whose parameters come from `source`, placed on `device`.
    pub fn new(source: WeightSource, device: &Device) -> Self {
        GraphBuilder {
            nodes: vec![Node {
                name: "input".into(),
                op: Op::Input,
                inputs: vec![],
            }],
            scope: vec![],
            source,
            device: device.clone(),
            used: BTreeSet::new(),
            parameters: vec![],
            missing: vec![],
            mismatched: vec![],
            calls: HashMap::new(),
            ignored_prefixes: vec![],
        }
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        0
    }

    /// The node added last.
    pub fn last_id(&self) -> NodeId {
        self.nodes.len() - 1
    }

    /// The device parameters are placed on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Runs `body` with `name` appended to the current module path.
    pub fn scope<R>(
        &mut self,
        name: impl std::fmt::Display,
        body: impl FnOnce(&mut Self) -> Result<R>,
    ) -> Result<R> {
        self.scope.push(name.to_string());
        let result = body(self);
        self.scope.pop();
        result
    }

    /// Keys under `prefix` that the state_dict may hold but the evaluation graph does not use
    /// (GoogLeNet's auxiliary classifiers, say).
    pub fn ignore_unused(&mut self, prefix: &str) {
        self.ignored_prefixes.push(prefix.to_string());
    }

    fn path(&self, name: &str) -> String {
        if self.scope.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.scope.join("."), name)
        }
    }

    /// The parameter `name` (relative to the current scope) with `shape`.
    pub fn param(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let key = self.path(name);
        let tensor = match &self.source {
            WeightSource::Synthetic { seed } => synthetic_tensor(&key, shape, *seed, &self.device)?,
            WeightSource::StateDict(dict) => match dict.get(&key) {
                Some(t) if t.dims() == shape => t
                    .to_dtype(candle_core::DType::F32)?
                    .to_device(&self.device)?,
                Some(t) => {
                    self.mismatched
                        .push(format!("{key}: expected {shape:?}, found {:?}", t.dims()));
                    Tensor::zeros(shape, candle_core::DType::F32, &self.device)?
                }
                None => {
                    self.missing.push(format!("{key} {shape:?}"));
                    Tensor::zeros(shape, candle_core::DType::F32, &self.device)?
                }
            },
        };
        self.parameters.push((key.clone(), shape.to_vec()));
        self.used.insert(key);
        Ok(tensor)
    }

    /// Appends a node named `name` in the current scope.
    pub fn push(&mut self, name: &str, op: Op, inputs: &[NodeId]) -> NodeId {
        let path = self.path(name);
        let count = self.calls.entry(path.clone()).or_insert(0);
        *count += 1;
        let name = if *count == 1 {
            path
        } else {
            format!("{path}#{count}")
        };
        self.nodes.push(Node {
            name,
            op,
            inputs: inputs.to_vec(),
        });
        self.nodes.len() - 1
    }

    /// `nn.Conv2d` named `name`.
    pub fn conv2d(&mut self, name: &str, x: NodeId, spec: ConvSpec) -> Result<NodeId> {
        let weight = self.scope(name, |b| {
            b.param(
                "weight",
                &[
                    spec.out_channels,
                    spec.in_channels / spec.groups.max(1),
                    spec.kernel,
                    spec.kernel,
                ],
            )
        })?;
        let bias = if spec.bias {
            Some(self.scope(name, |b| b.param("bias", &[spec.out_channels]))?)
        } else {
            None
        };
        let conv = Conv2d::new(
            weight,
            bias,
            spec.stride,
            spec.padding,
            spec.dilation,
            spec.groups,
        );
        Ok(self.push(name, Op::Conv2d(conv), &[x]))
    }

    /// `nn.BatchNorm2d(channels, eps)` named `name`.
    pub fn batch_norm(
        &mut self,
        name: &str,
        x: NodeId,
        channels: usize,
        eps: f64,
    ) -> Result<NodeId> {
        let bn = self.scope(name, |b| {
            let weight = b.param("weight", &[channels])?;
            let bias = b.param("bias", &[channels])?;
            let mean = b.param("running_mean", &[channels])?;
            let var = b.param("running_var", &[channels])?;
            Ok(BatchNorm2d::new(weight, bias, mean, var, eps)?)
        })?;
        Ok(self.push(name, Op::BatchNorm2d(bn), &[x]))
    }

    /// An activation module named `name`.
    pub fn activation(&mut self, name: &str, x: NodeId, activation: Activation) -> NodeId {
        self.push(name, Op::Activation(activation), &[x])
    }

    /// `nn.ReLU` named `name`.
    pub fn relu(&mut self, name: &str, x: NodeId) -> NodeId {
        self.activation(name, x, Activation::Relu)
    }

    /// `nn.MaxPool2d(kernel, stride, padding, ceil_mode=ceil_mode)` named `name`.
    pub fn max_pool(
        &mut self,
        name: &str,
        x: NodeId,
        kernel: usize,
        stride: usize,
        padding: usize,
        ceil_mode: bool,
    ) -> NodeId {
        let window = PoolWindow::square(kernel, stride, padding, ceil_mode);
        self.push(name, Op::MaxPool2d(MaxPool2d { window }), &[x])
    }

    /// `nn.AvgPool2d(kernel, stride)` named `name`.
    pub fn avg_pool(&mut self, name: &str, x: NodeId, kernel: usize, stride: usize) -> NodeId {
        let window = PoolWindow::square(kernel, stride, 0, false);
        let op = Op::AvgPool2d(AvgPool2d {
            window,
            count_include_pad: true,
        });
        self.push(name, op, &[x])
    }

    /// `nn.AdaptiveAvgPool2d(size)` named `name`.
    pub fn adaptive_avg_pool(&mut self, name: &str, x: NodeId, size: (usize, usize)) -> NodeId {
        self.push(
            name,
            Op::AdaptiveAvgPool2d(AdaptiveAvgPool2d { output_size: size }),
            &[x],
        )
    }

    /// `nn.Linear(in, out, bias)` named `name`.
    pub fn linear(
        &mut self,
        name: &str,
        x: NodeId,
        in_features: usize,
        out_features: usize,
        bias: bool,
    ) -> Result<NodeId> {
        let (weight, bias) = self.scope(name, |b| {
            let weight = b.param("weight", &[out_features, in_features])?;
            let bias = if bias {
                Some(b.param("bias", &[out_features])?)
            } else {
                None
            };
            Ok((weight, bias))
        })?;
        Ok(self.push(name, Op::Linear(Linear { weight, bias }), &[x]))
    }

    /// `torch.flatten(x, 1)`.
    pub fn flatten(&mut self, name: &str, x: NodeId) -> NodeId {
        self.push(name, Op::Flatten { start_dim: 1 }, &[x])
    }

    /// `nn.Dropout` (the identity at evaluation).
    pub fn dropout(&mut self, name: &str, x: NodeId) -> NodeId {
        self.push(name, Op::Identity, &[x])
    }

    /// `a + b`.
    pub fn add(&mut self, name: &str, a: NodeId, b: NodeId) -> NodeId {
        self.push(name, Op::Add, &[a, b])
    }

    /// `a * b` (broadcast).
    pub fn mul(&mut self, name: &str, a: NodeId, b: NodeId) -> NodeId {
        self.push(name, Op::Mul, &[a, b])
    }

    /// `torch.cat(parts, 1)`.
    pub fn concat(&mut self, name: &str, parts: &[NodeId]) -> NodeId {
        self.push(name, Op::Concat { dim: 1 }, parts)
    }

    /// Ends the build: the last node is the output. Fails when the weights did not fit.
    pub fn finish(self, architecture: &str) -> Result<Graph> {
        let mut problems = Vec::new();
        if !self.mismatched.is_empty() {
            problems.push(format!(
                "{} with the wrong shape ({})",
                self.mismatched.len(),
                summarize(&self.mismatched)
            ));
        }
        if !self.missing.is_empty() {
            problems.push(format!(
                "{} missing ({})",
                self.missing.len(),
                summarize(&self.missing)
            ));
        }
        if let WeightSource::StateDict(dict) = &self.source {
            let unexpected: Vec<String> = dict
                .keys()
                .filter(|k| !self.used.contains(*k))
                .filter(|k| !k.ends_with("num_batches_tracked"))
                .filter(|k| {
                    !self
                        .ignored_prefixes
                        .iter()
                        .any(|p| k.starts_with(p.as_str()))
                })
                .cloned()
                .collect();
            if !unexpected.is_empty() {
                problems.push(format!(
                    "{} unexpected ({})",
                    unexpected.len(),
                    summarize(&unexpected)
                ));
            }
        }
        if !problems.is_empty() {
            return Err(Error::Weights(format!(
                "the weights do not fit {architecture}: tensors {}",
                problems.join("; ")
            )));
        }
        let mut graph = Graph::new(self.nodes)?;
        graph.parameters = self.parameters;
        Ok(graph)
    }
}

fn summarize(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(3).map(String::as_str).collect();
    if items.len() > shown.len() {
        format!("{}, …", shown.join(", "))
    } else {
        shown.join(", ")
    }
}
