//! The network as a graph of named nodes in execution order, with a forward pass that keeps any
//! chosen layer outputs and a backward pass that sends a signal from any layer to any earlier one.

mod builder;
mod gather_cpu;
mod in_pool;
mod incremental;
mod rule;
mod stem;
mod tree;

use std::collections::HashMap;
use std::sync::OnceLock;

use candle_core::Tensor;

pub use builder::{ConvSpec, GraphBuilder, WeightSource};
pub use incremental::BoxedCopies;
pub use rule::BackwardRule;
pub use stem::LinearStem;
pub use tree::{LayerInfo, LayerTree};

use crate::ops::fold::fold;
use crate::ops::pointwise_cpu::FusedActivation;
use crate::ops::{Activation, BatchNorm2d, Conv2d, Convolutions, Op};
use crate::{Error, Result};
use in_pool::in_pool;

/// How similar (Jaro–Winkler, 0 to 1) a layer name must be to an unknown one to be suggested.
const SUGGEST_SIMILARITY: f64 = 0.8;
/// Index of a node in its graph; node 0 is the input.
pub type NodeId = usize;

/// One node's backward step: given the node, its inputs, its output and the signal at its
/// output, the signal at each of its inputs.
pub type BackwardStep<'a> =
    dyn Fn(&Node, &[&Tensor], &Tensor, &Tensor) -> candle_core::Result<Vec<Tensor>> + Sync + 'a;

/// A [`BackwardStep`] that is also given the node's id.
type NumberedStep<'a> = dyn Fn(NodeId, &Node, &[&Tensor], &Tensor, &Tensor) -> candle_core::Result<Vec<Tensor>>
    + Sync
    + 'a;

/// One step of the network: an op applied to earlier nodes' outputs.
#[derive(Clone, Debug)]
pub struct Node {
    /// PyTorch-style path (`layer1.0.conv1`); a module called twice gets `#2` on its second call.
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// The nodes whose outputs it reads.
    pub inputs: Vec<NodeId>,
}

/// A network ready to run: nodes in topological order, the last one the output.
#[derive(Debug)]
pub struct Graph {
    nodes: Vec<Node>,
    by_name: HashMap<String, NodeId>,
    parameters: Vec<(String, Vec<usize>)>,
    /// The input sizes the graph runs at (`None`: any), and what to do about another size.
    input_sizes: Option<(Vec<Option<usize>>, String)>,
    /// For each convolution read only by a BatchNorm: the chain it starts; made on first use.
    chains: OnceLock<Vec<Option<Chain>>>,
    /// For each such convolution: it and its BatchNorm folded into one convolution (see
    /// [`Graph::forward_by`]); made on first use.
    folds: OnceLock<Vec<Option<Conv2d>>>,
}

/// A convolution read by a BatchNorm alone, and the activation that alone reads the
/// BatchNorm when the CPU paths can apply it as they write ([`FusedActivation`]): the layers a
/// pass may run as one ([`Graph::forward_by`]).
#[derive(Debug, Clone, Copy)]
struct Chain {
    /// The BatchNorm's node.
    norm: NodeId,
    /// The activation's node and the activation.
    activation: Option<(NodeId, Activation)>,
}

/// The outputs a forward pass kept, by node.
#[derive(Debug, Clone)]
pub struct Trace {
    outputs: Vec<Option<Tensor>>,
    /// For a pass made for a gradient ([`Graph::forward_for_gradient`]): whether `outputs[i]`
    /// stands for node `i`'s shape only, a view of one zero broadcast to it, which no backward
    /// step reads the values of. Empty for other passes.
    shape_only: Vec<bool>,
}

impl Trace {
    /// The output of `node`, if the pass kept it.
    pub fn get(&self, node: NodeId) -> Option<&Tensor> {
        if self.is_shape_only(node) {
            return None;
        }
        self.outputs.get(node).and_then(Option::as_ref)
    }

    /// Whether the pass kept only the shape of `node`'s output.
    fn is_shape_only(&self, node: NodeId) -> bool {
        self.shape_only.get(node).copied().unwrap_or(false)
    }

