//! Evolution views over a real training run: small-vgg trained a few steps on the committed
//! Fashion-MNIST subset writes three checkpoints (plus a corrupt file and a small-resnet
//! checkpoint in the same glob, which are listed and skipped). Each view's per-checkpoint number
//! equals what the engine's own reference-tested functions (or, for filter norms, the weights
//! read straight from the file) give for that checkpoint; the frames of the first and last
//! checkpoints differ; filters and unit maps share one colour scale across frames; the CAM's
//! class is the last checkpoint's top-1 in every frame.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use candle_core::{DType, Device, Tensor, D};
use common::device;
use convlens_models::evolve::{
    encode_gif, evolve, find_checkpoints, order_checkpoints, strip, unit_map, CheckpointOrder,
    EvolveOptions, View, STRIP_GAP,
};
use convlens_models::explain::{explain, ExplainOptions, Method};
use convlens_models::input::load_input;
use convlens_models::progress::Silent;
use convlens_models::train::{train, CheckpointWriter, FashionMnist, SmallArch, TrainConfig};
use convlens_models::{LoadOptions, Model};
use image::RgbImage;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn image() -> PathBuf {
    fixtures().join("fashion_folder/bag/t00018.png")
}

/// Trains `arch` for `steps` steps with a checkpoint every `every` into `dir`.
fn train_into(dir: &Path, arch: SmallArch, steps: usize, every: usize) {
    let data = FashionMnist::load(&fixtures().join("fashion-mnist")).unwrap();
    let config = TrainConfig {
        arch,
        max_steps: Some(steps),
        batch_size: 32,
        every,
        eval_images: Some(32),
        // Large, so that a few steps move the first layer's weights visibly.
        learning_rate: 0.05,
        ..TrainConfig::default()
    };
    let writer = CheckpointWriter::create(dir).unwrap();
    train(&config, &data, &device(), &writer, &mut |_| {}, &Silent).unwrap();
}

/// A run folder, made once per test binary: small-vgg's step-000002/4/6, a corrupt
/// step-000003 and a small-resnet step-000005.
fn run_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("convlens-evolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        train_into(&dir, SmallArch::Vgg, 6, 2);
        std::fs::write(
            dir.join("step-000003.safetensors"),
            b"not a safetensors file",
        )
        .unwrap();
        let other = dir.join("resnet");
        train_into(&other, SmallArch::Resnet, 1, 1);
        std::fs::copy(
            other.join("step-000001.safetensors"),
            dir.join("step-000005.safetensors"),
        )
        .unwrap();
        dir
    })
}

fn run_glob() -> Vec<String> {
    vec![run_dir()
        .join("step-*.safetensors")
        .to_string_lossy()
        .into_owned()]
}

fn vgg_checkpoints() -> Vec<PathBuf> {
    [2, 4, 6]
        .iter()
        .map(|s| run_dir().join(format!("step-{s:06}.safetensors")))
        .collect()
}

fn load(path: &Path) -> Model {
    Model::load(path.to_str().unwrap(), &LoadOptions::default(), &device()).unwrap()
}

/// The first convolution's weight read straight from the checkpoint file.
fn first_conv_weight(path: &Path) -> Tensor {
    let tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    tensors["features.0.weight"].to_dtype(DType::F32).unwrap()
}

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1e-6)
}

/// Whether any pixel of `frame` has a channel at 0 or 255: only a weight at ±the scale is
/// drawn so (captions are 235, the background 24).
fn reaches_the_ends(frame: &RgbImage) -> bool {
    frame
        .pixels()
        .any(|p| p.0.iter().any(|&c| c == 0 || c == 255))
}

#[test]
fn checkpoints_sort_by_step_and_the_corrupt_and_foreign_ones_are_skipped() {
    let list = find_checkpoints(&run_glob()).unwrap();
    assert_eq!(list.order, CheckpointOrder::Step);
    let steps: Vec<_> = list.checkpoints.iter().map(|c| c.step).collect();
    assert_eq!(steps, [Some(2), Some(3), Some(4), Some(5), Some(6)]);
    // A file named again (as a shell expanding the glob would pass it) is listed once.
    let mut again = run_glob();
    again.push(vgg_checkpoints()[0].to_string_lossy().into_owned());
    assert_eq!(find_checkpoints(&again).unwrap(), list);

    let evolution = evolve(&list, &EvolveOptions::default(), &device(), &Silent).unwrap();
    let shown: Vec<_> = evolution.versions.iter().map(|v| v.step).collect();
    assert_eq!(shown, [Some(2), Some(4), Some(6)]);
    assert_eq!(evolution.arch, "small-vgg");
    assert_eq!(evolution.skipped.len(), 2);
    assert!(evolution.skipped[0]
        .path
        .ends_with("step-000003.safetensors"));
    assert!(
        evolution.skipped[0]
            .error
            .contains("step-000003.safetensors"),
        "{}",
        evolution.skipped[0].error
    );
    assert!(evolution.skipped[1]
        .path
        .ends_with("step-000005.safetensors"));
    assert!(
        evolution.skipped[1].error.contains("small-resnet"),
        "{}",
        evolution.skipped[1].error
    );
}

