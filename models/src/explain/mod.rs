//! Explaining a prediction: attribution maps in input space (gradients, SmoothGrad, Integrated
//! Gradients, DeepLift, the Shapley methods, LRP, guided backprop, deconvnet, occlusion, RISE) and
//! class activation maps at a layer (CAM, Grad-CAM and its family), of one class or a sum of
//! classes, each equal to its peer's number (Captum, pytorch-grad-cam, zennit, RISE's authors'
//! code).

mod aug_smooth;
mod baselines;
mod cam;
mod concept_target;
mod deeplift;
mod dense_target;
mod fullgrad;
mod gauss_legendre;
mod gradient_shap;
mod gradients;
mod integrated_gradients;
mod kernel_pca;
mod layer;
mod lrp;
mod masked_stem;
mod method;
mod occlusion;
mod perturbation_cam;
pub mod resize;
mod rise;
mod target;

use candle_core::{DType, Tensor};

pub use concept_target::ConceptTarget;
pub use convlens_shared::region::RegionSpec;
pub use convlens_shared::target::{ClassRef, TargetSpec};
pub use deeplift::deeplift;
pub use gradient_shap::{gradient_shap, ShapDraws};
pub use layer::{default_cam_layer, gap_linear_head};
pub use lrp::{lrp, LrpComposite};
pub use method::{Baseline, Method, MethodKind};
pub use occlusion::OcclusionPasses;
pub use rise::{rise, RiseMasks};

use crate::graph::{BackwardRule, Trace};
use crate::progress::{Progress, Silent};
use crate::{Error, Model, Result};

/// The parameters of an explanation, as the CLI flags and protocol fields name them.
#[derive(Clone, Debug)]
pub struct ExplainOptions {
    /// The method.
    pub method: Method,
    /// Class to explain, or classes whose logits are summed; the top-1 prediction when `None`.
    pub target: Option<TargetSpec>,
    /// On a segmentation model: where the class is summed (the pixels the model assigns to it
    /// when `None`); refused on a classification model.
    pub region: Option<RegionSpec>,
    /// Instead of a class: the similarity of the input's code to a reference image's.
    pub concept: Option<ConceptTarget>,
    /// Layer for the CAM family; the last spatial layer before the head when `None`.
    pub layer: Option<String>,
    /// SmoothGrad and GradientShap samples; the Shapley methods' noise baselines.
    pub samples: usize,
    /// SmoothGrad and GradientShap noise, as a fraction of the input's range (max - min).
    pub noise: f64,
    /// Seed of SmoothGrad's noise, of noise baselines and of GradientShap's draws.
    pub seed: u64,
    /// Integrated Gradients steps.
    pub steps: usize,
    /// Baseline of Integrated Gradients and DeepLift; the Shapley methods draw from it.
    pub baseline: Baseline,
    /// Occlusion window (square, all channels).
    pub window: usize,
    /// Occlusion stride.
    pub stride: usize,
    /// How many inputs go through the network at once (IG steps, occluded copies, masks).
    pub batch_size: usize,
    /// CAMs: the weighted activations' first principal component instead of their sum over the
    /// channels (pytorch-grad-cam's `eigen_smooth`).
    pub eigen_smooth: bool,
    /// CAMs: the mean of the CAMs of six flipped and scaled copies, at the input's resolution
    /// (pytorch-grad-cam's `aug_smooth`).
    pub aug_smooth: bool,
    /// RISE's masks.
    pub rise_masks: usize,
    /// RISE's grid: cells per side.
    pub rise_cells: usize,
    /// RISE's probability of keeping a cell.
    pub rise_keep: f64,
    /// How occlusion's copies go through the network (an engine setting: the reference full
    /// passes are for tests and benchmarks).
    pub occlusion_passes: OcclusionPasses,
}

impl Default for ExplainOptions {
    /// The protocol's defaults (`convlens_shared::defaults::explain`).
    fn default() -> Self {
        use convlens_shared::defaults::explain as default;
        ExplainOptions {
            method: default::METHOD,
            target: None,
            region: None,
            concept: None,
            layer: None,
            samples: default::SAMPLES,
            noise: default::NOISE,
            seed: default::SEED,
            steps: default::STEPS,
            baseline: default::BASELINE,
            window: default::WINDOW,
            stride: default::STRIDE,
            batch_size: default::BATCH,
            eigen_smooth: default::EIGEN_SMOOTH,
            aug_smooth: default::AUG_SMOOTH,
            rise_masks: default::RISE_MASKS,
            rise_cells: default::RISE_CELLS,
            rise_keep: default::RISE_KEEP,
            occlusion_passes: OcclusionPasses::default(),
        }
    }
}