    /// Whether the pass kept only the shape of some outputs (a pass for a gradient).
    fn is_lean(&self) -> bool {
        self.shape_only.contains(&true)
    }

    /// The network's final output.
    pub fn output(&self) -> Option<&Tensor> {
        self.outputs.last().and_then(Option::as_ref)
    }

    /// A trace from node outputs kept elsewhere (a cache), `outputs[i]` being node `i`'s.
    pub fn from_outputs(outputs: Vec<Option<Tensor>>) -> Trace {
        Trace {
            outputs,
            shape_only: Vec::new(),
        }
    }

    /// Whether every one of a graph's `nodes` outputs is kept.
    pub fn is_complete(&self, nodes: usize) -> bool {
        self.outputs.len() == nodes && self.outputs.iter().all(Option::is_some) && !self.is_lean()
    }
}

impl Graph {
    /// A graph from nodes in topological order (node 0 the input, the last node the output).
    pub fn new(nodes: Vec<Node>) -> Result<Self> {
        let mut by_name = HashMap::with_capacity(nodes.len());
        for (id, node) in nodes.iter().enumerate() {
            if node.inputs.iter().any(|&i| i >= id) {
                return Err(Error::InvalidArgument(format!(
                    "graph node `{}` reads a later node",
                    node.name
                )));
            }
            if by_name.insert(node.name.clone(), id).is_some() {
                return Err(Error::InvalidArgument(format!(
                    "two graph nodes are named `{}`",
                    node.name
                )));
            }
        }
        if nodes.len() < 2 {
            return Err(Error::InvalidArgument(
                "a graph needs an input and at least one op".into(),
            ));
        }
        Ok(Graph {
            nodes,
            by_name,
            parameters: vec![],
            input_sizes: None,
            chains: OnceLock::new(),
            folds: OnceLock::new(),
        })
    }

    /// Restricts the input to `sizes` (`None`: any size on that axis); a forward pass on another
    /// input is refused with an error that ends in `advice`.
    pub fn expect_input(&mut self, sizes: Vec<Option<usize>>, advice: &str) {
        self.input_sizes = Some((sizes, advice.to_string()));
    }

    /// The input sizes the graph is restricted to, if any (`None` entries: any size).
    pub fn input_sizes(&self) -> Option<&[Option<usize>]> {
        self.input_sizes.as_ref().map(|(s, _)| s.as_slice())
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let Some((sizes, advice)) = &self.input_sizes else {
            return Ok(());
        };
        let fits = x.rank() == sizes.len()
            && sizes
                .iter()
                .zip(x.dims())
                .all(|(s, &d)| s.is_none_or(|s| s == d));
        if fits {
            return Ok(());
        }
        let wanted: Vec<String> = sizes
            .iter()
            .map(|s| s.map_or("N".to_string(), |n| n.to_string()))
            .collect();
        Err(Error::InvalidArgument(format!(
            "the network takes inputs of [{}], not {:?}: {advice}",
            wanted.join(", "),
            x.dims()
        )))
    }

    /// A copy of the graph with the ops of some nodes replaced (`replacements`: node, new op);
    /// the other nodes share their parameters with this graph.
    pub fn with_ops_replaced(&self, replacements: Vec<(NodeId, Op)>) -> Result<Graph> {
        let mut nodes = self.nodes.clone();
        for (id, op) in replacements {
            let node = nodes.get_mut(id).ok_or_else(|| {
                Error::InvalidArgument(format!("the graph has no node {id} to replace"))
            })?;
            node.op = op;
        }
        Ok(Graph {
            nodes,
            by_name: self.by_name.clone(),
            parameters: self.parameters.clone(),
            input_sizes: self.input_sizes.clone(),
            chains: OnceLock::new(),
            folds: OnceLock::new(),
        })
    }

