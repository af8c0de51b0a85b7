//! The architectures convlens knows, each built with its reference implementation's parameter
//! names, and the inference of an architecture from a state_dict's keys and shapes.

mod alexnet;
mod densenet;
mod efficientnet;
mod efficientnet_lite;
pub mod fashion_mnist;
mod googlenet;
mod head;
mod infer;
mod mobilenet_v2;
mod mobilenet_v3;
mod resnet;
pub mod segmentation;
pub mod small_resnet;
pub mod small_vgg;
mod squeezenet;
mod vgg;

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

pub use head::{Head, HeadLinear};
pub use infer::infer_architecture;

use crate::graph::{Graph, GraphBuilder, NodeId, WeightSource};
use crate::input::{Normalization, Preprocess};
use crate::{Error, Result};

/// A buildable architecture.
pub struct Architecture {
    /// The `--arch` name (torchvision's function name).
    pub name: &'static str,
    /// Adds the network's nodes to the builder and returns the output node.
    pub build: fn(&mut GraphBuilder, &ArchConfig) -> Result<NodeId>,
    /// The state_dict key of the final classifier's weight (its first dimension is the class count).
    pub classifier: &'static str,
    /// The state_dict key of the first conv's weight (its second dimension is the input
    /// channel count).
    pub stem: &'static str,
    /// How the reference implementation expects its input normalized.
    pub normalization: Normalization,
}

/// Options an architecture is built with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchConfig {
    /// Number of output classes.
    pub num_classes: usize,
    /// Input channels of the first conv (3 for RGB, 1 for grayscale). The Fashion-MNIST
    /// architectures are always one-channel and ignore it.
    pub in_channels: usize,
    /// A replaced classifier head read from the weights; `None` builds the reference head.
    pub head: Option<Head>,
}

impl Default for ArchConfig {
    fn default() -> Self {
        ArchConfig {
            num_classes: 1000,
            in_channels: 3,
            head: None,
        }
    }
}

/// Every architecture, in the order `--arch` lists them.
pub fn all() -> Vec<&'static Architecture> {
    let mut list: Vec<&'static Architecture> = Vec::new();
    list.extend(alexnet::ARCHITECTURES.iter());
    list.extend(vgg::ARCHITECTURES.iter());
    list.extend(resnet::ARCHITECTURES.iter());
    list.extend(squeezenet::ARCHITECTURES.iter());
    list.extend(mobilenet_v2::ARCHITECTURES.iter());
    list.extend(mobilenet_v3::ARCHITECTURES.iter());
    list.extend(densenet::ARCHITECTURES.iter());
    list.extend(googlenet::ARCHITECTURES.iter());
    list.extend(efficientnet::ARCHITECTURES.iter());
    list.extend(efficientnet_lite::ARCHITECTURES.iter());
    list.extend(segmentation::ARCHITECTURES.iter());
    list.extend(small_vgg::ARCHITECTURES.iter());
    list.extend(small_resnet::ARCHITECTURES.iter());
    list
}

/// The architecture named `name`.
pub fn find(name: &str) -> Result<&'static Architecture> {
    let list = all();
    let found = list.iter().find(|a| a.name == name).copied();
    found.ok_or_else(|| {
        let names: Vec<&str> = list.iter().map(|a| a.name).collect();
        Error::Unsupported(format!(
            "unknown architecture `{name}`; known: {}",
            names.join(", ")
        ))
    })
}

impl Architecture {
    /// Builds the graph from `source` on `device`.
    pub fn build_graph(
        &self,
        source: WeightSource,
        config: &ArchConfig,
        device: &Device,
    ) -> Result<Graph> {
        let mut builder = GraphBuilder::new(source, device);
        (self.build)(&mut builder, config)?;
        builder.finish(self.name)
    }

    /// Whether it is one of the 28×28 grayscale Fashion-MNIST architectures.
    fn is_fashion_mnist(&self) -> bool {
        self.name == small_vgg::NAME || self.name == small_resnet::NAME
    }

    /// How its images are preprocessed: torchvision's evaluation transform with its
    /// normalization, or 28×28 grayscale for the Fashion-MNIST architectures.
    pub fn preprocess(&self) -> Preprocess {
        if self.is_fashion_mnist() {
            fashion_mnist::preprocess()
        } else {
            Preprocess::standard(self.normalization)
        }
    }

    /// The class count of a model built without weights (`random:ARCH`): 10 for the
    /// Fashion-MNIST architectures, ImageNet's 1000 otherwise.
    pub fn default_classes(&self) -> usize {
        if self.is_fashion_mnist() {
            fashion_mnist::CLASS_NAMES.len()
        } else if segmentation::is_segmentation(self.name) {
            segmentation::VOC_CLASSES.len()
        } else {
            ArchConfig::default().num_classes
        }
    }

    /// The configuration of a model built without weights: its default class count and input
    /// channels, the reference head.
    pub fn default_config(&self) -> ArchConfig {
        ArchConfig {
            num_classes: self.default_classes(),
            in_channels: self.normalization.channels,
            head: None,
        }
    }

    /// The configuration that fits `dict`: in_channels from the first conv's weight, the head
    /// (a replaced one, see [`Head`]) and the class count from the classifier. What `dict`
    /// does not show is left at [`default_config`](Self::default_config), for the graph
    /// builder to report as missing or misshapen.
    pub fn config_for(&self, dict: &BTreeMap<String, Tensor>) -> ArchConfig {
        let mut config = self.default_config();
        if let Some(&[_, c, _, _]) = dict.get(self.stem).map(|t| t.dims()) {
            config.in_channels = c;
        }
        let prefix = self.head_prefix();
        config.head = Head::read(dict, prefix);
        let classes = config
            .head
            .as_ref()
            .and_then(Head::num_classes)
            .or_else(|| {
                dict.get(self.classifier)
                    .and_then(|t| t.dims().first().copied())
            });
        if let Some(classes) = classes {
            config.num_classes = classes;
        }
        config
    }

    /// The name of the classifier module (`fc`, `classifier`, `_fc`).
    pub fn head_prefix(&self) -> &'static str {
        self.classifier
            .split_once('.')
            .map_or(self.classifier, |(p, _)| p)
    }

    /// [`preprocess`](Self::preprocess) for a model built with `config`: the normalization has
    /// `config.in_channels` channels (see [`Normalization::with_channels`]).
    pub fn preprocess_for(&self, config: &ArchConfig) -> Preprocess {
        let mut preprocess = self.preprocess();
        preprocess.normalization = preprocess.normalization.with_channels(config.in_channels);
        preprocess
    }

    /// The class names of a model with `classes` outputs when no label file is given.
    pub fn default_labels(&self, classes: usize) -> Vec<String> {
        if self.is_fashion_mnist() {
            fashion_mnist::labels(classes)
        } else if segmentation::is_segmentation(self.name)
            && classes == segmentation::VOC_CLASSES.len()
        {
            segmentation::VOC_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            crate::labels::default_for(classes)
        }
    }
}
