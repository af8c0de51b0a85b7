//! The explain methods added after make_explain.py against their peers, from
//! `tests/fixtures/make_explain_more.py`: pytorch-grad-cam's Eigen-Grad-CAM, element-wise
//! Grad-CAM, `eigen_smooth` and `aug_smooth`, FullGrad, and Captum's DeepLift, DeepLiftShap and GradientShap (with the
//! draws the script injected into Captum), on resnet18, vgg16_bn and the demo.

use candle_core::Tensor;
use convlens_models::explain::{
    deeplift, explain, gradient_shap, rise, ExplainOptions, Method, RiseMasks, ShapDraws,
    TargetSpec,
};
use convlens_models::progress::Silent;
use convlens_models::weights::synthetic::synthetic_tensor;

mod common;
use common::{assert_close, device, explain_fixture_model, explain_fixtures};

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(explain_fixtures().join("manifest_more.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn want(name: &str, file: &str) -> Tensor {
    Tensor::read_npy(explain_fixtures().join(name).join(format!("{file}.npy"))).unwrap()
}

/// The layer make_explain.py's CAMs were taken at (`None`: the demo's default layer).
fn cam_layer(name: &str) -> Option<String> {
    let text = std::fs::read_to_string(explain_fixtures().join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&text).unwrap();
    (name != "demo").then(|| m["models"][name]["cam_layer"].as_str().unwrap().to_string())
}

/// The Shapley methods' baseline distribution [3, 3, 64, 64].
fn shap_baselines() -> Tensor {
    synthetic_tensor("shap.baselines", &[3, 3, 64, 64], 0, &device()).unwrap()
}

fn check_cams(name: &str) {
    let (model, x) = explain_fixture_model(name);
    let target = manifest()["models"][name]["target_class"].as_u64().unwrap() as usize;
    let cams = [
        (Method::EigenGradCam, false, "eigengradcam"),
        (Method::GradCamElementWise, false, "gradcam_elementwise"),
        (Method::KpcaCam, false, "kpcacam"),
        (Method::GradCam, true, "gradcam_eigen_smooth"),
        (Method::LayerCam, true, "layercam_eigen_smooth"),
        (
            Method::GradCamElementWise,
            true,
            "gradcam_elementwise_eigen_smooth",
        ),
    ];
    for (method, eigen_smooth, file) in cams {
        let options = ExplainOptions {
            method,
            target: Some(target.into()),
            layer: cam_layer(name),
            eigen_smooth,
            ..ExplainOptions::default()
        };
        let got = explain(&model, &x, &options).unwrap();
        assert_close(&format!("{name} {file}"), &got.map, &want(name, file), 1e-3);
    }
    for (method, file) in [
        (Method::GradCam, "gradcam_aug_smooth"),
        (Method::EigenCam, "eigencam_aug_smooth"),
    ] {
        let options = ExplainOptions {
            method,
            target: Some(target.into()),
            layer: cam_layer(name),
            aug_smooth: true,
            ..ExplainOptions::default()
        };
        let got = explain(&model, &x, &options).unwrap();
        assert_eq!(
            got.map.dims(),
            &[64, 64],
            "{name} {file}: at the input's resolution"
        );
        assert_close(&format!("{name} {file}"), &got.map, &want(name, file), 1e-3);
    }
}

fn check_shap(name: &str) {
    let (model, x) = explain_fixture_model(name);
    let m = manifest();
    let spec = &m["models"][name];
    let target = spec["target_class"].as_u64().unwrap() as usize;
    let baselines = shap_baselines();

    let options = ExplainOptions {
        method: Method::DeepLift,
        target: Some(target.into()),
        ..ExplainOptions::default()
    };
    let got = explain(&model, &x, &options).unwrap();
    assert_close(
        &format!("{name} deeplift"),
        &got.map,
        &want(name, "deeplift"),
        1e-4,
    );
    // The summation-to-delta gap is Captum's.
    let scale = spec["deeplift"]["f_x_minus_f_baseline"].as_f64().unwrap();
    let captum_gap = spec["deeplift"]["convergence_delta"].as_f64().unwrap();
    let gap = f64::from(got.convergence_delta.unwrap());
    assert!(
        (gap - captum_gap).abs() <= 1e-4 * scale.abs().max(1.0),
        "{name} deeplift: gap {gap} vs Captum's {captum_gap}"
    );

    let (map, gap) = deeplift(&model, &x, &[target], &baselines, 2, &Silent).unwrap();
    assert_close(
        &format!("{name} deeplift-shap"),
        &map,
        &want(name, "deeplift_shap"),
        1e-4,
    );
    // Captum gives one gap per baseline; the mean attribution's gap is their mean.
    let gaps = spec["deeplift_shap"]["convergence_deltas"]
        .as_array()
        .unwrap();
    let captum_gap = gaps.iter().map(|g| g.as_f64().unwrap()).sum::<f64>() / gaps.len() as f64;
    let scale = spec["deeplift_shap"]["mean_f_x_minus_f_baseline"]
        .as_f64()
        .unwrap();
    assert!(
        (f64::from(gap) - captum_gap).abs() <= 1e-4 * scale.abs().max(1.0),
        "{name} deeplift-shap: gap {gap} vs Captum's {captum_gap}"
    );

    let settings = &m["settings"]["gradient_shap"];
    let samples = settings["n_samples"].as_u64().unwrap() as usize;
    let stdev = settings["stdevs"].as_f64().unwrap();
    let noise = synthetic_tensor("gradient_shap.noise", &[samples, 3, 64, 64], 0, &device())
        .unwrap()
        .affine(stdev, 0.0)
        .unwrap();
    let draws = ShapDraws {
        noisy_inputs: noise.broadcast_add(&x).unwrap(),
        baseline_index: settings["baseline_index"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect(),
        alphas: settings["alphas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect(),
    };
    let map = gradient_shap(&model, &[target], &baselines, &draws, 3, &Silent).unwrap();
    // GradientShap is plain gradients at four points: on the synthetic vgg16_bn they pass the
    // ReLU mask at features.9 whose sign float32 cannot resolve (explain_reference.rs says
    // more), which moves them by up to 1.2e-3 here. DeepLift's rescale rule does not read it.
    let tol = if name == "vgg16_bn" { 1e-2 } else { 1e-4 };
    assert_close(
        &format!("{name} gradient-shap"),
        &map,
        &want(name, "gradient_shap"),
        tol,
    );
}

#[test]
fn resnet18_cams_equal_pytorch_grad_cam() {
    check_cams("resnet18");
}

#[test]
fn vgg16_bn_cams_equal_pytorch_grad_cam() {
    check_cams("vgg16_bn");
}

#[test]
fn demo_cams_equal_pytorch_grad_cam() {
    check_cams("demo");
}

#[test]
fn resnet18_deeplift_and_shap_equal_captum() {
    check_shap("resnet18");
}

#[test]
fn vgg16_bn_deeplift_and_shap_equal_captum() {
    check_shap("vgg16_bn");
}

#[test]
fn demo_deeplift_and_shap_equal_captum() {
    check_shap("demo");
}

#[test]
fn gradient_shap_draws_follow_the_seed_and_bad_draws_are_refused() {
    let (model, x) = explain_fixture_model("resnet18");
    let options = |seed| ExplainOptions {
        method: Method::GradientShap,
        samples: 3,
        seed,
        batch_size: 2,
        baseline: convlens_models::explain::Baseline::Noise,
        ..ExplainOptions::default()
    };
    let first = explain(&model, &x, &options(7)).unwrap();
    let again = explain(&model, &x, &options(7)).unwrap();
    let other = explain(&model, &x, &options(8)).unwrap();
    assert_close("same seed", &again.map, &first.map, 0.0);
    let moved = other.map.sub(&first.map).unwrap().abs().unwrap();
    assert!(moved.max_all().unwrap().to_scalar::<f32>().unwrap() > 0.0);
    // It is the mean of the draws' gradient × difference, whatever the batch.
    let baselines = shap_baselines();
    let draws = ShapDraws::draw(&x, 3, &options(7)).unwrap();
    assert_eq!(draws.noisy_inputs.dims(), &[3, 3, 64, 64]);
    assert!(draws.baseline_index.iter().all(|&i| i < 3));
    assert!(draws.alphas.iter().all(|a| (0.0..1.0).contains(a)));
    let whole = gradient_shap(&model, &[1], &baselines, &draws, 3, &Silent).unwrap();
    let one_by_one = gradient_shap(&model, &[1], &baselines, &draws, 1, &Silent).unwrap();
    assert_close("batched", &one_by_one, &whole, 1e-5);

    let far = ShapDraws {
        baseline_index: vec![0, 3, 1],
        ..draws.clone()
    };
    let error = gradient_shap(&model, &[1], &baselines, &far, 3, &Silent).unwrap_err();
    assert!(error.to_string().contains("baseline 3 of 3"), "{error}");
    let short = ShapDraws {
        alphas: vec![0.5],
        ..draws.clone()
    };
    let error = gradient_shap(&model, &[1], &baselines, &short, 3, &Silent).unwrap_err();
    assert!(error.to_string().contains("1 alphas"), "{error}");
    let error = gradient_shap(&model, &[5000], &baselines, &draws, 3, &Silent).unwrap_err();
    assert!(error.to_string().contains("class 5000"), "{error}");
    let error = deeplift(
        &model,
        &x,
        &[1],
        &baselines.narrow(2, 0, 32).unwrap(),
        3,
        &Silent,
    )
    .unwrap_err();
    assert!(error.to_string().contains("baselines"), "{error}");
    let error = deeplift(&model, &x.squeeze(0).unwrap(), &[1], &baselines, 3, &Silent).unwrap_err();
    assert!(error.to_string().contains("DeepLift input"), "{error}");
}

/// Grad-CAM and Integrated Gradients of the sum of the two top classes' logits, as
/// pytorch-grad-cam (a callable target) and Captum (the model wrapped to output the sum) compute
/// them.
fn check_summed(name: &str) {
    let (model, x) = explain_fixture_model(name);
    let classes: Vec<usize> = manifest()["models"][name]["summed_classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap() as usize)
        .collect();
    let target: TargetSpec = format!("{}+{}", classes[0], classes[1]).parse().unwrap();
    // The demo's IG is 8.4e-4 from Captum's for one class already (explain_reference.rs allows
    // 1e-3): its ReLU6 units sit at exactly 0 or 6 at some of the 50 path points, where a last
    // bit flips the mask. Summing two classes' signals puts it at 1.1e-3.
    let ig_tol = if name == "demo" { 3e-3 } else { 1e-4 };
    for (method, file, tol) in [
        (Method::GradCam, "gradcam_summed", 1e-3),
        (
            Method::IntegratedGradients,
            "integrated_gradients_summed",
            ig_tol,
        ),
    ] {
        let options = ExplainOptions {
            method,
            target: Some(target.clone()),
            layer: cam_layer(name),
            ..ExplainOptions::default()
        };
        let got = explain(&model, &x, &options).unwrap();
        assert_eq!(got.classes, classes);
        assert_eq!(got.target(), classes[0]);
        assert_close(&format!("{name} {file}"), &got.map, &want(name, file), tol);
        // The logit and the probability explained are the classes' sums.
        let one = |c: usize| {
            explain(
                &model,
                &x,
                &ExplainOptions {
                    method: Method::Gradient,
                    target: Some(c.into()),
                    ..ExplainOptions::default()
                },
            )
            .unwrap()
        };
        let (a, b) = (one(classes[0]), one(classes[1]));
        assert!((got.score - (a.score + b.score)).abs() <= 1e-4 * got.score.abs().max(1.0));
        assert!((got.probability - (a.probability + b.probability)).abs() <= 1e-6);
    }
}

#[test]
fn resnet18_summed_targets_equal_the_peers() {
    check_summed("resnet18");
}

#[test]
fn demo_summed_targets_equal_the_peers() {
    check_summed("demo");
}

#[test]
fn the_demo_takes_its_classes_by_label() {
    let (model, x) = explain_fixture_model("demo");
    let options = |target: &str| ExplainOptions {
        method: Method::GradCam,
        target: Some(target.parse().unwrap()),
        ..ExplainOptions::default()
    };
    let got = explain(&model, &x, &options("tabby+Tiger Cat")).unwrap();
    assert_eq!(got.classes, vec![281, 282]);
    let error = explain(&model, &x, &options("tabby+tigger cat")).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no class is labelled `tigger cat`; did you mean tiger cat"),
        "{error}"
    );
    let error = explain(&model, &x, &options("1000")).unwrap_err();
    assert!(
        error.to_string().contains("class 1000 is out of range"),
        "{error}"
    );
}

/// RISE's masks as make_explain_more.py draws them from the synthetic streams.
fn rise_masks(size: usize) -> (RiseMasks, f64, usize) {
    let m = manifest();
    let spec = &m["settings"]["rise"];
    let count = spec["masks"].as_u64().unwrap() as usize;
    let cells = spec["cells"].as_u64().unwrap() as usize;
    let grid = synthetic_tensor(
        "rise.grid",
        &[count, cells, cells],
        0,
        &candle_core::Device::Cpu,
    )
    .unwrap()
    .lt(0f32)
    .unwrap()
    .to_dtype(candle_core::DType::F32)
    .unwrap();
    let cell = size.div_ceil(cells);
    let u = synthetic_tensor("rise.shift", &[count, 2], 0, &candle_core::Device::Cpu)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let shift = |v: f32| (((v + 1.0) / 2.0 * cell as f32).floor() as usize).min(cell - 1);
    let shifts = u.iter().map(|r| (shift(r[0]), shift(r[1]))).collect();
    let masks = RiseMasks {
        grids: grid,
        shifts,
    };
    (
        masks,
        spec["keep"].as_f64().unwrap(),
        spec["batch"].as_u64().unwrap() as usize,
    )
}

fn check_rise(name: &str) {
    let (model, x) = explain_fixture_model(name);
    let target = manifest()["models"][name]["target_class"].as_u64().unwrap() as usize;
    let (masks, keep, batch) = rise_masks(64);
    let got = rise(&model, &x, &[target], &masks, keep, batch, &Silent).unwrap();
    assert_close(&format!("{name} rise"), &got, &want(name, "rise"), 1e-4);
    // Another batching sums the same copies.
    let again = rise(&model, &x, &[target], &masks, keep, 7, &Silent).unwrap();
    assert_close(&format!("{name} rise by 7"), &again, &got, 1e-5);
}

#[test]
fn resnet18_rise_equals_the_authors_code() {
    check_rise("resnet18");
}

#[test]
fn vgg16_bn_rise_equals_the_authors_code() {
    check_rise("vgg16_bn");
}

#[test]
fn demo_rise_equals_the_authors_code() {
    check_rise("demo");
}

#[test]
fn rise_draws_follow_the_seed_and_bad_parameters_are_refused() {
    let (model, x) = explain_fixture_model("resnet18");
    let options = |seed, masks, cells, keep| ExplainOptions {
        method: Method::Rise,
        seed,
        rise_masks: masks,
        rise_cells: cells,
        rise_keep: keep,
        ..ExplainOptions::default()
    };
    let first = explain(&model, &x, &options(3, 20, 7, 0.5)).unwrap();
    assert_eq!(first.map.dims(), &[64, 64]);
    let again = explain(&model, &x, &options(3, 20, 7, 0.5)).unwrap();
    assert_close("same seed", &again.map, &first.map, 0.0);
    let draws = RiseMasks::draw(20, 7, 0.5, 64, 64, 3).unwrap();
    let kept = draws.grids.mean_all().unwrap().to_scalar::<f32>().unwrap();
    assert!((0.3..0.7).contains(&kept), "{kept}");
    assert!(draws.shifts.iter().all(|&(a, b)| a < 10 && b < 10));
    let masks = draws.masks(0, 20, 64, 64, &device()).unwrap();
    let (lo, hi) = (
        masks.min_all().unwrap().to_scalar::<f32>().unwrap(),
        masks.max_all().unwrap().to_scalar::<f32>().unwrap(),
    );
    assert!(lo >= 0.0 && hi <= 1.0 + 1e-6, "{lo} {hi}");
    let error = draws.masks(15, 10, 64, 64, &device()).unwrap_err();
    assert!(error.to_string().contains("asked of RISE's 20"), "{error}");
    for (masks, cells, keep, needle) in [
        (0, 7, 0.5, "at least one mask"),
        (20, 0, 0.5, "does not fit"),
        (20, 65, 0.5, "does not fit"),
        (20, 7, 0.0, "probability in (0, 1]"),
        (20, 7, 1.5, "probability in (0, 1]"),
    ] {
        let error = explain(&model, &x, &options(3, masks, cells, keep)).unwrap_err();
        assert!(error.to_string().contains(needle), "{error}");
    }
}

fn check_fullgrad(name: &str, tol: f32) {
    let (model, x) = explain_fixture_model(name);
    let target = manifest()["models"][name]["target_class"].as_u64().unwrap() as usize;
    let options = ExplainOptions {
        method: Method::FullGrad,
        target: Some(target.into()),
        ..ExplainOptions::default()
    };
    let got = explain(&model, &x, &options).unwrap();
    assert_close(
        &format!("{name} fullgrad"),
        &got.map,
        &want(name, "fullgrad"),
        tol,
    );
}

#[test]
fn resnet18_fullgrad_equals_pytorch_grad_cam() {
    check_fullgrad("resnet18", 1e-4);
}

#[test]
fn vgg16_bn_fullgrad_equals_pytorch_grad_cam() {
    // Its input-gradient term goes through the synthetic vgg16_bn's chaotic ReLU mask at
    // features.9 (see explain_reference.rs), which moves the map by 4.9e-4 on an AVX-512 CPU.
    check_fullgrad("vgg16_bn", 1e-2);
}

#[test]
fn demo_fullgrad_equals_pytorch_grad_cam() {
    check_fullgrad("demo", 1e-4);
}
