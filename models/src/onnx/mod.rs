//! ONNX model import: a `.onnx` file (for instance from `torch.onnx.export`) becomes the same kind
//! of [`Graph`] the built-in architectures build, so every method runs on it.
//!
//! The protobuf is decoded with hand-written prost messages ([`proto`]); weights may be inline or
//! in ONNX external data next to the model. Supported ops: Conv (groups, auto_pad, asymmetric
//! pads), BatchNormalization, Relu, Clip (Clip(0, 6) is ReLU6), LeakyRelu, Sigmoid, Tanh,
//! HardSigmoid, HardSwish, Add, Sum, Sub, Mul, Div, Concat, MaxPool and AveragePool (pads,
//! ceil_mode, count_include_pad), GlobalAveragePool, Gemm, MatMul, Flatten, Reshape, Transpose,
//! Constant, Pad (constant mode), Resize and Upsample (nearest, linear), Softmax (last axis),
//! Dropout, Identity, ReduceMean, and the shape ops an exporter writes (Shape, Gather, Unsqueeze,
//! Squeeze, Slice, Cast, ConstantOfShape), which are folded at import. Anything else is refused
//! with [`Error::Unsupported`] naming the op and the node.
//!
//! Layer names follow the exporter's module scopes: torch's `/layer1/layer1.0/conv1/Conv` is
//! `layer1.0.conv1`, as in the built-in resnet18.

mod import;
mod names;
pub mod proto;
mod tensor;
#[cfg(test)]
mod tests;

use std::path::Path;

use candle_core::Device;
use prost::Message;

use crate::graph::Graph;
use crate::{Error, Result};

/// The largest .onnx file read (protobuf's own limit is 2 GiB).
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

/// An imported ONNX model: the graph and what the file says about it.
#[derive(Debug)]
pub struct OnnxModel {
    /// The network, ready to run.
    pub graph: Graph,
    /// The name of the graph input fed with the image batch.
    pub input_name: String,
    /// The input's declared shape, `None` on a symbolic or unknown axis (`[None, Some(3),
    /// Some(224), Some(224)]` for a dynamic batch).
    pub input_shape: Vec<Option<usize>>,
    /// The name of the graph output the graph ends in (the first declared output).
    pub output_name: String,
    /// The standard operator-set version the model was written against.
    pub opset: i64,
    /// The writer, as `name version` (`pytorch 2.5.0`).
    pub producer: String,
}

impl OnnxModel {
    /// The input's spatial size (height, width) when the model fixes it.
    pub fn input_size(&self) -> Option<(usize, usize)> {
        match self.input_shape.as_slice() {
            [_, _, Some(h), Some(w)] => Some((*h, *w)),
            _ => None,
        }
    }
}

/// Decodes the ONNX protobuf at `path` without converting it.
pub fn read_model(path: &Path) -> Result<proto::ModelProto> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_MODEL_BYTES {
        return Err(Error::format(
            path,
            format!("{len} bytes is larger than an ONNX protobuf can be ({MAX_MODEL_BYTES})"),
        ));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    proto::ModelProto::decode(bytes.as_slice()).map_err(|e| {
        Error::format(
            path,
            format!("not a valid ONNX model (truncated or corrupt protobuf): {e}"),
        )
    })
}

/// Imports the ONNX model at `path`, placing its weights on `device`.
pub fn import_onnx(path: &Path, device: &Device) -> Result<OnnxModel> {
    let model = read_model(path)?;
    let Some(graph) = model.graph.as_ref() else {
        return Err(Error::format(path, "the file holds no ONNX graph"));
    };
    let Some(opset) = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
    else {
        return Err(Error::format(
            path,
            "the model declares no standard ONNX operator set",
        ));
    };
    let imported = import::Importer::new(path, graph, opset, device).run(graph)?;
    Ok(OnnxModel {
        graph: imported.graph,
        input_name: imported.input_name,
        input_shape: imported.input_dims,
        output_name: imported.output_name,
        opset,
        producer: format!("{} {}", model.producer_name, model.producer_version)
            .trim()
            .to_string(),
    })
}

/// Imports the ONNX model at `path` and returns its graph (see [`import_onnx`] for the metadata).
pub fn load_onnx(path: &Path, device: &Device) -> Result<Graph> {
    Ok(import_onnx(path, device)?.graph)
}
