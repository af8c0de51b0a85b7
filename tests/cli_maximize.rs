//! End to end through the binary: `convlens maximize` writes the PNG, the GIF and the input
//! tensor it is asked for and reports the objective; bad requests get one clear error each.

use std::path::PathBuf;

mod cli_support;
use cli_support::convlens;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("convlens-maximize-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn maximize_writes_png_gif_and_npy_and_reports_the_objective() {
    let dir = scratch("outputs");
    let (png, gif, npy) = (dir.join("x.png"), dir.join("x.gif"), dir.join("x.npy"));
    let out = convlens(&[
        "maximize",
        "demo",
        "--class",
        "309",
        "--steps",
        "20",
        "--size",
        "64",
        "--frame-every",
        "5",
        "-o",
        png.to_str().unwrap(),
        "--gif",
        gif.to_str().unwrap(),
        "--npy",
        npy.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["objective"], "class 309");
    assert_eq!(report["preset"], "lucid");
    assert_eq!(report["steps"], 20);
    assert_eq!(report["history"].as_array().unwrap().len(), 20);
    let image = &report["images"][0];
    assert!(image["final"].as_f64().unwrap() > image["start"].as_f64().unwrap());
    assert_eq!(image["top"].as_array().unwrap().len(), 3);

    let picture = image::open(&png).unwrap();
    assert_eq!((picture.width(), picture.height()), (64, 64));
    let x = candle_core::Tensor::read_npy(&npy).unwrap();
    assert_eq!(x.dims(), &[3, 64, 64]);
    // The GIF holds frames 0, 5, 10, 15 and the last (step 20).
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).unwrap(),
    ))
    .unwrap();
    use image::AnimationDecoder;
    assert_eq!(frames.into_frames().count(), 5);
    std::fs::remove_dir_all(&dir).ok();
}

/// `--stretch` saves the display copy (the deviation from the mean image stretched to the full
/// range, as the toolbox shows its results) and changes nothing else: the same objective and
/// the same classes, which are of the image itself.
#[test]
fn stretch_fills_the_range_and_changes_only_the_picture() {
    let dir = scratch("stretch");
    let run = |name: &str, stretch: bool| {
        let png = dir.join(name);
        let mut args = vec![
            "maximize",
            "demo",
            "--class",
            "309",
            "--preset",
            "yosinski3",
            "--steps",
            "20",
            "--size",
            "64",
            "--json",
            "-o",
            png.to_str().unwrap(),
        ];
        if stretch {
            args.push("--stretch");
        }
        let out = convlens(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let picture = image::open(&png).unwrap().to_rgb8();
        let (lo, hi) = picture
            .pixels()
            .flat_map(|p| p.0)
            .fold((255u8, 0u8), |(lo, hi), v| (lo.min(v), hi.max(v)));
        (report["images"][0].clone(), lo, hi)
    };
    let (plain, plain_lo, plain_hi) = run("plain.png", false);
    let (shown, lo, hi) = run("stretched.png", true);
    assert_eq!(
        plain, shown,
        "the objective and classes are of the image itself"
    );
    assert!(
        plain_hi - plain_lo < 128,
        "yosinski3 stays near the mean: {plain_lo}..{plain_hi}"
    );
    assert!(lo == 0 || hi == 255, "the stretched copy spans {lo}..{hi}");
    assert!(
        hi - lo > 2 * (plain_hi - plain_lo),
        "{lo}..{hi} vs {plain_lo}..{plain_hi}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

fn error_of(args: &[&str]) -> String {
    let out = convlens(args);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn bad_requests_get_one_clear_error() {
    let common = ["maximize", "demo", "--size", "48", "--steps", "2"];
    let with = |extra: &[&str]| {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        error_of(&args)
    };
    let unit = with(&["--layer", "_blocks.10", "--unit", "500"]);
    assert!(
        unit.contains(
            "unit 500 is out of range: layer `_blocks.10` (`_blocks.10.add`) has 112 channels"
        ),
        "{unit}"
    );
    let flat = with(&["--layer", "_fc", "--unit", "0"]);
    assert!(flat.contains("layer `_fc` has no channels"), "{flat}");
    let class = with(&["--class", "1000"]);
    assert!(class.contains("class 1000 is out of range"), "{class}");
    let steps = error_of(&["maximize", "demo", "--class", "1", "--steps", "0"]);
    assert!(steps.contains("steps must be at least 1"), "{steps}");
    let preset = with(&["--class", "1", "--preset", "yosinski9"]);
    assert!(
        preset.contains("invalid value 'yosinski9' for '--preset <PRESET>'")
            && preset.contains(
                "[possible values: none, yosinski1, yosinski2, yosinski3, yosinski4, lucid]"
            ),
        "{preset}"
    );
    let neither = error_of(&["maximize", "demo"]);
    assert!(
        neither.contains("--class") && neither.contains("--layer"),
        "{neither}"
    );
}
