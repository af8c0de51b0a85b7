//! `torch.export` programs against PyTorch: logits, a middle layer's output, the input gradient
//! and the guided / deconvnet signals of each program in tests/fixtures/export/ (made by
//! tests/fixtures/make_export.py), at 1e-4 relative. Programs other than the custom CNN are
//! committed without their weights and run with the synthetic weights that the script filled
//! the torch model with, bound by state_dict key.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Tensor;
use convlens_models::export::{load_program, Program, ProgramWeights};
use convlens_models::graph::BackwardRule;
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::Error;

use common::{assert_close_on_device as assert_close, device, Scratch};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/export")
}

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The error loading the fixture `file` with its own weights.
fn load_error(file: &str) -> Error {
    load_program(&fixtures().join(file), ProgramWeights::Archive, &device()).unwrap_err()
}

/// The network's output for `x`.
fn logits(graph: &convlens_models::graph::Graph, x: &Tensor) -> Tensor {
    graph
        .forward(x, Some(&[]))
        .unwrap()
        .output()
        .unwrap()
        .clone()
}

fn load(name: &str) -> (Program, serde_json::Value) {
    let m = manifest()["models"][name].clone();
    let path = fixtures().join(format!("{name}.pt2"));
    if m["weights_in_archive"].as_bool().unwrap() {
        let program = load_program(&path, ProgramWeights::Archive, &device())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        return (program, m);
    }
    let program = load_program(&path, ProgramWeights::Synthetic { seed: 0 }, &device())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let scale = m["running_var_scale"].as_f64().unwrap_or(1.0);
    if scale == 1.0 {
        return (program, m);
    }
    // The script scaled every running variance (exactly, by a power of two) to keep the
    // synthetic network well-conditioned in float32: bind the same checkpoint by key.
    let dict = program
        .graph
        .parameters()
        .iter()
        .map(|(key, shape)| {
            let t = synthetic_tensor(key, shape, 0, &device()).unwrap();
            let t = if key.ends_with("running_var") {
                t.affine(scale, 0.0).unwrap()
            } else {
                t
            };
            (key.clone(), t)
        })
        .collect();
    let program = load_program(&path, ProgramWeights::StateDict(dict), &device())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (program, m)
}

