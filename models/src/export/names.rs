//! Layer names from the module stack torch.export records on every node
//! (`nn_module_stack`: `key,path,class;key,path,class;…`, outermost first).
//!
//! A run of consecutive nodes under the same innermost module call is one call of that module.
//! A call of a leaf module (one with no sub-modules) that computes one thing is that module
//! (`layer1.0.conv1`); the other ops — of a leaf call that computes several, of a module's own
//! `forward` beside its children, of the top-level `forward` — are named by the module path and
//! the op (`layer1.0.add`, `features.1.0.mul`, `layer_norm`), so a module path names the
//! module's output (its last node). A module called again gets `#2`, as everywhere in convlens.

use super::ops::{self, Rule};
use super::schema::NodeJson;

/// `torch.ops.aten.relu_.default` → `relu_`; a Python builtin (`<built-in function getitem>`)
/// → `getitem`.
pub(crate) fn op_name(target: &str) -> &str {
    if let Some(rest) = target.strip_prefix("<built-in function ") {
        return rest.trim_end_matches('>');
    }
    let parts: Vec<&str> = target.split('.').collect();
    match parts.as_slice() {
        ["torch", "ops", _, op, _] => op,
        [.., op, _] => op,
        _ => target,
    }
}

/// The op's label in a layer name: `relu_` → `relu`, `add_` → `add`.
pub(crate) fn label(target: &str) -> String {
    let op = op_name(target);
    op.trim_start_matches('_').trim_end_matches('_').to_string()
}

/// The innermost module call of a node: (its stack key, its module path).
fn innermost(node: &NodeJson) -> (String, String) {
    let Some(stack) = node.metadata.get("nn_module_stack") else {
        return (String::new(), String::new());
    };
    let Some(last) = stack.split(';').next_back() else {
        return (String::new(), String::new());
    };
    let mut fields = last.splitn(3, ',');
    let key = fields.next().unwrap_or_default().to_string();
    let path = fields.next().unwrap_or_default().to_string();
    (key, path)
}

/// A layer name per node: the base each node's graph nodes are named from, and whether the
/// node is the only computing node of its module call (then the name is the module path).
pub(crate) fn assign(nodes: &[NodeJson]) -> Vec<String> {
    let calls: Vec<(String, String)> = nodes.iter().map(innermost).collect();
    // Every module that appears above another in some node's stack has sub-modules.
    let parents: std::collections::HashSet<String> = nodes
        .iter()
        .filter_map(|n| n.metadata.get("nn_module_stack"))
        .flat_map(|stack| {
            let entries: Vec<&str> = stack.split(';').collect();
            let outer = entries.len().saturating_sub(1);
            entries
                .into_iter()
                .take(outer)
                .map(|e| e.split(',').nth(1).unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    let computes = |i: usize| {
        !matches!(
            ops::rule(op_name(&nodes[i].target)),
            Some(Rule::Alias | Rule::GetItem)
        )
    };
    let mut names = vec![String::new(); nodes.len()];
    let mut start = 0;
    while start < nodes.len() {
        let mut end = start + 1;
        while end < nodes.len() && calls[end] == calls[start] {
            end += 1;
        }
        let path = &calls[start].1;
        let computing = (start..end).filter(|&i| computes(i)).count();
        for (i, name) in names.iter_mut().enumerate().take(end).skip(start) {
            *name = if computing == 1 && !path.is_empty() && !parents.contains(path) {
                path.clone()
            } else if path.is_empty() {
                label(&nodes[i].target)
            } else {
                format!("{path}.{}", label(&nodes[i].target))
            };
        }
        start = end;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(target: &str, stack: &str) -> NodeJson {
        let mut metadata = std::collections::BTreeMap::new();
        if !stack.is_empty() {
            metadata.insert("nn_module_stack".to_string(), stack.to_string());
        }
        NodeJson {
            target: target.into(),
            inputs: vec![],
            outputs: vec![],
            metadata,
            name: None,
        }
    }

    #[test]
    fn module_calls_become_paths_and_functional_ops_get_their_op_name() {
        let root = "L__self__,,Net";
        let conv = "L__self__,,Net;L__self__conv1,conv1,torch.nn.Conv2d";
        let relu = "L__self__,,Net;L__self__relu,relu,torch.nn.ReLU";
        let norm = "L__self__,,Net;L__self__ln,ln,LayerNorm2d";
        let block = "L__self__,,Net;L__self__block,block,Block";
        let inner =
            "L__self__,,Net;L__self__block,block,Block;L__self__block_c,block.c,torch.nn.Conv2d";
        let nodes = vec![
            node("torch.ops.aten.conv2d.default", conv),
            node("torch.ops.aten.relu_.default", relu),
            node("torch.ops.aten.add_.Tensor", root),
            node("torch.ops.aten.relu_.default", relu),
            node("torch.ops.aten.permute.default", norm),
            node("torch.ops.aten.layer_norm.default", norm),
            node("torch.ops.aten.permute.default", norm),
            node("torch.ops.aten.dropout.default", root),
            node("torch.ops.aten.mean.dim", root),
            node("torch.ops.aten.conv2d.default", inner),
            node("torch.ops.aten.add.Tensor", block),
        ];
        assert_eq!(
            assign(&nodes),
            [
                "conv1",
                "relu",
                "add",
                "relu",
                "ln.permute",
                "ln.layer_norm",
                "ln.permute",
                "dropout",
                "mean",
                "block.c",
                "block.add"
            ]
        );
    }

    #[test]
    fn op_names_come_from_targets() {
        assert_eq!(op_name("torch.ops.aten.relu_.default"), "relu_");
        assert_eq!(op_name("<built-in function getitem>"), "getitem");
        assert_eq!(
            label("torch.ops.aten._native_batch_norm_legit_no_training.default"),
            "native_batch_norm_legit_no_training"
        );
    }
}
