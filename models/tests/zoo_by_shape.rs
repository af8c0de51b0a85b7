//! The built-in architectures adapt to what the weights show: a one-channel first conv (a
//! grayscale ResNet), a class count other than 1000, and a replaced `fc`/`classifier` head
//! (`nn.Sequential(nn.Dropout(0.2), nn.Linear(512, 5))`), loaded with `Model::load` from a
//! safetensors file of synthetic weights.

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use convlens_models::arch::{self, ArchConfig};
use convlens_models::graph::WeightSource;
use convlens_models::input::{load_input, Normalization};
use convlens_models::ops::{Activation, Op};
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::{Error, LoadOptions, Model};

use common::{assert_close, Scratch};

/// The (key, shape) list of `arch` as torchvision names it.
fn reference_parameters(arch: &str) -> Vec<(String, Vec<usize>)> {
    let graph = arch::find(arch)
        .unwrap()
        .build_graph(
            WeightSource::Synthetic { seed: 0 },
            &ArchConfig::default(),
            &Device::Cpu,
        )
        .unwrap();
    graph.parameters().to_vec()
}

/// `arch`'s parameters with the classifier `head` (module `prefix`) replaced by `new_head` and
/// the first conv's weight given `in_channels`, as synthetic tensors.
fn state_dict(
    arch: &str,
    in_channels: usize,
    prefix: &str,
    new_head: &[(&str, &[usize])],
) -> HashMap<String, Tensor> {
    let stem = arch::find(arch).unwrap().stem;
    let head_start = format!("{prefix}.");
    let mut params: Vec<(String, Vec<usize>)> = reference_parameters(arch)
        .into_iter()
        .filter(|(k, _)| !k.starts_with(&head_start))
        .map(|(k, mut shape)| {
            if k == stem {
                shape[1] = in_channels;
            }
            (k, shape)
        })
        .collect();
    params.extend(new_head.iter().map(|(k, s)| (k.to_string(), s.to_vec())));
    params
        .into_iter()
        .map(|(k, s)| {
            let t = synthetic_tensor(&k, &s, 0, &Device::Cpu).unwrap();
            (k, t)
        })
        .collect()
}

/// Writes `dict` as a safetensors file in `dir` and loads it with `options`.
fn load(dir: &Path, dict: &HashMap<String, Tensor>, options: &LoadOptions) -> Result<Model, Error> {
    let path = dir.join("model.safetensors");
    candle_core::safetensors::save(dict, &path).unwrap();
    Model::load(path.to_str().unwrap(), options, &Device::Cpu)
}

fn node_op<'a>(model: &'a Model, name: &str) -> &'a Op {
    let id = model.graph.node_id(name).unwrap();
    &model.graph.nodes()[id].op
}

/// The Linear `name`'s weight and bias, from the state dict.
fn linear(dict: &HashMap<String, Tensor>, name: &str, x: &Tensor) -> Tensor {
    let w = &dict[&format!("{name}.weight")];
    let b = &dict[&format!("{name}.bias")];
    x.matmul(&w.t().unwrap()).unwrap().broadcast_add(b).unwrap()
}

/// The output of node `name` and the logits for `x`.
fn run(model: &Model, x: &Tensor, name: &str) -> (Tensor, Tensor) {
    let id = model.graph.node_id(name).unwrap();
    let trace = model.graph.forward(x, Some(&[id])).unwrap();
    (
        trace.get(id).unwrap().clone(),
        trace.output().unwrap().clone(),
    )
}

