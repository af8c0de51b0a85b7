//! End to end through the binary: `convlens train-demo` writes three small-vgg checkpoints on the
//! committed Fashion-MNIST subset, a corrupt file joins them, and `convlens evolve` shows the
//! first layer's filters, a Grad-CAM and a unit's map across them: `--json` lists every version
//! with its step and a number that changes over training (and equals the engine's for that
//! checkpoint), the corrupt file is listed and skipped, `-o x.gif` is an animation with one
//! frame per checkpoint and `-o x.png` a strip; bad requests give one clear error line.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device};
use image::AnimationDecoder;

mod cli_support;
use cli_support::convlens;

fn succeed(args: &[&str]) -> String {
    let output = convlens(args);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A run made once per test binary: step-000002/4/6 by train-demo, and a corrupt step-000003.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("convlens-cli-evolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = dir.to_str().unwrap();
        succeed(&[
            "train-demo",
            "--data",
            "tests/fixtures/fashion-mnist",
            "--out",
            out,
            "--steps",
            "6",
            "--every",
            "2",
            "--batch-size",
            "32",
            "--eval-images",
            "32",
            "--lr",
            "0.05",
        ]);
        std::fs::write(dir.join("step-000003.safetensors"), b"garbage").unwrap();
        dir
    })
}

fn glob() -> String {
    run_dir()
        .join("step-*.safetensors")
        .to_string_lossy()
        .into_owned()
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&succeed(args)).unwrap()
}

const IMAGE: &str = "tests/fixtures/fashion_folder/bag/t00018.png";

#[test]
fn filters_json_lists_each_version_and_skips_the_corrupt_one() {
    let glob = glob();
    let v = json(&["evolve", &glob, "--what", "filters", "--json"]);
    assert_eq!(v["order"], "step");
    assert_eq!(v["summary_name"], "filter_norm_mean");
    let versions = v["versions"].as_array().unwrap();
    let steps: Vec<u64> = versions
        .iter()
        .map(|x| x["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [2, 4, 6]);
    let skipped = v["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("step-000003.safetensors"));
    assert!(!skipped[0]["error"].as_str().unwrap().is_empty());

    // Each number is the mean L2 norm of the file's first-layer filters.
    for version in versions {
        let path = version["path"].as_str().unwrap();
        let tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
        let w = tensors["features.0.weight"].to_dtype(DType::F32).unwrap();
        let norms = w
            .flatten_from(1)
            .unwrap()
            .sqr()
            .unwrap()
            .sum(1)
            .unwrap()
            .sqrt()
            .unwrap();
        let want = norms.mean_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        let got = version["summary"].as_f64().unwrap();
        assert!((got - want).abs() <= 1e-4 * want, "{path}: {got} vs {want}");
    }
    let first = versions[0]["summary"].as_f64().unwrap();
    let last = versions[2]["summary"].as_f64().unwrap();
    assert!((first - last).abs() > 1e-3 * first, "{first} vs {last}");
    assert!(v["scale"]["max"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_gif_has_one_frame_per_checkpoint_and_a_strip_is_one_picture() {
    let glob = glob();
    let gif = run_dir().join("filters.gif");
    let text = succeed(&["evolve", &glob, "-o", gif.to_str().unwrap()]);
    assert!(text.contains("skipped"), "{text}");
    assert!(text.contains("by the step number"), "{text}");
    let file = std::io::BufReader::new(std::fs::File::open(&gif).unwrap());
    let frames = image::codecs::gif::GifDecoder::new(file)
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), 3);
    assert_ne!(
        frames[0].buffer().as_raw(),
        frames[2].buffer().as_raw(),
        "the first and last checkpoints' frames are the same"
    );

    let png = run_dir().join("unit.png");
    succeed(&[
        "evolve",
        &glob,
        "--what",
        "unit",
        "--image",
        IMAGE,
        "--layer",
        "features.5",
        "--unit",
        "3",
        "-o",
        png.to_str().unwrap(),
    ]);
    let strip = image::open(&png).unwrap().to_rgb8();
    let frame_w = strip.width() / 3;
    assert!(
        strip.width() > 2 * strip.height(),
        "{:?}",
        strip.dimensions()
    );
    assert_ne!(
        strip.get_pixel(frame_w / 2, strip.height() / 2),
        strip.get_pixel(frame_w / 2, 2),
        "the strip has content"
    );
}

#[test]
fn cam_and_unit_numbers_change_over_training() {
    let glob = glob();
    let cam = json(&["evolve", &glob, "--what", "cam", "--image", IMAGE, "--json"]);
    assert_eq!(cam["method"], "gradcam");
    assert!(cam["target"].as_u64().is_some());
    let unit = json(&[
        "evolve",
        &glob,
        "--what",
        "unit",
        "--image",
        IMAGE,
        "--layer",
        "features.5",
        "--unit",
        "3",
        "--json",
    ]);
    assert_eq!(unit["layer"], "features.5");
    for v in [&cam, &unit] {
        let versions = v["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 3);
        let a = versions[0]["summary"].as_f64().unwrap();
        let b = versions[2]["summary"].as_f64().unwrap();
        assert!((a - b).abs() > 1e-6, "{}: {a} vs {b}", v["view"]);
    }
    let given = json(&[
        "evolve", &glob, "--what", "cam", "--image", IMAGE, "--target", "7", "--json",
    ]);
    assert_eq!(given["target"], 7);
    assert_eq!(given["target_label"], "Sneaker");
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let glob = glob();
    let cases: [(&[&str], &str); 4] = [
        (
            &["evolve", &glob, "--what", "weights"],
            "unknown view `weights`",
        ),
        (
            &["evolve", &glob, "--what", "unit", "--image", IMAGE],
            "--layer L --unit U",
        ),
        (
            &["evolve", "/nonexistent/step-*.pt"],
            "/nonexistent/step-*.pt",
        ),
        (&["evolve", &glob, "--what", "cam"], "needs an image"),
    ];
    for (args, want) in cases {
        let output = convlens(args);
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
