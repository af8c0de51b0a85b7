//! Long explanations report each batch and stop when cancelled.

use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Device, Tensor};
use convlens_models::explain::{explain_with_progress, ExplainOptions, Method};
use convlens_models::progress::{CancelFlag, FnProgress};
use convlens_models::{Error, LoadOptions, Model};

fn model_and_input() -> (Model, Tensor) {
    let model = Model::load("random:resnet18", &LoadOptions::default(), &Device::Cpu).unwrap();
    let input = Tensor::randn(0f32, 1f32, (1, 3, 64, 64), &Device::Cpu).unwrap();
    (model, input)
}

#[test]
fn occlusion_reports_every_batch_up_to_the_total() {
    let (model, input) = model_and_input();
    let options = ExplainOptions {
        method: Method::Occlusion,
        window: 16,
        stride: 16,
        batch_size: 5,
        ..Default::default()
    };
    let calls = AtomicUsize::new(0);
    let last = AtomicUsize::new(0);
    let progress = FnProgress(|done: usize, total: usize, _: &str| {
        calls.fetch_add(1, Ordering::SeqCst);
        assert!(done <= total);
        last.store(done * 1000 + total, Ordering::SeqCst);
        Ok(())
    });
    explain_with_progress(&model, &input, &options, &progress).unwrap();
    // 4 × 4 windows in batches of 5: 5, 10, 15, 16.
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(last.load(Ordering::SeqCst), 16 * 1000 + 16);
}

#[test]
fn a_cancelled_smoothgrad_stops_with_the_cancelled_error() {
    let (model, input) = model_and_input();
    let options = ExplainOptions {
        method: Method::SmoothGrad,
        samples: 1000,
        batch_size: 2,
        ..Default::default()
    };
    let flag = CancelFlag::new();
    flag.cancel();
    let result = explain_with_progress(&model, &input, &options, &flag);
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
}

#[test]
fn cancelling_midway_stops_after_that_step() {
    let (model, input) = model_and_input();
    let options = ExplainOptions {
        method: Method::IntegratedGradients,
        steps: 50,
        batch_size: 5,
        ..Default::default()
    };
    let calls = AtomicUsize::new(0);
    let progress = FnProgress(|done: usize, _total: usize, _: &str| {
        calls.fetch_add(1, Ordering::SeqCst);
        if done >= 10 {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    });
    let result = explain_with_progress(&model, &input, &options, &progress);
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
