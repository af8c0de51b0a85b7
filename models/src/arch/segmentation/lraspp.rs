//! `torchvision.models.segmentation.lraspp`: Lite R-ASPP (Howard et al. 2019) on a dilated
//! MobileNetV3-Large: a low-level tap at stride 8 and a high-level one at stride 16.

use super::{upsample_like, BN_EPS};
use crate::arch::mobilenet_v3::{mobilenet_v3_features, stage_indices, Tap};
use crate::arch::ArchConfig;
use crate::graph::{ConvSpec, GraphBuilder, NodeId};
use crate::ops::Activation;
use crate::{Error, Result};

/// `LRASPPHead`'s `inter_channels`.
const INTER_CHANNELS: usize = 128;

/// `LRASPPHead.forward`: the high features through a 1×1 convolution, BatchNorm and ReLU,
/// scaled by their pooled sigmoid gate, upsampled to the low features' size, classified and
/// added to the low features' own classification.
fn lraspp_head(
    b: &mut GraphBuilder,
    (low, low_channels): Tap,
    (high, high_channels): Tap,
    classes: usize,
) -> Result<NodeId> {
    b.scope("classifier", |b| {
        let x = b.scope("cbr", |b| {
            let spec = ConvSpec::new(high_channels, INTER_CHANNELS, 1);
            let x = b.conv2d("0", high, spec)?;
            let x = b.batch_norm("1", x, INTER_CHANNELS, BN_EPS)?;
            Ok(b.relu("2", x))
        })?;
        let s = b.scope("scale", |b| {
            let s = b.adaptive_avg_pool("0", high, (1, 1));
            let s = b.conv2d("1", s, ConvSpec::new(high_channels, INTER_CHANNELS, 1))?;
            Ok(b.activation("2", s, Activation::Sigmoid))
        })?;
        let x = b.mul("mul", x, s);
        let x = upsample_like(b, "upsample", x, low);
        let low_spec = ConvSpec::new(low_channels, classes, 1).bias(true);
        let low = b.conv2d("low_classifier", low, low_spec)?;
        let high_spec = ConvSpec::new(INTER_CHANNELS, classes, 1).bias(true);
        let high = b.conv2d("high_classifier", x, high_spec)?;
        Ok(b.add("add", low, high))
    })
}

/// `LRASPP.forward` with `lraspp_mobilenet_v3_large`'s backbone: `features` of a dilated
/// MobileNetV3-Large, tapped at the fourth stage index from the end ("low", stride 8) and the
/// last ("high", stride 16), the head, then upsampled to the input's size.
pub(super) fn lraspp_mobilenet_v3_large(
    b: &mut GraphBuilder,
    config: &ArchConfig,
) -> Result<NodeId> {
    let input = b.input();
    let (features, high) = b.scope("backbone", |b| {
        // IntermediateLayerGetter keeps `features`' children as `backbone.<i>`.
        mobilenet_v3_features(b, config.in_channels, true, true)
    })?;
    let stages = stage_indices(true);
    let low = stages
        .len()
        .checked_sub(4)
        .and_then(|i| features.get(stages[i]))
        .copied()
        .ok_or_else(|| Error::Unsupported("lraspp: too few MobileNetV3 stages".into()))?;
    let x = lraspp_head(b, low, high, config.num_classes)?;
    Ok(upsample_like(b, "upsample", x, input))
}