/// The result of an explanation.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The method.
    pub method: Method,
    /// Every class whose logit is explained: one, or the classes summed (never empty).
    pub classes: Vec<usize>,
    /// The model's logit for that class (the sum of the classes').
    pub score: f32,
    /// Its probability: the softmax of the logits at that class (the sum of the classes').
    pub probability: f32,
    /// What was explained, when it is no class of the model (a similarity to a reference
    /// image); `None` for classes, whose labels name them.
    pub target_name: Option<String>,
    /// The layer a CAM was computed at.
    pub layer: Option<String>,
    /// The raw map: [C, H, W] in input space, or [h, w] at the layer (float32, unnormalized);
    /// with `aug_smooth`, a CAM is [H, W] at the input's resolution, in [0, 1]; RISE's saliency
    /// is [H, W] at the input's resolution, and so is FullGrad's (in [0, 1]).
    pub map: Tensor,
    /// Integrated Gradients' completeness gap, DeepLift's summation-to-delta gap:
    /// Σattr − (F(x) − F(baseline)) (DeepLiftShap: its mean over the baselines).
    pub convergence_delta: Option<f32>,
    /// SmoothGrad's noisy inputs, [samples, C, H, W], when asked to keep them.
    pub noisy_inputs: Option<Tensor>,
    /// On a segmentation model, the pixels the class was summed over: [H, W], 1 inside and
    /// 0 outside.
    pub region: Option<Tensor>,
}

/// How small a map's range may be, relative to its largest magnitude, for the map to count as
/// flat: every value the same (all zero included), nothing to show.
const FLAT_RANGE: f32 = 1e-6;

impl Explanation {
    /// The class explained (the first, when several are summed).
    pub fn target(&self) -> usize {
        self.classes.first().copied().unwrap_or_default()
    }

    /// Whether the map is flat (all its values equal, as a CAM whose weights all vanished):
    /// drawn, it is a solid tile that says nothing.
    pub fn is_flat(&self) -> Result<bool> {
        let map = self.map.to_dtype(candle_core::DType::F32)?.flatten_all()?;
        let max = map.max(0)?.to_scalar::<f32>()?;
        let min = map.min(0)?.to_scalar::<f32>()?;
        let scale = max.abs().max(min.abs());
        // A map with a NaN is not a pattern either: it counts as flat.
        let spread = (max - min).partial_cmp(&(FLAT_RANGE * scale));
        Ok(spread != Some(std::cmp::Ordering::Greater))
    }
}

/// Explains the model's prediction on `input` [1, C, H, W].
pub fn explain(model: &Model, input: &Tensor, options: &ExplainOptions) -> Result<Explanation> {
    explain_with_progress(model, input, options, &Silent)
}

/// [`explain`], reporting each batch (SmoothGrad samples, IG steps, occluded copies, CAM masks
/// and ablations) to `progress`, which may cancel.
pub fn explain_with_progress(
    model: &Model,
    input: &Tensor,
    options: &ExplainOptions,
    progress: &dyn Progress,
) -> Result<Explanation> {
    check_input(input)?;
    if options.concept.is_none() && options.region.is_none() && reads_logits_only(options.method) {
        // The pass a gradient follows keeps what the backward steps read and the logits: the
        // same bits as the full trace's (its BatchNorms and activations applied as the
        // convolutions write), without a pass over each of their outputs.
        let trace = model
            .graph
            .forward_for_gradient(input, &[model.graph.output_id()])?;
        if !dense_target::is_dense(&trace)? {
            return explain_traced(model, input, &trace, options, progress);
        }
        // A segmentation model's output (known only from a pass) needs the full trace: this
        // one pass is spent, for such models only.
    }
    let trace = model.graph.forward(input, None)?;
    explain_with_trace(model, input, &trace, options, progress)
}

