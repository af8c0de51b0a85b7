//! Which of a program's outputs is the network's: torch.export flattens a `forward` that
//! returns a dict (torchvision's segmentation models: `{"out": …, "aux": …}`) into one graph
//! output per leaf, and records the dict's shape in the root module's `out_spec`, a serialized
//! pytree `TreeSpec`: `[1, {"type": "collections.OrderedDict", "context": "[\"out\",
//! \"aux\"]", "children_spec": [leaf, leaf]}]`. convlens picks the leaf under `out`.

use serde_json::Value;

/// The key whose leaf is the network's output, as torchvision's segmentation models name it.
pub(crate) const OUTPUT_KEY: &str = "out";

/// What the program's root `out_spec` says of its outputs.
#[derive(Debug, PartialEq)]
pub(crate) enum OutSpec {
    /// A dict: its keys, and the index of the first leaf under each.
    Dict(Vec<(String, usize)>),
    /// Anything else (a tuple, a list, one tensor): the type, for the error.
    Other(String),
}

impl OutSpec {
    /// Reads a serialized `TreeSpec` (`[protocol, spec]`); `None` when it is not one.
    pub(crate) fn parse(serialized: &str) -> Option<OutSpec> {
        let value: Value = serde_json::from_str(serialized).ok()?;
        let spec = value.as_array()?.get(1)?;
        let kind = spec.get("type").and_then(Value::as_str).unwrap_or("leaf");
        if !kind.ends_with("dict") && !kind.ends_with("OrderedDict") {
            return Some(OutSpec::Other(kind.to_string()));
        }
        let keys: Vec<Value> = serde_json::from_str(spec.get("context")?.as_str()?).ok()?;
        let children = spec.get("children_spec")?.as_array()?;
        let mut first_leaf = 0;
        let mut entries = Vec::new();
        for (key, child) in keys.iter().zip(children) {
            let name = match key {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            entries.push((name, first_leaf));
            first_leaf += leaves(child);
        }
        Some(OutSpec::Dict(entries))
    }

    /// The index of the leaf under [`OUTPUT_KEY`], when the outputs are a dict that has it.
    pub(crate) fn output_leaf(&self) -> Option<usize> {
        match self {
            OutSpec::Dict(entries) => entries
                .iter()
                .find(|(key, _)| key == OUTPUT_KEY)
                .map(|&(_, leaf)| leaf),
            OutSpec::Other(_) => None,
        }
    }

    /// The outputs in a few words: `a dict of out, aux`, `a builtins.tuple`.
    pub(crate) fn describe(&self) -> String {
        match self {
            OutSpec::Dict(entries) => {
                let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
                format!("a dict of {}", keys.join(", "))
            }
            OutSpec::Other(kind) => format!("a {kind}"),
        }
    }
}

/// How many leaves (tensors) a `TreeSpec` node holds.
fn leaves(spec: &Value) -> usize {
    match spec.get("children_spec").and_then(Value::as_array) {
        Some(children) if spec.get("type").is_some_and(|t| !t.is_null()) => {
            children.iter().map(leaves).sum()
        }
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torch.export's `out_spec` of torchvision's fcn_resnet50 with `aux_loss=True`.
    const FCN: &str = r#"[1, {"type": "collections.OrderedDict", "context": "[\"out\", \"aux\"]", "children_spec": [{"type": null, "context": null, "children_spec": []}, {"type": null, "context": null, "children_spec": []}]}]"#;

    #[test]
    fn a_dict_s_out_leaf_is_found() {
        let spec = OutSpec::parse(FCN).unwrap();
        assert_eq!(spec.output_leaf(), Some(0));
        assert_eq!(spec.describe(), "a dict of out, aux");
        // `out` after a key holding a tuple of two tensors: the third leaf.
        let nested = r#"[1, {"type": "builtins.dict", "context": "[\"feats\", \"out\"]", "children_spec": [{"type": "builtins.tuple", "context": "null", "children_spec": [{"type": null, "context": null, "children_spec": []}, {"type": null, "context": null, "children_spec": []}]}, {"type": null, "context": null, "children_spec": []}]}]"#;
        assert_eq!(OutSpec::parse(nested).unwrap().output_leaf(), Some(2));
    }

    #[test]
    fn a_tuple_or_a_dict_without_out_has_no_output_leaf() {
        let tuple = r#"[1, {"type": "builtins.tuple", "context": "null", "children_spec": [{"type": null, "context": null, "children_spec": []}, {"type": null, "context": null, "children_spec": []}]}]"#;
        let spec = OutSpec::parse(tuple).unwrap();
        assert_eq!(spec.output_leaf(), None);
        assert_eq!(spec.describe(), "a builtins.tuple");
        let other = r#"[1, {"type": "builtins.dict", "context": "[\"logits\", \"aux\"]", "children_spec": [{"type": null, "context": null, "children_spec": []}, {"type": null, "context": null, "children_spec": []}]}]"#;
        assert_eq!(OutSpec::parse(other).unwrap().output_leaf(), None);
        assert_eq!(OutSpec::parse("not json"), None);
    }
}
