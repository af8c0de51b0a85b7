//! ONNX import against torch and onnxruntime, on the fixtures of `tests/fixtures/make_onnx.py`:
//! four torchvision models (their external weight data regenerated here from the initializer
//! names), a small model touching most supported ops at four opsets, and the errors for an
//! unsupported op, a truncated file and broken external data. Runs on `CONVLENS_DEVICE` (the
//! CPU by default).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use convlens_models::arch::{self, ArchConfig};
use convlens_models::graph::{BackwardRule, Graph, WeightSource};
use convlens_models::onnx::{self, proto};
use convlens_models::ops::Op;
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::Error;

mod common;
use common::{assert_close_on_device as assert_close, device, Scratch};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/onnx")
}

/// Copies `<arch>.onnx` into a scratch folder and writes its external data there: each
/// initializer is the synthetic tensor of its (state_dict) name, at its recorded offset.
fn materialize(arch: &str) -> (Scratch, PathBuf) {
    let src = fixtures().join(format!("{arch}.onnx"));
    let model = onnx::read_model(&src).unwrap();
    let scratch = Scratch::new(arch);
    let dst = scratch.0.join(format!("{arch}.onnx"));
    std::fs::copy(&src, &dst).unwrap();
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for t in &model.graph.unwrap().initializer {
        assert_eq!(
            t.data_location,
            proto::data_location::EXTERNAL,
            "{}",
            t.name
        );
        assert_eq!(t.data_type, proto::data_type::FLOAT, "{}", t.name);
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.clone())
        };
        let location = entry("location").unwrap();
        let offset: usize = entry("offset").map_or(0, |v| v.parse().unwrap());
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let values = synthetic_tensor(&t.name, &dims, 0, &Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        if let Some(length) = entry("length") {
            assert_eq!(length.parse::<usize>().unwrap(), bytes.len(), "{}", t.name);
        }
        let buf = files.entry(location).or_default();
        if buf.len() < offset + bytes.len() {
            buf.resize(offset + bytes.len(), 0);
        }
        buf[offset..offset + bytes.len()].copy_from_slice(&bytes);
    }
    for (location, bytes) in files {
        std::fs::write(scratch.0.join(location), bytes).unwrap();
    }
    (scratch, dst)
}

/// The signal at the input for `signal` at the output, under `rule`.
fn input_signal(graph: &Graph, x: &Tensor, signal: &Tensor, rule: BackwardRule) -> Tensor {
    let trace = graph.forward(x, None).unwrap();
    graph
        .backward(&trace, graph.output_id(), signal, 0, rule)
        .unwrap()
}

/// A [batch, classes] signal with ones at `hot` (sample, class) positions.
fn one_hot(batch: usize, classes: usize, hot: &[(usize, usize)]) -> Tensor {
    let mut v = vec![0f32; batch * classes];
    for &(b, c) in hot {
        v[b * classes + c] = 1.0;
    }
    Tensor::from_vec(v, (batch, classes), &device()).unwrap()
}

/// (name, op class) of every node but the input, leaving out the identities torchvision's graph
/// keeps for dropout and stochastic depth (the exporter drops them).
fn layers(graph: &Graph) -> BTreeSet<(String, String)> {
    graph
        .nodes()
        .iter()
        .skip(1)
        .filter(|n| !matches!(n.op, Op::Identity))
        .map(|n| (n.name.clone(), n.op.class_name().to_string()))
        .collect()
}

