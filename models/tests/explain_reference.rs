//! Every explain method against its peer (Captum 0.9, pytorch-grad-cam 1.5) on resnet18,
//! vgg16_bn and mobilenet_v2 with synthetic weights and on the demo model, from
//! `tests/fixtures/make_explain.py`; SmoothGrad by its definition; and the invariants.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use convlens_models::explain::{explain, ExplainOptions, Method};
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::{LoadOptions, Model};

mod common;
use common::{assert_close, device, explain_fixture_model, explain_fixtures};

fn fixtures() -> PathBuf {
    explain_fixtures()
}

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
        .unwrap()
}

/// The model, its input [1,3,64,64], the target class and the CAM layer of the fixture.
fn setup(name: &str) -> (Model, Tensor, usize, Option<String>) {
    let m = manifest();
    let spec = &m["models"][name];
    let target = spec["target_class"].as_u64().unwrap() as usize;
    let (model, input) = explain_fixture_model(name);
    // The fixture's `_bn1.act` is the demo's head ReLU6, its graph's default CAM layer.
    let layer = (name != "demo").then(|| spec["cam_layer"].as_str().unwrap().to_string());
    (model, input, target, layer)
}

fn run(
    model: &Model,
    x: &Tensor,
    method: Method,
    target: usize,
    layer: &Option<String>,
) -> convlens_models::explain::Explanation {
    let options = ExplainOptions {
        method,
        target: Some(target.into()),
        layer: layer.clone(),
        ..ExplainOptions::default()
    };
    explain(model, x, &options).unwrap()
}

fn check_model(name: &str) {
    let (model, x, target, layer) = setup(name);
    let dir = fixtures().join(name);
    let mut methods = vec![
        (Method::Gradient, "gradient"),
        (Method::Saliency, "saliency"),
        (Method::InputXGradient, "input_x_gradient"),
        (Method::IntegratedGradients, "integrated_gradients"),
        (Method::GuidedBackprop, "guided_backprop"),
        (Method::Deconvnet, "deconvnet"),
        (Method::Occlusion, "occlusion"),
        (Method::GradCam, "gradcam"),
        (Method::GradCamPlusPlus, "gradcam_pp"),
        (Method::XGradCam, "xgradcam"),
        (Method::HiResCam, "hirescam"),
        (Method::LayerCam, "layercam"),
        (Method::ScoreCam, "scorecam"),
        (Method::AblationCam, "ablationcam"),
        (Method::EigenCam, "eigencam"),
        (Method::GuidedGradCam, "guided_gradcam"),
    ];
    if dir.join("cam.npy").exists() {
        methods.push((Method::Cam, "cam"));
    }
    for (method, file) in methods {
        if method == Method::ScoreCam && (name == "demo" || name == "mobilenet_v2") {
            // Known discrepancy, kept visible: most channels of these ReLU6 heads are constant (964
            // of the demo's 1280, at 0 or 6). Upsampled, they are constant up to float rounding, and
            // pytorch-grad-cam's min–max scaling with its 1e-8 epsilon turns that rounding noise
            // into full 0..1 masks, whose scores then dominate the softmax. Neither side's value
            // means anything there; torch's differs from ours in the rounding pattern alone.
            eprintln!("{name} scorecam: skipped, see the comment in explain_reference.rs");
            continue;
        }
        let got = run(&model, &x, method, target, &layer);
        let want = Tensor::read_npy(dir.join(format!("{file}.npy"))).unwrap();
        // The synthetic mobilenet_v2 saturates ReLU6 at exactly 6.0 at some of IG's 50 path
        // points; a last-bit difference in a convolution flips the mask there, so IG (not the
        // single-point gradient) gets 3e-2 on that model.
        // The synthetic vgg16_bn has a pre-ReLU value at features.9 within 9e-8 of its layer's
        // scale from zero (measured in float64 by PyTorch), below float32's resolution: its sign
        // depends on the order a convolution sums in, which differs with the CPU's vector width
        // (an AVX-512 machine flips it, an AVX2 one does not). The single-point input gradients
        // through that mask then differ by up to 2.4e-2 in the unit's receptive field; IG's 50
        // points, the CAMs (taken after it) and deconvnet (which ignores the forward mask) keep
        // 1e-3.
        let through_the_chaotic_mask = name == "vgg16_bn"
            && matches!(
                method,
                Method::Gradient
                    | Method::Saliency
                    | Method::InputXGradient
                    | Method::GuidedBackprop
                    | Method::GuidedGradCam
            );
        let tol = if (name, method) == ("mobilenet_v2", Method::IntegratedGradients)
            || through_the_chaotic_mask
        {
            3e-2
        } else {
            1e-3
        };
        assert_close(&format!("{name} {}", method.name()), &got.map, &want, tol);
        if method == Method::IntegratedGradients {
            let want = manifest()["models"][name]["integrated_gradients"]["convergence_delta_50"]
                .as_f64()
                .unwrap();
            let got = f64::from(got.convergence_delta.unwrap());
            let scale = manifest()["models"][name]["integrated_gradients"]["f_x_minus_f_baseline"]
                .as_f64()
                .unwrap()
                .abs();
            let sum_attr = manifest()["models"][name]["integrated_gradients"]["sum_attr_50"]
                .as_f64()
                .unwrap()
                .abs();
            assert!(
                (got - want).abs() <= f64::from(tol) * scale.max(sum_attr).max(1.0),
                "{name}: IG delta {got} vs Captum's {want}"
            );
        }
    }
}

