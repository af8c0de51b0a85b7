//! Dense targets: on a segmentation model, whose output is a logit per class and pixel
//! [1, classes, H, W], what is explained is one class's logits summed over a region of pixels
//! (pytorch-grad-cam's `SemanticSegmentationTarget`: `(output[class] * mask).sum()`). The region
//! is a box, a mask image, or the pixels the model assigns to the class.
//!
//! The target is built into the network: nodes appended after its output slice the class, weigh
//! it by the mask and sum it, so the network's output becomes that one number and every method
//! explains it as it would a class logit. The forward pass already made is extended by those
//! nodes, not run again.

use candle_core::{DType, Tensor};

use super::{explain_with_trace, target, ExplainOptions, Explanation, Method, MethodKind};
use crate::graph::{Node, Trace};
use crate::ops::{Op, ReduceMean, Slice, SliceAxis};
use crate::progress::Progress;
use crate::{Error, Model, Result};
use convlens_shared::region::RegionSpec;
use convlens_shared::target::TargetSpec;

/// The label torchvision gives the background class of its segmentation weights.
const BACKGROUND: &str = "__background__";

/// Whether the network's output in `trace` is dense ([N, classes, H, W]).
pub(crate) fn is_dense(trace: &Trace) -> Result<bool> {
    Ok(trace.output().is_some_and(|t| t.rank() == 4))
}

/// [`explain_with_trace`] of a segmentation model: one class summed over a region.
pub(crate) fn explain_dense(
    model: &Model,
    input: &Tensor,
    trace: &Trace,
    options: &ExplainOptions,
    progress: &dyn Progress,
) -> Result<Explanation> {
    if options.method == Method::Rise {
        return Err(Error::InvalidArgument(
            "rise weighs its masks by the class's probability, which a region of a \
             segmentation has not; explain a region with occlusion or a gradient method"
                .into(),
        ));
    }
    let graph = &model.graph;
    let output = trace
        .output()
        .ok_or_else(|| Error::InvalidArgument("the network produced no output".into()))?;
    let (_, classes, height, width) = output.dims4()?;
    let predicted = output.argmax(1)?.squeeze(0)?; // [H, W]
    let class = match &options.target {
        Some(spec) => match target::resolve(spec, &model.labels, classes)?.as_slice() {
            [one] => *one,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "a dense target sums one class over a region; `{spec}` names several"
                )))
            }
        },
        None => most_assigned_class(&predicted, classes, &model.labels)?,
    };
    let label = model
        .labels
        .get(class)
        .cloned()
        .unwrap_or_else(|| format!("class {class}"));
    let mask = region_mask(
        options.region.as_ref(),
        &predicted,
        class,
        &label,
        height,
        width,
    )?
    .to_device(output.device())?
    .to_dtype(output.dtype())?;
    // The mask scaled by the pixel count, so that the mean over the pixels is the sum.
    let weights = mask
        .affine((height * width) as f64, 0.0)?
        .reshape((1, 1, height, width))?;
    let n = graph.nodes().len();
    let appended = vec![
        Node {
            name: "target.class".into(),
            op: Op::Slice(Slice {
                axes: vec![SliceAxis {
                    axis: 1,
                    start: class as i64,
                    end: class as i64 + 1,
                    step: 1,
                }],
            }),
            inputs: vec![graph.output_id()],
        },
        Node {
            name: "target.mask".into(),
            op: Op::Constant(weights),
            inputs: vec![],
        },
        Node {
            name: "target.region".into(),
            op: Op::Mul,
            inputs: vec![n, n + 1],
        },
        Node {
            name: "target.sum".into(),
            op: Op::ReduceMean(ReduceMean {
                axes: vec![2, 3],
                keepdim: false,
            }),
            inputs: vec![n + 2],
        },
    ];
    let mut targeted = model.with_graph(graph.with_appended(appended)?);
    let targeted_trace = targeted.graph.extend_trace(trace, n)?;
    targeted.labels = vec![format!("{label} (region)")];
    let inner = ExplainOptions {
        target: Some(TargetSpec::class(0)),
        region: None,
        // torchvision's segmentation models: a CAM at the backbone's last layer by default.
        layer: match (&options.layer, options.method.kind()) {
            (None, MethodKind::Cam) if graph.node_id("backbone").is_ok() => {
                Some("backbone".to_string())
            }
            (layer, _) => layer.clone(),
        },
        ..options.clone()
    };
    let mut explanation = explain_with_trace(&targeted, input, &targeted_trace, &inner, progress)?;
    explanation.classes = vec![class];
    explanation.probability = mean_probability(output, class, &mask)?;
    explanation.region = Some(mask);
    Ok(explanation)
}