    /// A copy of the graph with `nodes` added after its output (the last of them the new
    /// output), sharing the parameters of the nodes it had.
    pub fn with_appended(&self, nodes: Vec<Node>) -> Result<Graph> {
        let mut all = self.nodes.clone();
        all.extend(nodes);
        let mut graph = Graph::new(all)?;
        graph.parameters = self.parameters.clone();
        graph.input_sizes = self.input_sizes.clone();
        Ok(graph)
    }

    /// `node`'s output, from the outputs of the nodes before it (`None` where not kept).
    fn run_node(
        &self,
        node: &Node,
        outputs: &[Option<Tensor>],
        convolutions: Convolutions,
    ) -> Result<Tensor> {
        let inputs = self.inputs_of(node, outputs)?;
        node.op
            .forward_by(&inputs, convolutions)
            .map_err(|e| in_layer(&node.name, e))
    }

    /// The outputs `node` reads, from the outputs of the nodes before it (`None` where not
    /// kept: an error naming the missing one).
    fn inputs_of<'a>(&self, node: &Node, outputs: &'a [Option<Tensor>]) -> Result<Vec<&'a Tensor>> {
        node.inputs
            .iter()
            .map(|&i| {
                outputs
                    .get(i)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| missing_output(&self.nodes[i].name))
            })
            .collect()
    }

    /// How many BatchNorms the fastest forward passes fold into the convolution before them.
    pub fn folded_batch_norms(&self) -> usize {
        self.folds().iter().flatten().count()
    }

    /// How many of those folded convolutions also apply the activation after the BatchNorm
    /// (when the pass keeps neither the BatchNorm's output nor the convolution's).
    pub fn fused_activations(&self) -> usize {
        self.chains()
            .iter()
            .zip(self.folds())
            .filter(|(chain, fold)| fold.is_some() && chain.is_some_and(|c| c.activation.is_some()))
            .count()
    }

    /// How many convolutions a direct pass runs with the BatchNorm after them (and the
    /// activation after that, where there is one the CPU paths apply) as they write their
    /// output, when the pass keeps neither the convolution's output nor the BatchNorm's.
    pub fn chained_batch_norms(&self) -> usize {
        self.chains().iter().flatten().count()
    }

    /// For each node: when it is a convolution read by one node only, a BatchNorm, the chain
    /// it starts.
    fn chains(&self) -> &[Option<Chain>] {
        self.chains.get_or_init(|| {
            let mut readers = vec![0usize; self.nodes.len()];
            for node in &self.nodes {
                for &i in &node.inputs {
                    readers[i] += 1;
                }
            }
            let last_use = self.last_uses();
            (0..self.nodes.len())
                .map(|id| {
                    let Op::Conv2d(_) = &self.nodes[id].op else {
                        return None;
                    };
                    let norm = last_use[id];
                    let Op::BatchNorm2d(_) = &self.nodes.get(norm)?.op else {
                        return None;
                    };
                    if readers[id] != 1 || norm <= id {
                        return None;
                    }
                    let reader = last_use[norm];
                    let activation = match self.nodes.get(reader).map(|r| &r.op) {
                        Some(Op::Activation(a))
                            if readers[norm] == 1
                                && reader > norm
                                && FusedActivation::of(a).is_some() =>
                        {
                            Some((reader, *a))
                        }
                        _ => None,
                    };
                    Some(Chain { norm, activation })
                })
                .collect()
        })
    }

    /// For each node that starts a chain: its convolution and BatchNorm folded into one
    /// convolution (`None` where they do not fold).
    fn folds(&self) -> &[Option<Conv2d>] {
        self.folds.get_or_init(|| {
            self.chains()
                .iter()
                .enumerate()
                .map(|(id, chain)| {
                    let chain = chain.as_ref()?;
                    match (&self.nodes[id].op, &self.nodes.get(chain.norm)?.op) {
                        (Op::Conv2d(conv), Op::BatchNorm2d(bn)) => fold(conv, bn).ok(),
                        _ => None,
                    }
                })
                .collect()
        })
    }

    /// For each node, the last node that reads its output (0 when none does).
    fn last_uses(&self) -> Vec<NodeId> {
        let mut last_use = vec![0; self.nodes.len()];
        for (id, node) in self.nodes.iter().enumerate() {
            for &i in &node.inputs {
                last_use[i] = id;
            }
        }
        last_use
    }

    /// `trace` (a pass of this graph's first `from` nodes, every output kept) extended by the
    /// outputs of the nodes from `from` on: the trace of a graph made by
    /// [`Graph::with_appended`] without running the network again.
    pub fn extend_trace(&self, trace: &Trace, from: NodeId) -> Result<Trace> {
        let mut outputs: Vec<Option<Tensor>> = (0..from).map(|i| trace.get(i).cloned()).collect();
        for node in &self.nodes[from.min(self.nodes.len())..] {
            let y = self.run_node(node, &outputs, Convolutions::Direct)?;
            outputs.push(Some(y));
        }
        Ok(Trace::from_outputs(outputs))
    }

    /// The state_dict keys and shapes the graph was built from, in the order they were read.
    pub fn parameters(&self) -> &[(String, Vec<usize>)] {
        &self.parameters
    }

    /// All nodes, in execution order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node that produces the network's output.
    pub fn output_id(&self) -> NodeId {
        self.nodes.len() - 1
    }

    /// The node named `name`: a leaf path, or a module path standing for its last node's output.
    pub fn node_id(&self, name: &str) -> Result<NodeId> {
        if name == "input" {
            return Ok(0);
        }
        if let Some(&id) = self.by_name.get(name) {
            return Ok(id);
        }
        let prefix = format!("{name}.");
        if let Some(id) = (0..self.nodes.len())
            .rev()
            .find(|&i| self.nodes[i].name.starts_with(&prefix))
        {
            return Ok(id);
        }
        Err(Error::UnknownLayer {
            layer: name.to_string(),
            hint: self.suggest(name),
        })
    }

    /// The layers nearest to `name` as a hint: compared without case, dots and underscores
    /// (`conv1` finds `_conv_stem`), the most similar first (Jaro–Winkler, which weighs a shared
    /// beginning), at most three.
    fn suggest(&self, name: &str) -> String {
        let plain = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        };
        let query = plain(name);
        let mut scored: Vec<(f64, &str)> = self
            .nodes
            .iter()
            .skip(1)
            .map(|n| {
                (
                    strsim::jaro_winkler(&query, &plain(&n.name)),
                    n.name.as_str(),
                )
            })
            .filter(|(score, _)| *score >= SUGGEST_SIMILARITY)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        let close: Vec<&str> = scored.iter().map(|(_, n)| *n).take(3).collect();
        if close.is_empty() {
            "; `convlens layers MODEL` lists the layers".into()
        } else {
            format!(
                "; did you mean {}? (`convlens layers MODEL` lists them all)",
                close.join(", ")
            )
        }
    }

    /// Runs the network on `x`, keeping the outputs of `keep` (all nodes when `None`) and the
    /// final output, convolutions summed directly.
    pub fn forward(&self, x: &Tensor, keep: Option<&[NodeId]>) -> Result<Trace> {
        self.forward_by(x, keep, Convolutions::Direct)
    }

    /// [`Graph::forward`] with the convolutions computed by `convolutions`. A convolution read
    /// only by a BatchNorm and not kept gives the BatchNorm's output and skips its own (and the
    /// activation's, when a ReLU, ReLU6 or clip alone reads the BatchNorm and the BatchNorm's
    /// output is not kept): by [`Convolutions::Fastest`] as one convolution with the BatchNorm
    /// folded in ([`crate::ops::fold`]), by [`Convolutions::Direct`] applying the BatchNorm's
    /// map as it writes ([`crate::ops::epilogue`], the same bits as its own pass).
    pub fn forward_by(
        &self,
        x: &Tensor,
        keep: Option<&[NodeId]>,
        convolutions: Convolutions,
    ) -> Result<Trace> {
        self.check_input(x)?;
        self.run(Start::Input(x), keep, self.output_id(), convolutions, false)
    }

    /// The network's output for a batch whose node `at` gives `output`, by the passes of
    /// [`Graph::forward_by`] from the node after `at` on: for a cut through the graph, where no
    /// later node reads one before `at` (else an error naming the node that does). Score-CAM's
    /// masked copies start after their first convolution ([`Graph::linear_stem`]).
    pub fn output_after(
        &self,
        at: NodeId,
        output: &Tensor,
        convolutions: Convolutions,
    ) -> Result<Tensor> {
        if at == 0 || at >= self.nodes.len() {
            return Err(Error::InvalidArgument(format!(
                "node {at} is not a node inside this network of {} nodes",
                self.nodes.len()
            )));
        }
        let through = self.output_id();
        let mut trace = self.run(
            Start::After(at, output),
            Some(&[]),
            through,
            convolutions,
            false,
        )?;
        trace.outputs[through]
            .take()
            .ok_or_else(|| missing_output(self.name(through)))
    }

    /// The forward pass of [`Graph::forward_by`], as far as node `through` (kept); with
    /// `shapes`, an output not kept stays as a view of one zero broadcast to its shape
    /// ([`Graph::forward_for_gradient`]). Run on rayon's pool ([`in_pool`]).
    fn run(
        &self,
        start: Start<'_>,
        keep: Option<&[NodeId]>,
        through: NodeId,
        convolutions: Convolutions,
        shapes: bool,
    ) -> Result<Trace> {
        in_pool(|| self.run_here(start, keep, through, convolutions, shapes))
    }

    /// [`Graph::run`] on the calling thread.
    fn run_here(
        &self,
        start: Start<'_>,
        keep: Option<&[NodeId]>,
        through: NodeId,
        convolutions: Convolutions,
        shapes: bool,
    ) -> Result<Trace> {
        let n = self.nodes.len();
        let last_use = self.last_uses();
        let mut wanted = vec![keep.is_none(); n];
        if let Some(keep) = keep {
            for &k in keep {
                if let Some(w) = wanted.get_mut(k) {
                    *w = true;
                }
            }
        }
        wanted[through] = true;
        let chains = self.chains();
        let folds = convolutions.is_fastest().then(|| self.folds());
        let mut outputs: Vec<Option<Tensor>> = vec![None; n];
        let mut shape_only = vec![false; n];
        let mut zeros: Vec<Tensor> = Vec::new();
        // Nodes whose output a chain gave (or made needless: a BatchNorm whose activation the
        // convolution applied too).
        let mut given = vec![false; n];
        let first = match start {
            Start::Input(x) => {
                outputs[0] = Some(x.clone());
                1
            }
            Start::After(at, output) => {
                outputs[at] = Some(output.clone());
                at + 1
            }
        };
        for id in first..=through {
            let node = &self.nodes[id];
            if !given[id] {
                let chain = chains[id]
                    .as_ref()
                    .filter(|c| !wanted[id] && c.norm <= through);
                match (chain, &node.op) {
                    (Some(chain), Op::Conv2d(conv)) => {
                        let Op::BatchNorm2d(bn) = &self.nodes[chain.norm].op else {
                            return Err(in_layer(
                                &node.name,
                                candle_core::Error::Msg("a chain without its BatchNorm".into()),
                            ));
                        };
                        let inputs = self.inputs_of(node, &outputs)?;
                        let [x] = inputs.as_slice() else {
                            return Err(in_layer(
                                &node.name,
                                candle_core::Error::Msg("a convolution reads one input".into()),
                            ));
                        };
                        // The activation too, when no one asks for the BatchNorm's output and
                        // the pass reaches the activation.
                        let activation = chain
                            .activation
                            .as_ref()
                            .filter(|(act, _)| !wanted[chain.norm] && *act <= through);
                        // The fastest passes fold the BatchNorm into the kernel; the direct
                        // ones (and a pair that does not fold) apply its map as they write.
                        let y = match folds.and_then(|f| f[id].as_ref()) {
                            Some(folded) => folded.forward_then(
                                x,
                                convolutions,
                                None,
                                activation.map(|(_, a)| a),
                            ),
                            None => conv.forward_then(
                                x,
                                convolutions,
                                Some(bn),
                                activation.map(|(_, a)| a),
                            ),
                        };
                        let y = y.map_err(|e| in_layer(&node.name, e))?;
                        let at = activation.map_or(chain.norm, |(act, _)| *act);
                        // A pass for a gradient keeps the shapes of the outputs it skipped.
                        for skipped in [id, chain.norm].into_iter().filter(|&s| s != at) {
                            given[skipped] = true;
                            if shapes {
                                outputs[skipped] =
                                    Some(zero_of(&y, &mut zeros)?.broadcast_as(y.shape())?);
                                shape_only[skipped] = true;
                            }
                        }
                        given[at] = true;
                        outputs[at] = Some(y);
                    }
                    _ => outputs[id] = Some(self.run_node(node, &outputs, convolutions)?),
                }
            }
            for &i in &node.inputs {
                if last_use[i] == id && !wanted[i] && !shape_only[i] {
                    outputs[i] = match outputs[i].take() {
                        Some(t) if shapes => {
                            shape_only[i] = true;
                            Some(zero_of(&t, &mut zeros)?.broadcast_as(t.shape())?)
                        }
                        _ => None,
                    };
                }
            }
        }
        // Outputs whose readers all come after `through` (a residual branch joined later): no
        // backward step up to `through` reads them.
        for id in 0..through {
            if last_use[id] > through && !wanted[id] {
                outputs[id] = None;
            }
        }
        Ok(Trace {
            outputs,
            shape_only: if shapes { shape_only } else { Vec::new() },
        })
    }

    /// Runs the network on `x` for a gradient, as far as the last node of `keep` (the output
    /// node, for a signal from the logits; a hidden layer's, for one from there: the layers
    /// after it are not run). Keeps the outputs of `keep` and the values [`Graph::backward`]
    /// reads ([`Op::backward_reads`]: a ReLU's output, a max pool's input and output, …), and
    /// of every other node only its shape. The same convolutions as [`Graph::forward`], so the
    /// gradient is the same to the bit; for a ResNet about a third of the memory a full trace
    /// holds (a convolution's and a BatchNorm's outputs are not kept). [`Trace::get`] gives
    /// only the kept outputs; [`Graph::backward_by`] refuses the trace (its steps may read
    /// anything).
    pub fn forward_for_gradient(&self, x: &Tensor, keep: &[NodeId]) -> Result<Trace> {
        let Some(&through) = keep.iter().max() else {
            return Err(Error::InvalidArgument(
                "a pass for a gradient needs the node the signal starts from".into(),
            ));
        };
        if through >= self.nodes.len() {
            return Err(Error::InvalidArgument(format!(
                "node {through} is not in this network of {} nodes",
                self.nodes.len()
            )));
        }
        let mut wanted: Vec<NodeId> = keep.to_vec();
        for (id, node) in self.nodes.iter().enumerate() {
            let reads = node.op.backward_reads();
            if reads.output {
                wanted.push(id);
            }
            if reads.inputs {
                wanted.extend(&node.inputs);
            }
        }
        self.check_input(x)?;
        self.run(
            Start::Input(x),
            Some(&wanted),
            through,
            Convolutions::Direct,
            true,
        )
    }

    /// Sends `signal` (shaped like `from`'s output) back to node `to` under `rule` and returns the
    /// signal there. `trace` must hold every node's output (a forward pass with `keep = None`)
    /// or be made for a gradient ([`Graph::forward_for_gradient`]).
    ///
    /// For the gradient, an activation that alone reads a BatchNorm (which alone reads a
    /// convolution: a chain, see [`Graph::forward_by`]) applies the BatchNorm's backward map as
    /// it masks the signal, and the BatchNorm's step passes it on (one pass over the signal
    /// instead of two, the same bits), where the signal goes back beyond the BatchNorm.
    pub fn backward(
        &self,
        trace: &Trace,
        from: NodeId,
        signal: &Tensor,
        to: NodeId,
        rule: BackwardRule,
    ) -> Result<Tensor> {
        // For each activation: the BatchNorm whose map it applies; for each such BatchNorm,
        // whether it passes the signal on.
        let mut scales: Vec<Option<&BatchNorm2d>> = vec![None; self.nodes.len()];
        let mut passes = vec![false; self.nodes.len()];
        if rule == BackwardRule::Gradient {
            for chain in self.chains().iter().flatten() {
                let (Some((act, _)), Op::BatchNorm2d(bn)) =
                    (chain.activation, &self.nodes[chain.norm].op)
                else {
                    continue;
                };
                if chain.norm > to && act <= from {
                    scales[act] = Some(bn);
                    passes[chain.norm] = true;
                }
            }
        }
        self.backward_steps(
            trace,
            from,
            signal,
            to,
            &move |id, node, inputs, output, grad| {
                if passes[id] {
                    return Ok(vec![grad.clone()]);
                }
                if let (Some(bn), Op::Activation(a)) = (scales[id], &node.op) {
                    let (scale, _) = bn.host_scale_and_shift()?;
                    let g = match a.gradient_scaled(output, grad, scale)? {
                        Some(g) => g,
                        None => {
                            let x = inputs.first().copied().unwrap_or(output);
                            bn.input_gradient(&a.backward(x, output, grad, rule)?)?
                        }
                    };
                    return Ok(vec![g]);
                }
                node.op.backward(inputs, output, grad, rule)
            },
        )
    }

    /// [`Graph::backward`] with each node's step given by `step(node, inputs, output, signal)`,
    /// which returns the signal at each of the node's inputs: for rules that are no op's own
    /// (DeepLift's rescale rule compares the two halves of the batch at each activation).
    /// `trace` must hold every node's output: such a step may read any of them.
    pub fn backward_by(
        &self,
        trace: &Trace,
        from: NodeId,
        signal: &Tensor,
        to: NodeId,
        step: &BackwardStep<'_>,
    ) -> Result<Tensor> {
        if trace.is_lean() {
            return Err(Error::InvalidArgument(
                "a backward pass by rules of its own needs every node's output; this forward \
                 pass kept only what the gradient reads"
                    .into(),
            ));
        }
        self.backward_steps(trace, from, signal, to, &|_, node, inputs, output, grad| {
            step(node, inputs, output, grad)
        })
    }

    /// The backward pass of [`Graph::backward_by`], on any trace: `step` reads of a
    /// shape-only output its shape alone.
    fn backward_steps(
        &self,
        trace: &Trace,
        from: NodeId,
        signal: &Tensor,
        to: NodeId,
        step: &NumberedStep<'_>,
    ) -> Result<Tensor> {
        in_pool(|| self.backward_steps_here(trace, from, signal, to, step))
    }

    /// [`Graph::backward_steps`] on the calling thread.
    fn backward_steps_here(
        &self,
        trace: &Trace,
        from: NodeId,
        signal: &Tensor,
        to: NodeId,
        step: &NumberedStep<'_>,
    ) -> Result<Tensor> {
        if to >= from {
            return Err(Error::InvalidArgument(format!(
                "cannot send a signal from `{}` back to `{}`: it is not earlier in the network",
                self.name(from),
                self.name(to)
            )));
        }
        let mut grads: Vec<Option<Tensor>> = vec![None; from + 1];
        grads[from] = Some(signal.clone());
        for id in (to + 1..=from).rev() {
            let Some(grad) = grads[id].take() else {
                continue;
            };
            let node = &self.nodes[id];
            let inputs = self.inputs_of(node, &trace.outputs)?;
            let output = trace
                .outputs
                .get(id)
                .and_then(Option::as_ref)
                .ok_or_else(|| missing_output(&node.name))?;
            let input_grads =
                step(id, node, &inputs, output, &grad).map_err(|e| in_layer(&node.name, e))?;
            for (&i, g) in node.inputs.iter().zip(input_grads) {
                if i < to {
                    continue;
                }
                grads[i] = Some(match grads[i].take() {
                    Some(acc) => acc.add(&g)?,
                    None => g,
                });
            }
        }
        grads[to].take().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "no path from `{}` back to `{}`",
                self.name(from),
                self.name(to)
            ))
        })
    }

    /// The nodes that read the output of `id`.
    pub fn consumers(&self, id: NodeId) -> Vec<NodeId> {
        (id + 1..self.nodes.len())
            .filter(|&n| self.nodes[n].inputs.contains(&id))
            .collect()
    }

    /// Re-runs the network from node `from` onwards with its output replaced by `replacement`
    /// (whose batch may be larger than the trace's): earlier outputs come from `trace` (a pass
    /// keeping all nodes), repeated along the batch to match. Returns the final output, by the
    /// fastest convolutions. Run on rayon's pool ([`in_pool`]).
    pub fn forward_from(
        &self,
        trace: &Trace,
        from: NodeId,
        replacement: &Tensor,
    ) -> Result<Tensor> {
        in_pool(|| self.forward_from_here(trace, from, replacement))
    }

    /// [`Graph::forward_from`] on the calling thread.
    fn forward_from_here(
        &self,
        trace: &Trace,
        from: NodeId,
        replacement: &Tensor,
    ) -> Result<Tensor> {
        let n = self.nodes.len();
        let batch = replacement.dim(0)?;
        let mut outputs: Vec<Option<Tensor>> = vec![None; n];
        outputs[from] = Some(replacement.clone());
        for id in from + 1..n {
            let node = &self.nodes[id];
            let mut inputs = Vec::with_capacity(node.inputs.len());
            for &i in &node.inputs {
                let t = match &outputs[i] {
                    Some(t) => t.clone(),
                    None => {
                        let t = trace
                            .get(i)
                            .ok_or_else(|| missing_output(&self.nodes[i].name))?;
                        let t = if t.rank() > 0 && t.dim(0)? != batch && t.dim(0)? == 1 {
                            repeat_batch(t, batch)?
                        } else {
                            t.clone()
                        };
                        outputs[i] = Some(t.clone());
                        t
                    }
                };
                inputs.push(t);
            }
            let refs: Vec<&Tensor> = inputs.iter().collect();
            outputs[id] = Some(
                node.op
                    .forward_by(&refs, Convolutions::Fastest)
                    .map_err(|e| in_layer(&node.name, e))?,
            );
        }
        outputs[n - 1]
            .take()
            .ok_or_else(|| missing_output(self.name(n - 1)))
    }

    /// The name of node `id` (`input` for node 0).
    pub fn name(&self, id: NodeId) -> &str {
        if id == 0 {
            return "input";
        }
        self.nodes.get(id).map_or("?", |n| n.name.as_str())
    }
}

