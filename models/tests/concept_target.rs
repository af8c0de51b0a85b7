//! The similarity-to-a-reference-image target against pytorch-grad-cam's embeddings tutorial
//! (`tests/fixtures/make_concept_target.py`): on resnet18 (synthetic weights), the cosine
//! similarity of the pooled codes, its input gradient and Grad-CAM.

use std::path::PathBuf;

use candle_core::Tensor;
use convlens_models::explain::{explain, ConceptTarget, ExplainOptions, Method};
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::{LoadOptions, Model};

mod common;
use common::{assert_close, device};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/concept")
}

fn setup() -> (Model, Tensor, ConceptTarget) {
    let model = Model::load("random:resnet18", &LoadOptions::default(), &device()).unwrap();
    let x = synthetic_tensor("input", &[1, 3, 96, 96], 0, &device()).unwrap();
    let reference = synthetic_tensor("concept.reference", &[1, 3, 96, 96], 0, &device()).unwrap();
    let concept = ConceptTarget {
        reference,
        layer: None,
    };
    (model, x, concept)
}

#[test]
fn the_similarity_target_equals_the_tutorials() {
    let (model, x, concept) = setup();
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
            .unwrap();
    let options = |method| ExplainOptions {
        method,
        concept: Some(concept.clone()),
        layer: Some("layer4".into()),
        ..ExplainOptions::default()
    };
    let gradient = explain(&model, &x, &options(Method::Gradient)).unwrap();
    let cosine = manifest["cosine"].as_f64().unwrap() as f32;
    assert!(
        (gradient.score - cosine).abs() < 1e-5,
        "{} vs {cosine}",
        gradient.score
    );
    let want = Tensor::read_npy(fixtures().join("gradient.npy")).unwrap();
    assert_close("gradient of the similarity", &gradient.map, &want, 1e-4);
    let cam = explain(&model, &x, &options(Method::GradCam)).unwrap();
    let want = Tensor::read_npy(fixtures().join("gradcam.npy")).unwrap();
    assert_close("gradcam of the similarity", &cam.map, &want, 1e-4);
    // The code layer named: the same as the default, the pooled code.
    let named = ExplainOptions {
        concept: Some(ConceptTarget {
            layer: Some("avgpool".into()),
            ..concept.clone()
        }),
        ..options(Method::Gradient)
    };
    let again = explain(&model, &x, &named).unwrap();
    assert_close("named layer", &again.map, &gradient.map, 0.0);
}

#[test]
fn a_similarity_target_refuses_a_class_a_region_and_rise() {
    let (model, x, concept) = setup();
    let error = |options: ExplainOptions| explain(&model, &x, &options).unwrap_err().to_string();
    let base = ExplainOptions {
        concept: Some(concept.clone()),
        ..ExplainOptions::default()
    };
    let e = error(ExplainOptions {
        target: Some(3.into()),
        ..base.clone()
    });
    assert!(e.contains("takes no class"), "{e}");
    let e = error(ExplainOptions {
        method: Method::Rise,
        ..base.clone()
    });
    assert!(e.contains("rise"), "{e}");
    let e = error(ExplainOptions {
        concept: Some(ConceptTarget {
            layer: Some("layer9".into()),
            ..concept
        }),
        ..base
    });
    assert!(e.contains("layer9"), "{e}");
}
