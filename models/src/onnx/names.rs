//! PyTorch-style layer paths from the node names torch's exporter writes.
//!
//! The TorchScript exporter names a node by its module scopes and its op:
//! `/layer1/layer1.0/conv1/Conv`. Each scope is either a child of the one before (`conv1`) or
//! the previous scope's own name extended (`layer1` then `layer1.0`, a `Sequential`'s child), so
//! `layer1.0.conv1` is the path. A module called twice gets `_1` on its second scope
//! (`relu_1`), which becomes `relu#2` as the graph builder writes it. A node alone in a leaf
//! scope is that module (`layer1.0.conv1`); a node in a scope with other nodes or sub-modules is
//! a functional call inside that module's `forward` and gets the op's name (`layer1.0.add`).

use std::collections::{HashMap, HashSet};

/// What the namer knows about one graph node.
pub(crate) struct NameSource<'a> {
    /// The ONNX node's name.
    pub onnx_name: &'a str,
    /// Lower-case op name used for functional calls (`add`, `cat`, `silu`).
    pub label: String,
    /// For a node the importer added (a constant operand, a transpose): its suffix.
    pub helper: Option<&'static str>,
}

/// Scope components and the final component of an ONNX node name.
fn split(name: &str) -> (Vec<&str>, &str) {
    let trimmed = name.strip_prefix('/').unwrap_or(name);
    let mut parts: Vec<&str> = trimmed.split('/').filter(|p| !p.is_empty()).collect();
    let last = parts.pop().unwrap_or("");
    (parts, last)
}

/// `relu_1` → `relu` when `relu` is a scope beside it.
fn strip_call_suffix<'a>(comp: &'a str, parent: &str, scopes: &HashSet<String>) -> &'a str {
    if let Some((base, digits)) = comp.rsplit_once('_') {
        if !base.is_empty() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let sibling = if parent.is_empty() {
                base.to_string()
            } else {
                format!("{parent}/{base}")
            };
            if scopes.contains(&sibling) {
                return base;
            }
        }
    }
    comp
}

/// The module path of a scope list.
fn module_path(comps: &[&str], scopes: &HashSet<String>) -> String {
    let mut path: Vec<&str> = Vec::with_capacity(comps.len());
    let mut previous: Option<&str> = None;
    for (k, comp) in comps.iter().enumerate() {
        let comp = strip_call_suffix(comp, &comps[..k].join("/"), scopes);
        let extends = previous.is_some_and(|p| {
            comp.len() > p.len() && comp.starts_with(p) && comp[p.len()..].starts_with('.')
        });
        if extends {
            path.pop();
        }
        path.push(comp);
        previous = Some(comp);
    }
    path.join(".")
}

/// A name with characters that would confuse a layer path replaced.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_whitespace() || c == '/' || c == ':' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// One unique name per source, in order; none is `input`.
pub(crate) fn assign(sources: &[NameSource<'_>]) -> Vec<String> {
    let split_names: Vec<(Vec<&str>, &str)> = sources.iter().map(|s| split(s.onnx_name)).collect();
    let mut scopes: HashSet<String> = HashSet::new();
    let mut direct: HashMap<String, usize> = HashMap::new();
    for ((comps, _), source) in split_names.iter().zip(sources) {
        for k in 1..=comps.len() {
            scopes.insert(comps[..k].join("/"));
        }
        if source.helper.is_none() {
            *direct.entry(comps.join("/")).or_insert(0) += 1;
        }
    }
    let has_children = |scope: &str| {
        let prefix = format!("{scope}/");
        scopes.iter().any(|s| s.starts_with(&prefix))
    };
    let mut used: HashMap<String, usize> = HashMap::new();
    used.insert("input".into(), 1);
    let mut names = Vec::with_capacity(sources.len());
    for ((comps, last), source) in split_names.iter().zip(sources) {
        let base = if comps.is_empty() {
            if source.onnx_name.starts_with('/') || last.is_empty() {
                source.label.clone()
            } else {
                sanitize(last)
            }
        } else {
            let scope = comps.join("/");
            let path = module_path(comps, &scopes);
            let leaf = direct.get(&scope).copied().unwrap_or(0) == 1 && !has_children(&scope);
            if leaf {
                path
            } else {
                format!("{path}.{}", source.label)
            }
        };
        let base = match source.helper {
            Some(suffix) => format!("{base}.{suffix}"),
            None => base,
        };
        let count = used.entry(base.clone()).or_insert(0);
        *count += 1;
        let name = if *count == 1 {
            base
        } else {
            format!("{base}#{count}")
        };
        names.push(name);
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[(&'static str, &str)]) -> Vec<String> {
        let sources: Vec<NameSource> = list
            .iter()
            .map(|&(onnx_name, label)| NameSource {
                onnx_name,
                label: label.to_string(),
                helper: None,
            })
            .collect();
        assign(&sources)
    }

    #[test]
    fn torch_scopes_become_module_paths() {
        let got = names(&[
            ("/conv1/Conv", "conv"),
            ("/layer1/layer1.0/conv1/Conv", "conv"),
            ("/layer1/layer1.0/relu/Relu", "relu"),
            ("/layer1/layer1.0/Add", "add"),
            ("/layer1/layer1.0/relu_1/Relu", "relu"),
            ("/features/features.1/block/block.0/block.0.0/Conv", "conv"),
            ("/features/features.1/block/block.1/Mul", "mul"),
            ("/features/features.1/block/block.1/fc1/Conv", "conv"),
            ("/Flatten", "flatten"),
            ("/fc/Gemm", "gemm"),
            ("Conv_7", "conv"),
            ("", "relu"),
            ("input", "relu"),
        ]);
        assert_eq!(
            got,
            vec![
                "conv1",
                "layer1.0.conv1",
                "layer1.0.relu",
                "layer1.0.add",
                "layer1.0.relu#2",
                "features.1.block.0.0",
                "features.1.block.1.mul",
                "features.1.block.1.fc1",
                "flatten",
                "fc",
                "Conv_7",
                "relu",
                "input#2",
            ]
        );
    }
}