fn check_arch(name: &str) {
    let (_scratch, path) = materialize(name);
    let model = onnx::import_onnx(&path, &device()).unwrap();
    assert_eq!(model.input_name, "input");
    assert_eq!(
        model.input_shape,
        vec![Some(1), Some(3), Some(64), Some(64)]
    );
    assert_eq!(model.input_size(), Some((64, 64)));
    assert_eq!(model.output_name, "logits");
    assert_eq!(model.opset, 17);
    let graph = model.graph;
    let dir = fixtures();
    let x = synthetic_tensor("input", &[2, 3, 64, 64], 0, &device())
        .unwrap()
        .narrow(0, 0, 1)
        .unwrap();
    let logits = graph
        .forward(&x, Some(&[]))
        .unwrap()
        .output()
        .unwrap()
        .clone();
    let torch = Tensor::read_npy(dir.join(format!("{name}.torch_logits.npy"))).unwrap();
    let ort = Tensor::read_npy(dir.join(format!("{name}.ort_logits.npy"))).unwrap();
    assert_close(&format!("{name} logits vs torch"), &logits, &torch);
    assert_close(&format!("{name} logits vs onnxruntime"), &logits, &ort);

    let signal = one_hot(1, 1000, &[(0, 3)]);
    let grad = input_signal(&graph, &x, &signal, BackwardRule::Gradient);
    let want = Tensor::read_npy(dir.join(format!("{name}.input_grad.npy"))).unwrap();
    assert_close(&format!("{name} input gradient vs torch"), &grad, &want);

    // The same graph as the built-in architecture: same layer names and ops, same signals.
    let builtin = arch::find(name)
        .unwrap()
        .build_graph(
            WeightSource::Synthetic { seed: 0 },
            &ArchConfig::default(),
            &device(),
        )
        .unwrap();
    assert_eq!(
        layers(&graph),
        layers(&builtin),
        "{name}: layers differ from the built-in graph"
    );
    let builtin_grad = input_signal(&builtin, &x, &signal, BackwardRule::Gradient);
    assert_close(
        &format!("{name} input gradient vs built-in"),
        &grad,
        &builtin_grad,
    );
    for rule in [BackwardRule::Guided, BackwardRule::Deconvnet] {
        let got = input_signal(&graph, &x, &signal, rule);
        let want = input_signal(&builtin, &x, &signal, rule);
        assert_close(&format!("{name} {rule:?} vs built-in"), &got, &want);
    }
}

#[test]
fn resnet18() {
    check_arch("resnet18");
}

#[test]
fn mobilenet_v3_small() {
    check_arch("mobilenet_v3_small");
}

#[test]
fn efficientnet_b0() {
    check_arch("efficientnet_b0");
}

#[test]
fn squeezenet1_1() {
    check_arch("squeezenet1_1");
}

#[test]
fn zoo_of_ops_matches_torch_and_onnxruntime_at_every_opset() {
    let x = synthetic_tensor("zoo_input", &[2, 3, 20, 20], 0, &device()).unwrap();
    for opset in [9, 11, 13, 18] {
        let path = fixtures().join(format!("zoo_opset{opset}.onnx"));
        let model =
            onnx::import_onnx(&path, &device()).unwrap_or_else(|e| panic!("opset {opset}: {e}"));
        assert_eq!(model.input_shape, vec![None, Some(3), Some(20), Some(20)]);
        let graph = model.graph;
        let out = graph
            .forward(&x, Some(&[]))
            .unwrap()
            .output()
            .unwrap()
            .clone();
        let torch =
            Tensor::read_npy(fixtures().join(format!("zoo_opset{opset}.torch.npy"))).unwrap();
        let ort = Tensor::read_npy(fixtures().join(format!("zoo_opset{opset}.ort.npy"))).unwrap();
        assert_close(&format!("zoo opset {opset} vs torch"), &out, &torch);
        assert_close(&format!("zoo opset {opset} vs onnxruntime"), &out, &ort);
        let signal = one_hot(2, 5, &[(0, 2), (1, 4)]);
        let grad = input_signal(&graph, &x, &signal, BackwardRule::Gradient);
        let want =
            Tensor::read_npy(fixtures().join(format!("zoo_opset{opset}.input_grad.npy"))).unwrap();
        assert_close(
            &format!("zoo opset {opset} input gradient vs torch"),
            &grad,
            &want,
        );
        // The single-batch graph runs too: the reshape copies the batch size.
        let one = graph
            .forward(&x.narrow(0, 1, 1).unwrap(), Some(&[]))
            .unwrap();
        assert_close(
            &format!("zoo opset {opset} batch of one"),
            one.output().unwrap(),
            &torch.narrow(0, 1, 1).unwrap(),
        );
        // The exporter's shape subgraphs are folded away (the reshape to [batch, -1] is a
        // flatten), and the pad before the grouped conv became the conv's padding.
        let classes: Vec<&str> = graph.nodes().iter().map(|n| n.op.class_name()).collect();
        assert!(
            !classes.contains(&"Reshape") && classes.contains(&"Flatten"),
            "opset {opset}: {classes:?}"
        );
        assert!(
            !classes.contains(&"Pad"),
            "opset {opset}: the pad was not fused: {classes:?}"
        );
        assert!(
            classes.contains(&"SiLU") && classes.contains(&"ReLU6"),
            "opset {opset}: {classes:?}"
        );
    }
}

