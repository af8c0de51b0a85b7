//! The network's first convolution when it is a linear map of the input alone: Score-CAM's
//! masked copies go through it by linearity instead of one convolution per copy
//! (`explain::masked_stem`).

use super::{Graph, NodeId};
use crate::ops::pointwise_cpu::FusedActivation;
use crate::ops::{Conv2d, Op};

/// A convolution that reads the network's input and that nothing else reads, with the
/// BatchNorm that follows it folded in when the fastest passes fold it, and the activation
/// after that when the fastest passes apply it as the convolution writes.
#[derive(Debug)]
pub struct LinearStem {
    /// The convolution (its BatchNorm folded in, when it has one that folds).
    pub conv: Conv2d,
    /// The activation applied to the convolution's output, if any.
    pub activation: Option<FusedActivation>,
    /// The node whose output `conv` and then `activation` compute: the convolution's, its
    /// BatchNorm's or its activation's.
    pub output: NodeId,
}

impl Graph {
    /// The network's first convolution, when node 1 is a convolution of the input and the
    /// input has no other reader: a cut after which [`Graph::output_after`] runs the rest.
    pub fn linear_stem(&self) -> Option<LinearStem> {
        let Op::Conv2d(conv) = &self.nodes.get(1)?.op else {
            return None;
        };
        if self.nodes[1].inputs != [0] || self.consumers(0) != [1] {
            return None;
        }
        match (self.chains().get(1)?, self.folds().get(1)?) {
            (Some(chain), Some(folded)) => {
                let activation = chain
                    .activation
                    .as_ref()
                    .and_then(|(node, a)| Some((*node, FusedActivation::of(a)?)));
                Some(LinearStem {
                    conv: folded.clone(),
                    activation: activation.map(|(_, a)| a),
                    output: activation.map_or(chain.norm, |(node, _)| node),
                })
            }
            _ => Some(LinearStem {
                conv: conv.clone(),
                activation: None,
                output: 1,
            }),
        }
    }
}