#[test]
fn zoo_resnet18_with_one_input_channel_and_ten_classes() {
    let scratch = Scratch::new("zoo-gray");
    let dir = scratch.0.clone();
    let dict = state_dict(
        "resnet18",
        1,
        "fc",
        &[("fc.weight", &[10, 512]), ("fc.bias", &[10])],
    );
    let model = load(&dir, &dict, &LoadOptions::default()).unwrap();
    assert_eq!(model.arch, "resnet18");
    assert_eq!(model.labels.len(), 10);
    let n = model.normalization();
    assert_eq!(n.channels, 1);
    assert_eq!(n, Normalization::IMAGENET.with_channels(1));
    assert!((n.mean[0] - 0.449).abs() < 1e-6 && (n.std[0] - 0.226).abs() < 1e-6);
    assert!(model
        .graph
        .parameters()
        .contains(&("conv1.weight".to_string(), vec![64, 1, 7, 7])));

    // A grayscale PNG and an RGB PNG whose luma (0.299 R + 0.587 G + 0.114 B, Pillow's
    // `convert("L")`) is the same give the same one-channel input.
    let gray_path = dir.join("gray.png");
    let rgb_path = dir.join("rgb.png");
    image::GrayImage::from_pixel(300, 260, image::Luma([124]))
        .save(&gray_path)
        .unwrap();
    // 0.299 * 200 + 0.587 * 100 + 0.114 * 50 = 124.2
    image::RgbImage::from_pixel(300, 260, image::Rgb([200, 100, 50]))
        .save(&rgb_path)
        .unwrap();
    let gray = load_input(&gray_path, &model.preprocess, &Device::Cpu).unwrap();
    let rgb = load_input(&rgb_path, &model.preprocess, &Device::Cpu).unwrap();
    assert_eq!(gray.dims(), [1, 1, 224, 224]);
    assert_eq!(rgb.dims(), [1, 1, 224, 224]);
    let want = (124.0 / 255.0 - n.mean[0]) / n.std[0];
    for t in [&gray, &rgb] {
        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|x| (x - want).abs() < 1e-5), "{:?}", &v[..4]);
    }
    let logits = model.logits(&rgb).unwrap();
    assert_eq!(logits.dims(), [1, 10]);

    // The same with the architecture named.
    let options = LoadOptions {
        arch: Some("resnet18".into()),
        ..LoadOptions::default()
    };
    let named = load(&dir, &dict, &options).unwrap();
    assert_eq!(named.normalization().channels, 1);
    let tree = named.layer_tree(64).unwrap();
    let fc = tree.layers.iter().find(|l| l.path == "fc").unwrap();
    assert_eq!(fc.output_shape, [1, 10]);
}

#[test]
fn zoo_resnet18_with_a_dropout_linear_head() {
    let scratch = Scratch::new("zoo-head1");
    let dir = scratch.0.clone();
    let dict = state_dict(
        "resnet18",
        3,
        "fc",
        &[("fc.1.weight", &[5, 512]), ("fc.1.bias", &[5])],
    );
    let model = load(&dir, &dict, &LoadOptions::default()).unwrap();
    assert_eq!(model.arch, "resnet18");
    assert_eq!(model.normalization(), Normalization::IMAGENET);
    assert_eq!(model.labels.len(), 5);
    assert!(matches!(node_op(&model, "fc.0"), Op::Identity));
    assert!(matches!(node_op(&model, "fc.1"), Op::Linear(_)));
    assert_eq!(model.graph.name(model.graph.output_id()), "fc.1");

    let x = synthetic_tensor("input", &[2, 3, 64, 64], 0, &Device::Cpu).unwrap();
    let (flat, logits) = run(&model, &x, "flatten");
    assert_eq!(logits.dims(), [2, 5]);
    let want = linear(&dict, "fc.1", &flat);
    assert_close("logits vs the head by hand", &logits, &want, 1e-4);

    let tree = model.layer_tree(64).unwrap();
    let paths: Vec<&str> = tree.layers.iter().map(|l| l.path.as_str()).collect();
    assert!(paths.contains(&"fc.1"), "{paths:?}");
}

