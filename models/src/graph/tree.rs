//! The module tree of a graph: every module path with its output shape and parameter count,
//! derived from the node names (`layer1.0.conv1` lies in `layer1.0`, which lies in `layer1`).

use std::collections::HashMap;

use serde::Serialize;

use super::{Graph, NodeId, Trace};

/// One module of the tree.
#[derive(Clone, Debug, Serialize)]
pub struct LayerInfo {
    /// Full path (`layer1.0.conv1`).
    pub path: String,
    /// Op class for a leaf, `Module` for a container.
    pub class_name: String,
    /// Nesting depth (0 for top-level modules).
    pub depth: usize,
    /// Output shape for the traced input (the last node's output for a container).
    pub output_shape: Vec<usize>,
    /// Parameters in the module and its children.
    pub params: usize,
    /// Whether it has no children.
    pub is_leaf: bool,
    /// The node producing its output.
    pub node: NodeId,
}

/// The modules of a graph in pre-order.
#[derive(Clone, Debug, Serialize)]
pub struct LayerTree {
    /// Modules, parents before children.
    pub layers: Vec<LayerInfo>,
}

impl LayerTree {
    /// The tree of `graph`, with output shapes from `trace` (a forward pass keeping all nodes).
    pub fn new(graph: &Graph, trace: &Trace) -> Self {
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut layers: Vec<LayerInfo> = Vec::new();
        for (id, node) in graph.nodes().iter().enumerate().skip(1) {
            let base = node.name.split('#').next().unwrap_or(&node.name);
            let parts: Vec<&str> = base.split('.').collect();
            let shape = trace.get(id).map(|t| t.dims().to_vec()).unwrap_or_default();
            for depth in 0..parts.len() {
                let is_leaf_here = depth + 1 == parts.len();
                let path = if is_leaf_here {
                    node.name.clone()
                } else {
                    parts[..=depth].join(".")
                };
                let at = match index.get(&path) {
                    Some(&i) => i,
                    None => {
                        index.insert(path.clone(), layers.len());
                        layers.push(LayerInfo {
                            path,
                            class_name: if is_leaf_here {
                                node.op.class_name().to_string()
                            } else {
                                "Module".into()
                            },
                            depth,
                            output_shape: vec![],
                            params: 0,
                            is_leaf: is_leaf_here,
                            node: id,
                        });
                        layers.len() - 1
                    }
                };
                let layer = &mut layers[at];
                layer.params += node.op.param_count();
                layer.output_shape = shape.clone();
                layer.node = id;
                if !is_leaf_here {
                    layer.is_leaf = false;
                }
            }
        }
        LayerTree { layers }
    }

    /// Total parameters.
    pub fn total_params(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| l.depth == 0)
            .map(|l| l.params)
            .sum()
    }
}
