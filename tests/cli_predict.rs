//! End to end through the binary: `convlens predict` on the bundled demo model and photos gives
//! PyTorch's top-5 (tests/fixtures/make_demo_assets.py), and bad input gives one clear error.

mod cli_support;
use cli_support::{assert_one_clear_error, convlens, root, succeed};

#[test]
fn demo_top5_on_the_bundled_photos_equals_pytorch() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/demo/predictions.json")).unwrap(),
    )
    .unwrap();
    let photos: Vec<String> = reference
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("models/assets/photos/{}", r["image"].as_str().unwrap()))
        .collect();
    let mut args = vec!["predict", "demo", "--json", "--top", "5"];
    args.extend(photos.iter().map(String::as_str));
    let out = convlens(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (want, got) in reference
        .as_array()
        .unwrap()
        .iter()
        .zip(got.as_array().unwrap())
    {
        let want_top: Vec<u64> = want["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        let got_top: Vec<u64> = got["top"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["class"].as_u64().unwrap())
            .collect();
        assert_eq!(got_top, want_top, "top-5 of {}", want["image"]);
        let want_p = want["top5_probs"][0].as_f64().unwrap();
        let got_p = got["top"][0]["prob"].as_f64().unwrap();
        assert!(
            (want_p - got_p).abs() < 0.03,
            "top-1 probability {got_p} vs torch's {want_p}"
        );
    }
}

#[test]
fn predict_writes_logits_npy_with_one_row_per_image() {
    let dir = std::env::temp_dir().join(format!("convlens-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let npy = dir.join("logits.npy");
    let out = convlens(&[
        "predict",
        "demo",
        "tests/fixtures/demo/chelsea_input.npy",
        "models/assets/photos/coffee.jpg",
        "--npy",
        npy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logits = candle_core::Tensor::read_npy(&npy).unwrap();
    assert_eq!(logits.dims(), &[2, 1000]);
    let torch =
        candle_core::Tensor::read_npy(root().join("tests/fixtures/demo/chelsea_logits.npy"))
            .unwrap();
    let diff = logits
        .narrow(0, 0, 1)
        .unwrap()
        .sub(&torch)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    let scale = torch.abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() <= 1e-4 * scale.to_scalar::<f32>().unwrap());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_input_gives_one_clear_error_line() {
    // Each wrong image says what it is and what was expected, with no OS error number.
    let dir = std::env::temp_dir().join(format!("convlens-bad-images-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("fake.jpg");
    std::fs::write(&fake, b"hello, not a photo").unwrap();
    let fake = fake.display().to_string();
    let folder = dir.display().to_string();
    for (image, needle) in [
        (
            "no-such-photo.png",
            "no-such-photo.png: no such image (a PNG, JPEG, WebP, BMP or GIF file, or a preprocessed .npy)",
        ),
        (
            "README.md",
            "README.md: not a PNG, JPEG, WebP, BMP or GIF image (or a preprocessed .npy)",
        ),
        (
            fake.as_str(),
            "fake.jpg: not a readable JPEG image: the file is damaged, or not what its name says",
        ),
        (folder.as_str(), "a folder, not an image: give one PNG"),
    ] {
        assert_one_clear_error(&["predict", "demo", image], needle);
        let out = convlens(&["predict", "demo", image]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("os error"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert_one_clear_error(&["layers", "random:resnet19"], "resnet19");
    assert_one_clear_error(
        &[
            "predict",
            "demo",
            "tests/fixtures/reference/resnet18/logits.npy",
        ],
        "logits.npy",
    );
    assert_one_clear_error(&["layers", "no-such-model.pth"], "no-such-model.pth");
    assert_one_clear_error(&["layers", "demo", "--device", "cuda:7"], "cuda");
    assert_one_clear_error(
        &["layers", "tests/fixtures/onnx/unsupported_op.onnx"],
        "Einsum",
    );
    // A name outside a closed set is refused by the command line itself (exit 2), with the
    // names there are and the nearest one.
    let out = convlens(&[
        "explain",
        "demo",
        "models/assets/photos/coffee.jpg",
        "--method",
        "gradcan",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid value 'gradcan' for '--method <METHOD>'")
            && stderr.contains("guided-gradcam, all]")
            && stderr.contains("a similar value exists: 'gradcam'"),
        "{stderr}"
    );
    assert_one_clear_error(
        &[
            "explain",
            "demo",
            "models/assets/photos/coffee.jpg",
            "--layer",
            "_blocks.99",
        ],
        "unknown layer `_blocks.99`",
    );
    assert_one_clear_error(
        &[
            "explain",
            "demo",
            "models/assets/photos/coffee.jpg",
            "--target",
            "1000",
        ],
        "out of range",
    );
}

#[test]
fn wrong_architecture_names_the_misfit_tensors() {
    assert_one_clear_error(
        &[
            "layers",
            "models/assets/efficientnet_lite0.safetensors",
            "--arch",
            "resnet18",
        ],
        "do not fit resnet18",
    );
}

#[test]
fn layers_json_lists_every_module_with_shapes() {
    let out = convlens(&["layers", "random:resnet18", "--json", "--input-size", "64"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["totalParams"].as_u64(),
        Some(11_689_512),
        "torchvision's resnet18 parameter count"
    );
    let layers = v["layers"].as_array().unwrap();
    let fc = layers.iter().find(|l| l["path"] == "fc").unwrap();
    assert_eq!(fc["output_shape"], serde_json::json!([1, 1000]));
    let conv = layers
        .iter()
        .find(|l| l["path"] == "layer2.0.conv1")
        .unwrap();
    assert_eq!(conv["output_shape"], serde_json::json!([1, 128, 8, 8]));
}

#[test]
fn explain_writes_the_raw_map_and_an_overlay() {
    let dir = std::env::temp_dir().join(format!("convlens-explain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (npy, png) = (dir.join("cam.npy"), dir.join("cam.png"));
    let out = convlens(&[
        "explain",
        "demo",
        "models/assets/photos/chelsea.jpg",
        "--method",
        "gradcam",
        "--json",
        "--npy",
        npy.to_str().unwrap(),
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["layer"], "_swish#2",
        "the default layer is the head activation"
    );
    assert_eq!(v["class"], 285);
    // The class's probability, as `predict` gives it (0.3753 for the cat).
    let prob = v["prob"].as_f64().unwrap();
    assert!((prob - 0.37535).abs() < 1e-4, "{prob}");
    assert_eq!(v["flat"], false, "a Grad-CAM of the cat is not flat");
    let map = candle_core::Tensor::read_npy(&npy).unwrap();
    assert_eq!(map.dims(), &[7, 7]);
    assert!(map.max_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    // The saved overlay explains itself: enlarged to 448 px, caption lines above it (dark bar
    // with light text), a colour bar below running dark to bright (viridis).
    let picture = image::open(&png).unwrap().to_rgb8();
    assert_eq!(picture.width(), 448);
    assert!(picture.height() > 448 + 30, "{:?}", picture.dimensions());
    let caption_text = (0..448).any(|x| picture.get_pixel(x, 7).0 == [235, 235, 235]);
    assert!(caption_text, "no caption text");
    let bar_y = picture.height() - 18;
    let luma = |x: u32| {
        picture
            .get_pixel(x, bar_y)
            .0
            .iter()
            .map(|&c| u32::from(c))
            .sum::<u32>()
    };
    assert!(luma(8) < luma(440), "the colour bar runs dark to bright");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--target` takes labels and sums: the cat as "tabby or tiger cat", whose logit and
/// probability are the two classes' sums; `--aug-smooth` gives the CAM at the input's size.
#[test]
fn explain_takes_a_summed_target_by_label() {
    let json = |args: &[&str]| -> serde_json::Value {
        let mut all = vec![
            "explain",
            "demo",
            "models/assets/photos/chelsea.jpg",
            "--json",
        ];
        all.extend_from_slice(args);
        serde_json::from_slice(&succeed(&all).stdout).unwrap()
    };
    let both = json(&["--target", "tabby+tiger cat"]);
    assert_eq!(both["classes"], serde_json::json!([281, 282]));
    assert_eq!(both["class"], 281);
    assert_eq!(both["label"], "tabby + tiger cat");
    let (tabby, tiger) = (json(&["--target", "281"]), json(&["--target", "282"]));
    assert!(tabby.get("classes").is_none(), "one class lists no classes");
    let sum = |key: &str| tabby[key].as_f64().unwrap() + tiger[key].as_f64().unwrap();
    assert!((both["prob"].as_f64().unwrap() - sum("prob")).abs() < 1e-5);
    assert!((both["logit"].as_f64().unwrap() - sum("logit")).abs() < 1e-4);
    let smooth = json(&["--aug-smooth"]);
    assert_eq!(smooth["shape"], serde_json::json!([224, 224]));
    assert_one_clear_error(
        &[
            "explain",
            "demo",
            "models/assets/photos/chelsea.jpg",
            "--target",
            "tabby+tigger cat",
        ],
        "no class is labelled `tigger cat`; did you mean tiger cat",
    );
}

/// A mistyped subcommand is refused with the nearest one (exit 2), not taken for a model; an
/// unknown layer suggests the near names; a picture is not dumped as escape codes into a pipe.
#[test]
fn mistakes_are_met_with_the_next_step() {
    for (args, typo, nearest) in [
        (&["predcit", "demo", "x.jpg"][..], "predcit", "predict"),
        (&["explian"][..], "explian", "explain"),
    ] {
        let out = convlens(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("unrecognized subcommand '{typo}'"))
                && stderr.contains(&format!("a similar subcommand exists: '{nearest}'")),
            "{stderr}"
        );
    }
    let photo = "models/assets/photos/chelsea.jpg";
    assert_one_clear_error(
        &["explain", "demo", photo, "--layer", "conv1"],
        "unknown layer `conv1`; did you mean _conv_head, _conv_stem?",
    );
    // Standard output is a pipe here: the text summary, no picture, and a hint on stderr.
    let out = convlens(&["explain", "demo", photo]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("gradcam: class 285"), "{stdout}");
    assert!(stdout.len() < 200 && !stdout.contains('\x1b'), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("picture not drawn: standard output is not a terminal; -o FILE.png saves it"),
        "{stderr}"
    );
}

/// Shell completions and the man page come from the same definitions as `--help`; a renamed
/// flag keeps its old spelling as an alias.
#[test]
fn completions_man_page_and_renamed_flags() {
    for shell in ["bash", "zsh", "fish"] {
        let out = cli_support::succeed(&["completions", shell]);
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            script.contains("explain") && script.contains("per-unit"),
            "{shell}"
        );
    }
    let man = String::from_utf8_lossy(&cli_support::succeed(&["man"]).stdout).into_owned();
    assert!(
        man.starts_with(".ie") && man.contains(".TH convlens-explain"),
        "{man}"
    );
    let help =
        String::from_utf8_lossy(&cli_support::succeed(&["deconv", "--help"]).stdout).into_owned();
    assert!(
        help.contains("--strongest <K>") && !help.contains("--top <"),
        "{help}"
    );
    let help =
        String::from_utf8_lossy(&cli_support::succeed(&["top", "--help"]).stdout).into_owned();
    assert!(help.contains("-k, --per-unit <K>"), "{help}");
}

/// `layers` says what `name#k` means when it prints such names.
#[test]
fn layers_explains_the_names_it_prints() {
    let out = cli_support::succeed(&["layers", "demo"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("_swish#2 (ReLU6)"), "{text}");
    assert!(
        text.contains("(`name#k`: the k-th call of a module used more than once"),
        "{text}"
    );
}

/// A flag is shown only where it acts: class names mean nothing to a layer tree or to filters.
#[test]
fn flags_show_only_where_they_act() {
    let help = |sub: &str| cli_support::help_flags(sub);
    assert!(!help("layers").contains_key("labels"));
    assert!(!help("filters").contains_key("labels"));
    assert!(help("predict").contains_key("labels"));
    assert!(help("explain").contains_key("labels"));
}
