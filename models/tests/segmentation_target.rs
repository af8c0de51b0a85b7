//! Dense targets on segmentation models, from `tests/fixtures/make_segmentation.py`:
//! torchvision's fcn_resnet50, deeplabv3_resnet50 and lraspp_mobilenet_v3_large (synthetic
//! weights) built by convlens give torch's logits, and Grad-CAM of a class summed over the
//! pixels the model assigns to it (or, on FCN, over a box) equals pytorch-grad-cam's with
//! `SemanticSegmentationTarget`. Bad regions get one clear error each.

use std::path::PathBuf;

use candle_core::{Device, Tensor};
use convlens_models::explain::{explain, ExplainOptions, Method, RegionSpec, TargetSpec};
use convlens_models::weights::synthetic::synthetic_tensor;
use convlens_models::{LoadOptions, Model};

mod common;
use common::{assert_close, device, Scratch};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/segmentation")
}

fn manifest() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixtures().join("manifest.json")).unwrap())
        .unwrap()
}

fn want(name: &str) -> Tensor {
    Tensor::read_npy(fixtures().join(name)).unwrap()
}

/// The segmentation models the fixture covers.
const MODELS: [&str; 3] = [
    "fcn_resnet50",
    "deeplabv3_resnet50",
    "lraspp_mobilenet_v3_large",
];

fn load(name: &str) -> (Model, Tensor) {
    let model = Model::load(
        &format!("random:{name}"),
        &LoadOptions::default(),
        &device(),
    )
    .unwrap();
    let x = synthetic_tensor("input", &[1, 3, 64, 64], 0, &device()).unwrap();
    (model, x)
}

fn fcn() -> (Model, Tensor) {
    load("fcn_resnet50")
}

/// `out[0, :, ::8, ::8]` of a [1, C, 64, 64] output, as the fixture keeps it.
fn every_eighth_pixel(out: &Tensor) -> Tensor {
    let every8 = Tensor::arange_step(0u32, 64, 8, out.device()).unwrap();
    out.squeeze(0)
        .unwrap()
        .index_select(&every8, 1)
        .unwrap()
        .index_select(&every8, 2)
        .unwrap()
}

fn gradcam(target: Option<TargetSpec>, region: Option<RegionSpec>) -> ExplainOptions {
    ExplainOptions {
        method: Method::GradCam,
        target,
        region,
        layer: Some("backbone.layer4".into()),
        ..ExplainOptions::default()
    }
}

#[test]
fn segmentation_models_equal_torchvision() {
    for name in MODELS {
        let (model, x) = load(name);
        assert_eq!(model.labels.len(), 21, "{name}");
        assert_eq!(model.labels[15], "person");
        let out = model.logits(&x).unwrap();
        assert_eq!(
            out.dims(),
            &[1, 21, 64, 64],
            "{name}: upsampled to the input"
        );
        let sampled = every_eighth_pixel(&out);
        let logits = want(&format!("{name}_logits_every8.npy"));
        assert_close(&format!("{name} logits"), &sampled, &logits, 1e-4);
        let category = manifest()["models"][name]["category"].as_u64().unwrap() as u32;
        let predicted = out
            .argmax(1)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .eq(category)
            .unwrap()
            .to_dtype(candle_core::DType::F32)
            .unwrap();
        let mask = want(&format!("{name}_predicted.npy"));
        assert_close(&format!("{name} predicted mask"), &predicted, &mask, 0.0);
    }
}

#[test]
fn gradcam_of_the_predicted_pixels_equals_pytorch_grad_cam() {
    for name in MODELS {
        let (model, x) = load(name);
        let m = &manifest()["models"][name];
        let category = m["category"].as_u64().unwrap() as usize;
        let options = ExplainOptions {
            layer: Some(m["cam_layer"].as_str().unwrap().into()),
            ..gradcam(None, None)
        };
        // The pixels the model assigns to the class, which is the default class too.
        let got = explain(&model, &x, &options).unwrap();
        assert_eq!(got.classes, vec![category], "{name}");
        assert!((0.0..=1.0).contains(&got.probability));
        let reference = want(&format!("{name}_gradcam_predicted.npy"));
        assert_close(&format!("{name} gradcam"), &got.map, &reference, 1e-3);
        // The default CAM layer of a torchvision segmentation model is its backbone's last.
        let default = ExplainOptions {
            layer: None,
            ..options
        };
        let default = explain(&model, &x, &default).unwrap();
        assert_eq!(default.layer, got.layer, "{name}: the default layer");
    }
}

#[test]
fn gradcam_of_a_box_equals_pytorch_grad_cam() {
    let (model, x) = fcn();
    let m = manifest();
    let b: Vec<usize> = m["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let region = RegionSpec::Box {
        x0: b[0],
        y0: b[1],
        x1: b[2],
        y1: b[3],
    };
    let class = m["box_class"].as_u64().unwrap() as usize;
    let got = explain(
        &model,
        &x,
        &gradcam(Some(TargetSpec::class(class)), Some(region)),
    )
    .unwrap();
    assert_eq!(got.classes, vec![class]);
    assert_eq!(got.layer.as_deref(), Some("backbone.layer4.2.relu#3"));
    let reference = want("fcn_resnet50_gradcam_box.npy");
    assert_close("gradcam, box", &got.map, &reference, 1e-3);
}

