//! The part of PyTorch's export schema (`torch/_export/serde/schema.py`) that convlens reads:
//! the graph's nodes and their arguments, tensor metadata, the signature that names each
//! parameter and buffer input by its state_dict key, and the weights config of the archive.
//!
//! Arguments stay `serde_json::Value`s (a one-key object such as `{"as_ints": [1, 1]}`): the
//! schema has some thirty argument kinds and the lowering reads the few each op takes.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The schema major versions this reader reads: 5 (PyTorch 2.4's, the older single-JSON
/// layout) to 8 (PyTorch 2.15's PT2 archive), the part read being the same in both.
pub(crate) const SCHEMA_MAJORS: std::ops::RangeInclusive<u64> = 5..=8;

/// `models/<name>.json`: one serialized `ExportedProgram`.
#[derive(Debug, Deserialize)]
pub(crate) struct ExportedProgram {
    pub graph_module: GraphModule,
    #[serde(default)]
    pub torch_version: String,
}

/// `graph_module`: the graph, its signature, and the module call graph (whose root entry
/// records how `forward`'s outputs were flattened).
#[derive(Debug, Deserialize)]
pub(crate) struct GraphModule {
    pub graph: GraphJson,
    pub signature: Signature,
    #[serde(default)]
    pub module_call_graph: Vec<ModuleCallEntry>,
}

/// One entry of the module call graph: a module by its path (`""` the root) and its calling
/// convention.
#[derive(Debug, Deserialize)]
pub(crate) struct ModuleCallEntry {
    #[serde(default)]
    pub fqn: String,
    #[serde(default)]
    pub signature: Option<ModuleCallSignature>,
}

/// A module's calling convention: `out_spec` is its outputs' serialized pytree `TreeSpec`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModuleCallSignature {
    #[serde(default)]
    pub out_spec: String,
}

/// The graph: its inputs and outputs (arguments), nodes in execution order, tensor metadata.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphJson {
    pub outputs: Vec<Value>,
    pub nodes: Vec<NodeJson>,
    #[serde(default)]
    pub tensor_values: BTreeMap<String, TensorMeta>,
}

/// One call of an ATen op.
#[derive(Debug, Deserialize)]
pub(crate) struct NodeJson {
    /// `torch.ops.aten.conv2d.default`.
    pub target: String,
    pub inputs: Vec<NamedArgument>,
    pub outputs: Vec<Value>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The node's own name (torch's `conv2d_1`).
    #[serde(default)]
    pub name: Option<String>,
}

/// An argument with the schema's parameter name.
#[derive(Debug, Deserialize)]
pub(crate) struct NamedArgument {
    pub name: String,
    pub arg: Value,
}

/// A tensor's dtype, sizes and layout in memory.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct TensorMeta {
    pub dtype: i64,
    pub sizes: Vec<Value>,
    #[serde(default)]
    pub strides: Vec<Value>,
    #[serde(default)]
    pub storage_offset: Option<Value>,
}

/// A size: fixed, or symbolic (dynamic) with the value it had when exported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A dynamic size; its hint is the size at export.
    Dynamic(usize),
}

impl Dim {
    /// The size at export.
    pub fn size(self) -> usize {
        match self {
            Dim::Fixed(n) | Dim::Dynamic(n) => n,
        }
    }
}

/// A `SymInt` (`{"as_int": 8}` or `{"as_expr": {…, "hint": {"as_int": 8}}}`).
pub(crate) fn sym_int(v: &Value) -> Option<Dim> {
    if let Some(n) = v.get("as_int").and_then(Value::as_u64) {
        return usize::try_from(n).ok().map(Dim::Fixed);
    }
    let hint = v.get("as_expr")?.get("hint")?;
    let n = hint.get("as_int").and_then(Value::as_u64)?;
    usize::try_from(n).ok().map(Dim::Dynamic)
}

impl TensorMeta {
    /// Sizes, `None` when one is not a readable SymInt.
    pub fn dims(&self) -> Option<Vec<Dim>> {
        self.sizes.iter().map(sym_int).collect()
    }
}

/// The program's signature: what each graph input and output stands for.
#[derive(Debug, Deserialize)]
pub(crate) struct Signature {
    pub input_specs: Vec<Value>,
}

/// `data/weights/model_weights_config.json` (and the constants' twin).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PayloadConfig {
    #[serde(default)]
    pub config: BTreeMap<String, PayloadEntry>,
}

/// Where one weight's bytes lie in the archive.
#[derive(Debug, Deserialize)]
pub(crate) struct PayloadEntry {
    /// The file under `data/weights/` (or `data/constants/`).
    pub path_name: String,
    /// Whether the bytes are a pickled tensor rather than its raw storage.
    #[serde(default)]
    pub use_pickle: bool,
    /// dtype, sizes, strides and storage offset.
    pub tensor_meta: TensorMeta,
}
