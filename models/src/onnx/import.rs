//! Turns a decoded ONNX graph into a [`Graph`] of convlens ops.
//!
//! Nodes are converted in file order. Constants (initializers, `Constant` nodes) stay on the host
//! until an op takes them as parameters, and the small integer subgraphs an exporter writes to
//! compute shapes (`Shape` → `Gather` → `Unsqueeze` → `Concat` → `Reshape`) are folded here. The
//! size of a computed value, when such a subgraph asks for it, comes from running the graph built
//! so far on zeros of the declared input size; a symbolic batch axis is run at two sizes so that
//! a reshape can keep copying it. Patterns the exporter spells out are fused back into the module
//! they came from (`x * sigmoid(x)` is SiLU, `MatMul` + `Add` is `nn.Linear`, a zero `Pad` before a
//! `Conv` is the conv's padding), and nodes the output does not depend on are dropped.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use super::names::{self, NameSource};
use super::proto::{attribute_type, GraphProto, NodeProto, TensorProto};
use super::tensor::TensorReader;
use crate::graph::{Graph, Node};
use crate::lowering::conv_pool::ConvArgs;
use crate::lowering::{self, Problem, MAX_WINDOW};
use crate::ops::{
    Activation, AdaptiveAvgPool2d, AvgPool2d, CoordinateMode, Linear, MaxPool2d, NearestRounding,
    Op, Padding, ReduceMean, Reshape, Resize, ResizeMode, ResizeTarget, Slice, SliceAxis,
    Transpose,
};
use crate::{Error, Result};

/// The value standing for the batch size in a folded shape (the batch axis is symbolic).
const BATCH: i64 = i64::MIN;

/// The most elements the importer makes up by itself (a `ConstantOfShape`, a probe input).
const MAX_COMPUTED: usize = 1 << 24;

/// The largest resize factor and output side.
const MAX_SCALE: f64 = 64.0;
const MAX_SIDE: i64 = 1 << 15;

/// The ONNX ops the importer converts, for the error about one it does not.
const SUPPORTED: &str = "Add, AveragePool, BatchNormalization, Cast, Clip, Concat, Constant, ConstantOfShape, Conv, \
Div, Dropout, Flatten, Gather, Gemm, GlobalAveragePool, HardSigmoid, HardSwish, Identity, LeakyRelu, MatMul, MaxPool, \
Mul, Pad, ReduceMean, Relu, Reshape, Resize, Shape, Sigmoid, Slice, Softmax, Squeeze, Sub, Sum, Tanh, Transpose, \
Unsqueeze, Upsample";

/// What an ONNX value name stands for during the import.
#[derive(Clone)]
enum Value {
    /// The output of graph node `id` (an index into the pending list).
    Node(usize),
    /// A constant, on the host: f32 or i64.
    Const(Tensor),
}

/// A graph node before names are given.
struct Pending {
    op: Op,
    inputs: Vec<usize>,
    rank: usize,
    /// The ONNX node it came from.
    onnx_name: String,
    /// Lower-case op name for functional calls.
    label: String,
    /// Set for nodes the importer added around the ONNX node's own op.
    helper: Option<&'static str>,
}

/// The graph evaluated on zeros of the input size, to learn the sizes a shape subgraph reads.
struct Probe {
    outputs: Vec<Tensor>,
}

/// The ONNX node being converted, for error messages.
#[derive(Clone, Copy)]
struct At<'a> {
    node: &'a NodeProto,
}

impl At<'_> {
    fn unsupported(&self, detail: impl std::fmt::Display) -> Error {
        Error::Unsupported(format!(
            "ONNX op `{}` (node `{}`) {detail}",
            self.node.op_type,
            if self.node.name.is_empty() {
                "(unnamed)"
            } else {
                &self.node.name
            }
        ))
    }
}

/// Result of the import: the graph plus what the model declares about its input.
pub(crate) struct Imported {
    /// The network.
    pub graph: Graph,
    /// The graph input fed with images.
    pub input_name: String,
    /// Its declared shape (`None` on symbolic axes).
    pub input_dims: Vec<Option<usize>>,
    /// The graph output the network ends in.
    pub output_name: String,
}

/// The state of one import: the values defined so far and the graph nodes made from them.
pub(crate) struct Importer<'a> {
    path: &'a Path,
    reader: TensorReader<'a>,
    device: Device,
    opset: i64,
    initializers: HashMap<&'a str, &'a TensorProto>,
    values: HashMap<String, Value>,
    consumers: HashMap<&'a str, usize>,
    pending: Vec<Pending>,
    input_dims: Vec<Option<usize>>,
    probes: Vec<Probe>,
    /// Zero pads on the spatial axes a conv may absorb: pad node → (its input, (t, b, l, r)).
    zero_pads: HashMap<usize, (usize, Sides)>,
    /// `Linear` nodes made from a `MatMul`, whose bias a following `Add` may fill in.
    bias_free: HashSet<usize>,
    /// `Mul` nodes that complete a SiLU or hard-swish: node index → (activation, its input).
    fused: HashMap<usize, (Activation, &'a str)>,
    /// `Sigmoid` / `HardSigmoid` nodes folded into such a `Mul`.
    skipped: HashSet<usize>,
}

fn host_i64(t: &Tensor) -> Result<Vec<i64>> {
    Ok(t.to_dtype(DType::I64)?.flatten_all()?.to_vec1::<i64>()?)
}

fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?)
}

fn has_batch(t: &Tensor) -> Result<bool> {
    Ok(t.dtype() == DType::I64 && host_i64(t)?.contains(&BATCH))
}

impl<'a> Importer<'a> {
    /// Prepares the import of `graph` from the file at `path`.
    pub fn new(path: &'a Path, graph: &'a GraphProto, opset: i64, device: &Device) -> Self {
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut consumers: HashMap<&str, usize> = HashMap::new();
        for node in &graph.node {
            for input in &node.input {
                *consumers.entry(input.as_str()).or_insert(0) += 1;
            }
        }
        for output in &graph.output {
            *consumers.entry(output.name.as_str()).or_insert(0) += 1;
        }
        Importer {
            path,
            reader: TensorReader { model: path, dir },
            device: device.clone(),
            opset,
            initializers: graph
                .initializer
                .iter()
                .map(|t| (t.name.as_str(), t))
                .collect(),
            values: HashMap::new(),
            consumers,
            pending: vec![],
            input_dims: vec![],
            probes: vec![],
            zero_pads: HashMap::new(),
            bias_free: HashSet::new(),
            fused: HashMap::new(),
            skipped: HashSet::new(),
        }
    }

    fn format(&self, message: impl Into<String>) -> Error {
        Error::format(self.path, message)
    }

    /// A shared lowering rule's refusal, about the node `at`.
    fn refused(&self, at: At, problem: Problem) -> Error {
        match problem {
            Problem::Unsupported(detail) => at.unsupported(detail),
            Problem::Invalid(detail) => self.format(format!(
                "{} node `{}`: {detail}",
                at.node.op_type, at.node.name
            )),
        }
    }

    fn consumers(&self, value: &str) -> usize {
        self.consumers.get(value).copied().unwrap_or(0)
    }

    /// Runs the import.
    pub fn run(mut self, graph: &'a GraphProto) -> Result<Imported> {
        let (input_name, input_dims) = self.graph_input(graph)?;
        self.input_dims = input_dims.clone();
        self.pending.push(Pending {
            op: Op::Input,
            inputs: vec![],
            rank: input_dims.len(),
            onnx_name: "input".into(),
            label: "input".into(),
            helper: None,
        });
        self.values.insert(input_name.clone(), Value::Node(0));
        self.plan_fusions(graph);
        for (index, node) in graph.node.iter().enumerate() {
            self.convert(index, node)?;
        }
        let Some(output) = graph.output.first() else {
            return Err(self.format("the graph declares no output"));
        };
        let output_name = output.name.clone();
        let out = match self.values.get(&output_name) {
            Some(Value::Node(id)) => *id,
            Some(Value::Const(_)) => {
                return Err(Error::Unsupported(format!(
                    "the model's output `{output_name}` is a constant"
                )))
            }
            None => {
                return Err(
                    self.format(format!("no node produces the graph output `{output_name}`"))
                );
            }
        };
        let graph = self.finish(out)?;
        Ok(Imported {
            graph,
            input_name,
            input_dims,
            output_name,
        })
    }

