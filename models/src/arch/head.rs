//! Classifier heads: the reference head of each architecture, or a replaced one read from a
//! state_dict's keys and shapes (`model.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(512, 5))`).
//!
//! A state_dict names a replaced head's Linears (`fc.1.weight`, or `fc.0.weight` and
//! `fc.3.weight`) but not its parameterless modules: a ReLU and a Dropout leave no key. The rule
//! used to fill the gaps, see [`Head::Sequential`], matches the common fine-tuning heads.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::ArchConfig;
use crate::graph::{GraphBuilder, NodeId};
use crate::ops::Activation;
use crate::Result;

/// One `nn.Linear` of a Sequential head found in a state_dict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadLinear {
    /// Its index in the Sequential (`fc.1` → 1).
    pub index: usize,
    /// Its out_features (the first dimension of its weight).
    pub out_features: usize,
    /// Whether it has a bias.
    pub bias: bool,
}

/// A classifier head as a state_dict shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// A single `nn.Linear` named after the head (`fc`, `classifier`).
    Linear {
        /// Its out_features.
        out_features: usize,
        /// Whether it has a bias.
        bias: bool,
    },
    /// An `nn.Sequential` with a Linear at each of these indices (a 2-D `.weight`), in order.
    ///
    /// When the indices are those of the architecture's reference head (VGG's
    /// `classifier.0/3/6`, MobileNetV3's `classifier.0/3`), the reference head is built, with its
    /// activations and these widths. Otherwise the other indices up to the last Linear are
    /// filled by this rule: the index right after a Linear, when it is not a Linear itself, is a
    /// ReLU; every other one is a Dropout (the identity at evaluation). A state_dict cannot tell
    /// a ReLU from a Dropout; this reads `Sequential(Dropout, Linear)` and
    /// `Sequential(Linear, ReLU, Dropout, Linear)` right, and modules after the last Linear are
    /// not built.
    Sequential(Vec<HeadLinear>),
}

impl Head {
    /// The head named `prefix` (`fc`, `classifier`) in `dict`: a Linear at `prefix.weight`, or
    /// the Linears at `prefix.N.weight`; `None` when there are neither.
    pub fn read(dict: &BTreeMap<String, Tensor>, prefix: &str) -> Option<Head> {
        let linear = |key: &str| -> Option<(usize, bool)> {
            match dict.get(&format!("{key}.weight")).map(|t| t.dims()) {
                Some(&[out, _]) => Some((out, dict.contains_key(&format!("{key}.bias")))),
                _ => None,
            }
        };
        if let Some((out_features, bias)) = linear(prefix) {
            return Some(Head::Linear { out_features, bias });
        }
        let start = format!("{prefix}.");
        let mut indices: Vec<usize> = dict
            .keys()
            .filter_map(|k| {
                k.strip_prefix(&start)?
                    .strip_suffix(".weight")?
                    .parse()
                    .ok()
            })
            .collect();
        indices.sort_unstable();
        indices.dedup();
        let linears: Vec<HeadLinear> = indices
            .into_iter()
            .filter_map(|index| {
                let (out_features, bias) = linear(&format!("{prefix}.{index}"))?;
                Some(HeadLinear {
                    index,
                    out_features,
                    bias,
                })
            })
            .collect();
        (!linears.is_empty()).then_some(Head::Sequential(linears))
    }

    /// Its class count: the out_features of its last Linear.
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            Head::Linear { out_features, .. } => Some(*out_features),
            Head::Sequential(linears) => linears.last().map(|l| l.out_features),
        }
    }
}

/// A module of a reference head's Sequential.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Step {
    /// `nn.Dropout`.
    Dropout,
    /// An activation module.
    Act(Activation),
    /// `nn.Linear` to this many features.
    Linear(usize),
    /// The last `nn.Linear`, to the class count.
    Classes,
}

/// An architecture's reference head.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reference {
    /// A single `nn.Linear` to the class count.
    Linear,
    /// An `nn.Sequential` of these modules.
    Sequential(&'static [Step]),
}