#[test]
fn unsupported_op_names_the_op_and_the_node() {
    let err = onnx::load_onnx(&fixtures().join("unsupported_op.onnx"), &device()).unwrap_err();
    match &err {
        Error::Unsupported(message) => {
            assert!(message.contains("ONNX op `Einsum`"), "{message}");
            assert!(message.contains("node `/layer1/Einsum_3`"), "{message}");
        }
        other => panic!("expected an unsupported-op error, got {other:?}"),
    }
}

#[test]
fn truncated_or_garbled_files_are_format_errors() {
    let bytes = std::fs::read(fixtures().join("resnet18.onnx")).unwrap();
    let scratch = Scratch::new("truncated");
    let path = scratch.0.join("cut.onnx");
    for len in [
        0,
        1,
        10,
        100,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 3,
        bytes.len() - 1,
    ] {
        std::fs::write(&path, &bytes[..len]).unwrap();
        match onnx::load_onnx(&path, &device()) {
            Err(Error::Format { path: p, .. }) => assert_eq!(p, path, "cut at {len}"),
            other => panic!("cut at {len}: expected a format error, got {other:?}"),
        }
    }
    std::fs::write(&path, b"this is not a protobuf at all").unwrap();
    assert!(matches!(
        onnx::load_onnx(&path, &device()),
        Err(Error::Format { .. })
    ));
}

/// Overwriting bytes anywhere in a model gives a result or an error, never a panic.
#[test]
fn corrupted_bytes_never_panic() {
    let bytes = std::fs::read(fixtures().join("zoo_opset13.onnx")).unwrap();
    let scratch = Scratch::new("corrupt");
    let path = scratch.0.join("corrupt.onnx");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..150 {
        let mut garbled = bytes.clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() % garbled.len() as u64) as usize;
            garbled[at] = next() as u8;
        }
        std::fs::write(&path, &garbled).unwrap();
        let _ = onnx::load_onnx(&path, &device());
    }
}

#[test]
fn external_data_is_read_only_within_its_file() {
    let (scratch, path) = materialize("squeezenet1_1");
    let data = scratch.0.join("squeezenet1_1.onnx.data");
    let full = std::fs::read(&data).unwrap();
    std::fs::write(&data, &full[..full.len() - 4]).unwrap();
    match onnx::load_onnx(&path, &device()) {
        Err(Error::Format { path: p, message }) => assert_eq!(p, data, "{message}"),
        other => panic!("expected a format error for the short data file, got {other:?}"),
    }
    std::fs::remove_file(&data).unwrap();
    assert!(matches!(
        onnx::load_onnx(&path, &device()),
        Err(Error::Io { .. })
    ));

    // A location outside the model's folder is refused before anything is opened.
    use prost::Message;
    let mut model = onnx::read_model(&path).unwrap();
    for t in &mut model.graph.as_mut().unwrap().initializer {
        for e in &mut t.external_data {
            if e.key == "location" {
                e.value = "../../etc/passwd".into();
            }
        }
    }
    let escaped = scratch.0.join("escaped.onnx");
    std::fs::write(&escaped, model.encode_to_vec()).unwrap();
    match onnx::load_onnx(&escaped, &device()) {
        Err(Error::Format { message, .. }) => {
            assert!(message.contains("inside the model's folder"), "{message}")
        }
        other => panic!("expected a format error for an escaping location, got {other:?}"),
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let err = onnx::load_onnx(Path::new("/nonexistent/model.onnx"), &device()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
}