/// Whether `method`, for a class of a classifier, reads of its input's forward pass only the
/// logits and the signal sent back to the input (the other passes it runs are its own): the
/// gradient methods, Integrated Gradients, DeepLift, GradientShap and RISE. The rest read the
/// activations of hidden layers (the CAMs, occlusion's incremental passes, LRP, FullGrad).
fn reads_logits_only(method: Method) -> bool {
    matches!(
        method,
        Method::Gradient
            | Method::Saliency
            | Method::InputXGradient
            | Method::GuidedBackprop
            | Method::Deconvnet
            | Method::SmoothGrad
            | Method::SmoothGradSq
            | Method::VarGrad
            | Method::IntegratedGradients
            | Method::DeepLift
            | Method::DeepLiftShap
            | Method::GradientShap
            | Method::Rise
    )
}

/// [`explain_with_progress`] from a full forward trace of `input` already made (the daemon keeps
/// them per image), so that the explanation costs no forward pass of its own. A trace that does
/// not keep every node's output is refused.
pub fn explain_with_trace(
    model: &Model,
    input: &Tensor,
    trace: &Trace,
    options: &ExplainOptions,
    progress: &dyn Progress,
) -> Result<Explanation> {
    check_input(input)?;
    if !trace.is_complete(model.graph.nodes().len()) {
        return Err(Error::InvalidArgument(
            "explain needs the forward trace of every node; this one keeps only some".into(),
        ));
    }
    explain_traced(model, input, trace, options, progress)
}

/// [`explain_with_trace`] from `trace`, complete or (for [`reads_logits_only`] methods of a
/// classifier) the pass a gradient follows.
fn explain_traced(
    model: &Model,
    input: &Tensor,
    trace: &Trace,
    options: &ExplainOptions,
    progress: &dyn Progress,
) -> Result<Explanation> {
    if let Some(concept) = &options.concept {
        return concept_target::explain_concept(model, input, trace, concept, options, progress);
    }
    if dense_target::is_dense(trace)? {
        return dense_target::explain_dense(model, input, trace, options, progress);
    }
    if let Some(region) = &options.region {
        return Err(Error::InvalidArgument(format!(
            "a region ({region}) is a dense target: it needs a segmentation model, whose output \
             is [N, classes, H, W]; this model outputs {:?} (a classification model: explain \
             a class with --target alone)",
            trace
                .output()
                .map(|t| t.dims().to_vec())
                .unwrap_or_default()
        )));
    }
    let logits = trace
        .output()
        .ok_or_else(|| Error::InvalidArgument("the network produced no output".into()))?
        .flatten_all()?
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?;
    let classes = match &options.target {
        Some(spec) => target::resolve(spec, &model.labels, logits.len())?,
        None => vec![argmax(&logits)],
    };
    let mut explanation = Explanation {
        method: options.method,
        classes: classes.clone(),
        score: classes.iter().map(|&c| logits[c]).sum(),
        probability: classes.iter().map(|&c| softmax_at(&logits, c)).sum(),
        target_name: None,
        layer: None,
        map: Tensor::zeros(1, DType::F32, input.device())?,
        convergence_delta: None,
        noisy_inputs: None,
        region: None,
    };
    let ctx = Context {
        model,
        input,
        trace,
        classes,
        progress,
    };
    match options.method.kind() {
        MethodKind::Attribution => {
            let (map, delta, noisy) = gradients::attribute(&ctx, options)?;
            explanation.map = map;
            explanation.convergence_delta = delta;
            explanation.noisy_inputs = noisy;
        }
        MethodKind::Cam => {
            let layer = match &options.layer {
                Some(l) => model.graph.node_id(l)?,
                None => default_cam_layer(&model.graph)?,
            };
            explanation.layer = Some(model.graph.name(layer).to_string());
            explanation.map = if options.aug_smooth {
                aug_smooth::augmentation_smoothed(&ctx, layer, options)?
            } else {
                cam::class_activation_map(&ctx, layer, options)?
            };
        }
    }
    Ok(explanation)
}

/// Refuses an input that is not one image [1, C, H, W].
fn check_input(input: &Tensor) -> Result<()> {
    if input.rank() != 4 || input.dim(0)? != 1 {
        return Err(Error::Shape {
            what: "explain input".into(),
            expected: "[1, C, H, W]".into(),
            found: format!("{:?}", input.dims()),
        });
    }
    Ok(())
}

/// What every method reads: the model, the input, its full forward trace and the class.
pub(crate) struct Context<'a> {
    pub model: &'a Model,
    pub input: &'a Tensor,
    pub trace: &'a Trace,
    /// The classes whose logits are explained (summed).
    pub classes: Vec<usize>,
    /// Where batches are reported; it may cancel.
    pub progress: &'a dyn Progress,
}

