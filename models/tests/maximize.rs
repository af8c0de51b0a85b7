//! Activation maximization on the demo model: every preset raises a class logit, a channel's
//! mean and a neuron well above their values at the starting image; same seed, same image; bad
//! requests get one clear error; cancelling through the progress hook stops the run.

mod common;

use candle_core::{DType, Tensor};
use convlens_models::maximize::adam::Adam;
use convlens_models::maximize::color::ColorDecorrelation;
use convlens_models::maximize::diversity::gram_similarity;
use convlens_models::maximize::fourier::FourierImage;
use convlens_models::maximize::regularizers::{below_percentile, GaussianBlur};
use convlens_models::maximize::transforms::{Affine, Warp};
use convlens_models::maximize::{maximize, MaximizeOptions, Objective, Preset};
use convlens_models::progress::{CancelFlag, Silent};
use convlens_models::{Error, LoadOptions, Model};

fn demo() -> Model {
    Model::load("demo", &LoadOptions::default(), &common::device()).unwrap()
}

/// Test runs are small: 64-pixel images and a few tens of steps (the presets' own counts are
/// 500–1000 at 224 pixels).
fn size() -> usize {
    std::env::var("SIZE")
        .map(|s| s.parse().unwrap())
        .unwrap_or(64)
}
const SIZE: usize = 64;

fn run(model: &Model, objective: Objective, preset: Preset, steps: usize) -> (f32, f32) {
    let options = MaximizeOptions {
        objective,
        preset,
        steps: Some(steps),
        seed: 7,
        size: Some(size()),
        ..Default::default()
    };
    let result = maximize(model, &options, &Silent).unwrap();
    assert_eq!(result.history.len(), steps);
    if std::env::var("SHOW").is_ok() {
        let h: Vec<f32> = result.history.iter().map(|v| v[0]).collect();
        eprintln!("{h:?}");
    }
    (result.start_values[0], result.final_values[0])
}

