//! One step's forward and backward pass: the objective of each image and the gradient, at the
//! network's input, of the objective plus the diversity term.

use std::cell::RefCell;

use candle_core::Tensor;

use super::diversity;
use super::objective::BoundObjective;
use crate::graph::{BackwardRule, Graph, NodeId, Trace};
use crate::{Error, Result};

/// What one forward and backward pass gives.
#[derive(Debug)]
pub struct StepGradient {
    /// The objective of each image.
    pub values: Vec<f32>,
    /// The batch's Gram similarity, when the diversity term is on.
    pub similarity: Option<f32>,
    /// ∂(Σ objective − weight·B·similarity)/∂input, shaped like the input.
    pub gradient: Tensor,
}

/// The objective (and diversity term) of a run, bound to the graph, with its masks cached by
/// layer shape (the optimization and the final check run at different sizes).
pub struct Ascent<'a> {
    graph: &'a Graph,
    objective: BoundObjective,
    diversity: Option<(NodeId, f64)>,
    masks: RefCell<Vec<(Vec<usize>, Tensor)>>,
}

impl<'a> Ascent<'a> {
    /// The ascent for `objective`, with a diversity term of `weight` on node `diversity` if any.
    pub fn new(
        graph: &'a Graph,
        objective: BoundObjective,
        diversity: Option<(NodeId, f64)>,
    ) -> Self {
        Ascent {
            graph,
            objective,
            diversity,
            masks: RefCell::new(Vec::new()),
        }
    }

    /// The objective's node.
    pub fn node(&self) -> NodeId {
        self.objective.node
    }

    fn mask(&self, output: &Tensor) -> Result<Tensor> {
        let dims = output.dims().to_vec();
        if let Some((_, m)) = self
            .masks
            .borrow()
            .iter()
            .find(|(d, _)| d[1..] == dims[1..])
        {
            return Ok(m.clone());
        }
        let m = self.objective.mask(&dims, output.device())?;
        self.masks.borrow_mut().push((dims, m.clone()));
        Ok(m)
    }

    fn node_output<'t>(&self, trace: &'t Trace, node: NodeId) -> Result<&'t Tensor> {
        trace.get(node).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "the forward pass did not keep the output of `{}`",
                self.graph.name(node)
            ))
        })
    }

    /// The objective of each image, from a trace.
    pub fn values(&self, trace: &Trace) -> Result<Vec<f32>> {
        let output = self.node_output(trace, self.objective.node)?;
        let mask = self.mask(output)?;
        Ok(self.objective.values(output, &mask)?.to_vec1::<f32>()?)
    }

    /// The objective of each image of `input` (a forward pass).
    pub fn evaluate(&self, input: &Tensor) -> Result<Vec<f32>> {
        let trace = self.graph.forward(input, Some(&[self.objective.node]))?;
        self.values(&trace)
    }

    /// Forward and backward for `input` [B, C, H, W].
    pub fn gradient(&self, input: &Tensor) -> Result<StepGradient> {
        let node = self.objective.node;
        let mut keep = vec![node];
        keep.extend(self.diversity.map(|(d, _)| d));
        let trace = self.graph.forward_for_gradient(input, &keep)?;
        let output = self.node_output(&trace, node)?;
        let mask = self.mask(output)?;
        let values = self.objective.values(output, &mask)?.to_vec1::<f32>()?;
        let signal = mask
            .broadcast_as(output.shape())?
            .to_dtype(output.dtype())?
            .contiguous()?;
        let back = |from: NodeId, signal: &Tensor, to: NodeId| {
            self.graph
                .backward(&trace, from, signal, to, BackwardRule::Gradient)
        };
        let Some((div_node, weight)) = self.diversity else {
            return Ok(StepGradient {
                values,
                similarity: None,
                gradient: back(node, &signal, 0)?,
            });
        };
        let features = self.node_output(&trace, div_node)?;
        let (similarity, div_signal) = diversity::signal(features, weight)?;
        let div_signal = div_signal.to_dtype(features.dtype())?;
        // When every path from the input to the later node passes through the earlier one, one
        // backward pass carries both signals: the later one is sent to the earlier node, joined
        // there, and the sum goes on to the input. Otherwise two passes.
        let gradient = if div_node == node {
            back(node, &signal.add(&div_signal)?, 0)?
        } else {
            let (early, early_signal, late, late_signal) = if div_node < node {
                (div_node, &div_signal, node, &signal)
            } else {
                (node, &signal, div_node, &div_signal)
            };
            if self.separates(early, late) {
                let joined = back(late, late_signal, early)?.add(early_signal)?;
                back(early, &joined, 0)?
            } else {
                back(late, late_signal, 0)?.add(&back(early, early_signal, 0)?)?
            }
        };
        Ok(StepGradient {
            values,
            similarity: Some(similarity),
            gradient,
        })
    }

    /// Whether every path from the input to `late` passes through `early` (no node after
    /// `early`, up to `late`, reads a node before it).
    fn separates(&self, early: NodeId, late: NodeId) -> bool {
        self.graph.nodes()[early + 1..=late]
            .iter()
            .all(|n| n.inputs.iter().all(|&i| i >= early))
    }
}
