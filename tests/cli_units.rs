//! End to end through the binary: `convlens filters`, `activations` and `deconv` write the
//! weights, maps and reconstructions that PyTorch gives (tests/fixtures/make_units.py), draw
//! their pictures, and refuse bad requests with one clear line.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use convlens_models::weights::synthetic::synthetic_tensor;

mod cli_support;
use cli_support::{assert_one_clear_error, convlens, root, succeed};

/// A scratch folder for one test, with the fixtures' synthetic input [1, 3, 64, 64] as a `.npy`.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlens-units-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    synthetic_tensor("input", &[1, 3, 64, 64], 0, &Device::Cpu)
        .unwrap()
        .write_npy(dir.join("input.npy"))
        .unwrap();
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let diff = got.sub(want).unwrap().abs().unwrap().max_all().unwrap();
    let scale = want.abs().unwrap().max_all().unwrap();
    let (diff, scale) = (
        diff.to_scalar::<f32>().unwrap(),
        scale.to_scalar::<f32>().unwrap(),
    );
    assert!(
        scale > 0.0 && diff <= 1e-4 * scale,
        "{what}: {diff:e} vs {scale:e}"
    );
}

fn is_png(p: &Path) -> bool {
    std::fs::read(p).is_ok_and(|b| b.get(1..4) == Some(b"PNG"))
}

