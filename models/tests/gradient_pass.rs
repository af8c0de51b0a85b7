//! The forward pass made for a gradient (`Graph::forward_for_gradient`: the values the backward
//! steps read, the shape of the rest) against the full trace, on whole networks that between
//! them hold every kind of node the zoo builds: the same signal at the input to the bit under
//! every rule, with fewer outputs kept.

mod common;

use candle_core::Tensor;
use common::bits;
use convlens_models::graph::BackwardRule;
use convlens_models::{LoadOptions, Model};

/// The signal at the input from the sum of the logits, by `trace`.
fn input_signal(
    model: &Model,
    trace: &convlens_models::graph::Trace,
    rule: BackwardRule,
) -> Tensor {
    let out = trace.output().unwrap();
    let signal = out.ones_like().unwrap();
    model
        .graph
        .backward(trace, model.graph.output_id(), &signal, 0, rule)
        .unwrap()
}

/// `spec`'s model and a synthetic batch of two 64-pixel images drawn with `seed`.
fn model_and_input(spec: &str, seed: u64) -> (Model, Tensor) {
    let model = Model::load(spec, &LoadOptions::default(), &common::device()).unwrap();
    let x = convlens_models::weights::synthetic::synthetic_tensor(
        "input",
        &[2, 3, 64, 64],
        seed,
        &common::device(),
    )
    .unwrap();
    (model, x)
}

fn resnet18() -> Model {
    Model::load(
        "random:resnet18",
        &LoadOptions::default(),
        &common::device(),
    )
    .unwrap()
}

/// Asserts that `got` and `want` hold the same bits, naming how many values differ.
fn assert_same_bits(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let differ = bits(got)
        .iter()
        .zip(bits(want))
        .filter(|(a, b)| **a != *b)
        .count();
    assert_eq!(
        differ,
        0,
        "{what}: {differ} of {} values differ",
        got.elem_count()
    );
}

#[test]
fn the_gradient_pass_gives_the_full_traces_gradient_keeping_less() {
    // ResNet (Add, MaxPool), VGG (MaxPool, Linear, Dropout), GoogLeNet (Concat, branches),
    // MobileNetV3 (Hardswish, squeeze-excitation Mul, Hardsigmoid), DenseNet (Concat, AvgPool),
    // SqueezeNet (Concat, ceil-mode MaxPool), EfficientNet (SiLU, Sigmoid gates, stochastic
    // depth as identity), AlexNet (AdaptiveAvgPool), the demo (ReLU6, depthwise).
    for spec in [
        "random:resnet18",
        "random:vgg11_bn",
        "random:googlenet",
        "random:mobilenet_v3_small",
        "random:densenet121",
        "random:squeezenet1_1",
        "random:efficientnet_b0",
        "random:alexnet",
        "demo",
    ] {
        let (model, x) = model_and_input(spec, 0);
        let full = model.graph.forward(&x, None).unwrap();
        let lean = model
            .graph
            .forward_for_gradient(&x, &[model.graph.output_id()])
            .unwrap();
        let nodes = model.graph.nodes().len();
        assert!(full.is_complete(nodes), "{spec}");
        assert!(
            !lean.is_complete(nodes),
            "{spec}: a gradient pass is not complete"
        );
        let kept = (0..nodes).filter(|&i| lean.get(i).is_some()).count();
        assert!(
            kept < nodes,
            "{spec}: the gradient pass kept all {nodes} outputs"
        );
        assert_same_bits(
            &format!("{spec}: logits"),
            lean.output().unwrap(),
            full.output().unwrap(),
        );
        for rule in [
            BackwardRule::Gradient,
            BackwardRule::Guided,
            BackwardRule::Deconvnet,
        ] {
            assert_same_bits(
                &format!("{spec}: {rule:?} at the input"),
                &input_signal(&model, &lean, rule),
                &input_signal(&model, &full, rule),
            );
        }
        // A backward pass by steps of the caller's own may read anything: it is refused.
        let signal = lean.output().unwrap().ones_like().unwrap();
        let err = model
            .graph
            .backward_by(
                &lean,
                model.graph.output_id(),
                &signal,
                0,
                &|node, i, o, g| node.op.backward(i, o, g, BackwardRule::Gradient),
            )
            .unwrap_err();
        assert!(err.to_string().contains("every node's output"), "{err}");
    }
}

#[test]
fn a_gradient_pass_keeps_what_was_asked_and_no_convolution_output() {
    let model = resnet18();
    let x = Tensor::randn(0f32, 1f32, (1, 3, 64, 64), &common::device()).unwrap();
    let conv = model.graph.node_id("layer1.0.conv1").unwrap();
    let bn = model.graph.node_id("layer1.0.bn1").unwrap();
    let lean = model
        .graph
        .forward_for_gradient(&x, &[bn, model.graph.output_id()])
        .unwrap();
    let full = model.graph.forward(&x, None).unwrap();
    assert!(
        lean.get(conv).is_none(),
        "a convolution's output is not kept"
    );
    assert_same_bits(
        "a node asked for is kept whole",
        lean.get(bn).unwrap(),
        full.get(bn).unwrap(),
    );
    // The ReLU's output is what its backward step reads.
    let relu = model.graph.node_id("layer1.0.relu").unwrap();
    assert!(lean.get(relu).is_some());
}