#[test]
fn filters_share_one_scale_and_change_over_training() {
    let list = order_checkpoints(vgg_checkpoints()).unwrap();
    let evolution = evolve(&list, &EvolveOptions::default(), &device(), &Silent).unwrap();
    assert_eq!(evolution.layer.as_deref(), Some("features.0"));
    assert_eq!(evolution.frames.len(), 3);

    // Each checkpoint's mean filter norm, from the file's weights.
    let weights: Vec<Tensor> = vgg_checkpoints()
        .iter()
        .map(|p| first_conv_weight(p))
        .collect();
    for (version, w) in evolution.versions.iter().zip(&weights) {
        let norms = w
            .flatten_from(1)
            .unwrap()
            .sqr()
            .unwrap()
            .sum(1)
            .unwrap()
            .sqrt()
            .unwrap();
        let want = norms.mean_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(
            close(version.summary, want),
            "{} vs {want}",
            version.summary
        );
    }
    assert!(!close(
        evolution.versions[0].summary,
        evolution.versions[2].summary
    ));
    assert_ne!(evolution.frames[0], evolution.frames[2]);

    // One scale: ±the largest |w| of any checkpoint.
    let maxima: Vec<f32> = weights
        .iter()
        .map(|w| {
            w.abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        })
        .collect();
    let largest = maxima.iter().copied().fold(0f32, f32::max);
    let scale = evolution.scale.unwrap();
    assert!(close(scale.max, largest) && close(scale.min, -largest));
    // Only the checkpoint holding that weight reaches black or white; one whose largest
    // weight is clearly smaller does not (per-frame scaling would make every frame reach them).
    for (frame, m) in evolution.frames.iter().zip(&maxima) {
        if *m == largest {
            assert!(reaches_the_ends(frame));
        } else if *m < 0.98 * largest {
            assert!(
                !reaches_the_ends(frame),
                "{m} < {largest} yet drawn at the ends"
            );
        }
    }
    assert!(
        maxima.iter().any(|m| *m < 0.98 * largest),
        "training did not change the largest weight enough for this test: {maxima:?}"
    );
}

#[test]
fn unit_maps_share_one_range_and_equal_the_layer_outputs() {
    let options = EvolveOptions {
        view: View::Unit,
        image: Some(image()),
        layer: Some("features.5".into()),
        unit: Some(3),
        ..EvolveOptions::default()
    };
    let list = order_checkpoints(vgg_checkpoints()).unwrap();
    let evolution = evolve(&list, &options, &device(), &Silent).unwrap();
    assert_eq!(evolution.summary_name, "unit_max");
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for (version, path) in evolution.versions.iter().zip(vgg_checkpoints()) {
        let model = load(&path);
        let input = load_input(&image(), &model.preprocess, &device()).unwrap();
        let trace = model.graph.forward(&input, None).unwrap();
        let id = model.graph.node_id("features.5").unwrap();
        let channel = trace.get(id).unwrap().narrow(1, 3, 1).unwrap();
        let max = channel.max_all().unwrap().to_scalar::<f32>().unwrap();
        lo = lo.min(channel.min_all().unwrap().to_scalar::<f32>().unwrap());
        hi = hi.max(max);
        assert!(close(version.summary, max), "{} vs {max}", version.summary);
        let map = unit_map(&model.graph, &input, "features.5", 3).unwrap();
        assert_eq!((map.height, map.width), (28, 28));
    }
    let scale = evolution.scale.unwrap();
    assert!(close(scale.min, lo) || (scale.min - lo).abs() < 1e-6);
    assert!(close(scale.max, hi));
    assert!(!close(
        evolution.versions[0].summary,
        evolution.versions[2].summary
    ));
    assert_ne!(evolution.frames[0], evolution.frames[2]);
}

