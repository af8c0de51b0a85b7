//! Importer tests on small models built here with the prost messages: the op variants the
//! torch fixtures do not reach (Gemm's transposes and scales, Clip's two spellings, SAME_LOWER),
//! the fusions, and the refusals.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use prost::Message;

use super::proto::*;
use crate::graph::{BackwardRule, Graph};
use crate::ops::Op;
use crate::Error;

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i,
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::FLOAT,
        f,
        ..Default::default()
    }
}

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

fn attr_string(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn node(
    name: &str,
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

fn init(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: Some(d),
                            ..Default::default()
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Writes a model reading `input` of `dims` to a temporary file and imports it.
fn import(
    tag: &str,
    opset: i64,
    dims: &[i64],
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
) -> crate::Result<Graph> {
    let output = nodes
        .last()
        .and_then(|n| n.output.first().cloned())
        .unwrap_or_default();
    let model = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(GraphProto {
            node: nodes,
            initializer,
            input: vec![value("x", dims)],
            output: vec![value(&output, &[])],
            ..Default::default()
        }),
        ..Default::default()
    };
    let path: PathBuf = std::env::temp_dir().join(format!(
        "convlens-onnx-unit-{}-{tag}.onnx",
        std::process::id()
    ));
    std::fs::write(&path, model.encode_to_vec()).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let graph = super::load_onnx(&path, &Device::Cpu);
    let _ = std::fs::remove_file(&path);
    graph
}

fn ramp(dims: &[usize], scale: f32) -> Tensor {
    let n: usize = dims.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i as f32 + 1.0) * scale).sin()).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    a.sub(b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

fn run(graph: &Graph, x: &Tensor) -> Tensor {
    graph
        .forward(x, Some(&[]))
        .unwrap()
        .output()
        .unwrap()
        .clone()
}

fn classes(graph: &Graph) -> Vec<&'static str> {
    graph.nodes().iter().map(|n| n.op.class_name()).collect()
}

#[test]
fn gemm_with_transposes_and_scales() {
    let b: Vec<f32> = (0..15).map(|i| i as f32 * 0.1 - 0.7).collect();
    let c = [0.5f32, -1.0, 2.0, 0.0, 1.0];
    let nodes = vec![node(
        "/fc/Gemm",
        "Gemm",
        &["x", "b", "c"],
        "y",
        vec![
            attr_int("transA", 1),
            attr_int("transB", 1),
            attr_float("alpha", 2.0),
            attr_float("beta", 0.5),
        ],
    )];
    let graph = import(
        "gemm",
        13,
        &[3, 4],
        nodes,
        vec![init("b", &[5, 3], &b), init("c", &[5], &c)],
    )
    .unwrap();
    assert_eq!(classes(&graph), vec!["Input", "Permute", "Linear"]);
    let x = ramp(&[3, 4], 0.3);
    let bt = Tensor::from_vec(b, (5, 3), &Device::Cpu).unwrap();
    let ct = Tensor::new(&c, &Device::Cpu).unwrap();
    // y = 2 xᵀ bᵀ + c / 2
    let want = x
        .t()
        .unwrap()
        .matmul(&bt.t().unwrap())
        .unwrap()
        .affine(2.0, 0.0)
        .unwrap()
        .broadcast_add(&ct.affine(0.5, 0.0).unwrap())
        .unwrap();
    assert!(max_diff(&run(&graph, &x), &want) < 1e-5);
    // d sum(g ∘ y) / dx = 2 (g b)ᵀ
    let g = ramp(&[4, 5], 0.7);
    let trace = graph.forward(&x, None).unwrap();
    let got = graph
        .backward(&trace, graph.output_id(), &g, 0, BackwardRule::Gradient)
        .unwrap();
    let want = g
        .matmul(&bt)
        .unwrap()
        .t()
        .unwrap()
        .affine(2.0, 0.0)
        .unwrap();
    assert!(max_diff(&got, &want) < 1e-5);
}

