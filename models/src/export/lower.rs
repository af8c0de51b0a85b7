//! Lowering a program's ATen graph onto convlens's engine ops.
//!
//! Parameters and buffers are graph inputs named by their state_dict keys (the signature says
//! which); they are taken through the [`GraphBuilder`], so a bound checkpoint that misses a key,
//! has one too many or one of another shape is refused in one error. Each ATen node becomes
//! zero or more graph nodes (the op families are in `lower_*.rs`); ops that compute nothing at
//! evaluation (dropout, clone, contiguous) only alias their input.

use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;

use super::names;
use super::ops::{self, Rule};
use super::out_spec::{OutSpec, OUTPUT_KEY};
use super::schema::{Dim, ExportedProgram, NodeJson, TensorMeta};
use crate::graph::{Graph, GraphBuilder, NodeId, WeightSource};
use crate::lowering::Problem;
use crate::ops::Op;
use crate::{Error, Result};

/// The most elements one parameter may have (a billion: four gigabytes of float32).
const MAX_PARAMETER_ELEMENTS: usize = 1 << 30;

/// What a value of the program stands for while lowering.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    /// The output of a graph node.
    Node(NodeId),
    /// A parameter or buffer, by state_dict key, not yet taken.
    Param(String),
    /// A parameter's transpose (`aten.t` of a Linear weight before `addmm`).
    ParamT(String),
    /// A fixed tensor (a lifted constant).
    Const(Tensor),
    /// Several values (the outputs of `chunk` or `split`).
    List(Vec<Val>),
    /// A value convlens does not compute (an unused extra output).
    Absent,
}

/// The program as a graph.
pub(crate) struct Lowered {
    /// The network.
    pub graph: Graph,
    /// The user input's sizes, as exported.
    pub input_dims: Vec<Dim>,
}

/// The lowering's state.
pub(crate) struct Lowerer<'a> {
    pub(crate) builder: GraphBuilder,
    pub(crate) device: Device,
    values: HashMap<String, Val>,
    metas: &'a BTreeMap<String, TensorMeta>,
    /// Which node ids came from which value, to find shapes of node values.
    node_values: HashMap<NodeId, String>,
    /// Shapes of parameters, by key.
    param_shapes: HashMap<String, Vec<usize>>,
    /// Graph nodes already made for parameters used as operands.
    param_nodes: HashMap<String, NodeId>,
    /// The batch size the program was exported at.
    pub(crate) exported_batch: usize,
}

/// The node being lowered, for reading its arguments and naming what it makes.
pub(crate) struct At<'n> {
    pub node: &'n NodeJson,
    /// Its layer name.
    pub name: &'n str,
}