#[test]
fn cam_explains_the_last_checkpoints_top1_in_every_frame() {
    let options = EvolveOptions {
        view: View::Cam,
        image: Some(image()),
        ..EvolveOptions::default()
    };
    let list = order_checkpoints(vgg_checkpoints()).unwrap();
    let evolution = evolve(&list, &options, &device(), &Silent).unwrap();

    let last = load(&vgg_checkpoints()[2]);
    let input = load_input(&image(), &last.preprocess, &device()).unwrap();
    let top1 = last
        .logits(&input)
        .unwrap()
        .argmax(D::Minus1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<u32>()
        .unwrap()[0] as usize;
    assert_eq!(evolution.target, Some(top1));
    assert_eq!(evolution.method.as_deref(), Some("gradcam"));
    assert!(evolution.scale.is_none());
    for (version, path) in evolution.versions.iter().zip(vgg_checkpoints()) {
        let model = load(&path);
        let e = explain(
            &model,
            &input,
            &ExplainOptions {
                method: Method::GradCam,
                target: Some(top1.into()),
                ..ExplainOptions::default()
            },
        )
        .unwrap();
        let max = e.map.max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(close(version.summary, max), "{} vs {max}", version.summary);
    }
    assert_ne!(evolution.frames[0], evolution.frames[2]);

    // A class given is kept.
    let given = EvolveOptions {
        target: Some(7),
        ..options
    };
    let evolution = evolve(&list, &given, &device(), &Silent).unwrap();
    assert_eq!(evolution.target, Some(7));
    assert_eq!(evolution.target_label.as_deref(), Some("Sneaker"));
}

#[test]
fn unnumbered_files_sort_by_modification_time() {
    let dir = std::env::temp_dir().join(format!("convlens-evolve-mtime-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let now = SystemTime::now();
    for (name, age) in [("alpha.safetensors", 10), ("omega.safetensors", 100)] {
        let path = dir.join(name);
        std::fs::copy(&vgg_checkpoints()[0], &path).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(now - Duration::from_secs(age)).unwrap();
    }
    let list =
        find_checkpoints(&[dir.join("*.safetensors").to_string_lossy().into_owned()]).unwrap();
    assert_eq!(list.order, CheckpointOrder::ModifiedTime);
    let names: Vec<_> = list
        .checkpoints
        .iter()
        .map(|c| c.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["omega.safetensors", "alpha.safetensors"]);
    assert!(list.order_reason.contains("no step number"));
}

#[test]
fn frames_become_a_strip_and_a_looping_gif() {
    let list = order_checkpoints(vgg_checkpoints()).unwrap();
    let evolution = evolve(&list, &EvolveOptions::default(), &device(), &Silent).unwrap();
    let (w, h) = evolution.frames[0].dimensions();
    assert!(evolution.frames.iter().all(|f| f.dimensions() == (w, h)));
    let picture = strip(&evolution.frames);
    assert_eq!(
        picture.dimensions(),
        (3 * (w + STRIP_GAP) + STRIP_GAP, h + 2 * STRIP_GAP)
    );
    assert_eq!(
        *picture.get_pixel(STRIP_GAP + 5, STRIP_GAP + 20),
        *evolution.frames[0].get_pixel(5, 20)
    );

    let bytes = encode_gif(&evolution.frames, 500).unwrap();
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
    use image::AnimationDecoder;
    let frames = decoder.into_frames().collect_frames().unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(frames[0].buffer().dimensions(), (w, h));
    assert_eq!(frames[1].delay().numer_denom_ms(), (500, 1));
}

#[test]
fn bad_requests_get_one_clear_error() {
    let list = order_checkpoints(vgg_checkpoints()).unwrap();
    let unit = EvolveOptions {
        view: View::Unit,
        image: Some(image()),
        ..EvolveOptions::default()
    };
    let text = evolve(&list, &unit, &device(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(text.contains("--layer L --unit U"), "{text}");

    let cam = EvolveOptions {
        view: View::Cam,
        ..EvolveOptions::default()
    };
    let text = evolve(&list, &cam, &device(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(text.contains("needs an image"), "{text}");

    let far = EvolveOptions {
        layer: Some("features.5".into()),
        unit: Some(99),
        ..unit
    };
    let text = evolve(&list, &far, &device(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(text.contains("unit 99 is out of range"), "{text}");

    let text = find_checkpoints(&["/nonexistent/step-*.pt".into()])
        .unwrap_err()
        .to_string();
    assert!(text.contains("/nonexistent/step-*.pt"), "{text}");

    let corrupt = order_checkpoints(vec![run_dir().join("step-000003.safetensors")]).unwrap();
    let text = evolve(&corrupt, &EvolveOptions::default(), &device(), &Silent)
        .unwrap_err()
        .to_string();
    assert!(text.contains("none of the 1 checkpoints loaded"), "{text}");
    assert!(View::from_name("weights").is_err());
}