#[test]
fn zoo_resnet18_with_a_two_linear_head_gets_a_relu_between() {
    let scratch = Scratch::new("zoo-head2");
    let dir = scratch.0.clone();
    let dict = state_dict(
        "resnet18",
        1,
        "fc",
        &[
            ("fc.0.weight", &[32, 512]),
            ("fc.0.bias", &[32]),
            ("fc.3.weight", &[4, 32]),
            ("fc.3.bias", &[4]),
        ],
    );
    let model = load(&dir, &dict, &LoadOptions::default()).unwrap();
    assert_eq!(model.normalization().channels, 1);
    assert!(matches!(node_op(&model, "fc.0"), Op::Linear(_)));
    assert!(matches!(
        node_op(&model, "fc.1"),
        Op::Activation(Activation::Relu)
    ));
    assert!(matches!(node_op(&model, "fc.2"), Op::Identity));
    assert!(matches!(node_op(&model, "fc.3"), Op::Linear(_)));

    let x = synthetic_tensor("input", &[1, 1, 64, 64], 0, &Device::Cpu).unwrap();
    let (flat, logits) = run(&model, &x, "flatten");
    assert_eq!(logits.dims(), [1, 4]);
    let hidden = linear(&dict, "fc.0", &flat).relu().unwrap();
    let want = linear(&dict, "fc.3", &hidden);
    assert_close("logits vs the head by hand", &logits, &want, 1e-4);
}

#[test]
fn zoo_heads_that_do_not_fit_are_still_refused() {
    let scratch = Scratch::new("zoo-refused");
    let dir = scratch.0.clone();
    // A head Linear whose in_features is not the pooled width.
    let wrong_in = state_dict(
        "resnet18",
        3,
        "fc",
        &[("fc.1.weight", &[5, 256]), ("fc.1.bias", &[5])],
    );
    match load(&dir, &wrong_in, &LoadOptions::default()) {
        Err(Error::Weights(m)) => assert!(m.contains("fc.1.weight"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A BatchNorm1d in the head: its tensors are unexpected.
    let with_bn = state_dict(
        "resnet18",
        3,
        "fc",
        &[
            ("fc.0.weight", &[32, 512]),
            ("fc.0.bias", &[32]),
            ("fc.1.weight", &[32]),
            ("fc.1.bias", &[32]),
            ("fc.1.running_mean", &[32]),
            ("fc.1.running_var", &[32]),
            ("fc.3.weight", &[5, 32]),
            ("fc.3.bias", &[5]),
        ],
    );
    match load(&dir, &with_bn, &LoadOptions::default()) {
        Err(Error::Weights(m)) => assert!(m.contains("unexpected"), "{m}"),
        other => panic!("{other:?}"),
    }
    // No head at all.
    let headless = state_dict("resnet18", 3, "fc", &[]);
    match load(&dir, &headless, &LoadOptions::default()) {
        Err(Error::Weights(m)) => assert!(m.contains("no classifier"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn zoo_mobilenet_v3_small_keeps_its_hardswish_in_a_resized_head() {
    let scratch = Scratch::new("zoo-mnv3");
    let dir = scratch.0.clone();
    let dict = state_dict(
        "mobilenet_v3_small",
        1,
        "classifier",
        &[
            ("classifier.0.weight", &[64, 576]),
            ("classifier.0.bias", &[64]),
            ("classifier.3.weight", &[3, 64]),
            ("classifier.3.bias", &[3]),
        ],
    );
    let model = load(&dir, &dict, &LoadOptions::default()).unwrap();
    assert_eq!(model.arch, "mobilenet_v3_small");
    assert_eq!(model.normalization().channels, 1);
    assert!(matches!(
        node_op(&model, "classifier.1"),
        Op::Activation(Activation::HardSwish)
    ));
    let x = Tensor::zeros((1, 1, 64, 64), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.logits(&x).unwrap().dims(), [1, 3]);
}

#[test]
fn zoo_efficientnet_b0_with_a_plain_linear_classifier() {
    let scratch = Scratch::new("zoo-effnet");
    let dir = scratch.0.clone();
    // `model.classifier = nn.Linear(1280, 7)`.
    let dict = state_dict(
        "efficientnet_b0",
        3,
        "classifier",
        &[("classifier.weight", &[7, 1280]), ("classifier.bias", &[7])],
    );
    let model = load(&dir, &dict, &LoadOptions::default()).unwrap();
    assert_eq!(model.arch, "efficientnet_b0");
    assert!(matches!(node_op(&model, "classifier"), Op::Linear(_)));
    let x = Tensor::zeros((1, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.logits(&x).unwrap().dims(), [1, 7]);
}
