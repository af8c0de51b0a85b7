//! Which layer a CAM looks at: the default (the last spatial layer before the head) and the
//! global-average-pool + linear head that plain CAM needs.

use crate::graph::{Graph, NodeId};
use crate::ops::Op;
use crate::{Error, Result};

fn is_pool(op: &Op) -> bool {
    matches!(
        op,
        Op::AdaptiveAvgPool2d(_)
            | Op::AvgPool2d(_)
            | Op::MaxPool2d(_)
            | Op::SpatialMean
            | Op::Identity
    )
}

/// The last spatial layer before the head: the input of the last flatten, stepping back over
/// pooling and dropout (resnet `layer4`, vgg `features.42`, EfficientNet-Lite's head ReLU6).
pub fn default_cam_layer(graph: &Graph) -> Result<NodeId> {
    let nodes = graph.nodes();
    let flatten = (1..nodes.len())
        .rev()
        .find(|&i| matches!(nodes[i].op, Op::Flatten { .. }) || is_reshape(&nodes[i].op));
    let Some(mut id) = flatten.and_then(|f| nodes[f].inputs.first().copied()) else {
        return Err(Error::InvalidArgument(
            "cannot tell the last spatial layer of this model; pass --layer".into(),
        ));
    };
    while id > 0 && is_pool(&nodes[id].op) {
        id = nodes[id].inputs[0];
    }
    if id == 0 {
        return Err(Error::InvalidArgument(
            "the model has no spatial layer before its head; pass --layer".into(),
        ));
    }
    Ok(id)
}

/// Whether `op` is a reshape (a flatten written as `x.reshape(n, -1)`).
pub(crate) fn is_reshape(op: &Op) -> bool {
    op.class_name() == "Reshape"
}

/// For plain CAM: the [classes, channels] weight of the linear layer that reads the global
/// average pool of `layer`, or an error saying what the head is instead.
pub fn gap_linear_head(graph: &Graph, layer: NodeId) -> Result<candle_core::Tensor> {
    let nodes = graph.nodes();
    let name = graph.name(layer).to_string();
    let refuse = |what: &str| {
        Error::InvalidArgument(format!(
            "cam needs a global-average-pool + linear head after `{name}`, but {what}; use gradcam, which equals it on such heads"
        ))
    };
    let mut id = layer;
    let mut pooled = false;
    loop {
        let consumers = graph.consumers(id);
        let [next] = consumers.as_slice() else {
            return Err(refuse(&format!(
                "`{}` feeds {} layers",
                graph.name(id),
                consumers.len()
            )));
        };
        let next = *next;
        match &nodes[next].op {
            Op::AdaptiveAvgPool2d(p) if p.output_size == (1, 1) && !pooled => pooled = true,
            Op::SpatialMean if !pooled => pooled = true,
            Op::Flatten { .. } | Op::Identity if pooled => {}
            op if pooled && is_reshape(op) => {}
            Op::Linear(linear) if pooled && next == graph.output_id() => {
                return Ok(linear.weight.clone())
            }
            op => {
                return Err(refuse(&format!(
                    "it is followed by `{}` ({})",
                    nodes[next].name,
                    op.class_name()
                )))
            }
        }
        id = next;
    }
}