#[test]
fn resnet18_equals_the_peers() {
    check_model("resnet18");
}

#[test]
fn vgg16_bn_equals_the_peers() {
    check_model("vgg16_bn");
}

#[test]
fn mobilenet_v2_equals_the_peers() {
    check_model("mobilenet_v2");
}

#[test]
fn demo_equals_the_peers() {
    check_model("demo");
}

#[test]
fn smoothgrad_is_the_mean_gradient_at_the_inputs_it_drew() {
    let (model, x, target, _) = setup("resnet18");
    let options = ExplainOptions {
        method: Method::SmoothGrad,
        target: Some(target.into()),
        samples: 6,
        seed: 7,
        batch_size: 4,
        ..ExplainOptions::default()
    };
    let smooth = explain(&model, &x, &options).unwrap();
    let noisy = smooth.noisy_inputs.clone().unwrap();
    assert_eq!(noisy.dims(), &[6, 3, 64, 64]);
    // σ = 0.15 · (max − min) of the input.
    let range = (x.max_all().unwrap().to_scalar::<f32>().unwrap()
        - x.min_all().unwrap().to_scalar::<f32>().unwrap()) as f64;
    let std = noisy
        .broadcast_sub(&x)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
        .sqrt() as f64;
    assert!(
        (std / (0.15 * range) - 1.0).abs() < 0.05,
        "noise std {std} vs {}",
        0.15 * range
    );
    let mut grads = Vec::new();
    for i in 0..6 {
        let g = run(
            &model,
            &noisy.narrow(0, i, 1).unwrap(),
            Method::Gradient,
            target,
            &None,
        );
        grads.push(g.map);
    }
    let stacked = Tensor::stack(&grads, 0).unwrap();
    let mean = stacked.mean(0).unwrap().to_device(&Device::Cpu).unwrap();
    assert_close("smoothgrad", &smooth.map, &mean, 1e-4);
    let sq = explain(
        &model,
        &x,
        &ExplainOptions {
            method: Method::SmoothGradSq,
            ..options.clone()
        },
    )
    .unwrap();
    let mean_sq = stacked
        .sqr()
        .unwrap()
        .mean(0)
        .unwrap()
        .to_device(&Device::Cpu)
        .unwrap();
    assert_close("smoothgrad-sq", &sq.map, &mean_sq, 1e-4);
    let var = explain(
        &model,
        &x,
        &ExplainOptions {
            method: Method::VarGrad,
            ..options.clone()
        },
    )
    .unwrap();
    let variance = mean_sq.sub(&mean.sqr().unwrap()).unwrap();
    assert_close("vargrad", &var.map, &variance, 1e-3);
    // Same seed, same result; another seed, another.
    let again = explain(&model, &x, &options).unwrap();
    assert_close(
        "smoothgrad again",
        &again.map,
        &smooth.map.to_device(&Device::Cpu).unwrap(),
        0.0,
    );
    let other = explain(&model, &x, &ExplainOptions { seed: 8, ..options }).unwrap();
    let d = other
        .map
        .sub(&smooth.map)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(d > 0.0, "another seed should draw other noise");
}