#[test]
fn a_gradient_pass_from_a_hidden_layer_runs_only_as_far_as_that_layer() {
    for (spec, layer) in [("random:resnet18", "layer2.1.bn2"), ("demo", "_blocks.10")] {
        let model = Model::load(spec, &LoadOptions::default(), &common::device()).unwrap();
        let x = Tensor::randn(0f32, 1f32, (2, 3, 64, 64), &common::device()).unwrap();
        let mid = model.graph.node_id(layer).unwrap();
        let lean = model.graph.forward_for_gradient(&x, &[mid]).unwrap();
        let full = model.graph.forward(&x, None).unwrap();
        assert!(
            lean.output().is_none(),
            "{spec}: the layers after `{layer}` ran"
        );
        assert!(lean.get(mid + 1).is_none(), "{spec}");
        assert_same_bits(
            &format!("{spec}: `{layer}`"),
            lean.get(mid).unwrap(),
            full.get(mid).unwrap(),
        );
        let signal = full.get(mid).unwrap().ones_like().unwrap();
        let back = |trace| {
            model
                .graph
                .backward(trace, mid, &signal, 0, BackwardRule::Gradient)
                .unwrap()
        };
        assert_same_bits(
            &format!("{spec}: the signal from `{layer}` at the input"),
            &back(&lean),
            &back(&full),
        );
    }
    let model = resnet18();
    let x = Tensor::randn(0f32, 1f32, (1, 3, 64, 64), &common::device()).unwrap();
    assert!(model.graph.forward_for_gradient(&x, &[]).is_err());
}

#[test]
fn a_gradient_through_a_batch_norm_and_its_activation_in_one_step_gives_the_bits_of_two() {
    // resnet18 (ReLU), the demo (ReLU6), vgg11_bn (ReLU before max pooling).
    for spec in ["random:resnet18", "demo", "random:vgg11_bn"] {
        let (model, x) = model_and_input(spec, 3);
        let full = model.graph.forward(&x, None).unwrap();
        let output = model.graph.output_id();
        let out = full.output().unwrap();
        let signal = convlens_models::weights::synthetic::synthetic_tensor(
            "signal",
            out.dims(),
            4,
            out.device(),
        )
        .unwrap();
        // One step per node, each op's own backward (no BatchNorm passed on).
        let by_layer = |to: usize| {
            model
                .graph
                .backward_by(&full, output, &signal, to, &|node, i, o, g| {
                    node.op.backward(i, o, g, BackwardRule::Gradient)
                })
                .unwrap()
        };
        let fused = |to: usize| {
            model
                .graph
                .backward(&full, output, &signal, to, BackwardRule::Gradient)
                .unwrap()
        };
        assert_same_bits(&format!("{spec}: at the input"), &fused(0), &by_layer(0));
        // A signal asked for at a BatchNorm's output stops before its map is applied.
        let nodes = model.graph.nodes();
        let norm = (1..nodes.len())
            .find(|&i| {
                matches!(nodes[i].op, convlens_models::ops::Op::BatchNorm2d(_))
                    && matches!(nodes[i + 1].op, convlens_models::ops::Op::Activation(_))
                    && nodes[i + 1].inputs == [i]
            })
            .unwrap();
        assert_same_bits(
            &format!("{spec}: at {}", nodes[norm].name),
            &fused(norm),
            &by_layer(norm),
        );
        assert_same_bits(
            &format!("{spec}: at {}", nodes[norm - 1].name),
            &fused(norm - 1),
            &by_layer(norm - 1),
        );
    }
}

/// `explain` of a method that reads only the logits and the signal at the input runs the pass a
/// gradient follows instead of a full trace: the same explanation, to the bit, as from the full
/// trace (what the daemon holds), and the same class.
#[test]
fn explain_from_the_gradient_pass_equals_explain_from_the_full_trace() {
    use convlens_models::explain::{explain, explain_with_trace, ExplainOptions, Method};
    use convlens_models::progress::Silent;
    for spec in ["random:resnet18", "random:efficientnet_lite0"] {
        let (model, x) = model_and_input(spec, 11);
        let x = x.narrow(0, 0, 1).unwrap();
        let full = model.graph.forward(&x, None).unwrap();
        for method in [
            Method::Saliency,
            Method::GuidedBackprop,
            Method::Deconvnet,
            Method::InputXGradient,
            Method::SmoothGrad,
            Method::IntegratedGradients,
        ] {
            let options = ExplainOptions {
                method,
                samples: 4,
                steps: 4,
                ..Default::default()
            };
            let lean = explain(&model, &x, &options).unwrap();
            let traced = explain_with_trace(&model, &x, &full, &options, &Silent).unwrap();
            assert_eq!(lean.classes, traced.classes, "{spec} {method:?}");
            assert_same_bits(&format!("{spec} {method:?}"), &lean.map, &traced.map);
        }
    }
}