/// The class with the most pixels, the background aside when another class has any.
fn most_assigned_class(predicted: &Tensor, classes: usize, labels: &[String]) -> Result<usize> {
    let mut counts = vec![0usize; classes];
    for c in predicted.flatten_all()?.to_vec1::<u32>()? {
        if let Some(n) = counts.get_mut(c as usize) {
            *n += 1;
        }
    }
    let skip_background =
        labels.first().is_some_and(|l| l == BACKGROUND) && counts.iter().skip(1).any(|&n| n > 0);
    let first = usize::from(skip_background);
    Ok((first..classes)
        .max_by_key(|&c| (counts[c], std::cmp::Reverse(c)))
        .unwrap_or(0))
}

/// The region as a mask [H, W] of zeros and ones (on the CPU).
fn region_mask(
    region: Option<&RegionSpec>,
    predicted: &Tensor,
    class: usize,
    label: &str,
    height: usize,
    width: usize,
) -> Result<Tensor> {
    let cpu = candle_core::Device::Cpu;
    let mask = match region {
        None => predicted
            .to_device(&cpu)?
            .eq(class as u32)?
            .to_dtype(DType::F32)?,
        Some(RegionSpec::Box { x0, y0, x1, y1 }) => {
            if *x1 > width || *y1 > height || x0 >= x1 || y0 >= y1 {
                return Err(Error::InvalidArgument(format!(
                    "the region {x0},{y0},{x1},{y1} lies outside the {width}×{height} image \
                     (x0,y0,x1,y1 in the model input's pixels, ends exclusive)"
                )));
            }
            let values: Vec<f32> = (0..height * width)
                .map(|i| {
                    let (y, x) = (i / width, i % width);
                    f32::from(u8::from((*y0..*y1).contains(&y) && (*x0..*x1).contains(&x)))
                })
                .collect();
            Tensor::from_vec(values, (height, width), &cpu)?
        }
        Some(RegionSpec::Mask(path)) => {
            let picture = image::open(path)
                .map_err(|e| Error::InvalidArgument(format!("the region mask {path}: {e}")))?
                .to_luma8();
            if (picture.width() as usize, picture.height() as usize) != (width, height) {
                return Err(Error::InvalidArgument(format!(
                    "the region mask {path} is {}×{}, but the model's output is {width}×{height} \
                     (the input's size after preprocessing)",
                    picture.width(),
                    picture.height()
                )));
            }
            let values: Vec<f32> = picture
                .pixels()
                .map(|p| f32::from(u8::from(p.0[0] > 0)))
                .collect();
            Tensor::from_vec(values, (height, width), &cpu)?
        }
    };
    if mask.sum_all()?.to_scalar::<f32>()? == 0.0 {
        return Err(Error::InvalidArgument(match region {
            None => format!(
                "no pixel of the output is assigned class {class} ({label}); name the pixels \
                 with --region x0,y0,x1,y1 or a mask image"
            ),
            Some(r) => format!("the region {r} holds no pixel"),
        }));
    }
    Ok(mask)
}

/// The class's probability (softmax over the classes at each pixel), averaged over the mask.
fn mean_probability(output: &Tensor, class: usize, mask: &Tensor) -> Result<f32> {
    let logits = output.squeeze(0)?.to_dtype(DType::F32)?; // [C, H, W]
    let shifted = logits.broadcast_sub(&logits.max_keepdim(0)?)?.exp()?;
    let probabilities = shifted.broadcast_div(&shifted.sum_keepdim(0)?)?;
    let at = probabilities.get(class)?; // [H, W]
    let mask = mask.to_dtype(DType::F32)?.to_device(at.device())?;
    let total = at.mul(&mask)?.sum_all()?.to_scalar::<f32>()?;
    let pixels = mask.sum_all()?.to_scalar::<f32>()?;
    Ok(total / pixels.max(1.0))
}