impl Context<'_> {
    /// A signal [n, classes] with a one at each target class.
    pub fn target_signal(&self, n: usize) -> Result<Tensor> {
        let classes = self
            .trace
            .output()
            .ok_or_else(|| Error::InvalidArgument("no output".into()))?
            .dim(1)?;
        target::multi_hot(n, classes, &self.classes, self.input.device())
    }

    /// The signal at node `to` for a batch `x`, from the target logit, under `rule`. For the
    /// context's own input the full trace made by [`explain_with_progress`] is reused instead of
    /// running the network again; another batch (noisy copies, points on a path) runs a pass
    /// that keeps only what the backward pass reads ([`crate::graph::Graph::forward_for_gradient`]).
    pub fn signal_at(&self, x: &Tensor, to: usize, rule: BackwardRule) -> Result<Tensor> {
        let fresh;
        let trace = if x.id() == self.input.id() {
            self.trace
        } else {
            fresh = self
                .model
                .graph
                .forward_for_gradient(x, &[self.model.graph.output_id()])?;
            &fresh
        };
        let signal = self.target_signal(x.dim(0)?)?;
        self.model
            .graph
            .backward(trace, self.model.graph.output_id(), &signal, to, rule)
    }

    /// Reports that `done` of `total` inputs went through the network.
    pub fn report(&self, done: usize, total: usize) -> Result<()> {
        self.progress.step(done, total, "explain")
    }

    /// The target logit (the sum of the classes') of the context's own input [1], read from its
    /// trace (no forward pass).
    pub fn input_scores(&self) -> Result<Tensor> {
        let logits = self
            .trace
            .output()
            .ok_or_else(|| Error::InvalidArgument("no output".into()))?;
        self.scores_of(logits)
    }

    /// The target logit (the sum of the classes') for each row of a batch, by a forward pass.
    pub fn target_scores(&self, x: &Tensor) -> Result<Tensor> {
        self.scores_of(&self.model.logits(x)?)
    }

    /// The target logit (the sum of the classes') in each row of `logits` [n, classes].
    pub fn scores_of(&self, logits: &Tensor) -> Result<Tensor> {
        target::summed_scores(logits, &self.classes)
    }
}

fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// The softmax of `logits` at `index`, computed in f64 from the largest logit (no overflow).
fn softmax_at(logits: &[f32], index: usize) -> f32 {
    let max = logits
        .iter()
        .fold(f64::NEG_INFINITY, |m, &l| m.max(f64::from(l)));
    let sum: f64 = logits.iter().map(|&l| (f64::from(l) - max).exp()).sum();
    let at = logits
        .get(index)
        .map_or(f64::NEG_INFINITY, |&l| f64::from(l));
    ((at - max).exp() / sum) as f32
}

#[cfg(test)]
mod flat_tests {
    use super::*;
    use candle_core::Device;

    fn explanation(values: &[f32]) -> Explanation {
        Explanation {
            method: Method::EigenCam,
            classes: vec![0],
            score: 0.0,
            probability: 1.0,
            target_name: None,
            layer: None,
            map: Tensor::from_slice(values, (1, values.len()), &Device::Cpu).unwrap(),
            convergence_delta: None,
            noisy_inputs: None,
            region: None,
        }
    }

    #[test]
    fn the_probability_is_the_softmax_at_the_class() {
        let p = softmax_at(&[1.0, 2.0, 3.0], 2);
        let want = 3f64.exp() / (1f64.exp() + 2f64.exp() + 3f64.exp());
        assert!((f64::from(p) - want).abs() < 1e-7, "{p} vs {want}");
        // Large logits neither overflow nor lose the answer.
        assert!((softmax_at(&[1000.0, 1000.0], 0) - 0.5).abs() < 1e-7);
    }

    #[test]
    fn a_map_of_equal_values_is_flat() {
        assert!(explanation(&[0.0, 0.0, 0.0]).is_flat().unwrap());
        assert!(explanation(&[3.5, 3.5, 3.5]).is_flat().unwrap());
        assert!(!explanation(&[0.0, 1e-3, 0.0]).is_flat().unwrap());
        // Tiny values that differ still make a pattern (min-max scaling shows it).
        assert!(!explanation(&[1e-9, 2e-9, 0.0]).is_flat().unwrap());
    }
}