/// The objective's own scale at the mean image (zero input, where `none` starts and the other
/// presets start near): the mean |logit| over classes for a class, the mean |activation| of the
/// unit's channel over positions for a channel or a neuron. A run must end at least ten times
/// above the larger of this and its starting value, so that a start near zero (or below it)
/// does not make "ten times the start" trivial.
fn unit_scale(model: &Model, objective: &Objective) -> f32 {
    let x = Tensor::zeros((1, 3, size(), size()), DType::F32, &model.device).unwrap();
    let trace = model.graph.forward(&x, None).unwrap();
    let values = match objective {
        Objective::Class(_) => trace.output().unwrap().clone(),
        Objective::Channel { layer, unit } | Objective::Neuron { layer, unit } => {
            let node = model.graph.node_id(layer).unwrap();
            trace.get(node).unwrap().narrow(1, *unit, 1).unwrap()
        }
    };
    values
        .abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_device(&candle_core::Device::Cpu)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn explore() {
    let model = demo();
    let presets: Vec<Preset> = match std::env::var("PRESETS") {
        Ok(p) => p
            .split(',')
            .map(|n| Preset::from_name(n).unwrap())
            .collect(),
        Err(_) => Preset::all(),
    };
    let steps: usize = std::env::var("STEPS")
        .map(|s| s.parse().unwrap())
        .unwrap_or(30);
    for preset in presets {
        for objective in [
            Objective::Class(1),
            Objective::Channel {
                layer: layer(),
                unit: 5,
            },
            Objective::Neuron {
                layer: layer(),
                unit: 5,
            },
        ] {
            if let Ok(kind) = std::env::var("OBJ") {
                if !objective.describe().starts_with(&kind) {
                    continue;
                }
            }
            let t = std::time::Instant::now();
            let tau = unit_scale(&model, &objective);
            let (a, b) = run(&model, objective.clone(), preset, steps);
            eprintln!(
                "{} {}: {a} -> {b} tau {tau} ratio {} ({:?})",
                preset.name(),
                objective.describe(),
                b / a.max(tau),
                t.elapsed()
            );
        }
    }
}
fn layer() -> String {
    std::env::var("LAYER").unwrap_or("_blocks.10".into())
}

// ---- The pieces against their references (tests/fixtures/make_maximize.py) ----

fn fixture(name: &str) -> Tensor {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/maximize")
        .join(format!("{name}.npy"));
    Tensor::read_npy(path)
        .unwrap()
        .to_device(&common::device())
        .unwrap()
}

fn check(what: &str, got: &Tensor, want: &Tensor) {
    common::assert_close_on_device(what, got, want);
}

/// Lucent's `param.image` (irfftn of the 1/f-scaled spectrum, /4, decorrelated colour,
/// sigmoid) and the gradient through it, for an even and an odd width.
#[test]
fn fourier_color_sigmoid_equal_lucent() {
    let device = common::device();
    for (tag, h, w) in [("even", 8, 10), ("odd", 7, 9)] {
        let fourier = FourierImage::new(h, w, &device).unwrap();
        let color = ColorDecorrelation::new(&device).unwrap();
        let spectrum = fixture(&format!("lucid_{tag}_spectrum"));
        let t = color.to_rgb(&fourier.to_image(&spectrum).unwrap()).unwrap();
        let image = t
            .neg()
            .unwrap()
            .exp()
            .unwrap()
            .affine(1.0, 1.0)
            .unwrap()
            .recip()
            .unwrap();
        check(
            &format!("{tag} image"),
            &image,
            &fixture(&format!("lucid_{tag}_image")),
        );
        let upstream = fixture(&format!("lucid_{tag}_upstream"));
        let grad_t = upstream
            .mul(&image.mul(&image.affine(-1.0, 1.0).unwrap()).unwrap())
            .unwrap();
        let grad = fourier.backward(&color.backward(&grad_t).unwrap()).unwrap();
        check(
            &format!("{tag} spectrum gradient"),
            &grad,
            &fixture(&format!("lucid_{tag}_grad")),
        );
    }
}

#[test]
fn gram_diversity_and_its_gradient_equal_torch() {
    let d = gram_similarity(&fixture("diversity_features")).unwrap();
    let want = fixture("diversity_value").to_vec1::<f32>().unwrap()[0];
    assert!(
        (d.similarity - want).abs() <= 1e-4 * want.abs(),
        "similarity {} vs torch {want}",
        d.similarity
    );
    check(
        "diversity gradient",
        &d.gradient,
        &fixture("diversity_grad"),
    );
}

#[test]
fn gaussian_blur_equals_scipy() {
    let x = fixture("blur_input");
    for (sigma, tag) in [(0.5, "05"), (1.0, "10")] {
        let blur = GaussianBlur::new(sigma, 12, 10, &common::device()).unwrap();
        check(
            &format!("blur σ={sigma}"),
            &blur.apply(&x).unwrap(),
            &fixture(&format!("blur_{tag}")),
        );
    }
}

#[test]
fn percentile_masks_equal_numpy() {
    let values = fixture("percentile_values");
    for pct in [20, 50, 90] {
        let got = below_percentile(&values, pct as f64).unwrap();
        let want = fixture(&format!("percentile_{pct}"));
        let diff = got.sub(&want).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(
            diff.to_scalar::<f32>().unwrap(),
            0.0,
            "mask below the {pct}th percentile"
        );
    }
}

#[test]
fn adam_equals_torch() {
    let mut param = fixture("adam_start");
    let mut adam = Adam::new(&param, 0.05).unwrap();
    let grads = fixture("adam_grads");
    for i in 0..3 {
        param = adam.step(&param, &grads.get(i).unwrap()).unwrap();
    }
    check("Adam after 3 steps", &param, &fixture("adam_end"));
}

/// The one-pass transform (pad 12 with 0.5, affine bilinear resampling, zeros beyond) equals
/// F.pad + F.grid_sample(align_corners=True), forward and backward.
#[test]
fn warp_equals_pad_and_grid_sample() {
    let a = fixture("warp_affine").to_vec1::<f32>().unwrap();
    let affine = Affine {
        xu: a[0] as f64,
        xv: a[1] as f64,
        x0: a[2] as f64,
        yu: a[3] as f64,
        yv: a[4] as f64,
        y0: a[5] as f64,
    };
    let warp = Warp::new(&affine, (20, 20), (34, 34), 12, 0.5, &common::device()).unwrap();
    let out = warp.apply(&fixture("warp_input")).unwrap();
    check("warped", &out, &fixture("warp_output"));
    let grad = warp.backward(&fixture("warp_upstream")).unwrap();
    check("warp gradient", &grad, &fixture("warp_grad"));
}
