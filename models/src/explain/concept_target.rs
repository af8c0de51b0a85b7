//! The similarity-to-a-reference-image target: what is explained is the cosine similarity of
//! the input's code at a layer to a reference image's code there (the SimilarityToConceptTarget
//! of pytorch-grad-cam's embeddings tutorial): which pixels make this image look like that one
//! to the network.
//!
//! As for dense targets, the target is built into the network: a node appended after the
//! layer flattens its output, one more takes the cosine similarity to the reference's code, and
//! every method explains that number as it would a class logit.

use candle_core::Tensor;

use super::{explain_with_trace, layer, ExplainOptions, Explanation, Method};
use crate::graph::{Node, Trace};
use crate::ops::{Cosine, Op};
use crate::progress::Progress;
use crate::{Error, Model, Result};
use convlens_shared::target::TargetSpec;

/// A reference image and the layer whose codes are compared.
#[derive(Clone, Debug)]
pub struct ConceptTarget {
    /// The reference image, preprocessed as the input is: [1, C, H, W].
    pub reference: Tensor,
    /// The layer; the pooled code before the classifier (the input of its last flatten) when
    /// `None`.
    pub layer: Option<String>,
}

/// [`explain_with_trace`] of the similarity of `input`'s code to the reference's.
pub(crate) fn explain_concept(
    model: &Model,
    input: &Tensor,
    trace: &Trace,
    concept: &ConceptTarget,
    options: &ExplainOptions,
    progress: &dyn Progress,
) -> Result<Explanation> {
    if options.target.is_some() || options.region.is_some() {
        return Err(Error::InvalidArgument(
            "a reference image is the target itself: it takes no class (--target) or region".into(),
        ));
    }
    if options.method == Method::Rise {
        return Err(Error::InvalidArgument(
            "rise weighs its masks by a class's probability, which a similarity has not; \
             explain it with occlusion or a gradient method"
                .into(),
        ));
    }
    let graph = &model.graph;
    let at = match &concept.layer {
        Some(name) => graph.node_id(name)?,
        None => code_layer(graph)?,
    };
    let reference_code = graph
        .forward(&concept.reference, Some(&[at]))?
        .get(at)
        .ok_or_else(|| Error::InvalidArgument("the reference's code was not kept".into()))?
        .flatten_all()?;
    let n = graph.nodes().len();
    let appended = vec![
        Node {
            name: "target.code".into(),
            op: Op::Flatten { start_dim: 1 },
            inputs: vec![at],
        },
        Node {
            name: "target.similarity".into(),
            op: Op::Cosine(Cosine {
                reference: reference_code,
            }),
            inputs: vec![n],
        },
    ];
    let name = format!("similarity to the reference at {}", graph.name(at));
    let mut targeted = model.with_graph(graph.with_appended(appended)?);
    let targeted_trace = targeted.graph.extend_trace(trace, n)?;
    targeted.labels = vec![name.clone()];
    let inner = ExplainOptions {
        target: Some(TargetSpec::class(0)),
        concept: None,
        ..options.clone()
    };
    let mut explanation = explain_with_trace(&targeted, input, &targeted_trace, &inner, progress)?;
    // A similarity has no probability: the cosine stands in for it, as for the score.
    explanation.probability = explanation.score;
    explanation.target_name = Some(name);
    Ok(explanation)
}

/// The pooled code before the classifier: the input of the network's last flatten.
fn code_layer(graph: &crate::graph::Graph) -> Result<usize> {
    let nodes = graph.nodes();
    (1..nodes.len())
        .rev()
        .find(|&i| matches!(nodes[i].op, Op::Flatten { .. }) || layer::is_reshape(&nodes[i].op))
        .and_then(|i| nodes[i].inputs.first().copied())
        .filter(|&i| i > 0)
        .ok_or_else(|| {
            Error::InvalidArgument(
                "cannot tell this model's code layer (no flatten before a head); name one with \
                 --target-layer"
                    .into(),
            )
        })
}