fn check(name: &str) {
    let (program, m) = load(name);
    let graph = &program.graph;
    let dir = fixtures();
    let dims: Vec<usize> = m["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let x = synthetic_tensor("input", &dims, 0, &device()).unwrap();

    // Batch 2 through a program exported at batch 1.
    let mid_layer = m["mid_layer"].as_str().unwrap();
    let mid = graph.node_id(mid_layer).unwrap();
    let trace = graph.forward(&x, Some(&[mid])).unwrap();
    let want = Tensor::read_npy(dir.join(format!("{name}.logits.npy"))).unwrap();
    assert_close(&format!("{name} logits"), trace.output().unwrap(), &want);
    let want = Tensor::read_npy(dir.join(format!("{name}.mid.npy"))).unwrap();
    assert_close(
        &format!("{name} {mid_layer}"),
        trace.get(mid).unwrap(),
        &want,
    );

    let x1 = x.narrow(0, 0, 1).unwrap();
    let trace = graph.forward(&x1, None).unwrap();
    let classes = m["classes"].as_u64().unwrap() as usize;
    let target = m["target"].as_u64().unwrap() as usize;
    let mut hot = vec![0f32; classes];
    hot[target] = 1.0;
    let signal = Tensor::from_vec(hot, (1, classes), &device()).unwrap();
    let files = [
        ("input_grad", BackwardRule::Gradient),
        ("guided", BackwardRule::Guided),
        ("deconvnet", BackwardRule::Deconvnet),
    ];
    for (file, rule) in files {
        let path = dir.join(format!("{name}.{file}.npy"));
        if !path.exists() {
            continue;
        }
        let got = graph
            .backward(&trace, graph.output_id(), &signal, 0, rule)
            .unwrap();
        let want = Tensor::read_npy(path).unwrap();
        assert_close(&format!("{name} {file}"), &got, &want);
    }
}

#[test]
fn custom_cnn() {
    check("custom_cnn");
}

#[test]
fn resnet18_gray() {
    check("resnet18_gray");
}

#[test]
fn resnet18_seqhead() {
    check("resnet18_seqhead");
}

#[test]
fn convnext_tiny() {
    check("convnext_tiny");
}

#[test]
fn regnet_y_400mf() {
    check("regnet_y_400mf");
}

#[test]
fn efficientnet_v2_s() {
    check("efficientnet_v2_s");
}

#[test]
fn shufflenet_v2_x1_0() {
    check("shufflenet_v2_x1_0");
}

#[test]
fn inception_v3() {
    check("inception_v3");
}

#[test]
fn resnext50_32x4d() {
    check("resnext50_32x4d");
}

#[test]
fn layers_carry_pytorch_module_paths() {
    let (program, _) = load("resnet18_seqhead");
    let names: Vec<&str> = program
        .graph
        .nodes()
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    for want in [
        "conv1",
        "bn1",
        "relu",
        "layer1.0.conv1",
        "layer1.0.relu#2",
        "layer4.1.add",
        "fc.1",
    ] {
        assert!(names.contains(&want), "no layer `{want}` in {names:?}");
    }
    let (program, _) = load("convnext_tiny");
    for want in [
        "features.1.0.block.0",
        "features.1.0.block.2",
        "features.1.0.block.3",
    ] {
        program.graph.node_id(want).unwrap();
    }
}

#[test]
fn an_unsupported_op_names_the_op_the_node_and_the_layer() {
    let err = load_error("unsupported_op.pt2");
    let text = err.to_string();
    assert!(matches!(err, Error::Unsupported(_)), "{text}");
    assert!(
        text.contains("aten.") && text.contains("node `") && text.contains("layer `"),
        "{text}"
    );
}

#[test]
fn a_newer_schema_version_is_one_clear_error() {
    let err = load_error("future_schema.pt2");
    let text = err.to_string();
    assert!(matches!(err, Error::Format { .. }), "{text}");
    assert!(text.contains("schema version 99"), "{text}");
}

#[test]
fn a_truncated_or_garbled_archive_is_a_format_error_never_a_panic() {
    let bytes = std::fs::read(fixtures().join("custom_cnn.pt2")).unwrap();
    let scratch = Scratch::new("export-cut");
    let path = scratch.0.join("cut.pt2");
    let step = (bytes.len() / 40).max(1);
    for cut in (0..bytes.len()).step_by(step) {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let r = load_program(&path, ProgramWeights::Archive, &device());
        assert!(
            matches!(r, Err(Error::Format { .. })),
            "cut at {cut}: {r:?}"
        );
    }
    for at in (0..bytes.len()).step_by(step) {
        let mut m = bytes.clone();
        m[at] ^= 0xff;
        std::fs::write(&path, &m).unwrap();
        let _ = load_program(&path, ProgramWeights::Archive, &device());
    }
}

#[test]
fn a_program_without_weights_asks_for_a_checkpoint() {
    let err = load_error("resnet18_gray.pt2");
    let text = err.to_string();
    assert!(
        text.contains("without the weights") && text.contains("--graph"),
        "{text}"
    );
}

#[test]
fn a_checkpoint_that_does_not_fit_lists_the_keys() {
    let dict =
        convlens_models::weights::load_state_dict(&fixtures().join("custom_cnn.safetensors"))
            .unwrap();
    let mut broken = dict.clone();
    let first = broken.keys().next().unwrap().clone();
    broken.remove(&first);
    broken.insert(
        "extra.weight".into(),
        Tensor::zeros(3, candle_core::DType::F32, &device()).unwrap(),
    );
    let err = load_program(
        &fixtures().join("custom_cnn.pt2"),
        ProgramWeights::StateDict(broken),
        &device(),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&first) && text.contains("extra.weight"),
        "{text}"
    );
    // The same checkpoint, whole, gives the archive's own numbers.
    let bound = load_program(
        &fixtures().join("custom_cnn.pt2"),
        ProgramWeights::StateDict(dict),
        &device(),
    )
    .unwrap();
    let own = load_program(
        &fixtures().join("custom_cnn.pt2"),
        ProgramWeights::Archive,
        &device(),
    )
    .unwrap();
    let x = synthetic_tensor("input", &[2, 1, 28, 28], 0, &device()).unwrap();
    let a = logits(&bound.graph, &x);
    let b = logits(&own.graph, &x);
    assert_close("bound vs own weights", &a, &b);
}