/// fcn_resnet50 with its auxiliary head, as torch.export saved it: its forward returns
/// `{"out": …, "aux": …}`, two graph outputs; convlens runs the one under `out`, with the same
/// synthetic weights bound by state_dict key from a checkpoint beside it (`--graph`).
#[test]
fn an_exported_program_with_a_dict_output_runs_its_out() {
    let program = fixtures().join("fcn_resnet50_aux.pt2");
    let bare = convlens_models::export::load_program(
        &program,
        convlens_models::export::ProgramWeights::Synthetic { seed: 0 },
        &Device::Cpu,
    )
    .unwrap();
    let dict: std::collections::HashMap<String, Tensor> = bare
        .graph
        .parameters()
        .iter()
        .map(|(key, shape)| {
            let t = synthetic_tensor(key, shape, 0, &Device::Cpu).unwrap();
            (key.clone(), t)
        })
        .collect();
    assert!(
        dict.contains_key("aux_classifier.4.weight"),
        "the aux head is in the program"
    );
    let scratch = Scratch::new("fcn-aux");
    let checkpoint = scratch.0.join("fcn_aux.safetensors");
    candle_core::safetensors::save(&dict, &checkpoint).unwrap();
    let options = LoadOptions {
        graph: Some(program),
        ..LoadOptions::default()
    };
    let model = Model::load(checkpoint.to_str().unwrap(), &options, &device()).unwrap();
    let x = synthetic_tensor("input", &[1, 3, 64, 64], 0, &device()).unwrap();
    let out = model.logits(&x).unwrap();
    assert_eq!(out.dims(), &[1, 21, 64, 64]);
    let sampled = every_eighth_pixel(&out);
    let logits = want("fcn_resnet50_logits_every8.npy");
    assert_close("the program's out", &sampled, &logits, 1e-4);
    // Explained as the built-in fcn_resnet50 is: the dense target, at the backbone's layer4.
    let options = ExplainOptions {
        layer: Some("backbone.layer4".into()),
        ..gradcam(None, None)
    };
    let got = explain(&model, &x, &options).unwrap();
    let reference = want("fcn_resnet50_gradcam_predicted.npy");
    assert_close("the program's gradcam", &got.map, &reference, 1e-3);
}

#[test]
fn bad_dense_targets_get_one_clear_error_each() {
    let (model, x) = fcn();
    let error = |options: ExplainOptions| explain(&model, &x, &options).unwrap_err().to_string();
    let outside = RegionSpec::Box {
        x0: 10,
        y0: 0,
        x1: 65,
        y1: 20,
    };
    let e = error(gradcam(None, Some(outside)));
    assert!(e.contains("lies outside the 64×64 image"), "{e}");
    let e = error(gradcam(Some("3+4".parse().unwrap()), None));
    assert!(e.contains("one class"), "{e}");
    let e = error(ExplainOptions {
        method: Method::Rise,
        ..gradcam(None, None)
    });
    assert!(e.contains("rise"), "{e}");
    let e = error(gradcam(
        None,
        Some(RegionSpec::Mask("/no/such/mask.png".into())),
    ));
    assert!(e.contains("/no/such/mask.png"), "{e}");
    // A mask of another size than the input, and one that holds no pixel.
    let scratch = Scratch::new("bad-masks");
    let small = scratch.0.join("small.png");
    image::GrayImage::from_pixel(32, 32, image::Luma([255]))
        .save(&small)
        .unwrap();
    let e = error(gradcam(
        None,
        Some(RegionSpec::Mask(small.to_string_lossy().into_owned())),
    ));
    assert!(
        e.contains("is 32×32, but the model's output is 64×64"),
        "{e}"
    );
    let empty = scratch.0.join("empty.png");
    image::GrayImage::new(64, 64).save(&empty).unwrap();
    let e = error(gradcam(
        None,
        Some(RegionSpec::Mask(empty.to_string_lossy().into_owned())),
    ));
    assert!(e.contains("holds no pixel"), "{e}");
    // A class that no pixel is assigned, without a region.
    let labels = model
        .logits(&x)
        .unwrap()
        .argmax(1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<u32>()
        .unwrap();
    let unassigned = (0..21u32).find(|c| !labels.contains(c)).unwrap();
    let e = error(gradcam(Some(TargetSpec::class(unassigned as usize)), None));
    assert!(
        e.contains(&format!(
            "no pixel of the output is assigned class {unassigned}"
        )),
        "{e}"
    );
    // A region on a classification model.
    let classifier = Model::load("random:resnet18", &LoadOptions::default(), &Device::Cpu).unwrap();
    let x = synthetic_tensor("input", &[1, 3, 64, 64], 0, &Device::Cpu).unwrap();
    let options = ExplainOptions {
        region: Some(RegionSpec::Box {
            x0: 0,
            y0: 0,
            x1: 8,
            y1: 8,
        }),
        ..ExplainOptions::default()
    };
    let e = explain(&classifier, &x, &options).unwrap_err().to_string();
    assert!(e.contains("dense target") && e.contains("[1, 1000]"), "{e}");
}
