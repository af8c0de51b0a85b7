//! The model-randomization sanity check: its map similarities against SciPy and scikit-image
//! (`tests/fixtures/make_similarity.py`), and the cascade on the demo.

use candle_core::{Device, Tensor};
use convlens_models::evaluate::randomization::{cascade_groups, cascading_randomization};
use convlens_models::evaluate::relevance::pixel_relevance;
use convlens_models::evaluate::similarity::{spearman, ssim};
use convlens_models::explain::{explain, ExplainOptions, Method};
use convlens_models::progress::Silent;
use convlens_models::weights::synthetic::synthetic_tensor;

mod common;
use common::explain_fixture_model;

fn fixture() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/evaluate/similarity.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// |m| / max |m|, as the sanity check compares maps.
fn scaled(m: &Tensor) -> Tensor {
    let m = m.abs().unwrap();
    let top = m.max_all().unwrap().to_scalar::<f32>().unwrap();
    m.affine(1.0 / f64::from(top), 0.0).unwrap()
}

#[test]
fn similarities_equal_scipy_and_scikit_image() {
    let d = Device::Cpu;
    let a = synthetic_tensor("similarity.a", &[24, 30], 0, &d).unwrap();
    let b = a
        .affine(0.6, 0.0)
        .unwrap()
        .add(
            &synthetic_tensor("similarity.b", &[24, 30], 0, &d)
                .unwrap()
                .affine(0.4, 0.0)
                .unwrap(),
        )
        .unwrap();
    let c = a
        .affine(4.0, 0.0)
        .unwrap()
        .round()
        .unwrap()
        .affine(0.25, 0.0)
        .unwrap();
    let want = fixture();
    for (name, x, y) in [("a_b", &a, &b), ("a_c", &a, &c), ("b_c", &b, &c)] {
        let (x, y) = (scaled(x), scaled(y));
        let rho = spearman(&x, &y).unwrap();
        let s = ssim(&x, &y, 1.0).unwrap();
        let want_rho = want["pairs"][name]["spearman"].as_f64().unwrap() as f32;
        let want_s = want["pairs"][name]["ssim"].as_f64().unwrap() as f32;
        assert!(
            (rho - want_rho).abs() <= 1e-5,
            "{name}: spearman {rho} vs SciPy's {want_rho}"
        );
        assert!(
            (s - want_s).abs() <= 1e-5,
            "{name}: ssim {s} vs scikit-image's {want_s}"
        );
    }
}

#[test]
fn the_cascade_destroys_saliency_on_the_demo_from_the_head_down() {
    let (model, x) = explain_fixture_model("demo");
    let options = ExplainOptions {
        method: Method::Saliency,
        ..ExplainOptions::default()
    };
    let trained = explain(&model, &x, &options).unwrap();
    let options = ExplainOptions {
        target: Some(trained.target().into()),
        ..options
    };
    let relevance = |m: &Tensor| pixel_relevance(m, 64, 64);
    let original = relevance(&trained.map).unwrap();
    let mut explain_randomized =
        |randomized: &convlens_models::Model| relevance(&explain(randomized, &x, &options)?.map);
    let steps =
        cascading_randomization(&model, &original, &mut explain_randomized, 0, &Silent).unwrap();
    let groups = cascade_groups(&model.graph);
    assert_eq!(steps.len(), groups.len());
    assert_eq!(steps[0].layer, "_fc");
    assert_eq!(steps.last().unwrap().layer, "_conv_stem");
    for s in &steps {
        // Untouched weights would leave the map as it was (1.0): saliency follows the weights.
        assert!(s.spearman < 0.9 && s.ssim < 0.9, "{s:?}");
    }
    // The same seed re-draws the same weights.
    let again =
        cascading_randomization(&model, &original, &mut explain_randomized, 0, &Silent).unwrap();
    assert_eq!(steps, again);
}