impl At<'_> {
    /// The op without namespace and overload.
    pub fn op(&self) -> &str {
        names::op_name(&self.node.target)
    }

    /// An error about this node.
    pub fn unsupported(&self, detail: impl std::fmt::Display) -> Error {
        Error::Unsupported(format!(
            "op `{}` (node `{}`, layer `{}`) {detail}",
            self.node.target,
            self.node.name.as_deref().unwrap_or("?"),
            self.name
        ))
    }

    /// A shared lowering rule's refusal, about this node.
    pub fn refused(&self, problem: Problem) -> Error {
        match problem {
            Problem::Unsupported(detail) => self.unsupported(detail),
            Problem::Invalid(detail) => Error::InvalidArgument(format!(
                "op `{}` (node `{}`, layer `{}`): {detail}",
                self.node.target,
                self.node.name.as_deref().unwrap_or("?"),
                self.name
            )),
        }
    }

    /// The schema name of the node's first argument (`self`, `input`: it varies by op).
    pub fn first_arg_name(&self) -> String {
        self.node
            .inputs
            .first()
            .map(|a| a.name.clone())
            .unwrap_or_default()
    }

    /// The argument named `name`, when given.
    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.node
            .inputs
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.arg)
            .filter(|v| v.get("as_none").is_none())
    }

    /// An integer argument (or `default` when absent).
    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        match self.arg(name) {
            None => Ok(default),
            Some(v) => v
                .get("as_int")
                .or_else(|| v.get("as_sym_int").and_then(|s| s.get("as_int")))
                .and_then(Value::as_i64)
                .ok_or_else(|| self.unsupported(format!("with a non-integer `{name}` ({v})"))),
        }
    }

    /// A list of integers (a single integer counts as a list of one).
    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        let Some(v) = self.arg(name) else {
            return Ok(None);
        };
        if let Some(list) = v.get("as_ints").and_then(Value::as_array) {
            return list
                .iter()
                .map(|x| {
                    x.as_i64()
                        .ok_or_else(|| self.unsupported(format!("`{name}` {v}")))
                })
                .collect::<Result<Vec<_>>>()
                .map(Some);
        }
        if let Some(list) = v.get("as_sym_ints").and_then(Value::as_array) {
            return list
                .iter()
                .map(|x| match super::schema::sym_int(x) {
                    Some(Dim::Fixed(n)) => Ok(n as i64),
                    _ => Err(self.unsupported(format!(
                        "with a dynamic `{name}`: export with static sizes here"
                    ))),
                })
                .collect::<Result<Vec<_>>>()
                .map(Some);
        }
        if let Some(n) = v.get("as_int").and_then(Value::as_i64) {
            return Ok(Some(vec![n]));
        }
        Err(self.unsupported(format!("with `{name}` = {v}")))
    }

    /// A float argument (integers accepted).
    pub fn float(&self, name: &str, default: f64) -> Result<f64> {
        match self.arg(name) {
            None => Ok(default),
            Some(v) => v
                .get("as_float")
                .or_else(|| v.get("as_int"))
                .and_then(Value::as_f64)
                .ok_or_else(|| self.unsupported(format!("with a non-numeric `{name}` ({v})"))),
        }
    }

    /// A boolean argument.
    pub fn bool(&self, name: &str, default: bool) -> Result<bool> {
        match self.arg(name) {
            None => Ok(default),
            Some(v) => v
                .get("as_bool")
                .and_then(Value::as_bool)
                .ok_or_else(|| self.unsupported(format!("with a non-boolean `{name}` ({v})"))),
        }
    }

    /// A string argument.
    pub fn string(&self, name: &str) -> Option<String> {
        self.arg(name)
            .and_then(|v| v.get("as_string"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// The names of the node's tensor outputs (one entry per output; `None` for a non-tensor).
    pub fn output_names(&self) -> Vec<Option<String>> {
        let mut out = Vec::new();
        for o in &self.node.outputs {
            if let Some(n) = o
                .get("as_tensor")
                .and_then(|t| t.get("name"))
                .and_then(Value::as_str)
            {
                out.push(Some(n.to_string()));
            } else if let Some(list) = o.get("as_tensors").and_then(Value::as_array) {
                for t in list {
                    out.push(t.get("name").and_then(Value::as_str).map(str::to_string));
                }
            } else {
                out.push(None);
            }
        }
        out
    }
}

/// The tensor name an argument refers to.
fn tensor_name(v: &Value) -> Option<&str> {
    v.get("as_tensor")
        .and_then(|t| t.get("name"))
        .and_then(Value::as_str)
}

impl<'a> Lowerer<'a> {
    /// The value of a tensor argument.
    pub(crate) fn value(&self, at: &At, name: &str) -> Result<Option<Val>> {
        let Some(v) = at.arg(name) else {
            return Ok(None);
        };
        if let Some(scalar) = v
            .get("as_float")
            .or_else(|| v.get("as_int"))
            .and_then(Value::as_f64)
        {
            return Ok(Some(Val::Const(Tensor::new(scalar as f32, &Device::Cpu)?)));
        }
        let Some(t) = tensor_name(v) else {
            return Err(at.unsupported(format!("with `{name}` = {v}, not a tensor")));
        };
        self.values
            .get(t)
            .cloned()
            .map(Some)
            .ok_or_else(|| at.unsupported(format!("reads `{t}`, which is not defined before it")))
    }

    /// A required tensor argument.
    pub(crate) fn required(&self, at: &At, name: &str) -> Result<Val> {
        self.value(at, name)?
            .ok_or_else(|| at.unsupported(format!("without its `{name}` argument")))
    }

    /// The values of a tensor-list argument.
    pub(crate) fn values(&self, at: &At, name: &str) -> Result<Vec<Val>> {
        let Some(list) = at
            .arg(name)
            .and_then(|v| v.get("as_tensors"))
            .and_then(Value::as_array)
        else {
            return Err(at.unsupported(format!("without a tensor list `{name}`")));
        };
        list.iter()
            .map(|t| {
                let n = t.get("name").and_then(Value::as_str).unwrap_or_default();
                self.values.get(n).cloned().ok_or_else(|| {
                    at.unsupported(format!("reads `{n}`, which is not defined before it"))
                })
            })
            .collect()
    }

    /// The exported sizes of the tensor argument `name`.
    pub(crate) fn dims_of_arg(&self, at: &At, name: &str) -> Result<Vec<Dim>> {
        let v = at.arg(name).and_then(tensor_name).unwrap_or_default();
        self.dims_of_value(v).ok_or_else(|| {
            at.unsupported(format!("on `{v}`, whose sizes the program does not record"))
        })
    }

    /// The recorded sizes (SymInts) of the tensor argument `name` and of the node's first output.
    pub(crate) fn raw_sizes(&self, at: &At, name: &str) -> Option<(&'a [Value], &'a [Value])> {
        let input = at.arg(name).and_then(tensor_name)?;
        let output = at.output_names().into_iter().flatten().next()?;
        let metas = self.metas;
        Some((
            metas.get(input)?.sizes.as_slice(),
            metas.get(&output)?.sizes.as_slice(),
        ))
    }

    /// The recorded sizes of the program value `name`.
    pub(crate) fn dims_of_name(&self, name: &str) -> Option<Vec<Dim>> {
        self.dims_of_value(name)
    }

    fn dims_of_value(&self, value: &str) -> Option<Vec<Dim>> {
        self.metas.get(value).and_then(TensorMeta::dims)
    }

    /// The exported sizes of the node's first output.
    pub(crate) fn output_dims(&self, at: &At) -> Result<Vec<Dim>> {
        let name = at
            .output_names()
            .into_iter()
            .flatten()
            .next()
            .unwrap_or_default();
        self.dims_of_value(&name)
            .ok_or_else(|| at.unsupported("whose output sizes the program does not record"))
    }

    /// A parameter's tensor, taken from the weights (shape from the program).
    pub(crate) fn param(&mut self, key: &str) -> Result<Tensor> {
        let shape = self.param_shapes.get(key).cloned().unwrap_or_default();
        self.builder.param(key, &shape)
    }

    /// The graph node for a value, making a constant node for a parameter or a fixed tensor.
    pub(crate) fn node(&mut self, at: &At, v: Val) -> Result<NodeId> {
        match v {
            Val::Node(id) => Ok(id),
            Val::Param(key) => {
                if let Some(&id) = self.param_nodes.get(&key) {
                    return Ok(id);
                }
                let t = self.param(&key)?;
                let id = self.builder.push(&key, Op::Constant(t), &[]);
                self.param_nodes.insert(key, id);
                Ok(id)
            }
            Val::ParamT(key) => {
                let t = self.param(&key)?.t()?.contiguous()?;
                Ok(self.builder.push(&format!("{key}.t"), Op::Constant(t), &[]))
            }
            Val::Const(t) => {
                let t = t.to_dtype(DType::F32)?.to_device(&self.device)?;
                Ok(self
                    .builder
                    .push(&format!("{}.constant", at.name), Op::Constant(t), &[]))
            }
            Val::List(_) | Val::Absent => Err(at.unsupported("on a value that is not one tensor")),
        }
    }

    /// Pushes the node's op on `inputs`, named after the node.
    pub(crate) fn push(&mut self, at: &At, op: Op, inputs: &[NodeId]) -> Val {
        Val::Node(self.builder.push(at.name, op, inputs))
    }

    /// Pushes a helper op the node needs before its own (named `<layer>.<suffix>`).
    pub(crate) fn push_helper(
        &mut self,
        at: &At,
        suffix: &str,
        op: Op,
        inputs: &[NodeId],
    ) -> NodeId {
        self.builder
            .push(&format!("{}.{suffix}", at.name), op, inputs)
    }

    /// An axis argument made non-negative for a tensor of `rank` axes.
    pub(crate) fn axis(&self, at: &At, axis: i64, rank: usize) -> Result<usize> {
        let r = rank as i64;
        let a = if axis < 0 { axis + r } else { axis };
        if (0..r).contains(&a) {
            Ok(a as usize)
        } else {
            Err(at.unsupported(format!("with axis {axis} on a rank-{rank} tensor")))
        }
    }

    fn lower_node(&mut self, at: &At) -> Result<Vec<Val>> {
        let Some(rule) = ops::rule(at.op()) else {
            return Err(at.unsupported(format!(
                "is not supported; convlens lowers: {}",
                ops::supported_ops().join(", ")
            )));
        };
        let one = |v: Val| Ok(vec![v]);
        match rule {
            Rule::Alias => {
                let first = at.first_arg_name();
                one(self.required(at, &first)?)
            }
            Rule::Conv => one(self.conv(at)?),
            Rule::MaxPool => Ok(vec![self.max_pool(at)?, Val::Absent]),
            Rule::AvgPool => one(self.avg_pool(at)?),
            Rule::AdaptiveAvgPool => one(self.adaptive_avg_pool(at)?),
            Rule::AdaptiveMaxPool => Ok(vec![self.adaptive_max_pool(at)?, Val::Absent]),
            Rule::BatchNorm => Ok(vec![self.batch_norm(at)?, Val::Absent, Val::Absent]),
            Rule::LayerNorm => Ok(vec![self.layer_norm(at)?, Val::Absent, Val::Absent]),
            Rule::GroupNorm => one(self.group_norm(at)?),
            Rule::Linear => one(self.linear(at)?),
            Rule::Addmm => one(self.addmm(at)?),
            Rule::MatMul => one(self.matmul(at)?),
            Rule::Activation => one(self.activation(at)?),
            Rule::Softmax => one(self.softmax(at)?),
            Rule::Arithmetic => one(self.arithmetic(at)?),
            Rule::Reduce => one(self.reduce(at)?),
            Rule::Cat => one(self.cat(at)?),
            Rule::Reshape => one(self.reshape(at)?),
            Rule::Permute => one(self.permute(at)?),
            Rule::Split => Ok(vec![Val::List(self.split(at)?)]),
            Rule::Slice => one(self.slice(at)?),
            Rule::Select => one(self.select(at)?),
            Rule::Pad => one(self.pad(at)?),
            Rule::Upsample => one(self.upsample(at)?),
            Rule::GetItem => one(self.getitem(at)?),
        }
    }

    fn getitem(&mut self, at: &At) -> Result<Val> {
        let first = at.first_arg_name();
        let list = self.required(at, &first)?;
        let index = at
            .node
            .inputs
            .get(1)
            .and_then(|a| a.arg.get("as_int"))
            .and_then(Value::as_u64);
        match (list, index) {
            (Val::List(items), Some(i)) => items
                .get(i as usize)
                .cloned()
                .ok_or_else(|| at.unsupported(format!("item {i} of {} values", items.len()))),
            _ => Err(at.unsupported("on something other than a list of tensors")),
        }
    }

    fn bind(&mut self, at: &At, outputs: Vec<Val>) -> Result<()> {
        let names = at.output_names();
        let outputs = match (names.len(), outputs.as_slice()) {
            (n, [Val::List(items)]) if n == items.len() && n != 1 => items.clone(),
            _ => outputs,
        };
        for (i, name) in names.into_iter().enumerate() {
            let Some(name) = name else { continue };
            let v = outputs.get(i).cloned().unwrap_or(Val::Absent);
            if let Val::Node(id) = v {
                self.node_values.entry(id).or_insert_with(|| name.clone());
            }
            self.values.insert(name, v);
        }
        Ok(())
    }
}

/// The one-key object of a signature spec: (kind, body).
fn spec_kind(spec: &Value) -> Option<(&str, &Value)> {
    spec.as_object()?
        .iter()
        .next()
        .map(|(k, v)| (k.as_str(), v))
}

/// The name of the graph output that is the network's: the only one, or, where `forward`
/// returned a dict, the one under `out` (torchvision's segmentation models).
fn network_output(program: &ExportedProgram) -> Result<String> {
    let outputs = &program.graph_module.graph.outputs;
    if let [one] = outputs.as_slice() {
        return Ok(tensor_name(one).unwrap_or_default().to_string());
    }
    let spec = program
        .graph_module
        .module_call_graph
        .iter()
        .find(|entry| entry.fqn.is_empty())
        .and_then(|entry| entry.signature.as_ref())
        .and_then(|signature| OutSpec::parse(&signature.out_spec));
    let chosen = spec
        .as_ref()
        .and_then(OutSpec::output_leaf)
        .and_then(|leaf| outputs.get(leaf))
        .and_then(tensor_name);
    match chosen {
        Some(name) => Ok(name.to_string()),
        None => Err(Error::Unsupported(format!(
            "a program of {} outputs{}: convlens runs networks with one output (return one \
             tensor, or a dict whose `{OUTPUT_KEY}` is the network's output)",
            outputs.len(),
            spec.map(|s| format!(" ({})", s.describe()))
                .unwrap_or_default(),
        ))),
    }
}

/// Lowers `program` with weights from `source`, lifted constants from `constants`.
pub(crate) fn lower(
    program: &ExportedProgram,
    source: WeightSource,
    constants: &BTreeMap<String, Tensor>,
    device: &Device,
) -> Result<Lowered> {
    let graph = &program.graph_module.graph;
    let mut values = HashMap::new();
    let mut param_shapes = HashMap::new();
    let mut user_inputs = Vec::new();
    for spec in &program.graph_module.signature.input_specs {
        let Some((kind, body)) = spec_kind(spec) else {
            continue;
        };
        let arg_name = body
            .get("arg")
            .and_then(|a| {
                a.get("name")
                    .or_else(|| a.get("as_tensor").and_then(|t| t.get("name")))
            })
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        match kind {
            "parameter" | "buffer" => {
                let key = body
                    .get("parameter_name")
                    .or_else(|| body.get("buffer_name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let persistent = body
                    .get("persistent")
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if kind == "buffer" && !persistent {
                    // Not in any state_dict: the program's own copy, saved as a constant.
                    match constants.get(&key) {
                        Some(t) => {
                            values.insert(arg_name, Val::Const(t.clone()));
                            continue;
                        }
                        None => {
                            return Err(Error::Unsupported(format!(
                                "the non-persistent buffer `{key}` is not in the program's archive"
                            )))
                        }
                    }
                }
                if let Some(dims) = graph
                    .tensor_values
                    .get(&arg_name)
                    .and_then(TensorMeta::dims)
                {
                    let shape: Vec<usize> = dims.iter().map(|d| d.size()).collect();
                    // A missing or misshapen parameter is stood in for by zeros of this shape
                    // until the one error about the weights: bound it before that allocation.
                    let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                    if elements.is_none_or(|n| n > MAX_PARAMETER_ELEMENTS) {
                        return Err(Error::Unsupported(format!(
                            "the parameter `{key}` has the sizes {shape:?}, over the {MAX_PARAMETER_ELEMENTS} \
                             elements a parameter may have"
                        )));
                    }
                    param_shapes.insert(key.clone(), shape);
                }
                values.insert(arg_name, Val::Param(key));
            }
            "tensor_constant" => {
                let name = body
                    .get("tensor_constant_name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let t = constants.get(name).ok_or_else(|| {
                    Error::Unsupported(format!(
                        "the tensor constant `{name}` is not in the archive"
                    ))
                })?;
                values.insert(arg_name, Val::Const(t.clone()));
            }
            "user_input" => user_inputs.push(arg_name),
            "token" => {}
            other => {
                return Err(Error::Unsupported(format!(
                    "a program input of kind `{other}` (`{arg_name}`)"
                )))
            }
        }
    }
    let input = match user_inputs.as_slice() {
        [one] => one.clone(),
        [] => {
            return Err(Error::Unsupported(
                "a program without a tensor input".into(),
            ))
        }
        many => {
            return Err(Error::Unsupported(format!(
                "a program of {} inputs ({}): convlens runs networks of one image input",
                many.len(),
                many.join(", ")
            )))
        }
    };
    let input_dims = graph
        .tensor_values
        .get(&input)
        .and_then(TensorMeta::dims)
        .ok_or_else(|| Error::Unsupported(format!("the input `{input}` has no recorded sizes")))?;
    if input_dims.len() != 4 {
        return Err(Error::Unsupported(format!(
            "an input of rank {} (`{input}`): convlens runs networks of [N, C, H, W] images",
            input_dims.len()
        )));
    }
    values.insert(input.clone(), Val::Node(0));
    let mut node_values = HashMap::new();
    node_values.insert(0, input);
    let mut lowerer = Lowerer {
        builder: GraphBuilder::new(source, device),
        device: device.clone(),
        values,
        metas: &graph.tensor_values,
        node_values,
        param_shapes,
        param_nodes: HashMap::new(),
        exported_batch: input_dims[0].size(),
    };
    let layer_names = names::assign(&graph.nodes);
    for (node, name) in graph.nodes.iter().zip(&layer_names) {
        let at = At { node, name };
        let outputs = lowerer.lower_node(&at)?;
        lowerer.bind(&at, outputs)?;
    }
    let output = network_output(program)?;
    let out_id = match lowerer.values.get(&output) {
        Some(Val::Node(id)) => *id,
        _ => {
            return Err(Error::Unsupported(format!(
                "the program's output `{output}` is not computed from its input"
            )))
        }
    };
    if out_id != lowerer.builder.last_id() {
        lowerer.builder.push("output", Op::Identity, &[out_id]);
    }
    let graph = lowerer.builder.finish("the program")?;
    Ok(Lowered { graph, input_dims })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-node program (a conv of `x` by parameter `w` of `w_sizes`).
    fn program(w_sizes: &[u64]) -> ExportedProgram {
        let sizes = |s: &[u64]| -> Vec<Value> {
            s.iter()
                .map(|n| serde_json::json!({ "as_int": n }))
                .collect()
        };
        serde_json::from_value(serde_json::json!({
            "graph_module": {
                "graph": {
                    "outputs": [{"as_tensor": {"name": "y"}}],
                    "nodes": [{
                        "target": "torch.ops.aten.conv2d.default",
                        "inputs": [
                            {"name": "input", "arg": {"as_tensor": {"name": "x"}}},
                            {"name": "weight", "arg": {"as_tensor": {"name": "p_w"}}}
                        ],
                        "outputs": [{"as_tensor": {"name": "y"}}],
                        "metadata": {}
                    }],
                    "tensor_values": {
                        "x": {"dtype": 7, "sizes": sizes(&[1, 3, 8, 8])},
                        "p_w": {"dtype": 7, "sizes": sizes(w_sizes)},
                        "y": {"dtype": 7, "sizes": sizes(&[1, 4, 6, 6])}
                    }
                },
                "signature": {"input_specs": [
                    {"parameter": {"arg": {"name": "p_w"}, "parameter_name": "conv.weight"}},
                    {"user_input": {"arg": {"as_tensor": {"name": "x"}}}}
                ]}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_parameter_too_large_to_stand_in_for_is_refused_before_allocating() {
        let source = WeightSource::StateDict(BTreeMap::new());
        let huge = program(&[1 << 20, 1 << 20, 3, 3]);
        let err = lower(&huge, source, &BTreeMap::new(), &Device::Cpu)
            .err()
            .unwrap();
        assert!(err.to_string().contains("over the"), "{err}");
        // A sane one with no weights bound is the usual error listing the missing key.
        let source = WeightSource::StateDict(BTreeMap::new());
        let err = lower(
            &program(&[4, 3, 3, 3]),
            source,
            &BTreeMap::new(),
            &Device::Cpu,
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("conv.weight"), "{err}");
    }
}
