//! LRP against zennit, from `tests/fixtures/make_lrp.py`: the composites EpsilonPlusFlat,
//! EpsilonGammaBox and EpsilonAlpha2Beta1 with BatchNorm merged and the residual sums under the
//! Sum rule, on resnet18, vgg16_bn and the demo (float64 references).

use candle_core::Tensor;
use convlens_models::explain::{explain, ExplainOptions, Method};

mod common;
use common::{assert_close, device_tolerance, explain_fixture_model, explain_fixtures};

fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(explain_fixtures().join("manifest_lrp.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn check(name: &str) {
    let (model, x) = explain_fixture_model(name);
    let target = manifest()["models"][name]["target_class"].as_u64().unwrap() as usize;
    for (method, file) in [
        (Method::LrpEpsilonPlusFlat, "lrp_epsilon_plus_flat"),
        (Method::LrpEpsilonGammaBox, "lrp_epsilon_gamma_box"),
        (Method::LrpEpsilonAlpha2Beta1, "lrp_epsilon_alpha2_beta1"),
    ] {
        let options = ExplainOptions {
            method,
            target: Some(target.into()),
            ..ExplainOptions::default()
        };
        let got = explain(&model, &x, &options).unwrap();
        let want =
            Tensor::read_npy(explain_fixtures().join(name).join(format!("{file}.npy"))).unwrap();
        assert_close(
            &format!("{name} {file}"),
            &got.map,
            &want,
            device_tolerance(),
        );
    }
}

#[test]
fn lrp_equals_zennit_on_resnet18() {
    check("resnet18");
}

#[test]
fn lrp_equals_zennit_on_vgg16_bn() {
    check("vgg16_bn");
}

#[test]
fn lrp_equals_zennit_on_the_demo() {
    check("demo");
}
