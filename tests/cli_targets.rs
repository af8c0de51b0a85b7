//! Targets beyond a class through the CLI and the daemon. A segmentation model: `predict` gives each class's share of
//! the pixels, `explain --region` explains a class summed over a box or a mask image (the two
//! agree on the same pixels), the pixels the model assigns to the class by default; bad regions
//! and regions on a classifier get one clear error each. And a reference image as the target
//! (`--target-image`), on the demo.

use candle_core::Tensor;

mod cli_support;
use cli_support::{assert_one_clear_error, succeed};

const MODEL: &str = "random:fcn_resnet50";
const PHOTO: &str = "models/assets/photos/chelsea.jpg";

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("convlens-seg-{}-{name}", std::process::id()))
}

#[test]
fn predict_gives_each_class_its_share_of_the_pixels() {
    let out = succeed(&["-q", "predict", MODEL, PHOTO, "--json", "--top", "21"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let top = v[0]["top"].as_array().unwrap_or_else(|| panic!("{v}"));
    let total: f64 = top.iter().map(|c| c["prob"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4, "the shares sum to one: {v}");
    assert_eq!(top.len(), 21);
}

#[test]
fn a_box_and_a_mask_of_the_same_pixels_explain_alike_through_the_daemon() {
    let mask = scratch("mask.png");
    let picture = image::GrayImage::from_fn(224, 224, |x, y| {
        image::Luma([if (40..120).contains(&x) && (30..90).contains(&y) {
            255
        } else {
            0
        }])
    });
    picture.save(&mask).unwrap();
    let boxed = scratch("box.npy");
    let masked = scratch("mask.npy");
    let run = |region: &str, npy: &std::path::Path| {
        let out = succeed(&[
            "-q",
            "explain",
            MODEL,
            PHOTO,
            "--method",
            "gradcam",
            "--target",
            "person",
            "--region",
            region,
            "--npy",
            npy.to_str().unwrap(),
            "--json",
        ]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let a = run("40,30,120,90", &boxed);
    let b = run(mask.to_str().unwrap(), &masked);
    assert_eq!(a["label"], "person", "{a}");
    assert_eq!(a["class"], 15);
    assert_eq!(a["logit"], b["logit"], "the same pixels summed");
    let (a, b) = (
        Tensor::read_npy(&boxed).unwrap(),
        Tensor::read_npy(&masked).unwrap(),
    );
    let diff = a
        .sub(&b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0);
    for f in [mask, boxed, masked] {
        std::fs::remove_file(f).ok();
    }
}

#[test]
fn bad_regions_get_one_clear_error_each() {
    assert_one_clear_error(
        &["explain", MODEL, PHOTO, "--region", "0,0,300,10"],
        "lies outside the 224×224 image",
    );
    // An empty box is refused as the flag is read (clap adds its pointer to --help).
    let out = cli_support::convlens(&["explain", MODEL, PHOTO, "--region", "9,9,3,3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("is empty"),
        "{stderr}"
    );
    assert_one_clear_error(
        &["explain", MODEL, PHOTO, "--region", "/no/such/mask.png"],
        "/no/such/mask.png",
    );
    assert_one_clear_error(
        &["explain", "demo", PHOTO, "--region", "0,0,10,10"],
        "dense target",
    );
    assert_one_clear_error(
        &["evaluate", MODEL, PHOTO, "--metric", "deletion"],
        "segmentation model",
    );
}

#[test]
fn a_reference_image_is_a_target_through_the_daemon() {
    let out = succeed(&[
        "-q",
        "explain",
        "demo",
        PHOTO,
        "--method",
        "gradcam",
        "--target-image",
        "models/assets/photos/coffee.jpg",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let label = v["label"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(label.starts_with("similarity to the reference at "), "{v}");
    let cosine = v["logit"].as_f64().unwrap();
    assert!((-1.0..=1.0).contains(&cosine), "{v}");
    // The photo against itself: the codes are the same.
    let out = succeed(&[
        "-q",
        "explain",
        "demo",
        PHOTO,
        "--method",
        "saliency",
        "--target-image",
        PHOTO,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!((v["logit"].as_f64().unwrap() - 1.0).abs() < 1e-5, "{v}");
    assert_one_clear_error(
        &[
            "explain",
            "demo",
            PHOTO,
            "--target-image",
            PHOTO,
            "--target",
            "3",
        ],
        "takes no class",
    );
}

#[test]
fn a_segmentation_is_drawn_beside_the_explanation() {
    let picture = |model: &str, name: &str, region: &[&str]| {
        let out = scratch(name);
        let mut args = vec!["-q", "explain", model, PHOTO, "--method", "gradcam"];
        args.extend(region);
        args.extend(["-o", out.to_str().unwrap()]);
        succeed(&args);
        let picture = image::open(&out).unwrap().to_rgb8();
        std::fs::remove_file(out).ok();
        picture
    };
    let seg = picture(MODEL, "seg.png", &["--region", "40,30,120,90"]);
    let (w, h) = seg.dimensions();
    assert!(
        w as f32 > 1.5 * h as f32,
        "two tiles side by side, the segmentation and the overlay: {w}×{h}"
    );
    // The box's outline, white, in the left tile (away from the captions above and below).
    let white = seg
        .enumerate_pixels()
        .filter(|(x, y, p)| *x < w / 2 && (h / 4..3 * h / 4).contains(y) && p.0 == [255; 3])
        .count();
    assert!(white > 100, "{white} white pixels");
    // A classifier has no segmentation: one tile, as before.
    let (w, h) = picture("demo", "demo.png", &[]).dimensions();
    assert!((w as f32) < 1.2 * h as f32, "{w}×{h}");
}