impl Reference {
    /// The indices of its Linears (none for a single Linear).
    fn linear_indices(self) -> Vec<usize> {
        match self {
            Reference::Linear => vec![],
            Reference::Sequential(steps) => steps
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s, Step::Linear(_) | Step::Classes))
                .map(|(i, _)| i)
                .collect(),
        }
    }
}

/// The classifier head named `name` on `x` (`in_features` wide): the head of `config` if it
/// has one, else `reference`, ending in `config.num_classes` outputs. Its nodes are named by
/// their PyTorch module paths (`fc`, `fc.1`, `classifier.6`).
pub(crate) fn classifier(
    b: &mut GraphBuilder,
    name: &str,
    x: NodeId,
    in_features: usize,
    reference: Reference,
    config: &ArchConfig,
) -> Result<NodeId> {
    let classes = config.num_classes;
    match (&config.head, reference) {
        (None, Reference::Linear) => b.linear(name, x, in_features, classes, true),
        (Some(Head::Linear { bias, .. }), _) => b.linear(name, x, in_features, classes, *bias),
        (None, Reference::Sequential(steps)) => b.scope(name, |b| {
            let mut x = x;
            let mut features = in_features;
            for (i, step) in steps.iter().enumerate() {
                let id = i.to_string();
                x = match *step {
                    Step::Dropout => b.dropout(&id, x),
                    Step::Act(a) => b.activation(&id, x, a),
                    Step::Linear(out) => {
                        let y = b.linear(&id, x, features, out, true)?;
                        features = out;
                        y
                    }
                    Step::Classes => b.linear(&id, x, features, classes, true)?,
                };
            }
            Ok(x)
        }),
        (Some(Head::Sequential(linears)), reference) => {
            let indices: Vec<usize> = linears.iter().map(|l| l.index).collect();
            let steps = match reference {
                Reference::Sequential(steps) if reference.linear_indices() == indices => {
                    Some(steps)
                }
                _ => None,
            };
            let Some(last) = indices.last().copied() else {
                return b.linear(name, x, in_features, classes, true);
            };
            b.scope(name, |b| {
                let mut x = x;
                let mut features = in_features;
                for i in 0..=last {
                    let id = i.to_string();
                    if let Some(l) = linears.iter().find(|l| l.index == i) {
                        let out = if i == last { classes } else { l.out_features };
                        x = b.linear(&id, x, features, out, l.bias)?;
                        features = out;
                        continue;
                    }
                    let after_linear = i > 0 && indices.contains(&(i - 1));
                    x = match steps.and_then(|s| s.get(i)) {
                        Some(Step::Act(a)) => b.activation(&id, x, *a),
                        Some(_) => b.dropout(&id, x),
                        None if after_linear => b.relu(&id, x),
                        None => b.dropout(&id, x),
                    };
                }
                Ok(x)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn dict(entries: &[(&str, &[usize])]) -> BTreeMap<String, Tensor> {
        entries
            .iter()
            .map(|(k, s)| {
                (
                    k.to_string(),
                    Tensor::zeros(*s, DType::F32, &Device::Cpu).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn heads_are_read_from_keys_and_shapes() {
        let d = dict(&[("fc.weight", &[10, 512]), ("fc.bias", &[10])]);
        assert_eq!(
            Head::read(&d, "fc"),
            Some(Head::Linear {
                out_features: 10,
                bias: true
            })
        );
        let d = dict(&[
            ("fc.0.weight", &[256, 512]),
            ("fc.0.bias", &[256]),
            ("fc.3.weight", &[5, 256]),
            ("fc.3.bias", &[5]),
            ("fc.10.weight", &[7]),
        ]);
        let head = Head::read(&d, "fc").unwrap();
        assert_eq!(
            head,
            Head::Sequential(vec![
                HeadLinear {
                    index: 0,
                    out_features: 256,
                    bias: true
                },
                HeadLinear {
                    index: 3,
                    out_features: 5,
                    bias: true
                },
            ])
        );
        assert_eq!(head.num_classes(), Some(5));
        assert_eq!(Head::read(&d, "classifier"), None);
        // A conv classifier (SqueezeNet's) is not a Linear head.
        let d = dict(&[("classifier.1.weight", &[1000, 512, 1, 1])]);
        assert_eq!(Head::read(&d, "classifier"), None);
    }
}
