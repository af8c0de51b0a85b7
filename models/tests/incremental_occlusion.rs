//! Incremental inference (each copy recomputes only the cone of its changed box, from the trace
//! of the unchanged input) equals the full recomputation: the network's output for changed
//! copies, and occlusion's map, on resnet18, vgg16_bn and the demo.

mod common;

use candle_core::{Device, Tensor};
use common::{assert_close, device, explain_fixture_model};
use convlens_models::explain::{explain, ExplainOptions, Method, OcclusionPasses};
use convlens_models::graph::BoxedCopies;
use convlens_models::Model;

/// What the issue asks of the exact fast path: today's results within 1e-5.
const EXACT: f32 = 1e-5;

const MODELS: [&str; 3] = ["resnet18", "vgg16_bn", "demo"];

/// The copies as whole inputs: `x` with each box laid over it.
fn laid_over(x: &Tensor, copies: &BoxedCopies) -> Tensor {
    let (_, _, bh, bw) = copies.patches.dims4().unwrap();
    let (_, _, h, w) = x.dims4().unwrap();
    let mut whole = vec![];
    for (k, &(y, xx)) in copies.origins.iter().enumerate() {
        let mut mask = vec![1f32; h * w];
        for r in y..y + bh {
            for c in xx..xx + bw {
                mask[r * w + c] = 0.0;
            }
        }
        let mask = Tensor::from_vec(mask, (1, 1, h, w), x.device()).unwrap();
        let patch = copies
            .patches
            .narrow(0, k, 1)
            .unwrap()
            .pad_with_zeros(2, y, h - y - bh)
            .unwrap()
            .pad_with_zeros(3, xx, w - xx - bw)
            .unwrap();
        whole.push(x.broadcast_mul(&mask).unwrap().add(&patch).unwrap());
    }
    Tensor::cat(&whole, 0).unwrap()
}

fn changed_copies(
    x: &Tensor,
    box_size: (usize, usize),
    origins: Vec<(usize, usize)>,
) -> BoxedCopies {
    let c = x.dim(1).unwrap();
    let patches = Tensor::randn(
        0f32,
        2f32,
        (origins.len(), c, box_size.0, box_size.1),
        &Device::Cpu,
    )
    .unwrap()
    .to_device(x.device())
    .unwrap();
    BoxedCopies { patches, origins }
}

fn check_outputs(name: &str, model: &Model, x: &Tensor, copies: BoxedCopies) {
    let trace = model.graph.forward(x, None).unwrap();
    let whole = laid_over(x, &copies);
    let got = model.graph.forward_boxed_copies(&trace, copies).unwrap();
    let want = model.graph.forward(&whole, Some(&[])).unwrap();
    let want = want.output().unwrap();
    assert_close(&format!("{name}: incremental output"), &got, want, EXACT);
}

#[test]
fn changed_boxes_give_the_outputs_of_a_full_pass() {
    for name in MODELS {
        let (model, x) = explain_fixture_model(name);
        let (_, _, h, w) = x.dims4().unwrap();
        // Corners, the middle, odd offsets and a box at the far edges.
        let origins = vec![(0, 0), (h - 9, w - 13), (27, 31), (5, 40), (50, 3)];
        check_outputs(name, &model, &x, changed_copies(&x, (9, 13), origins));
        // A one-pixel change, and a box as large as the input.
        check_outputs(
            name,
            &model,
            &x,
            changed_copies(&x, (1, 1), vec![(0, 63), (32, 32)]),
        );
        check_outputs(name, &model, &x, changed_copies(&x, (h, w), vec![(0, 0)]));
    }
}

#[test]
fn concatenations_ceil_mode_pools_and_gates_match_too() {
    // SqueezeNet's Fire modules concatenate and its max pools round up; DenseNet concatenates
    // and average-pools (no locality: the copies run whole from there); GoogLeNet's Inception
    // branches concatenate; MobileNetV3's squeeze-excitation gates multiply by a global mean.
    for name in [
        "squeezenet1_1",
        "densenet121",
        "googlenet",
        "mobilenet_v3_small",
    ] {
        let model = Model::load(&format!("random:{name}"), &Default::default(), &device()).unwrap();
        let x = Tensor::randn(0f32, 1f32, (1, 3, 96, 96), &Device::Cpu)
            .unwrap()
            .to_device(&device())
            .unwrap();
        let origins = vec![(0, 0), (85, 81), (40, 17)];
        check_outputs(name, &model, &x, changed_copies(&x, (11, 15), origins));
    }
}

#[test]
fn a_larger_input_keeps_boxes_deep_and_still_matches() {
    // At 64 px the cones cover the maps after a few layers; at 160 px resnet18's boxes reach
    // its third stage before they do.
    let model = Model::load("random:resnet18", &Default::default(), &device()).unwrap();
    let x = Tensor::randn(0f32, 1f32, (1, 3, 160, 160), &Device::Cpu)
        .unwrap()
        .to_device(&device())
        .unwrap();
    let origins = vec![(0, 0), (144, 144), (70, 11), (150, 80)];
    check_outputs(
        "resnet18 160 px",
        &model,
        &x,
        changed_copies(&x, (10, 16), origins),
    );
}

#[test]
fn incremental_occlusion_equals_the_full_recomputation() {
    for name in MODELS {
        let (model, x) = explain_fixture_model(name);
        // Window 12 stride 7 on 64 px: the last windows are cut at the border.
        let options = |passes| ExplainOptions {
            method: Method::Occlusion,
            window: 12,
            stride: 7,
            batch_size: 16,
            occlusion_passes: passes,
            ..Default::default()
        };
        let fast = explain(&model, &x, &options(OcclusionPasses::Incremental)).unwrap();
        let full = explain(&model, &x, &options(OcclusionPasses::Full)).unwrap();
        // Each value is a drop of the target logit (the logit minus a copy's), so its rounding
        // is the logit's: 1e-5 of the logit (resnet18's logit of 130 is 5 ulp off at most; the
        // other two are equal bit for bit).
        let map_scale = full.map.abs().unwrap().max_all().unwrap();
        let map_scale = map_scale.to_scalar::<f32>().unwrap();
        let tol = EXACT * full.score.abs().max(map_scale) / map_scale;
        assert_close(&format!("{name}: occlusion map"), &fast.map, &full.map, tol);
    }
}