/// Where [`Graph::run`] starts: the network's input, or the output of a node (the pass runs
/// the nodes after it).
enum Start<'a> {
    Input(&'a Tensor),
    After(NodeId, &'a Tensor),
}

/// A scalar zero of `t`'s dtype on `t`'s device, made once per dtype into `zeros`: what a
/// shape-only output is a view of.
fn zero_of(t: &Tensor, zeros: &mut Vec<Tensor>) -> Result<Tensor> {
    if let Some(z) = zeros.iter().find(|z| z.dtype() == t.dtype()) {
        return Ok(z.clone());
    }
    let z = Tensor::zeros((), t.dtype(), t.device())?;
    zeros.push(z.clone());
    Ok(z)
}

/// `t` (batch 1) repeated `batch` times along its first axis.
fn repeat_batch(t: &Tensor, batch: usize) -> Result<Tensor> {
    let mut reps = vec![1usize; t.rank()];
    if let Some(first) = reps.first_mut() {
        *first = batch;
    }
    Ok(t.repeat(reps)?)
}

fn missing_output(name: &str) -> Error {
    Error::InvalidArgument(format!(
        "the forward pass did not keep the output of `{name}`"
    ))
}

fn in_layer(name: &str, e: candle_core::Error) -> Error {
    Error::InvalidArgument(format!("layer `{name}`: {e}"))
}