#[test]
fn another_input_size_says_how_to_export_dynamic_shapes() {
    let (program, _) = load("custom_cnn");
    let x = Tensor::zeros((1, 1, 32, 32), candle_core::DType::F32, &device()).unwrap();
    let err = program
        .graph
        .forward(&x, Some(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dynamic_shapes") && err.contains("[N, 1, 28, 28]"),
        "{err}"
    );
}

fn cnn_input() -> Tensor {
    synthetic_tensor("input", &[2, 1, 28, 28], 0, &device()).unwrap()
}

#[test]
fn a_program_opens_as_a_model_with_its_input_size_and_channels() {
    use convlens_models::{LoadOptions, Model};
    let path = fixtures().join("custom_cnn.pt2");
    let model = Model::load(path.to_str().unwrap(), &LoadOptions::default(), &device()).unwrap();
    assert_eq!(model.arch, "torch.export");
    assert_eq!(model.preprocess.crop, 28);
    assert_eq!(
        model.preprocess.resize, 28,
        "small inputs are resized to the crop"
    );
    assert_eq!(model.preprocess.normalization.channels, 1);
    assert_eq!(model.labels.len(), 10);
    let want = Tensor::read_npy(fixtures().join("custom_cnn.logits.npy")).unwrap();
    assert_close("model logits", &model.logits(&cnn_input()).unwrap(), &want);
    // --mean/--std override the program's preprocessing; a wrong count is refused.
    let options = LoadOptions {
        mean: Some(vec![0.2860]),
        std: Some(vec![0.3530]),
        ..LoadOptions::default()
    };
    let model = Model::load(path.to_str().unwrap(), &options, &device()).unwrap();
    assert_eq!(model.preprocess.normalization.mean[0], 0.2860);
    let options = LoadOptions {
        mean: Some(vec![0.1, 0.2, 0.3]),
        ..LoadOptions::default()
    };
    let err = Model::load(path.to_str().unwrap(), &options, &device()).unwrap_err();
    assert!(err.to_string().contains("takes 1 channels"), "{err}");
}

#[test]
fn a_checkpoint_is_bound_by_graph_or_to_the_one_program_beside_it() {
    use convlens_models::{LoadOptions, Model};
    let scratch = Scratch::new("export-beside");
    let ckpt = scratch.0.join("ckpt.safetensors");
    std::fs::copy(fixtures().join("custom_cnn.safetensors"), &ckpt).unwrap();
    // Alone, the state_dict's architecture cannot be told.
    let alone = Model::load(ckpt.to_str().unwrap(), &LoadOptions::default(), &device());
    assert!(alone.is_err());
    // With --graph.
    let options = LoadOptions {
        graph: Some(fixtures().join("custom_cnn.pt2")),
        ..LoadOptions::default()
    };
    let bound = Model::load(ckpt.to_str().unwrap(), &options, &device()).unwrap();
    assert_eq!(bound.note, None);
    let want = Tensor::read_npy(fixtures().join("custom_cnn.logits.npy")).unwrap();
    assert_close("bound logits", &bound.logits(&cnn_input()).unwrap(), &want);
    // Beside it, found and said.
    std::fs::copy(
        fixtures().join("custom_cnn.pt2"),
        scratch.0.join("model.pt2"),
    )
    .unwrap();
    let beside = Model::load(ckpt.to_str().unwrap(), &LoadOptions::default(), &device()).unwrap();
    let note = beside.note.clone().unwrap();
    assert!(
        note.contains("model.pt2") && note.contains("--graph"),
        "{note}"
    );
    assert_close(
        "beside logits",
        &beside.logits(&cnn_input()).unwrap(),
        &want,
    );
    // Two programs: ambiguous, so not guessed.
    std::fs::copy(
        fixtures().join("custom_cnn.pt2"),
        scratch.0.join("other.pt2"),
    )
    .unwrap();
    assert!(Model::load(ckpt.to_str().unwrap(), &LoadOptions::default(), &device()).is_err());
}

#[test]
fn explanations_on_a_program_equal_those_on_the_built_in_architecture() {
    use convlens_models::arch::{self, ArchConfig};
    use convlens_models::explain::{explain, ExplainOptions, Method};
    use convlens_models::graph::WeightSource;
    use convlens_models::input::{Normalization, Preprocess};
    use convlens_models::progress::Silent;
    use convlens_models::units::{reconstruct, DeconvOptions, UnitPosition, UnitSelection};
    use convlens_models::Model;

    let (program, _) = load("resnet18_gray");
    let config = ArchConfig {
        num_classes: 10,
        in_channels: 1,
        head: None,
    };
    let builtin_graph = arch::find("resnet18")
        .unwrap()
        .build_graph(WeightSource::Synthetic { seed: 0 }, &config, &device())
        .unwrap();
    let as_model = |graph, arch: &str| Model {
        arch: arch.into(),
        source: arch.into(),
        graph,
        preprocess: Preprocess::standard(Normalization::IMAGENET.with_channels(1)),
        labels: (0..10).map(|i| format!("class {i}")).collect(),
        device: device(),
        note: None,
        program: None,
    };
    let from_program = as_model(program.graph, "torch.export");
    let builtin = as_model(builtin_graph, "resnet18");
    let x = synthetic_tensor("input", &[2, 1, 64, 64], 0, &device())
        .unwrap()
        .narrow(0, 0, 1)
        .unwrap();
    for method in [Method::GradCam, Method::Saliency, Method::GuidedBackprop] {
        let options = ExplainOptions {
            method,
            target: Some(3.into()),
            layer: if method == Method::GradCam {
                Some("layer4".into())
            } else {
                None
            },
            ..ExplainOptions::default()
        };
        let a = explain(&from_program, &x, &options).unwrap();
        let b = explain(&builtin, &x, &options).unwrap();
        assert_close(&format!("{method:?}"), &a.map, &b.map);
    }
    let options = DeconvOptions {
        layer: "layer3".into(),
        units: UnitSelection::Strongest(2),
        position: UnitPosition::Max,
        rule: BackwardRule::Deconvnet,
    };
    let a = reconstruct(&from_program.graph, &x, &options, &Silent).unwrap();
    let b = reconstruct(&builtin.graph, &x, &options, &Silent).unwrap();
    assert_eq!(a.len(), b.len());
    for (ra, rb) in a.iter().zip(&b) {
        assert_eq!((ra.unit, ra.location), (rb.unit, rb.location));
        let ta =
            Tensor::from_vec(ra.signal.data.clone(), ra.signal.shape.clone(), &device()).unwrap();
        let tb =
            Tensor::from_vec(rb.signal.data.clone(), rb.signal.shape.clone(), &device()).unwrap();
        assert_close("deconv", &ta, &tb);
    }
}

#[test]
fn ops_zoo() {
    check("ops_zoo");
}

#[test]
fn resnet18_decomposed_to_core_aten() {
    check("resnet18_decomposed");
}

#[test]
fn a_program_with_dynamic_height_and_width_runs_at_other_sizes() {
    let (program, m) = load("custom_cnn_dynamic");
    assert_eq!(program.input_chw, [Some(1), None, None]);
    let shapes = m["input_shapes"].as_object().unwrap();
    assert_eq!(shapes.len(), 2);
    for (which, shape) in shapes {
        let file = m["files"][which].as_str().unwrap();
        let dims: Vec<usize> = shape
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let x = synthetic_tensor("input", &dims, 0, &device()).unwrap();
        let got = logits(&program.graph, &x);
        let want = Tensor::read_npy(fixtures().join(file)).unwrap();
        assert_close(&format!("logits at {dims:?}"), &got, &want);
    }
}

#[test]
fn an_onnx_export_as_graph_says_why_a_program_is_needed() {
    use convlens_models::{LoadOptions, Model};
    let onnx = fixtures().join("../onnx/resnet18.onnx");
    let options = LoadOptions {
        graph: Some(onnx),
        ..LoadOptions::default()
    };
    let ckpt = fixtures().join("custom_cnn.safetensors");
    let err = Model::load(ckpt.to_str().unwrap(), &options, &device()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("not a torch.export program") && text.contains("BatchNorm"),
        "{text}"
    );
}

#[test]
fn evolve_follows_a_pytorch_run_through_its_program() {
    use convlens_models::evolve::{evolve, order_checkpoints, EvolveOptions, View};
    use convlens_models::progress::Silent;
    use convlens_models::{LoadOptions, Model};
    let run = fixtures().join("train_run");
    let steps: Vec<PathBuf> = [20, 40, 60]
        .iter()
        .map(|s| run.join(format!("step-{s:06}.pt")))
        .collect();
    let options = EvolveOptions {
        view: View::Unit,
        graph: Some(run.join("model.pt2")),
        image: Some(
            fixtures()
                .join("../fashion_folder/bag/t00018.png")
                .to_path_buf(),
        ),
        layer: Some("conv3".into()),
        unit: Some(5),
        ..EvolveOptions::default()
    };
    let list = order_checkpoints(steps.clone()).unwrap();
    let evolution = evolve(&list, &options, &device(), &Silent).unwrap();
    assert_eq!(evolution.arch, "torch.export");
    assert_eq!(evolution.versions.len(), 3);
    // Each frame's summary is that checkpoint's unit maximum, bound to the program by key.
    for (version, path) in evolution.versions.iter().zip(&steps) {
        let load = LoadOptions {
            graph: Some(run.join("model.pt2")),
            ..LoadOptions::default()
        };
        let model = Model::load(path.to_str().unwrap(), &load, &device()).unwrap();
        let image = options.image.as_ref().unwrap();
        let x = convlens_models::input::load_input(image, &model.preprocess, &device()).unwrap();
        let id = model.graph.node_id("conv3").unwrap();
        let trace = model.graph.forward(&x, Some(&[id])).unwrap();
        let max = trace
            .get(id)
            .unwrap()
            .narrow(1, 5, 1)
            .unwrap()
            .max_all()
            .unwrap();
        let max = max.to_scalar::<f32>().unwrap();
        assert!(
            (version.summary - max).abs() <= 1e-5 * max.abs().max(1.0),
            "{} vs {max}",
            version.summary
        );
    }
}

#[test]
fn pool_zoo() {
    // Dilated and ceil-mode max pools, adaptive max pools, uneven adaptive average bins.
    check("pool_zoo");
}

#[test]
fn the_older_single_json_layout_of_pytorch_2_4_reads_too() {
    // tests/fixtures/make_export_legacy.py: the custom CNN saved by torch 2.4.1 (schema 5.3,
    // serialized_exported_program.json + serialized_state_dict.pt), the same synthetic weights
    // as custom_cnn, so PyTorch 2.15's logits apply.
    let path = fixtures().join("custom_cnn_legacy.pt2");
    let program = load_program(&path, ProgramWeights::Archive, &device()).unwrap();
    let x = synthetic_tensor("input", &[2, 1, 28, 28], 0, &device()).unwrap();
    let got = logits(&program.graph, &x);
    let want = Tensor::read_npy(fixtures().join("custom_cnn.logits.npy")).unwrap();
    assert_close("legacy logits", &got, &want);
    // The same module paths (torch 2.4 records `torch.flatten` as a `view`, so that node is
    // named after the op it wrote).
    let (current, _) = load("custom_cnn");
    let modules = |p: &Program| -> Vec<String> {
        p.graph
            .nodes()
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| n != "view" && n != "flatten")
            .collect()
    };
    assert_eq!(modules(&program), modules(&current));
}
