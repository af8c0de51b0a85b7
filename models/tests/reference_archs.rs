//! Every architecture against PyTorch: logits, parameter names, and the backward signals
//! (exact gradient at the input and at a middle layer, guided backprop, deconvnet), all from
//! `tests/fixtures/make_reference.py` on synthetic weights that both sides generate.

use std::path::PathBuf;

use candle_core::Tensor;
use convlens_models::arch::{self, ArchConfig};
use convlens_models::graph::{BackwardRule, Graph, WeightSource};
use convlens_models::weights::synthetic::synthetic_tensor;

mod common;
use common::{assert_close_on_device as assert_close, device};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/reference")
}

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn build(name: &str) -> Graph {
    let arch = arch::find(name).unwrap();
    arch.build_graph(
        WeightSource::Synthetic { seed: 0 },
        &ArchConfig::default(),
        &device(),
    )
    .unwrap()
}

fn check_parameter_names(name: &str, graph: &Graph) {
    let text = std::fs::read_to_string(fixtures().join(name).join("state_dict.txt")).unwrap();
    let mut want: Vec<(String, Vec<usize>)> = text
        .lines()
        .filter(|l| !l.contains("num_batches_tracked"))
        .filter(|l| !(name == "googlenet" && l.starts_with("aux")))
        .map(|l| {
            let (k, shape) = l.split_once('\t').unwrap();
            let dims = shape
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse().unwrap())
                .collect();
            (k.to_string(), dims)
        })
        .collect();
    let mut got = graph.parameters().to_vec();
    want.sort();
    got.sort();
    assert_eq!(
        got, want,
        "{name}: parameter names and shapes differ from torch's state_dict"
    );
}

fn check_arch(name: &str) {
    let m = manifest();
    let spec = &m["archs"][name];
    let size = spec["input_size"].as_u64().unwrap() as usize;
    let graph = build(name);
    check_parameter_names(name, &graph);
    let dir = fixtures().join(name);
    let x = synthetic_tensor("input", &[2, 3, size, size], 0, &device()).unwrap();
    let trace = graph.forward(&x, Some(&[])).unwrap();
    let logits = Tensor::read_npy(dir.join("logits.npy")).unwrap();
    assert_close(&format!("{name} logits"), trace.output().unwrap(), &logits);

    if spec.get("mid_layer").is_none() {
        return;
    }
    let target = spec["target"].as_u64().unwrap() as usize;
    let x1 = x.narrow(0, 0, 1).unwrap();
    let trace = graph.forward(&x1, None).unwrap();
    let out = graph.output_id();
    let classes = trace.output().unwrap().dim(1).unwrap();
    let mut onehot = vec![0f32; classes];
    onehot[target] = 1.0;
    let signal = Tensor::from_vec(onehot, (1, classes), &device()).unwrap();
    let mut checks = vec![(
        "input_grad.npy",
        BackwardRule::Gradient,
        "input".to_string(),
    )];
    checks.push((
        "mid_grad.npy",
        BackwardRule::Gradient,
        spec["mid_layer"].as_str().unwrap().to_string(),
    ));
    if spec["guided"].as_bool() == Some(true) {
        checks.push(("guided.npy", BackwardRule::Guided, "input".into()));
        checks.push(("deconvnet.npy", BackwardRule::Deconvnet, "input".into()));
    }
    for (file, rule, layer) in checks {
        let to = graph.node_id(&layer).unwrap();
        let got = graph.backward(&trace, out, &signal, to, rule).unwrap();
        let want = Tensor::read_npy(dir.join(file)).unwrap();
        assert_close(&format!("{name} {file} at {layer}"), &got, &want);
    }
}

macro_rules! reference_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_arch(stringify!($name));
            }
        )*
    };
}

reference_tests!(resnet18, resnet34, resnet50, resnet101, resnet152);
reference_tests!(alexnet, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn);
reference_tests!(squeezenet1_0, squeezenet1_1, densenet121, googlenet);
reference_tests!(
    mobilenet_v2,
    mobilenet_v3_small,
    mobilenet_v3_large,
    efficientnet_b0,
    efficientnet_lite0
);
