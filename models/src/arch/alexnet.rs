//! torchvision's AlexNet (`torchvision.models.alexnet`).

use super::head::{classifier, Reference, Step};
use super::{ArchConfig, Architecture};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::input::Normalization;
use crate::ops::Activation;
use crate::Result;

/// `AlexNet.forward`: `features`, `avgpool`, flatten, `classifier`.
fn alexnet(b: &mut GraphBuilder, config: &ArchConfig) -> Result<NodeId> {
    let x = b.input();
    let x = b.scope("features", |b| {
        let x = b.conv2d(
            "0",
            x,
            ConvSpec::new(config.in_channels, 64, 11)
                .stride(4)
                .padding(2)
                .bias(true),
        )?;
        let x = b.relu("1", x);
        let x = b.max_pool("2", x, 3, 2, 0, false);
        let x = b.conv2d("3", x, ConvSpec::new(64, 192, 5).padding(2).bias(true))?;
        let x = b.relu("4", x);
        let x = b.max_pool("5", x, 3, 2, 0, false);
        let x = b.conv2d("6", x, ConvSpec::new(192, 384, 3).padding(1).bias(true))?;
        let x = b.relu("7", x);
        let x = b.conv2d("8", x, ConvSpec::new(384, 256, 3).padding(1).bias(true))?;
        let x = b.relu("9", x);
        let x = b.conv2d("10", x, ConvSpec::new(256, 256, 3).padding(1).bias(true))?;
        let x = b.relu("11", x);
        Ok(b.max_pool("12", x, 3, 2, 0, false))
    })?;
    let x = b.adaptive_avg_pool("avgpool", x, (6, 6));
    let x = b.flatten("flatten", x);
    classifier(b, "classifier", x, 256 * 6 * 6, HEAD, config)
}

/// AlexNet's `classifier`.
const HEAD: Reference = Reference::Sequential(&[
    Step::Dropout,
    Step::Linear(4096),
    Step::Act(Activation::Relu),
    Step::Dropout,
    Step::Linear(4096),
    Step::Act(Activation::Relu),
    Step::Classes,
]);

/// AlexNet.
pub static ARCHITECTURES: [Architecture; 1] = [Architecture {
    name: "alexnet",
    build: alexnet,
    classifier: "classifier.6.weight",
    stem: "features.0.weight",
    normalization: Normalization::IMAGENET,
}];