#[test]
fn matmul_then_bias_is_one_linear() {
    let w: Vec<f32> = (0..12).map(|i| i as f32 * 0.25 - 1.0).collect();
    let nodes = vec![
        node("/fc/MatMul", "MatMul", &["x", "w"], "m", vec![]),
        node("/fc/Add", "Add", &["b", "m"], "y", vec![]),
    ];
    let graph = import(
        "matmul",
        13,
        &[2, 4],
        nodes,
        vec![init("w", &[4, 3], &w), init("b", &[3], &[1.0, 2.0, 3.0])],
    )
    .unwrap();
    assert_eq!(classes(&graph), vec!["Input", "Linear"]);
    assert_eq!(graph.nodes()[1].name, "fc");
    let x = ramp(&[2, 4], 0.5);
    let wt = Tensor::from_vec(w, (4, 3), &Device::Cpu).unwrap();
    let want = x
        .matmul(&wt)
        .unwrap()
        .broadcast_add(&Tensor::new(&[1f32, 2., 3.], &Device::Cpu).unwrap())
        .unwrap();
    assert!(max_diff(&run(&graph, &x), &want) < 1e-5);
}

#[test]
fn clip_from_attributes_or_inputs() {
    let relu6 = node(
        "/act/Clip",
        "Clip",
        &["x"],
        "y",
        vec![attr_float("min", 0.0), attr_float("max", 6.0)],
    );
    let graph = import("clip6", 6, &[1, 4], vec![relu6], vec![]).unwrap();
    assert_eq!(classes(&graph), vec!["Input", "ReLU6"]);
    let lower = node("/act/Clip", "Clip", &["x", "lo"], "y", vec![]);
    let graph = import(
        "cliplo",
        13,
        &[1, 4],
        vec![lower],
        vec![init("lo", &[], &[-0.5])],
    )
    .unwrap();
    let Op::Activation(a) = &graph.nodes()[1].op else {
        panic!("{:?}", classes(&graph))
    };
    assert_eq!(
        *a,
        crate::ops::Activation::Clip {
            min: -0.5,
            max: f64::INFINITY
        }
    );
    let x = Tensor::new(&[[-2f32, -0.25, 0.5, 9.0]], &Device::Cpu).unwrap();
    assert_eq!(
        run(&graph, &x).to_vec2::<f32>().unwrap(),
        vec![vec![-0.5, -0.25, 0.5, 9.0]]
    );
    let zero = node("/act/Clip", "Clip", &["x", "zero", ""], "y", vec![]);
    let graph = import(
        "clip0",
        13,
        &[1, 4],
        vec![zero],
        vec![init("zero", &[], &[0.0])],
    )
    .unwrap();
    assert_eq!(classes(&graph), vec!["Input", "ReLU"]);
}

#[test]
fn conv_same_lower_pads_the_start() {
    let conv = |mode: &str| {
        node(
            "/conv/Conv",
            "Conv",
            &["x", "w"],
            "y",
            vec![
                attr_string("auto_pad", mode),
                attr_ints("kernel_shape", &[2, 2]),
            ],
        )
    };
    let x = ramp(&[1, 1, 4, 4], 0.9);
    let ones = [1f32; 4];
    let lower = import(
        "same_lower",
        13,
        &[1, 1, 4, 4],
        vec![conv("SAME_LOWER")],
        vec![init("w", &[1, 1, 2, 2], &ones)],
    )
    .unwrap();
    let upper = import(
        "same_upper",
        13,
        &[1, 1, 4, 4],
        vec![conv("SAME_UPPER")],
        vec![init("w", &[1, 1, 2, 2], &ones)],
    )
    .unwrap();
    let padded = |top: usize, left: usize| {
        x.pad_with_zeros(2, top, 1 - top)
            .unwrap()
            .pad_with_zeros(3, left, 1 - left)
            .unwrap()
            .conv2d(
                &Tensor::ones((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
                0,
                1,
                1,
                1,
            )
            .unwrap()
    };
    assert!(max_diff(&run(&lower, &x), &padded(1, 1)) < 1e-6);
    assert!(max_diff(&run(&upper, &x), &padded(0, 0)) < 1e-6);
}

#[test]
fn average_pool_counts_padding_only_when_asked() {
    let pool = |include: i64| {
        vec![node(
            "/pool/AveragePool",
            "AveragePool",
            &["x"],
            "y",
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("pads", &[1, 1, 1, 1]),
                attr_int("count_include_pad", include),
            ],
        )]
    };
    let x = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let excluded = run(
        &import("avg0", 13, &[1, 1, 3, 3], pool(0), vec![]).unwrap(),
        &x,
    );
    let included = run(
        &import("avg1", 13, &[1, 1, 3, 3], pool(1), vec![]).unwrap(),
        &x,
    );
    let corner = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0];
    assert_eq!(corner(&excluded), 1.0);
    assert!((corner(&included) - 4.0 / 9.0).abs() < 1e-6);
}

