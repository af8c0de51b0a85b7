//! Guessing the architecture of a state_dict from its keys and shapes. The guess is then checked
//! by building the graph, which refuses any missing, extra or misshapen tensor.

use std::collections::BTreeMap;

use candle_core::Tensor;

use super::{find, ArchConfig, Architecture, Head};
use crate::{Error, Result};

fn dims<'a>(dict: &'a BTreeMap<String, Tensor>, key: &str) -> Option<&'a [usize]> {
    dict.get(key).map(|t| t.dims())
}

/// The number of numbered children under `prefix` (`layer1.0.`, `layer1.1.`, … → 2).
fn count_children(dict: &BTreeMap<String, Tensor>, prefix: &str) -> usize {
    dict.keys()
        .filter_map(|k| k.strip_prefix(prefix))
        .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
        .map(|i| i + 1)
        .max()
        .unwrap_or(0)
}

/// small-vgg or small-resnet: a one-channel 3×3 first conv and a GAP + `fc` head.
fn guess_fashion_mnist(dict: &BTreeMap<String, Tensor>) -> Option<&'static str> {
    // A GAP + `fc` head, plain or replaced.
    Head::read(dict, "fc")?;
    if let Some([_, 1, 3, 3]) = dims(dict, "features.0.weight") {
        return Some(super::small_vgg::NAME);
    }
    if let Some([_, 1, 3, 3]) = dims(dict, "conv1.weight") {
        if dict.contains_key("layer3.0.conv1.weight") && !dict.contains_key("layer4.0.conv1.weight")
        {
            return Some(super::small_resnet::NAME);
        }
    }
    None
}

fn guess(dict: &BTreeMap<String, Tensor>) -> Option<&'static str> {
    let has = |k: &str| dict.contains_key(k);
    if let Some(name) = guess_fashion_mnist(dict) {
        return Some(name);
    }
    if has("layer1.0.conv1.weight") {
        let blocks: Vec<usize> = (1..=4)
            .map(|i| count_children(dict, &format!("layer{i}.")))
            .collect();
        let bottleneck = has("layer1.0.conv3.weight");
        return match (bottleneck, blocks.as_slice()) {
            (false, [2, 2, 2, 2]) => Some("resnet18"),
            (false, [3, 4, 6, 3]) => Some("resnet34"),
            (true, [3, 4, 6, 3]) => Some("resnet50"),
            (true, [3, 4, 23, 3]) => Some("resnet101"),
            (true, [3, 8, 36, 3]) => Some("resnet152"),
            _ => None,
        };
    }
    if has("_blocks.0._depthwise_conv.weight") && !has("_blocks.0._se_reduce.weight") {
        return Some("efficientnet_lite0");
    }
    if has("inception3a.branch1.conv.weight") {
        return Some("googlenet");
    }
    if has("features.denseblock1.denselayer1.conv1.weight") {
        return Some("densenet121");
    }
    if has("features.1.0.block.0.0.weight") || has("features.1.0.block.1.0.weight") {
        return Some("efficientnet_b0");
    }
    if has("features.1.conv.0.0.weight") {
        return Some("mobilenet_v2");
    }
    if has("features.1.block.0.0.weight") {
        // By the number of `features` children, so that a replaced head does not matter.
        return match count_children(dict, "features.") {
            13 => Some("mobilenet_v3_small"),
            17 => Some("mobilenet_v3_large"),
            _ => None,
        };
    }
    if has("features.3.squeeze.weight") {
        return match dims(dict, "features.0.weight") {
            Some([96, _, 7, 7]) => Some("squeezenet1_0"),
            Some([64, _, 3, 3]) => Some("squeezenet1_1"),
            _ => None,
        };
    }
    if let Some([64, _, 11, 11]) = dims(dict, "features.0.weight") {
        return Some("alexnet");
    }
    if Head::read(dict, "classifier").is_some() && has("features.0.weight") {
        let convs = dict
            .iter()
            .filter(|(k, t)| k.starts_with("features.") && k.ends_with(".weight") && t.rank() == 4)
            .count();
        let bn = has("features.1.running_mean");
        return match (convs, bn) {
            (8, false) => Some("vgg11"),
            (10, false) => Some("vgg13"),
            (13, false) => Some("vgg16"),
            (16, false) => Some("vgg19"),
            (8, true) => Some("vgg11_bn"),
            (10, true) => Some("vgg13_bn"),
            (13, true) => Some("vgg16_bn"),
            (16, true) => Some("vgg19_bn"),
            _ => None,
        };
    }
    None
}

/// The architecture a state_dict was saved from, and the configuration that fits it: input
/// channels from the first conv, the head (a replaced one too, see [`Head`]) and the class
/// count from the classifier.
pub fn infer_architecture(
    dict: &BTreeMap<String, Tensor>,
) -> Result<(&'static Architecture, ArchConfig)> {
    let name = guess(dict).ok_or_else(|| {
        let sample: Vec<&str> = dict.keys().take(4).map(String::as_str).collect();
        Error::Unsupported(format!(
            "cannot tell the architecture from the state_dict (keys begin {}); pass --arch NAME",
            sample.join(", ")
        ))
    })?;
    let arch = find(name)?;
    let prefix = arch.head_prefix();
    if Head::read(dict, prefix).is_none() && !dict.contains_key(arch.classifier) {
        return Err(Error::Weights(format!(
            "state_dict looks like {name} but has no classifier: neither `{}` nor the Linears \
             of a Sequential head (`{prefix}.N.weight`)",
            arch.classifier
        )));
    }
    Ok((arch, arch.config_for(dict)))
}