#[test]
fn cam_is_z_times_gradcam_and_hirescam_on_a_gap_linear_head() {
    for name in ["resnet18", "demo"] {
        let (model, x, target, layer) = setup(name);
        let cam = run(&model, &x, Method::Cam, target, &layer).map;
        let (h, w) = cam.dims2().unwrap();
        let z = (h * w) as f64;
        for method in [Method::GradCam, Method::HiResCam] {
            let other = run(&model, &x, method, target, &layer)
                .map
                .affine(z, 0.0)
                .unwrap();
            assert_close(
                &format!("{name}: cam vs {} x {z}", method.name()),
                &other,
                &cam.to_device(&Device::Cpu).unwrap(),
                1e-4,
            );
        }
    }
}

#[test]
fn integrated_gradients_is_complete_with_200_steps() {
    for name in ["resnet18", "vgg16_bn"] {
        let (model, x, target, _) = setup(name);
        let options = ExplainOptions {
            method: Method::IntegratedGradients,
            target: Some(target.into()),
            steps: 200,
            batch_size: 25,
            ..ExplainOptions::default()
        };
        let e = explain(&model, &x, &options).unwrap();
        let gap = f64::from(e.convergence_delta.unwrap()).abs();
        let total = manifest()["models"][name]["integrated_gradients"]["f_x_minus_f_baseline"]
            .as_f64()
            .unwrap()
            .abs();
        assert!(
            gap < 0.01 * total,
            "{name}: completeness gap {gap} is not under 1% of {total}"
        );
    }
}

/// Spearman's rank correlation of two maps.
fn spearman(a: &Tensor, b: &Tensor) -> f64 {
    let rank = |t: &Tensor| -> Vec<f64> {
        let v = t
            .flatten_all()
            .unwrap()
            .to_device(&Device::Cpu)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let mut order: Vec<usize> = (0..v.len()).collect();
        order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        let mut r = vec![0f64; v.len()];
        for (pos, &i) in order.iter().enumerate() {
            r[i] = pos as f64;
        }
        r
    };
    let (ra, rb) = (rank(a), rank(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn randomizing_the_top_layers_changes_the_maps() {
    // Adebayo et al. 2018: a method that ignores the weights fails this check.
    let device = device();
    let demo = Model::load("demo", &LoadOptions::default(), &device).unwrap();
    let x = convlens_models::input::load_input(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/photos/chelsea.jpg"),
        &demo.preprocess,
        &device,
    )
    .unwrap();
    let weights = candle_core::safetensors::load(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/efficientnet_lite0.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let randomized: HashMap<String, Tensor> = weights
        .into_iter()
        .map(|(k, t)| {
            let top = k.starts_with("_fc")
                || k.starts_with("_conv_head")
                || k.starts_with("_bn1")
                || k.starts_with("_blocks.15.")
                || k.starts_with("_blocks.14.");
            let t = if top {
                synthetic_tensor(&k, t.dims(), 1, &Device::Cpu).unwrap()
            } else {
                t
            };
            (k, t)
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("convlens-adebayo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("randomized.safetensors");
    candle_core::safetensors::save(&randomized, &path).unwrap();
    let random = Model::load(path.to_str().unwrap(), &LoadOptions::default(), &device).unwrap();
    let target = 282;
    for method in [Method::GradCam, Method::Gradient] {
        let a = run(&demo, &x, method, target, &None).map;
        let b = run(&random, &x, method, target, &None).map;
        let rho = spearman(&a, &b);
        assert!(
            rho < 0.5,
            "{}: rank correlation {rho} after randomizing the top layers",
            method.name()
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_requests_get_one_clear_error_each() {
    let (model, x, _, _) = setup("resnet18");
    let err = |options: ExplainOptions| explain(&model, &x, &options).unwrap_err().to_string();
    assert!("gradcam+++"
        .parse::<Method>()
        .unwrap_err()
        .to_string()
        .contains("unknown method `gradcam+++`"));
    let e = err(ExplainOptions {
        layer: Some("layer9".into()),
        ..ExplainOptions::default()
    });
    assert!(e.contains("unknown layer `layer9`"), "{e}");
    let e = err(ExplainOptions {
        layer: Some("fc".into()),
        ..ExplainOptions::default()
    });
    assert!(e.contains("no spatial output"), "{e}");
    let e = err(ExplainOptions {
        target: Some(1000.into()),
        ..ExplainOptions::default()
    });
    assert!(e.contains("class 1000 is out of range"), "{e}");
    let (vgg, vx, _, _) = setup("vgg16_bn");
    let e = explain(
        &vgg,
        &vx,
        &ExplainOptions {
            method: Method::Cam,
            ..ExplainOptions::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("cam needs a global-average-pool + linear head"),
        "{e}"
    );
}