#[test]
fn constant_operands_become_constant_nodes() {
    let nodes = vec![node("/Add", "Add", &["x", "c"], "y", vec![])];
    let graph = import(
        "constant",
        13,
        &[2, 3],
        nodes,
        vec![init("c", &[3], &[1.0, 2.0, 3.0])],
    )
    .unwrap();
    assert_eq!(classes(&graph), vec!["Input", "Constant", "Add"]);
    assert_eq!(graph.nodes()[1].name, "add.constant");
    let x = ramp(&[2, 3], 0.4);
    let trace = graph.forward(&x, None).unwrap();
    let g = ramp(&[2, 3], 1.1);
    // y = x + c: the signal passes to x unchanged, and a constant has no inputs to send it to.
    let got = graph
        .backward(&trace, graph.output_id(), &g, 0, BackwardRule::Gradient)
        .unwrap();
    assert_eq!(max_diff(&got, &g), 0.0);
    let c = trace.get(1).unwrap();
    assert!(graph.nodes()[1]
        .op
        .backward(&[], c, c, BackwardRule::Gradient)
        .unwrap()
        .is_empty());
    assert_eq!(graph.nodes()[1].op.param_count(), 3);
}

#[test]
fn refusals_name_the_op_and_the_node() {
    let unsqueeze = vec![
        node("/Relu", "Relu", &["x"], "r", vec![]),
        node(
            "/head/Unsqueeze_2",
            "Unsqueeze",
            &["r"],
            "y",
            vec![attr_ints("axes", &[0])],
        ),
    ];
    let err = import("unsqueeze", 11, &[1, 3], unsqueeze, vec![]).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Unsupported(_)), "{message}");
    assert!(
        message.contains("`Unsqueeze` (node `/head/Unsqueeze_2`)"),
        "{message}"
    );

    let softmax = vec![node(
        "/Softmax",
        "Softmax",
        &["x"],
        "y",
        vec![attr_int("axis", 1)],
    )];
    let err = import("softmax", 13, &[1, 3, 2], softmax, vec![]).unwrap_err();
    assert!(err.to_string().contains("only the last axis"), "{err}");

    let custom = vec![NodeProto {
        domain: "com.microsoft".into(),
        ..node("/Fused", "FusedConv", &["x"], "y", vec![])
    }];
    let err = import("domain", 13, &[1, 3], custom, vec![]).unwrap_err();
    assert!(
        err.to_string().contains("`com.microsoft.FusedConv`"),
        "{err}"
    );

    let undefined = vec![node("/Add", "Add", &["x", "nowhere"], "y", vec![])];
    assert!(matches!(
        import("undefined", 13, &[1, 3], undefined, vec![]),
        Err(Error::Format { .. })
    ));

    let short = TensorProto {
        raw_data: vec![0; 7],
        ..init("w", &[2], &[])
    };
    let nodes = vec![node("/Mul", "Mul", &["x", "w"], "y", vec![])];
    assert!(matches!(
        import("short", 13, &[1, 2], nodes, vec![short]),
        Err(Error::Format { .. })
    ));
}