#[test]
fn filters_writes_the_kernel_its_statistics_and_a_grid() {
    let dir = scratch("filters");
    let (npy, png) = (dir.join("w.npy"), dir.join("grid.png"));
    let out = succeed(&[
        "filters",
        "random:vgg11",
        "--npy",
        path(&npy),
        "-o",
        path(&png),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["layer"], "features.0");
    assert_eq!(v["rgb"], true);
    assert_eq!(v["filters"].as_array().unwrap().len(), 64);
    assert!(
        v.get("weights").is_none(),
        "the JSON leaves the raw kernel to --npy"
    );
    let weights = Tensor::read_npy(&npy).unwrap();
    let want = synthetic_tensor("features.0.weight", &[64, 3, 3, 3], 0, &Device::Cpu).unwrap();
    assert_close("features.0 kernel", &weights, &want);
    assert!(is_png(&png));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn activations_writes_every_channel_and_its_numbers() {
    let dir = scratch("activations");
    let (npy, png) = (dir.join("a.npy"), dir.join("grid.png"));
    let input = dir.join("input.npy");
    let out = succeed(&[
        "activations",
        "random:resnet18",
        path(&input),
        "--layer",
        "layer1",
        "--npy",
        path(&npy),
        "-o",
        path(&png),
        "--scale",
        "per-tile",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["shape"], serde_json::json!([64, 16, 16]));
    let maps = Tensor::read_npy(&npy).unwrap();
    assert_eq!(maps.dims(), &[64, 16, 16]);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/units/manifest.json")).unwrap(),
    )
    .unwrap();
    let torch = &manifest["activations"]["resnet18:layer1"];
    let maxima: Vec<f32> = maps
        .flatten_from(1)
        .unwrap()
        .max(1)
        .unwrap()
        .to_vec1()
        .unwrap();
    for (c, channel) in v["channels"].as_array().unwrap().iter().enumerate() {
        let want = torch["max"][c].as_f64().unwrap() as f32;
        assert!(
            (maxima[c] - want).abs() <= 1e-4 * want.abs().max(1.0),
            "channel {c} max"
        );
        assert_eq!(channel["argmax"], torch["argmax"][c], "channel {c} argmax");
    }
    assert!(is_png(&png));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn deconv_npy_equals_torch_hooks() {
    let dir = scratch("deconv");
    let input = dir.join("input.npy");
    for (rule, fixture) in [
        ("deconvnet", "resnet18_block_max_deconvnet.npy"),
        ("guided", "resnet18_block_max_guided.npy"),
    ] {
        let (npy, png) = (
            dir.join(format!("{rule}.npy")),
            dir.join(format!("{rule}.png")),
        );
        let out = succeed(&[
            "deconv",
            "random:resnet18",
            path(&input),
            "--layer",
            "layer2",
            "--unit",
            "7",
            "--rule",
            rule,
            "--npy",
            path(&npy),
            "-o",
            path(&png),
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v[0]["location"], serde_json::json!([1, 0]));
        assert_eq!(
            v[0]["receptiveField"]["size"],
            serde_json::json!([99, 99]),
            "resnet18 layer2's textbook field"
        );
        let got = Tensor::read_npy(&npy).unwrap();
        let want = Tensor::read_npy(root().join("tests/fixtures/units").join(fixture)).unwrap();
        assert_close(rule, &got, &want);
        assert!(is_png(&png));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn deconv_of_several_units_on_the_demo_stacks_them() {
    let dir = scratch("deconv-demo");
    let (npy, png) = (dir.join("r.npy"), dir.join("r.png"));
    succeed(&[
        "deconv",
        "demo",
        "models/assets/photos/chelsea.jpg",
        "--layer",
        "_blocks.5",
        "--top",
        "2",
        "--npy",
        path(&npy),
        "-o",
        path(&png),
    ]);
    assert_eq!(Tensor::read_npy(&npy).unwrap().dims(), &[2, 3, 224, 224]);
    assert!(is_png(&png));
    // Each pair is labelled with its unit above it (light text on the dark caption bar).
    let picture = image::open(&png).unwrap().to_rgb8();
    let labelled =
        (0..picture.width()).any(|x| (0..24).any(|y| picture.get_pixel(x, y).0 == [235, 235, 235]));
    assert!(labelled, "no caption text on the pairs");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_module_path_is_reported_as_given_by_every_subcommand() {
    // `_blocks.5` is a module; its output is the node `_blocks.5.add`. Every subcommand reports
    // the name the user wrote, as `top` and `embed` always did.
    let dir = scratch("layer-name");
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(
        root().join("models/assets/photos/chelsea.jpg"),
        photos.join("c.jpg"),
    )
    .unwrap();
    let photo = "models/assets/photos/chelsea.jpg";
    let json = |args: &[&str]| -> serde_json::Value {
        serde_json::from_slice(&succeed(args).stdout).unwrap()
    };
    let activations = json(&[
        "activations",
        "demo",
        photo,
        "--layer",
        "_blocks.5",
        "--json",
    ]);
    assert_eq!(activations["layer"], "_blocks.5");
    let deconv = json(&[
        "deconv",
        "demo",
        photo,
        "--layer",
        "_blocks.5",
        "--unit",
        "0",
        "--json",
    ]);
    assert_eq!(deconv[0]["layer"], "_blocks.5");
    let top = json(&[
        "top",
        "demo",
        path(&photos),
        "--layer",
        "_blocks.5",
        "--json",
    ]);
    assert_eq!(top["layer"], "_blocks.5");
    std::fs::remove_dir_all(&dir).ok();
}

/// A name outside a closed set is refused by the command line itself (exit 2), naming the value
/// and the flag and listing the names there are.
fn assert_refused_name(args: &[&str], value: &str, flag: &str, names: &str) {
    let out = convlens(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("invalid value '{value}' for '--{flag}"))
            && stderr.contains(&format!("[possible values: {names}]")),
        "{args:?}: {stderr}"
    );
}

#[test]
fn bad_requests_give_one_clear_error_line() {
    let dir = scratch("errors");
    let input = dir.join("input.npy");
    let deconv = |layer: &str, unit: &str| {
        vec![
            "deconv".to_string(),
            "random:resnet18".into(),
            path(&input).into(),
            "--layer".into(),
            layer.into(),
            "--unit".into(),
            unit.into(),
        ]
    };
    let run = |args: Vec<String>, needle: &str| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_one_clear_error(&refs, needle);
    };
    run(
        deconv("layer2", "128"),
        "unit 128 is out of range: layer `layer2` has 128 channels",
    );
    run(deconv("fc", "0"), "no channels");
    run(deconv("flatten", "0"), "no channels");
    run(deconv("layer9", "0"), "unknown layer `layer9`");
    let mut bad_rule = deconv("layer2", "0");
    bad_rule.extend(["--rule".into(), "nope".into()]);
    let refs: Vec<&str> = bad_rule.iter().map(String::as_str).collect();
    assert_refused_name(&refs, "nope", "rule", "deconvnet, guided, gradient");
    let mut bad_position = deconv("layer2", "0");
    bad_position.extend(["--position".into(), "middle".into()]);
    let refs: Vec<&str> = bad_position.iter().map(String::as_str).collect();
    assert_refused_name(&refs, "middle", "position", "max, all");
    assert_one_clear_error(
        &[
            "activations",
            "random:resnet18",
            path(&input),
            "--layer",
            "fc",
        ],
        "no channels",
    );
    assert_refused_name(
        &[
            "activations",
            "random:resnet18",
            path(&input),
            "--layer",
            "layer1",
            "--scale",
            "log",
        ],
        "log",
        "scale",
        "shared, per-tile",
    );
    assert_one_clear_error(
        &["filters", "random:resnet18", "--layer", "relu"],
        "is a ReLU, not a convolution",
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Without a terminal, long work writes a line per stage on stderr: `explain --method all` names
/// each method and which of the 20 it is; `--quiet` writes nothing.
#[test]
fn progress_without_a_terminal_is_a_line_per_stage() {
    let dir = scratch("progress");
    let input = dir.join("input.npy");
    let cheap = [
        "--samples",
        "2",
        "--steps",
        "2",
        "--window",
        "32",
        "--stride",
        "32",
        "--json",
    ];
    let mut args = vec![
        "explain",
        "random:resnet18",
        path(&input),
        "--method",
        "all",
    ];
    args.extend(cheap);
    let grid = dir.join("all.png");
    args.extend(["-o", path(&grid)]);
    let out = succeed(&args);
    // The grid of labelled tiles (the photo, then every method) is enlarged to be read.
    let picture = image::open(&grid).unwrap().to_rgb8();
    assert!(picture.width() >= 448, "{:?}", picture.dimensions());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A line per method, in the order they run: the cheapest first.
    let order = convlens_shared::choices::MethodSelection::All.run_order();
    for (k, method) in order.iter().enumerate() {
        let line = format!(
            "image/explain: {} ({} of {}): explain",
            method.name(),
            k + 1,
            order.len()
        );
        assert!(stderr.contains(&line), "no `{line}` in:\n{stderr}");
    }
    let mut quiet = vec![
        "explain",
        "random:resnet18",
        path(&input),
        "--method",
        "smoothgrad",
        "-q",
    ];
    quiet.extend(cheap);
    let out = succeed(&quiet);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}
