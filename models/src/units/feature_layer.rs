//! A layer whose output is a feature map [1, C, H, W]: the only kind whose units (channels) can
//! be shown as maps or projected down to pixels.

use candle_core::Tensor;
use serde::Serialize;

use crate::graph::{Graph, NodeId, Trace};
use crate::{Error, Result};

/// A layer with channels and positions, resolved in a forward trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeatureLayer {
    /// The graph node.
    pub node: NodeId,
    /// Its name as asked for: a node (`layer2.1.relu#2`) or a module path standing for its
    /// output (`layer2`), the same name every subcommand reports.
    pub name: String,
    /// Channels (units).
    pub channels: usize,
    /// Height of the map.
    pub height: usize,
    /// Width of the map.
    pub width: usize,
}

/// The layer called `name` in `trace` (a forward pass of one image that kept it), refused with
/// a clear error when it is unknown, the input, or has no [1, C, H, W] output.
pub fn feature_layer(graph: &Graph, trace: &Trace, name: &str) -> Result<FeatureLayer> {
    feature_layer_in(graph, name, |node| trace.get(node).cloned())
}

/// The layer called `name`, whose output `output_of` gives (a forward pass run elsewhere, such
/// as the daemon's activation cache), checked as [`feature_layer`] does.
pub fn feature_layer_in(
    graph: &Graph,
    name: &str,
    output_of: impl Fn(NodeId) -> Option<Tensor>,
) -> Result<FeatureLayer> {
    let node = graph.node_id(name)?;
    if node == 0 {
        return Err(Error::InvalidArgument(
            "`input` is the image, not a layer; pick a layer (`convlens layers MODEL` lists them)"
                .into(),
        ));
    }
    let resolved = graph.name(node).to_string();
    let output = output_of(node).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "the forward pass did not keep the output of `{resolved}`"
        ))
    })?;
    let dims = output.dims();
    let [1, channels, height, width] = *dims else {
        let shown = if resolved == name {
            format!("`{name}`")
        } else {
            format!("`{name}` (`{resolved}`)")
        };
        return Err(Error::InvalidArgument(format!(
            "layer {shown} outputs {dims:?}, which has no channels and positions: units are shown \
             for layers with a [1, C, H, W] feature map (a convolution, pooling or activation \
             before the head)"
        )));
    };
    Ok(FeatureLayer {
        node,
        name: name.to_string(),
        channels,
        height,
        width,
    })
}

impl FeatureLayer {
    /// `unit` if the layer has it, else an error naming the range.
    pub fn check_unit(&self, unit: usize) -> Result<usize> {
        if unit < self.channels {
            Ok(unit)
        } else {
            Err(Error::InvalidArgument(format!(
                "unit {unit} is out of range: layer `{}` has {} channels (0..={})",
                self.name,
                self.channels,
                self.channels.saturating_sub(1)
            )))
        }
    }
}