    /// The one graph input that is not an initializer, and its declared dims.
    fn graph_input(&self, graph: &GraphProto) -> Result<(String, Vec<Option<usize>>)> {
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|i| !self.initializers.contains_key(i.name.as_str()))
            .collect();
        let input = match inputs.as_slice() {
            [one] => *one,
            [] => return Err(self.format("the graph declares no input")),
            many => {
                let names: Vec<&str> = many.iter().map(|i| i.name.as_str()).collect();
                return Err(Error::Unsupported(format!(
                    "ONNX models with {} inputs ({}); convlens feeds one image tensor",
                    many.len(),
                    names.join(", ")
                )));
            }
        };
        let tensor_type = input.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
        if let Some(t) = tensor_type {
            use super::proto::data_type as dt;
            if !matches!(
                t.elem_type,
                dt::UNDEFINED | dt::FLOAT | dt::FLOAT16 | dt::DOUBLE | dt::BFLOAT16
            ) {
                return Err(Error::Unsupported(format!(
                    "the model's input `{}` has ONNX data type {}; convlens feeds floats",
                    input.name, t.elem_type
                )));
            }
        }
        let dims = match tensor_type.and_then(|t| t.shape.as_ref()) {
            Some(shape) => shape
                .dim
                .iter()
                .map(|d| d.dim_value.filter(|&v| v > 0).map(|v| v as usize))
                .collect(),
            // No declared shape: an image batch of unknown size.
            None => vec![None; 4],
        };
        Ok((input.name.clone(), dims))
    }

    /// Finds `x * sigmoid(x)` (SiLU) and `x * hardsigmoid(x)` (hard-swish) pairs.
    fn plan_fusions(&mut self, graph: &'a GraphProto) {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, node) in graph.node.iter().enumerate() {
            for out in &node.output {
                producer.insert(out.as_str(), i);
            }
        }
        for (i, node) in graph.node.iter().enumerate() {
            if node.op_type != "Mul" || node.input.len() != 2 || !is_default_domain(node) {
                continue;
            }
            for (x, gate) in [
                (&node.input[0], &node.input[1]),
                (&node.input[1], &node.input[0]),
            ] {
                let Some(&k) = producer.get(gate.as_str()) else {
                    continue;
                };
                let p = &graph.node[k];
                if p.input.first() != Some(x) || self.consumers(gate) != 1 || !is_default_domain(p)
                {
                    continue;
                }
                let activation = match p.op_type.as_str() {
                    "Sigmoid" => Activation::Silu,
                    "HardSigmoid" => {
                        let alpha = float_attr(p, "alpha").unwrap_or(0.2);
                        let beta = float_attr(p, "beta").unwrap_or(0.5);
                        if (alpha - 1.0 / 6.0).abs() > 1e-6 || (beta - 0.5).abs() > 1e-6 {
                            continue;
                        }
                        Activation::HardSwish
                    }
                    _ => continue,
                };
                self.fused.insert(i, (activation, x.as_str()));
                self.skipped.insert(k);
                break;
            }
        }
    }

    // ---- values -------------------------------------------------------------------------

    /// The value named `name`.
    fn lookup(&mut self, at: At, name: &str) -> Result<Value> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        if let Some(t) = self.initializers.get(name) {
            let value = Value::Const(self.reader.read(t)?);
            self.values.insert(name.to_string(), value.clone());
            return Ok(value);
        }
        Err(self.format(format!(
            "node `{}` reads `{name}`, which no initializer or earlier node defines",
            at.node.name
        )))
    }

    /// Input `i` of the node, or `None` when it is omitted.
    fn input(&mut self, at: At, i: usize) -> Result<Option<Value>> {
        match at.node.input.get(i) {
            Some(name) if !name.is_empty() => Ok(Some(self.lookup(at, name)?)),
            _ => Ok(None),
        }
    }

    /// Input `i` of the node, which must be there.
    fn required(&mut self, at: At, i: usize) -> Result<Value> {
        self.input(at, i)?.ok_or_else(|| {
            self.format(format!(
                "node `{}` ({}) lacks its input {}",
                at.node.name,
                at.node.op_type,
                i + 1
            ))
        })
    }

    /// Input `i` as a constant; `what` names it in the error when it is computed.
    fn constant(&mut self, at: At, i: usize, what: &str) -> Result<Option<Tensor>> {
        match self.input(at, i)? {
            None => Ok(None),
            Some(Value::Const(t)) => Ok(Some(t)),
            Some(Value::Node(_)) => Err(at.unsupported(format!(
                "with a computed {what}: only a constant {what} is supported"
            ))),
        }
    }

    /// Integer values of a constant (a shape, axes, pads), refusing a folded batch size.
    fn ints(&self, at: At, t: &Tensor, what: &str) -> Result<Vec<i64>> {
        let v = host_i64(t)?;
        if v.contains(&BATCH) {
            return Err(at.unsupported(format!("with {what} that depend on the batch size")));
        }
        Ok(v)
    }

    /// A graph node for `value`: a constant becomes a `Constant` node.
    fn node_of(&mut self, at: At, value: Value) -> Result<usize> {
        match value {
            Value::Node(id) => Ok(id),
            Value::Const(t) => {
                if has_batch(&t)? {
                    return Err(at.unsupported("on a shape that depends on the batch size"));
                }
                let t = t.to_dtype(DType::F32)?.to_device(&self.device)?;
                let rank = t.rank();
                Ok(self.push_helper(at, Op::Constant(t), vec![], rank, "constant"))
            }
        }
    }

    /// Resolves a possibly negative axis against `rank`.
    fn axis(&self, at: At, a: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        let resolved = if a < 0 { a + r } else { a };
        if resolved < 0 || resolved >= r {
            return Err(self.format(format!(
                "node `{}`: axis {a} is out of range for a rank-{rank} tensor",
                at.node.name
            )));
        }
        Ok(resolved as usize)
    }

    fn rank(&self, id: usize) -> usize {
        self.pending.get(id).map_or(0, |p| p.rank)
    }

    fn push(&mut self, at: At, op: Op, inputs: Vec<usize>, rank: usize) -> usize {
        self.pending.push(Pending {
            op,
            inputs,
            rank,
            onnx_name: at.node.name.clone(),
            label: label(&at.node.op_type),
            helper: None,
        });
        self.pending.len() - 1
    }

    fn push_helper(
        &mut self,
        at: At,
        op: Op,
        inputs: Vec<usize>,
        rank: usize,
        helper: &'static str,
    ) -> usize {
        let id = self.push(at, op, inputs, rank);
        if let Some(p) = self.pending.get_mut(id) {
            p.helper = Some(helper);
        }
        id
    }

    fn on_device(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.to_dtype(DType::F32)?.to_device(&self.device)?)
    }

    // ---- conversion ---------------------------------------------------------------------

    fn convert(&mut self, index: usize, node: &'a NodeProto) -> Result<()> {
        let at = At { node };
        if self.skipped.contains(&index) {
            return Ok(());
        }
        if !is_default_domain(node) {
            return Err(Error::Unsupported(format!(
                "ONNX op `{}.{}` (node `{}`) is outside the standard operator set; convlens imports: {SUPPORTED}",
                node.domain, node.op_type, node.name
            )));
        }
        let Some(output) = node.output.first().filter(|o| !o.is_empty()) else {
            return Err(self.format(format!(
                "node `{}` ({}) has no output",
                node.name, node.op_type
            )));
        };
        let value = if let Some(&(activation, x)) = self.fused.get(&index) {
            let x = self.lookup(at, x)?;
            self.unary(
                at,
                x,
                Op::Activation(activation),
                lowering::activation::label(activation),
            )?
        } else {
            self.convert_op(at)?
        };
        for extra in node.output.iter().skip(1) {
            if !extra.is_empty() && self.consumers(extra) > 0 {
                return Err(at.unsupported(format!(
                    "with its output `{extra}` in use: only the first output is supported"
                )));
            }
        }
        self.values.insert(output.clone(), value);
        Ok(())
    }

    fn convert_op(&mut self, at: At) -> Result<Value> {
        let node = at.node;
        match node.op_type.as_str() {
            "Conv" => self.conv(at),
            "BatchNormalization" => self.batch_norm(at),
            "Relu" => self.activation(at, Activation::Relu),
            "LeakyRelu" => {
                let alpha = float_attr(node, "alpha").unwrap_or(0.01);
                self.activation(at, Activation::LeakyRelu(alpha))
            }
            "Sigmoid" => self.activation(at, Activation::Sigmoid),
            "Tanh" => self.activation(at, Activation::Tanh),
            "HardSigmoid" => {
                let alpha = float_attr(node, "alpha").unwrap_or(0.2);
                let beta = float_attr(node, "beta").unwrap_or(0.5);
                self.activation(at, Activation::HardSigmoid { alpha, beta })
            }
            "HardSwish" => self.activation(at, Activation::HardSwish),
            "Clip" => self.clip(at),
            "Add" | "Sum" => self.add(at),
            "Sub" => self.sub(at),
            "Mul" => self.mul(at),
            "Div" => self.div(at),
            "Concat" => self.concat(at),
            "MaxPool" => self.pool(at, true),
            "AveragePool" => self.pool(at, false),
            "GlobalAveragePool" => self.global_average_pool(at),
            "Gemm" => self.gemm(at),
            "MatMul" => self.matmul(at),
            "Flatten" => self.flatten(at),
            "Reshape" => self.reshape(at),
            "Constant" => self.constant_node(at),
            "Pad" => self.pad(at),
            "Resize" | "Upsample" => self.resize(at),
            "Softmax" => self.softmax(at),
            "Dropout" | "Identity" => self.required(at, 0),
            "ReduceMean" => self.reduce_mean(at),
            "Transpose" => self.transpose(at),
            "Shape" => self.shape(at),
            "Gather" => self.gather(at),
            "Unsqueeze" => self.unsqueeze(at),
            "Squeeze" => self.squeeze(at),
            "Slice" => self.slice(at),
            "Cast" => self.cast(at),
            "ConstantOfShape" => self.constant_of_shape(at),
            _ => Err(at.unsupported(format!("is not supported; convlens imports: {SUPPORTED}"))),
        }
    }

    /// A one-input op on `x`, keeping its rank.
    fn unary(&mut self, at: At, x: Value, op: Op, label: &str) -> Result<Value> {
        let x = self.node_of(at, x)?;
        let rank = self.rank(x);
        let id = self.push(at, op, vec![x], rank);
        if let Some(p) = self.pending.get_mut(id) {
            p.label = label.to_string();
        }
        Ok(Value::Node(id))
    }

    fn activation(&mut self, at: At, activation: Activation) -> Result<Value> {
        let x = self.required(at, 0)?;
        self.unary(
            at,
            x,
            Op::Activation(activation),
            lowering::activation::label(activation),
        )
    }

    fn clip(&mut self, at: At) -> Result<Value> {
        let bound = |this: &mut Self, i: usize, name: &str, default: f64| -> Result<f64> {
            if let Some(t) = this.constant(at, i, name)? {
                return match host_f32(&t)?.as_slice() {
                    [v] => Ok(f64::from(*v)),
                    _ => Err(this.format(format!(
                        "Clip node `{}`: {name} is not a scalar",
                        at.node.name
                    ))),
                };
            }
            Ok(float_attr(at.node, name).unwrap_or(default))
        };
        let min = bound(self, 1, "min", f64::NEG_INFINITY)?;
        let max = bound(self, 2, "max", f64::INFINITY)?;
        self.activation(at, lowering::activation::clip(min, max))
    }

    fn conv(&mut self, at: At) -> Result<Value> {
        let node = at.node;
        let x = self.required(at, 0)?;
        let Some(weight) = self.constant(at, 1, "weight")? else {
            return Err(self.format(format!("Conv node `{}` has no weight", node.name)));
        };
        let bias = self.constant(at, 2, "bias")?;
        let &[_, _, kh, kw] = weight.dims() else {
            return Err(self.refused(
                at,
                Problem::Unsupported(format!(
                    "with a kernel of shape {:?}: only 2-D convolutions are supported",
                    weight.dims()
                )),
            ));
        };
        let x = self.node_of(at, x)?;
        if self.rank(x) != 4 {
            return Err(at.unsupported(format!(
                "on a rank-{} input: only 2-D convolutions are supported",
                self.rank(x)
            )));
        }
        let group = int_attr(node, "group").unwrap_or(1);
        let stride = self.square(at, "strides", 1)?;
        let dilation = self.square(at, "dilations", 1)?;
        if let Some(k) = ints_attr(node, "kernel_shape") {
            if k != [kh as i64, kw as i64] {
                return Err(self.format(format!(
                    "Conv node `{}`: kernel_shape {k:?} does not match the weight's {kh}x{kw}",
                    node.name
                )));
            }
        }
        let effective = (dilation * (kh - 1) + 1, dilation * (kw - 1) + 1);
        let padding = match self.auto_pad(at, x, effective, (stride, stride))? {
            Some(Pads::Same) => Padding::Same,
            Some(Pads::Explicit(t, b, l, r)) => Padding::Explicit {
                top: t,
                bottom: b,
                left: l,
                right: r,
            },
            None => {
                let (t, b, l, r) = self.explicit_pads(at)?;
                Padding::Explicit {
                    top: t,
                    bottom: b,
                    left: l,
                    right: r,
                }
            }
        };
        // A zero pad whose only reader is this conv becomes the conv's padding (`nn.ZeroPad2d`).
        let (x, padding) = match (self.zero_pads.get(&x), padding) {
            (
                Some(&(source, (pt, pb, pl, pr))),
                Padding::Explicit {
                    top,
                    bottom,
                    left,
                    right,
                },
            ) => (
                source,
                Padding::Explicit {
                    top: top + pt,
                    bottom: bottom + pb,
                    left: left + pl,
                    right: right + pr,
                },
            ),
            (_, padding) => (x, padding),
        };
        let conv = lowering::conv_pool::conv2d(ConvArgs {
            weight: self.on_device(&weight)?,
            bias: bias.map(|b| self.on_device(&b)).transpose()?,
            stride: (stride as i64, stride as i64),
            dilation: (dilation as i64, dilation as i64),
            padding,
            groups: group,
        })
        .map_err(|p| self.refused(at, p))?;
        Ok(Value::Node(self.push(at, Op::Conv2d(conv), vec![x], 4)))
    }

    /// A 2-D attribute that must be equal on both axes (`strides`, `dilations`).
    fn square(&self, at: At, name: &str, default: usize) -> Result<usize> {
        match ints_attr(at.node, name).as_deref() {
            None => Ok(default),
            Some([a, b]) if a == b && (1..=MAX_WINDOW).contains(a) => Ok(*a as usize),
            Some(v) => Err(at.unsupported(format!(
                "with {name} {v:?}: only equal {name} on both axes are supported"
            ))),
        }
    }

    /// `pads` as (top, bottom, left, right).
    fn explicit_pads(&self, at: At) -> Result<(usize, usize, usize, usize)> {
        match ints_attr(at.node, "pads").as_deref() {
            None => Ok((0, 0, 0, 0)),
            Some(&[t, l, b, r]) if [t, l, b, r].iter().all(|p| (0..=MAX_WINDOW).contains(p)) => {
                Ok((t as usize, b as usize, l as usize, r as usize))
            }
            Some(v) => Err(at.unsupported(format!(
                "with pads {v:?}: 2-D, non-negative pads are supported"
            ))),
        }
    }

    /// Padding from `auto_pad`, `None` for explicit pads.
    fn auto_pad(
        &mut self,
        at: At,
        x: usize,
        kernel: (usize, usize),
        stride: (usize, usize),
    ) -> Result<Option<Pads>> {
        let mode = string_attr(at.node, "auto_pad").unwrap_or_default();
        match mode.as_str() {
            "" | "NOTSET" => Ok(None),
            "VALID" => Ok(Some(Pads::Explicit(0, 0, 0, 0))),
            "SAME_UPPER" if at.node.op_type == "Conv" => Ok(Some(Pads::Same)),
            "SAME_UPPER" | "SAME_LOWER" => {
                let dims = self.static_shape(at, x)?;
                let size = |i: usize| -> Result<usize> {
                    match dims.get(i) {
                        Some(&d) if d >= 0 => Ok(d as usize),
                        _ => Err(at.unsupported("with auto_pad SAME on an input of unknown size")),
                    }
                };
                let total = |len: usize, k: usize, s: usize| {
                    (len.div_ceil(s).saturating_sub(1) * s + k).saturating_sub(len)
                };
                let th = total(size(2)?, kernel.0, stride.0);
                let tw = total(size(3)?, kernel.1, stride.1);
                let (small_h, small_w) = (th / 2, tw / 2);
                Ok(Some(if mode == "SAME_UPPER" {
                    Pads::Explicit(small_h, th - small_h, small_w, tw - small_w)
                } else {
                    Pads::Explicit(th - small_h, small_h, tw - small_w, small_w)
                }))
            }
            other => Err(self.format(format!(
                "node `{}`: unknown auto_pad `{other}`",
                at.node.name
            ))),
        }
    }

    fn batch_norm(&mut self, at: At) -> Result<Value> {
        let x = self.required(at, 0)?;
        let mut params = Vec::with_capacity(4);
        for (i, what) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            match self.constant(at, i, what)? {
                Some(t) => params.push(self.on_device(&t)?),
                None => {
                    return Err(self.format(format!(
                        "BatchNormalization node `{}` lacks its {what}",
                        at.node.name
                    )))
                }
            }
        }
        let x = self.node_of(at, x)?;
        if self.rank(x) != 4 {
            return Err(at.unsupported(format!(
                "on a rank-{} input: only 2-D batch norm is supported",
                self.rank(x)
            )));
        }
        let eps = float_attr(at.node, "epsilon").unwrap_or(1e-5);
        let [w, b, m, v]: [Tensor; 4] = params
            .try_into()
            .map_err(|_| self.format("BatchNormalization parameters"))?;
        let bn = lowering::norm::batch_norm(Some(w), Some(b), m, v, eps)
            .map_err(|p| self.refused(at, p))?;
        Ok(Value::Node(self.push(at, Op::BatchNorm2d(bn), vec![x], 4)))
    }

    /// All inputs, in order.
    fn all_inputs(&mut self, at: At) -> Result<Vec<Value>> {
        let mut values = Vec::with_capacity(at.node.input.len());
        for i in 0..at.node.input.len() {
            values.push(self.required(at, i)?);
        }
        Ok(values)
    }

    /// Folds `f` over constants, refusing a folded batch size.
    fn fold(
        &self,
        at: At,
        parts: &[Tensor],
        f: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    ) -> Result<Value> {
        for p in parts {
            if has_batch(p)? {
                return Err(at.unsupported("computing with the batch size"));
            }
        }
        let float = parts.iter().any(|p| p.dtype() != DType::I64);
        let dtype = if float { DType::F32 } else { DType::I64 };
        let mut iter = parts.iter();
        let Some(first) = iter.next() else {
            return Err(self.format(format!("node `{}` has no inputs", at.node.name)));
        };
        let mut acc = first.to_dtype(dtype)?;
        for p in iter {
            acc = f(&acc, &p.to_dtype(dtype)?)?;
        }
        Ok(Value::Const(acc))
    }

    fn add(&mut self, at: At) -> Result<Value> {
        let values = self.all_inputs(at)?;
        if let Some(consts) = all_const(&values) {
            return self.fold(at, &consts, |a, b| a.broadcast_add(b));
        }
        // `MatMul` + `Add` of a bias vector is `nn.Linear` with a bias.
        if let [a, b] = values.as_slice() {
            for (x, c) in [(a, b), (b, a)] {
                if let (Value::Node(id), Value::Const(bias)) = (x, c) {
                    if let Some(done) = self.fill_bias(at, *id, bias)? {
                        return Ok(done);
                    }
                }
            }
        }
        let mut ids = Vec::with_capacity(values.len());
        for v in values {
            ids.push(self.node_of(at, v)?);
        }
        let rank = ids.iter().map(|&i| self.rank(i)).max().unwrap_or(0);
        Ok(Value::Node(self.push(at, Op::Add, ids, rank)))
    }

    /// Sets the bias of a bias-free `Linear` node made from a `MatMul`, when `bias` fits.
    fn fill_bias(&mut self, at: At, id: usize, bias: &Tensor) -> Result<Option<Value>> {
        if !self.bias_free.contains(&id) {
            return Ok(None);
        }
        let Some(matmul_out) = at
            .node
            .input
            .iter()
            .find(|n| matches!(self.values.get(n.as_str()), Some(Value::Node(i)) if *i == id))
        else {
            return Ok(None);
        };
        if self.consumers(matmul_out) != 1 {
            return Ok(None);
        }
        let Some(Pending {
            op: Op::Linear(linear),
            ..
        }) = self.pending.get(id)
        else {
            return Ok(None);
        };
        let out = linear.weight.dims().first().copied().unwrap_or(0);
        if bias.elem_count() != out
            || bias.dims().iter().rev().skip(1).any(|&d| d != 1)
            || has_batch(bias)?
        {
            return Ok(None);
        }
        let bias = self.on_device(&bias.flatten_all()?)?;
        if let Some(Pending {
            op: Op::Linear(linear),
            ..
        }) = self.pending.get_mut(id)
        {
            linear.bias = Some(bias);
        }
        self.bias_free.remove(&id);
        Ok(Some(Value::Node(id)))
    }

    fn negate(&mut self, at: At, v: Value) -> Result<Value> {
        match v {
            Value::Const(t) => self.fold(at, &[t], |a, _| a.neg()),
            Value::Node(id) => {
                let minus = Tensor::new(&[-1f32], &self.device)?;
                let c = self.push_helper(at, Op::Constant(minus), vec![], 1, "constant");
                let rank = self.rank(id);
                Ok(Value::Node(self.push_helper(
                    at,
                    Op::Mul,
                    vec![id, c],
                    rank,
                    "neg",
                )))
            }
        }
    }

    fn sub(&mut self, at: At) -> Result<Value> {
        let a = self.required(at, 0)?;
        let b = self.required(at, 1)?;
        if let (Value::Const(x), Value::Const(y)) = (&a, &b) {
            return self.fold(at, &[x.clone(), y.clone()], |p, q| p.broadcast_sub(q));
        }
        let negative = self.negate(at, b)?;
        let a = self.node_of(at, a)?;
        let b = self.node_of(at, negative)?;
        let rank = self.rank(a).max(self.rank(b));
        Ok(Value::Node(self.push(at, Op::Add, vec![a, b], rank)))
    }

    fn mul(&mut self, at: At) -> Result<Value> {
        let a = self.required(at, 0)?;
        let b = self.required(at, 1)?;
        if let (Value::Const(x), Value::Const(y)) = (&a, &b) {
            return self.fold(at, &[x.clone(), y.clone()], |p, q| p.broadcast_mul(q));
        }
        let a = self.node_of(at, a)?;
        let b = self.node_of(at, b)?;
        let rank = self.rank(a).max(self.rank(b));
        Ok(Value::Node(self.push(at, Op::Mul, vec![a, b], rank)))
    }

    fn div(&mut self, at: At) -> Result<Value> {
        let a = self.required(at, 0)?;
        let b = self.required(at, 1)?;
        match (a, b) {
            (Value::Const(x), Value::Const(y)) => self.fold(at, &[x, y], |p, q| p.broadcast_div(q)),
            (a, Value::Const(y)) => {
                if has_batch(&y)? {
                    return Err(at.unsupported("dividing by the batch size"));
                }
                let reciprocal = Value::Const(y.to_dtype(DType::F32)?.recip()?);
                let a = self.node_of(at, a)?;
                let b = self.node_of(at, reciprocal)?;
                let rank = self.rank(a).max(self.rank(b));
                Ok(Value::Node(self.push(at, Op::Mul, vec![a, b], rank)))
            }
            _ => Err(
                at.unsupported("with a computed divisor: only division by a constant is supported")
            ),
        }
    }

    fn concat(&mut self, at: At) -> Result<Value> {
        let Some(a) = int_attr(at.node, "axis") else {
            return Err(self.format(format!("Concat node `{}` has no axis", at.node.name)));
        };
        let values = self.all_inputs(at)?;
        if let Some(consts) = all_const(&values) {
            let rank = consts.first().map_or(0, |c| c.rank());
            let dim = self.axis(at, a, rank)?;
            let float = consts.iter().any(|c| c.dtype() != DType::I64);
            let dtype = if float { DType::F32 } else { DType::I64 };
            let parts = consts
                .iter()
                .map(|c| c.to_dtype(dtype))
                .collect::<candle_core::Result<Vec<_>>>()?;
            return Ok(Value::Const(Tensor::cat(&parts, dim)?));
        }
        let mut ids = Vec::with_capacity(values.len());
        for v in values {
            ids.push(self.node_of(at, v)?);
        }
        let rank = ids.first().map_or(0, |&i| self.rank(i));
        let dim = self.axis(at, a, rank)?;
        Ok(Value::Node(self.push(at, Op::Concat { dim }, ids, rank)))
    }

    fn pool(&mut self, at: At, max: bool) -> Result<Value> {
        let node = at.node;
        let x = self.required(at, 0)?;
        let x = self.node_of(at, x)?;
        if self.rank(x) != 4 {
            return Err(at.unsupported(format!(
                "on a rank-{} input: only 2-D pooling is supported",
                self.rank(x)
            )));
        }
        let kernel = match ints_attr(node, "kernel_shape").as_deref() {
            Some(&[h, w]) => (h, w),
            other => {
                return Err(at.unsupported(format!(
                    "with kernel_shape {other:?}: 2-D kernels are supported"
                )))
            }
        };
        let stride = match ints_attr(node, "strides").as_deref() {
            None => (1, 1),
            Some(&[h, w]) => (h, w),
            Some(v) => return Err(at.unsupported(format!("with strides {v:?}"))),
        };
        let dilation = match ints_attr(node, "dilations").as_deref() {
            None => (1, 1),
            Some(&[h, w]) if max => (h, w),
            Some(d) => {
                lowering::conv_pool::undilated(d).map_err(|p| self.refused(at, p))?;
                (1, 1)
            }
        };
        let in_range = |v: i64| (1..=MAX_WINDOW).contains(&v);
        if ![kernel.0, kernel.1, stride.0, stride.1]
            .into_iter()
            .all(in_range)
        {
            return Err(self.refused(
                at,
                Problem::Invalid(format!(
                    "kernel {kernel:?} or stride {stride:?} out of range"
                )),
            ));
        }
        let as_sizes = |(h, w): (i64, i64)| (h as usize, w as usize);
        let extent = (
            dilation.0.clamp(1, MAX_WINDOW) * (kernel.0 - 1) + 1,
            dilation.1.clamp(1, MAX_WINDOW) * (kernel.1 - 1) + 1,
        );
        let padding = match self.auto_pad(at, x, as_sizes(extent), as_sizes(stride))? {
            Some(Pads::Explicit(t, b, l, r)) => (t, b, l, r),
            Some(Pads::Same) => return Err(self.format("pooling with SAME padding")),
            None => self.explicit_pads(at)?,
        };
        let i = |v: usize| v as i64;
        let window = lowering::conv_pool::pool_window(
            kernel,
            stride,
            (i(padding.0), i(padding.1), i(padding.2), i(padding.3)),
            dilation,
            int_attr(node, "ceil_mode").unwrap_or(0) != 0,
        )
        .map_err(|p| self.refused(at, p))?;
        let op = if max {
            Op::MaxPool2d(MaxPool2d { window })
        } else {
            Op::AvgPool2d(AvgPool2d {
                window,
                count_include_pad: int_attr(node, "count_include_pad").unwrap_or(0) != 0,
            })
        };
        Ok(Value::Node(self.push(at, op, vec![x], 4)))
    }

    fn global_average_pool(&mut self, at: At) -> Result<Value> {
        let x = self.required(at, 0)?;
        let x = self.node_of(at, x)?;
        let rank = self.rank(x);
        let op = match rank {
            4 => Op::AdaptiveAvgPool2d(AdaptiveAvgPool2d {
                output_size: (1, 1),
            }),
            r if r >= 3 => Op::ReduceMean(ReduceMean {
                axes: (2..r).collect(),
                keepdim: true,
            }),
            r => return Err(at.unsupported(format!("on a rank-{r} input"))),
        };
        Ok(Value::Node(self.push(at, op, vec![x], rank)))
    }

    fn gemm(&mut self, at: At) -> Result<Value> {
        let node = at.node;
        let a = self.required(at, 0)?;
        let Some(b) = self.constant(at, 1, "B")? else {
            return Err(self.format(format!("Gemm node `{}` lacks B", node.name)));
        };
        let c = self.constant(at, 2, "C")?;
        let alpha = float_attr(node, "alpha").unwrap_or(1.0);
        let beta = float_attr(node, "beta").unwrap_or(1.0);
        let trans_a = int_attr(node, "transA").unwrap_or(0) != 0;
        let trans_b = int_attr(node, "transB").unwrap_or(0) != 0;
        if b.rank() != 2 {
            return Err(self.format(format!(
                "Gemm node `{}`: B of shape {:?}",
                node.name,
                b.dims()
            )));
        }
        let b = b.to_dtype(DType::F32)?;
        let weight = if trans_b { b } else { b.t()?.contiguous()? };
        let weight = if alpha == 1.0 {
            weight
        } else {
            weight.affine(alpha, 0.0)?
        };
        let out = weight.dims()[0];
        let bias = match c {
            Some(c) if beta != 0.0 => {
                let n = c.elem_count();
                let fits = c.dims().iter().rev().skip(1).all(|&d| d == 1) && (n == out || n == 1);
                if !fits {
                    return Err(at.unsupported(format!(
                        "with C of shape {:?}: a bias per output is supported",
                        c.dims()
                    )));
                }
                let c = c.to_dtype(DType::F32)?.flatten_all()?.affine(beta, 0.0)?;
                Some(if n == 1 {
                    c.broadcast_as(out)?.contiguous()?
                } else {
                    c
                })
            }
            _ => None,
        };
        let mut x = self.node_of(at, a)?;
        if self.rank(x) != 2 {
            return Err(self.format(format!(
                "Gemm node `{}` on a rank-{} input",
                node.name,
                self.rank(x)
            )));
        }
        if trans_a {
            x = self.push_helper(
                at,
                Op::Transpose(Transpose { perm: vec![1, 0] }),
                vec![x],
                2,
                "transpose",
            );
        }
        let linear = Linear {
            weight: self.on_device(&weight)?,
            bias: bias.map(|b| self.on_device(&b)).transpose()?,
        };
        Ok(Value::Node(self.push(at, Op::Linear(linear), vec![x], 2)))
    }

    fn matmul(&mut self, at: At) -> Result<Value> {
        let a = self.required(at, 0)?;
        let b = self.required(at, 1)?;
        match (a, b) {
            (Value::Const(x), Value::Const(y)) => {
                self.fold(at, &[x, y], |p, q| p.broadcast_matmul(q))
            }
            (Value::Node(x), Value::Const(w)) if self.rank(x) == 2 && w.rank() == 2 => {
                let weight = self.on_device(&w.t()?.contiguous()?)?;
                let id = self.push(at, Op::Linear(Linear { weight, bias: None }), vec![x], 2);
                self.bias_free.insert(id);
                Ok(Value::Node(id))
            }
            (a, b) => {
                let a = self.node_of(at, a)?;
                let b = self.node_of(at, b)?;
                let (ra, rb) = (self.rank(a), self.rank(b));
                if ra < 2 || rb < 2 {
                    return Err(at.unsupported("on a vector: MatMul of matrices is supported"));
                }
                Ok(Value::Node(self.push(
                    at,
                    Op::MatMul,
                    vec![a, b],
                    ra.max(rb),
                )))
            }
        }
    }

    fn flatten(&mut self, at: At) -> Result<Value> {
        let x = self.required(at, 0)?;
        let a = int_attr(at.node, "axis").unwrap_or(1);
        let rank = match &x {
            Value::Const(t) => t.rank(),
            Value::Node(id) => self.rank(*id),
        };
        let resolved = if a < 0 { a + rank as i64 } else { a };
        if resolved < 0 || resolved > rank as i64 {
            return Err(self.format(format!(
                "Flatten node `{}`: axis {a} of a rank-{rank} tensor",
                at.node.name
            )));
        }
        let reshape = Reshape::Flatten2d(resolved as usize);
        match x {
            Value::Const(t) => Ok(Value::Const(reshape.forward(&t)?)),
            Value::Node(id) if resolved == 1 && rank >= 2 => Ok(Value::Node(self.push(
                at,
                Op::Flatten { start_dim: 1 },
                vec![id],
                2,
            ))),
            Value::Node(id) => Ok(Value::Node(self.push(
                at,
                Op::Reshape(reshape),
                vec![id],
                2,
            ))),
        }
    }

    fn reshape(&mut self, at: At) -> Result<Value> {
        let x = self.required(at, 0)?;
        let Some(shape) = self.constant(at, 1, "shape")? else {
            return Err(self.format(format!("Reshape node `{}` lacks its shape", at.node.name)));
        };
        let mut target = host_i64(&shape)?;
        // A batch size read off a computed value: copy it from the input's first axis.
        for (i, s) in target.iter_mut().enumerate() {
            if *s == BATCH {
                if i != 0 {
                    return Err(at.unsupported("moving the batch size off the first axis"));
                }
                *s = 0;
            }
        }
        if int_attr(at.node, "allowzero").unwrap_or(0) != 0 && target.contains(&0) {
            return Err(at.unsupported("with allowzero and a zero in the shape"));
        }
        let rank = target.len();
        let reshape = Reshape::Shape(target.clone());
        match x {
            Value::Const(t) => Ok(Value::Const(reshape.forward(&t)?)),
            Value::Node(id) if target == [0, -1] && self.rank(id) >= 2 => Ok(Value::Node(
                self.push(at, Op::Flatten { start_dim: 1 }, vec![id], 2),
            )),
            Value::Node(id) => Ok(Value::Node(self.push(
                at,
                Op::Reshape(reshape),
                vec![id],
                rank,
            ))),
        }
    }

    fn constant_node(&mut self, at: At) -> Result<Value> {
        let node = at.node;
        for a in &node.attribute {
            let t = match a.name.as_str() {
                "value" => match &a.t {
                    Some(t) => self.reader.read(t)?,
                    None => {
                        return Err(self
                            .format(format!("Constant node `{}` has an empty value", node.name)))
                    }
                },
                "value_float" => Tensor::new(a.f, &Device::Cpu)?,
                "value_floats" => Tensor::new(a.floats.as_slice(), &Device::Cpu)?,
                "value_int" => Tensor::new(a.i, &Device::Cpu)?,
                "value_ints" => Tensor::new(a.ints.as_slice(), &Device::Cpu)?,
                _ => continue,
            };
            return Ok(Value::Const(t));
        }
        Err(at.unsupported("without a numeric value attribute"))
    }

    fn pad(&mut self, at: At) -> Result<Value> {
        let node = at.node;
        let mode = string_attr(node, "mode").unwrap_or_else(|| "constant".into());
        if mode != "constant" {
            return Err(at.unsupported(format!(
                "in mode `{mode}`: only constant padding is supported"
            )));
        }
        let x = self.required(at, 0)?;
        let pads = match self.constant(at, 1, "pads")? {
            Some(t) => self.ints(at, &t, "pads")?,
            None => ints_attr(node, "pads").unwrap_or_default(),
        };
        let value = match self.constant(at, 2, "constant_value")? {
            Some(t) => host_f32(&t)?.first().copied().map_or(0.0, f64::from),
            None => float_attr(node, "value").unwrap_or(0.0),
        };
        let x = self.node_of(at, x)?;
        let rank = self.rank(x);
        let axes: Vec<usize> = match self.constant(at, 3, "axes")? {
            Some(t) => {
                let list = self.ints(at, &t, "axes")?;
                list.iter()
                    .map(|&a| self.axis(at, a, rank))
                    .collect::<Result<_>>()?
            }
            None => (0..rank).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(self.format(format!(
                "Pad node `{}`: {} pads for {} axes",
                node.name,
                pads.len(),
                axes.len()
            )));
        }
        let entries: Vec<(usize, i64, i64)> = axes
            .iter()
            .enumerate()
            .map(|(k, &a)| (a, pads[k], pads[k + axes.len()]))
            .collect();
        let pad = lowering::shape::constant_pad(rank, &entries, value)
            .map_err(|p| self.refused(at, p))?;
        let per_axis = pad.pads.clone();
        let spatial_only = rank == 4 && per_axis[0] == (0, 0) && per_axis[1] == (0, 0);
        let id = self.push(at, Op::Pad(pad), vec![x], rank);
        let single_reader = node.output.first().is_some_and(|o| self.consumers(o) == 1);
        if value == 0.0 && spatial_only && single_reader {
            let ((t, b), (l, r)) = (per_axis[2], per_axis[3]);
            self.zero_pads.insert(id, (x, (t, b, l, r)));
        }
        Ok(Value::Node(id))
    }

    fn resize(&mut self, at: At) -> Result<Value> {
        let node = at.node;
        let upsample = node.op_type == "Upsample";
        let modern = !upsample && self.opset >= 11;
        let x = self.required(at, 0)?;
        let mode = string_attr(node, "mode").unwrap_or_else(|| "nearest".into());
        let mode = match mode.as_str() {
            "nearest" => {
                let rounding = match string_attr(node, "nearest_mode").as_deref() {
                    _ if !modern => NearestRounding::Floor,
                    None | Some("round_prefer_floor") => NearestRounding::RoundPreferFloor,
                    Some("round_prefer_ceil") => NearestRounding::RoundPreferCeil,
                    Some("floor") => NearestRounding::Floor,
                    Some("ceil") => NearestRounding::Ceil,
                    Some(other) => {
                        return Err(at.unsupported(format!("with nearest_mode `{other}`")))
                    }
                };
                ResizeMode::Nearest(rounding)
            }
            "linear" | "bilinear" => ResizeMode::Linear,
            other => {
                return Err(at.unsupported(format!(
                    "in mode `{other}`: nearest and linear are supported"
                )))
            }
        };
        let coordinates = match string_attr(node, "coordinate_transformation_mode").as_deref() {
            _ if !modern => CoordinateMode::Asymmetric,
            None | Some("half_pixel") => CoordinateMode::HalfPixel,
            Some("pytorch_half_pixel") => CoordinateMode::PytorchHalfPixel,
            Some("align_corners") => CoordinateMode::AlignCorners,
            Some("asymmetric") => CoordinateMode::Asymmetric,
            Some("tf_half_pixel_for_nn") => CoordinateMode::TfHalfPixelForNn,
            Some(other) => {
                return Err(at.unsupported(format!("with coordinate_transformation_mode `{other}`")))
            }
        };
        if ints_attr(node, "axes").is_some() {
            return Err(at.unsupported("with axes: resizing all four axes is supported"));
        }
        if let Some(policy) =
            string_attr(node, "keep_aspect_ratio_policy").filter(|p| p != "stretch")
        {
            return Err(at.unsupported(format!("with keep_aspect_ratio_policy `{policy}`")));
        }
        // Scales: an attribute (Upsample-7), input 1 (Upsample-9, Resize-10) or input 2; sizes: input 3.
        let scales = if upsample && self.opset < 9 {
            node.attribute
                .iter()
                .find(|a| a.name == "scales")
                .map(|a| Tensor::new(a.floats.as_slice(), &Device::Cpu))
                .transpose()?
        } else {
            self.constant(at, if modern { 2 } else { 1 }, "scales")?
        };
        let sizes = if modern {
            self.constant(at, 3, "sizes")?
        } else {
            None
        };
        let target = match (
            scales.filter(|s| s.elem_count() > 0),
            sizes.filter(|s| s.elem_count() > 0),
        ) {
            (Some(s), _) => match host_f32(&s)?.as_slice() {
                &[1.0, 1.0, h, w]
                    if [h, w].iter().all(|&s| s > 0.0 && f64::from(s) <= MAX_SCALE) =>
                {
                    ResizeTarget::Scales(f64::from(h), f64::from(w))
                }
                v => {
                    return Err(at.unsupported(format!(
                        "with scales {v:?}: only the two spatial axes may change"
                    )))
                }
            },
            (None, Some(s)) => match host_i64(&s)?.as_slice() {
                &[_, _, h, w] if (1..=MAX_SIDE).contains(&h) && (1..=MAX_SIDE).contains(&w) => {
                    ResizeTarget::Sizes(h as usize, w as usize)
                }
                v => return Err(at.unsupported(format!("with sizes {v:?}"))),
            },
            (None, None) => {
                return Err(self.format(format!(
                    "{} node `{}` has neither scales nor sizes",
                    node.op_type, node.name
                )))
            }
        };
        let mut mode = mode;
        if let ResizeTarget::Scales(h, w) = target {
            if int_attr(node, "antialias").unwrap_or(0) != 0 && (h < 1.0 || w < 1.0) {
                return Err(at.unsupported("downsampling with antialias"));
            }
            // Before opset 11 the nearest pixel rounds down when enlarging and up when shrinking.
            if !modern && (h < 1.0 || w < 1.0) && matches!(mode, ResizeMode::Nearest(_)) {
                mode = ResizeMode::Nearest(NearestRounding::Ceil);
            }
        }
        let x = self.node_of(at, x)?;
        if self.rank(x) != 4 {
            return Err(at.unsupported(format!(
                "on a rank-{} input: 2-D images are supported",
                self.rank(x)
            )));
        }
        let op = Op::Resize(Resize {
            mode,
            coordinates,
            target,
        });
        Ok(Value::Node(self.push(at, op, vec![x], 4)))
    }

    fn softmax(&mut self, at: At) -> Result<Value> {
        let x = self.required(at, 0)?;
        let x = self.node_of(at, x)?;
        let rank = self.rank(x);
        let default = if self.opset < 13 { 1 } else { -1 };
        let a = self.axis(at, int_attr(at.node, "axis").unwrap_or(default), rank)?;
        if a + 1 != rank {
            return Err(at.unsupported(format!(
                "over axis {a} of a rank-{rank} tensor: only the last axis is supported"
            )));
        }
        Ok(Value::Node(self.push(at, Op::Softmax, vec![x], rank)))
    }

    /// Axes from the `axes` attribute or, in newer opsets, input `i`.
    fn axes(&mut self, at: At, i: usize) -> Result<Option<Vec<i64>>> {
        if let Some(a) = ints_attr(at.node, "axes") {
            return Ok(Some(a));
        }
        match self.constant(at, i, "axes")? {
            Some(t) => Ok(Some(self.ints(at, &t, "axes")?)),
            None => Ok(None),
        }
    }

    fn reduce_mean(&mut self, at: At) -> Result<Value> {
        let x = self.required(at, 0)?;
        let x = self.node_of(at, x)?;
        let rank = self.rank(x);
        let keepdim = int_attr(at.node, "keepdims").unwrap_or(1) != 0;
        let mut axes: Vec<usize> = match self.axes(at, 1)? {
            Some(a) if !a.is_empty() => a
                .iter()
                .map(|&a| self.axis(at, a, rank))
                .collect::<Result<_>>()?,
            _ if int_attr(at.node, "noop_with_empty_axes").unwrap_or(0) != 0 => {
                return Ok(Value::Node(x))
            }
            _ => (0..rank).collect(),
        };
        axes.sort_unstable();
        axes.dedup();
        let out_rank = if keepdim { rank } else { rank - axes.len() };
        let op = if rank == 4 && axes == [2, 3] && keepdim {
            Op::SpatialMean
        } else {
            Op::ReduceMean(ReduceMean { axes, keepdim })
        };
        Ok(Value::Node(self.push(at, op, vec![x], out_rank)))
    }

    fn transpose(&mut self, at: At) -> Result<Value> {
        let x = self.required(at, 0)?;
        let rank = match &x {
            Value::Const(t) => t.rank(),
            Value::Node(id) => self.rank(*id),
        };
        let perm: Vec<usize> = match ints_attr(at.node, "perm") {
            Some(p) => p
                .iter()
                .map(|&a| self.axis(at, a, rank))
                .collect::<Result<_>>()?,
            None => (0..rank).rev().collect(),
        };
        let op = lowering::shape::permutation(perm, rank).map_err(|p| self.refused(at, p))?;
        match x {
            Value::Const(t) => Ok(Value::Const(op.forward(&t)?)),
            Value::Node(id) => Ok(Value::Node(self.push(
                at,
                Op::Transpose(op),
                vec![id],
                rank,
            ))),
        }
    }

    fn shape(&mut self, at: At) -> Result<Value> {
        let x = self.required(at, 0)?;
        let dims: Vec<i64> = match x {
            Value::Const(t) => t.dims().iter().map(|&d| d as i64).collect(),
            Value::Node(id) => self.static_shape(at, id)?,
        };
        let rank = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + rank } else { v }).clamp(0, rank) as usize;
        let start = clamp(int_attr(at.node, "start").unwrap_or(0));
        let end = clamp(int_attr(at.node, "end").unwrap_or(rank));
        let dims = dims.get(start..end.max(start)).unwrap_or(&[]).to_vec();
        let n = dims.len();
        Ok(Value::Const(Tensor::from_vec(dims, n, &Device::Cpu)?))
    }

    /// The size of node `id`'s output for the declared input size; a dimension that follows a
    /// symbolic batch axis is [`BATCH`].
    fn static_shape(&mut self, at: At, id: usize) -> Result<Vec<i64>> {
        if self.input_dims.iter().skip(1).any(Option::is_none) || self.input_dims.is_empty() {
            return Err(at.unsupported(format!(
                "needs the input's size, but the model leaves it open ({})",
                describe_dims(&self.input_dims)
            )));
        }
        if self.probes.is_empty() {
            let batches = match self.input_dims.first() {
                Some(Some(b)) => vec![*b],
                _ => vec![1, 2],
            };
            for batch in batches {
                let mut dims: Vec<usize> = self.input_dims.iter().map(|d| d.unwrap_or(1)).collect();
                dims[0] = batch;
                if dims
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .is_none_or(|n| n > MAX_COMPUTED)
                {
                    return Err(at.unsupported("on an input too large to evaluate at import"));
                }
                let zeros = Tensor::zeros(dims, DType::F32, &self.device)?;
                self.probes.push(Probe {
                    outputs: vec![zeros],
                });
            }
        }
        let mut shapes = Vec::with_capacity(self.probes.len());
        for probe in self.probes.iter_mut() {
            while probe.outputs.len() <= id {
                let k = probe.outputs.len();
                let Some(node) = self.pending.get(k) else {
                    return Err(Error::InvalidArgument(format!("no graph node {k}")));
                };
                let inputs: Vec<&Tensor> = node
                    .inputs
                    .iter()
                    .filter_map(|&i| probe.outputs.get(i))
                    .collect();
                let y = node.op.forward(&inputs).map_err(|e| {
                    Error::format(
                        self.path,
                        format!(
                            "evaluating node `{}` for the sizes node `{}` reads: {e}",
                            node.onnx_name, at.node.name
                        ),
                    )
                })?;
                probe.outputs.push(y);
            }
            shapes.push(probe.outputs[id].dims().to_vec());
        }
        match shapes.as_slice() {
            [one] => Ok(one.iter().map(|&d| d as i64).collect()),
            [a, b] if a.len() == b.len() => a
                .iter()
                .zip(b)
                .map(|(&p, &q)| match (p, q) {
                    (p, q) if p == q => Ok(p as i64),
                    (1, 2) => Ok(BATCH),
                    _ => Err(at.unsupported(
                        "on a value whose size grows with the batch in a way convlens cannot fold",
                    )),
                })
                .collect(),
            _ => Err(at.unsupported("on a value whose rank changes with the batch size")),
        }
    }

    fn gather(&mut self, at: At) -> Result<Value> {
        let data = match self.required(at, 0)? {
            Value::Const(t) => t,
            Value::Node(_) => {
                return Err(
                    at.unsupported("on a computed tensor: only shape computations are folded")
                )
            }
        };
        let Some(indices) = self.constant(at, 1, "indices")? else {
            return Err(self.format(format!("Gather node `{}` lacks indices", at.node.name)));
        };
        let dim = self.axis(at, int_attr(at.node, "axis").unwrap_or(0), data.rank())?;
        let len = data.dims()[dim] as i64;
        let list = self.ints(at, &indices, "indices")?;
        let resolved = list
            .iter()
            .map(|&i| {
                let j = if i < 0 { i + len } else { i };
                if (0..len).contains(&j) {
                    Ok(j as u32)
                } else {
                    Err(self.format(format!(
                        "Gather node `{}`: index {i} out of range",
                        at.node.name
                    )))
                }
            })
            .collect::<Result<Vec<u32>>>()?;
        let n = resolved.len();
        let picked = data.index_select(&Tensor::from_vec(resolved, n, &Device::Cpu)?, dim)?;
        // The indices' shape replaces the gathered axis.
        let mut dims: Vec<usize> = data.dims()[..dim].to_vec();
        dims.extend_from_slice(indices.dims());
        dims.extend_from_slice(&data.dims()[dim + 1..]);
        Ok(Value::Const(picked.reshape(dims)?))
    }

    fn unsqueeze(&mut self, at: At) -> Result<Value> {
        let data = match self.required(at, 0)? {
            Value::Const(t) => t,
            Value::Node(_) => {
                return Err(
                    at.unsupported("on a computed tensor: only shape computations are folded")
                )
            }
        };
        let Some(axes) = self.axes(at, 1)? else {
            return Err(self.format(format!("Unsqueeze node `{}` has no axes", at.node.name)));
        };
        let rank = data.rank() + axes.len();
        let mut positions: Vec<usize> = axes
            .iter()
            .map(|&a| self.axis(at, a, rank))
            .collect::<Result<_>>()?;
        positions.sort_unstable();
        let mut dims = data.dims().to_vec();
        for p in positions {
            dims.insert(p.min(dims.len()), 1);
        }
        Ok(Value::Const(data.reshape(dims)?))
    }

    fn squeeze(&mut self, at: At) -> Result<Value> {
        let data = match self.required(at, 0)? {
            Value::Const(t) => t,
            Value::Node(_) => {
                return Err(
                    at.unsupported("on a computed tensor: only shape computations are folded")
                )
            }
        };
        let rank = data.rank();
        let axes: Vec<usize> = match self.axes(at, 1)? {
            Some(a) => a
                .iter()
                .map(|&a| self.axis(at, a, rank))
                .collect::<Result<_>>()?,
            None => (0..rank).filter(|&i| data.dims()[i] == 1).collect(),
        };
        let dims: Vec<usize> = data
            .dims()
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect();
        Ok(Value::Const(data.reshape(dims)?))
    }

    fn slice(&mut self, at: At) -> Result<Value> {
        let data = self.required(at, 0)?;
        let rank = match &data {
            Value::Const(t) => t.rank(),
            Value::Node(id) => self.rank(*id),
        };
        let list = |this: &mut Self, i: usize, name: &str| -> Result<Option<Vec<i64>>> {
            if let Some(v) = ints_attr(at.node, name) {
                return Ok(Some(v));
            }
            match this.constant(at, i, name)? {
                Some(t) => Ok(Some(this.ints(at, &t, name)?)),
                None => Ok(None),
            }
        };
        let starts = list(self, 1, "starts")?.unwrap_or_default();
        let ends = list(self, 2, "ends")?.unwrap_or_default();
        let axes = list(self, 3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = list(self, 4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(self.format(format!(
                "Slice node `{}`: starts, ends, axes and steps differ in length",
                at.node.name
            )));
        }
        if steps.contains(&0) {
            return Err(self.format(format!("Slice node `{}` has a zero step", at.node.name)));
        }
        let mut parts = Vec::with_capacity(starts.len());
        for k in 0..starts.len() {
            parts.push((self.axis(at, axes[k], rank)?, starts[k], ends[k], steps[k]));
        }
        let mut out = match data {
            Value::Const(t) => t,
            Value::Node(id) => {
                let mut sliced = Vec::with_capacity(parts.len());
                for &(axis, start, end, step) in &parts {
                    if step < 0 {
                        return Err(at.unsupported("with a negative step on a computed tensor"));
                    }
                    sliced.push(SliceAxis {
                        axis,
                        start,
                        end,
                        step: step as usize,
                    });
                }
                let op = Op::Slice(Slice { axes: sliced });
                return Ok(Value::Node(self.push(at, op, vec![id], rank)));
            }
        };
        for (dim, start, end, step) in parts {
            let len = out.dims()[dim] as i64;
            let resolve = |v: i64, low: i64, high: i64| {
                (if v < 0 { v.saturating_add(len) } else { v }).clamp(low, high)
            };
            let picked: Vec<u32> = if step > 0 {
                let (s, e) = (resolve(start, 0, len), resolve(end, 0, len));
                (s..e).step_by(step as usize).map(|i| i as u32).collect()
            } else {
                let (s, e) = (resolve(start, -1, len - 1), resolve(end, -1, len - 1));
                let mut v = vec![];
                let mut i = s;
                while i > e {
                    v.push(i as u32);
                    i += step;
                }
                v
            };
            let n = picked.len();
            out = out.index_select(&Tensor::from_vec(picked, n, &Device::Cpu)?, dim)?;
        }
        Ok(Value::Const(out))
    }

    fn cast(&mut self, at: At) -> Result<Value> {
        use super::proto::data_type as dt;
        let x = self.required(at, 0)?;
        let to = int_attr(at.node, "to").unwrap_or(0) as i32;
        let float = matches!(to, dt::FLOAT | dt::DOUBLE | dt::FLOAT16 | dt::BFLOAT16);
        match x {
            Value::Node(_) if float => Ok(x),
            Value::Node(_) => Err(at.unsupported(format!(
                "to ONNX type {to} on a computed tensor: only casts to floats are supported"
            ))),
            Value::Const(t) if float => {
                if has_batch(&t)? {
                    return Err(at.unsupported("turning the batch size into a float"));
                }
                Ok(Value::Const(t.to_dtype(DType::F32)?))
            }
            Value::Const(t) if t.dtype() == DType::F32 => {
                let v: Vec<i64> = host_f32(&t)?.iter().map(|&f| f as i64).collect();
                Ok(Value::Const(Tensor::from_vec(v, t.dims(), &Device::Cpu)?))
            }
            Value::Const(t) => Ok(Value::Const(t)),
        }
    }

    fn constant_of_shape(&mut self, at: At) -> Result<Value> {
        let Some(shape) = self.constant(at, 0, "shape")? else {
            return Err(self.format(format!(
                "ConstantOfShape node `{}` lacks its shape",
                at.node.name
            )));
        };
        let dims = self.ints(at, &shape, "a shape")?;
        let dims = dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<Vec<usize>, _>>()
            .map_err(|_| {
                self.format(format!(
                    "ConstantOfShape node `{}`: negative size",
                    at.node.name
                ))
            })?;
        if dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .is_none_or(|n| n > MAX_COMPUTED)
        {
            return Err(self.format(format!(
                "ConstantOfShape node `{}`: shape {dims:?} is too large",
                at.node.name
            )));
        }
        let value = match at
            .node
            .attribute
            .iter()
            .find(|a| a.name == "value")
            .and_then(|a| a.t.as_ref())
        {
            Some(t) => self.reader.read(t)?,
            None => Tensor::new(&[0f32], &Device::Cpu)?,
        };
        if value.elem_count() != 1 {
            return Err(self.format(format!(
                "ConstantOfShape node `{}`: value is not a single number",
                at.node.name
            )));
        }
        Ok(Value::Const(
            value
                .flatten_all()?
                .reshape(())?
                .broadcast_as(dims)?
                .contiguous()?,
        ))
    }

    // ---- assembly -----------------------------------------------------------------------

    /// Keeps the nodes the output depends on, names them and builds the graph.
    fn finish(self, out: usize) -> Result<Graph> {
        let mut live = vec![false; out + 1];
        live[0] = true;
        live[out] = true;
        for id in (1..=out).rev() {
            if live[id] {
                for &i in &self.pending[id].inputs {
                    live[i] = true;
                }
            }
        }
        let kept: Vec<usize> = (1..=out).filter(|&i| live[i]).collect();
        if kept.is_empty() {
            return Err(Error::Unsupported("the model's output is its input".into()));
        }
        let sources: Vec<NameSource> = kept
            .iter()
            .map(|&i| NameSource {
                onnx_name: &self.pending[i].onnx_name,
                label: self.pending[i].label.clone(),
                helper: self.pending[i].helper,
            })
            .collect();
        let names = names::assign(&sources);
        let mut index = vec![usize::MAX; out + 1];
        index[0] = 0;
        for (k, &i) in kept.iter().enumerate() {
            index[i] = k + 1;
        }
        let mut nodes = Vec::with_capacity(kept.len() + 1);
        let mut pending: Vec<Option<Pending>> = self.pending.into_iter().map(Some).collect();
        if let Some(input) = pending.get_mut(0).and_then(Option::take) {
            nodes.push(Node {
                name: "input".into(),
                op: input.op,
                inputs: vec![],
            });
        }
        for (&i, name) in kept.iter().zip(names) {
            let Some(p) = pending.get_mut(i).and_then(Option::take) else {
                return Err(Error::InvalidArgument(format!(
                    "graph node {i} taken twice"
                )));
            };
            nodes.push(Node {
                name,
                op: p.op,
                inputs: p.inputs.iter().map(|&j| index[j]).collect(),
            });
        }
        Graph::new(nodes)
    }
}

/// Padding on the four sides of an image: top, bottom, left, right.
type Sides = (usize, usize, usize, usize);

/// Padding worked out from `auto_pad`.
enum Pads {
    /// TF-style 'same', resolved by the conv at run time.
    Same,
    /// top, bottom, left, right.
    Explicit(usize, usize, usize, usize),
}

fn is_default_domain(node: &NodeProto) -> bool {
    node.domain.is_empty() || node.domain == "ai.onnx"
}

fn all_const(values: &[Value]) -> Option<Vec<Tensor>> {
    values
        .iter()
        .map(|v| match v {
            Value::Const(t) => Some(t.clone()),
            Value::Node(_) => None,
        })
        .collect()
}

/// The lower-case name a functional op gets inside a module (`add`, `cat`).
fn label(op_type: &str) -> String {
    match op_type {
        "Concat" => "cat".into(),
        "Sum" => "add".into(),
        other => other.to_ascii_lowercase(),
    }
}

fn describe_dims(dims: &[Option<usize>]) -> String {
    let parts: Vec<String> = dims
        .iter()
        .map(|d| d.map_or("?".into(), |v| v.to_string()))
        .collect();
    format!("[{}]", parts.join(", "))
}

fn find_attr<'n>(node: &'n NodeProto, name: &str) -> Option<&'n super::proto::AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn int_attr(node: &NodeProto, name: &str) -> Option<i64> {
    find_attr(node, name)
        .filter(|a| matches!(a.r#type, attribute_type::INT | attribute_type::UNDEFINED))
        .map(|a| a.i)
}

/// A float attribute, widened through its shortest decimal form so that the f32 the exporter
/// wrote for `1e-5` or `0.01` becomes that number again.
fn float_attr(node: &NodeProto, name: &str) -> Option<f64> {
    find_attr(node, name)
        .filter(|a| matches!(a.r#type, attribute_type::FLOAT | attribute_type::UNDEFINED))
        .map(|a| a.f.to_string().parse::<f64>().unwrap_or(f64::from(a.f)))
}

fn ints_attr(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    find_attr(node, name)
        .filter(|a| matches!(a.r#type, attribute_type::INTS | attribute_type::UNDEFINED))
        .map(|a| a.ints.clone())
}

fn string_attr(node: &NodeProto, name: &str) -> Option<String> {
    find_attr(node, name)
        .filter(|a| matches!(a.r#type, attribute_type::STRING | attribute_type::UNDEFINED))
        .map(|a| String::from_utf8_lossy(&a.s).into_owned())
}
