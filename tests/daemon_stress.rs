//! 8 clients × 200 mixed requests at once: every answer arrives, to the right request, with no
//! deadlock; unloading the models gives the memory back.

mod daemon_support;

use std::time::Duration;

use convlens_shared::methods::explain::{ExplainParams, ImageExplain};
use convlens_shared::methods::images::{FolderParams, ImageList};
use convlens_shared::methods::model::{
    LayersParams, LoadParams, ModelLayers, ModelList, ModelLoad, ModelRef, ModelUnload,
};
use convlens_shared::methods::predict::{ImagePredict, PredictParams};
use convlens_shared::methods::status::Status;
use convlens_shared::methods::NoParams;
use convlens_shared::Client;
use daemon_support::{write_input, Daemon};

const CLIENTS: usize = 8;
const REQUESTS: usize = 200;
/// Requests each client keeps in flight at once.
const WINDOW: usize = 8;

/// One request of the mix, sent without waiting; the closure checks its answer.
type Check = Box<dyn FnOnce() -> Result<(), String>>;

fn send(c: &Client, i: usize, model: &str, images: &[String], folder: &str) -> Check {
    let image = images[i % images.len()].clone();
    match i % 6 {
        0 | 1 => {
            let p = c
                .start::<ImagePredict>(&PredictParams {
                    model_id: model.into(),
                    images: vec![image.clone()],
                    top: 2,
                    logits: false,
                })
                .unwrap();
            Box::new(move || {
                let r = p.wait().map_err(|e| e.to_string())?;
                (r.predictions.len() == 1 && r.predictions[0].image == image)
                    .then_some(())
                    .ok_or_else(|| format!("predict answered for another image: {r:?}"))
            })
        }
        2 => {
            let mut params = ExplainParams::new(model, image.clone());
            params.render = false;
            params.target = Some((i % 10).into());
            let p = c.start::<ImageExplain>(&params).unwrap();
            Box::new(move || {
                let r = p.wait().map_err(|e| e.to_string())?;
                (r.explanations[0].class == i % 10)
                    .then_some(())
                    .ok_or_else(|| "explain answered for another class".to_string())
            })
        }
        3 => {
            let p = c
                .start::<ModelLayers>(&LayersParams {
                    model_id: model.into(),
                    input_size: 32 + 32 * (i % 2),
                })
                .unwrap();
            Box::new(move || {
                let r = p.wait().map_err(|e| e.to_string())?;
                (r.input_size == 32 + 32 * (i % 2))
                    .then_some(())
                    .ok_or_else(|| "layers answered for another size".to_string())
            })
        }
        4 => {
            let p = c
                .start::<ImageList>(&FolderParams {
                    folder: folder.into(),
                })
                .unwrap();
            let n = images.len();
            Box::new(move || {
                let r = p.wait().map_err(|e| e.to_string())?;
                (r.images.len() == n)
                    .then_some(())
                    .ok_or_else(|| "image/list lost images".to_string())
            })
        }
        _ => {
            let p = if i % 12 == 5 {
                let p = c.start::<ModelList>(&NoParams {}).unwrap();
                return Box::new(move || p.wait().map(drop).map_err(|e| e.to_string()));
            } else {
                c.start::<Status>(&NoParams {}).unwrap()
            };
            Box::new(move || p.wait().map(drop).map_err(|e| e.to_string()))
        }
    }
}

#[test]
fn eight_clients_two_hundred_mixed_requests_each() {
    let d = Daemon::start("stress", &[]);
    let folder = d.scratch.path("images");
    std::fs::create_dir_all(&folder).unwrap();
    let images: Vec<String> = (0..6)
        .map(|k| {
            let p = folder.join(format!("x{k}.npy"));
            write_input(&p, 32, k);
            p.display().to_string()
        })
        .collect();
    let start_rss = d.rss();
    let admin = d.client();
    let model = admin
        .request::<ModelLoad>(&LoadParams {
            path: "random:resnet18".into(),
            ..Default::default()
        })
        .unwrap()
        .model
        .model_id;
    let folder = folder.display().to_string();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|k| {
                let (d, model, images, folder) = (&d, &model, &images, &folder);
                s.spawn(move || {
                    let c = d.client();
                    let mut waiting: std::collections::VecDeque<Check> = Default::default();
                    let mut failures = Vec::new();
                    for i in 0..REQUESTS {
                        waiting.push_back(send(&c, i * CLIENTS + k, model, images, folder));
                        if waiting.len() >= WINDOW {
                            if let Err(e) = (waiting.pop_front().unwrap())() {
                                failures.push(e);
                            }
                        }
                    }
                    for check in waiting {
                        if let Err(e) = check() {
                            failures.push(e);
                        }
                    }
                    failures
                })
            })
            .collect();
        for h in handles {
            let failures = h.join().expect("a client thread panicked");
            assert!(failures.is_empty(), "{failures:?}");
        }
    });
    let status = admin.request::<Status>(&NoParams {}).unwrap();
    assert!(
        status.queue.completed as usize >= CLIENTS * REQUESTS / 2,
        "{status:?}"
    );
    // Predictions only ever ask for images 0 and 1 (i % 6 is 0 or 1) and explanations for
    // image 2, every class of it over the one cached trace: each image costs one forward pass,
    // or one per worker when two workers miss the cache at the same moment.
    assert!(
        (3..=3 * status.queue.workers as u64).contains(&status.forward_passes),
        "{} forward passes for three images",
        status.forward_passes
    );
    let loaded_rss = d.rss();
    admin
        .request::<ModelUnload>(&ModelRef {
            model_id: model.clone(),
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let end_rss = d.rss();
    let mib = |b: u64| b as f64 / 1048576.0;
    eprintln!(
        "rss: start {:.1} MiB, loaded {:.1} MiB, after unload {:.1} MiB",
        mib(start_rss),
        mib(loaded_rss),
        mib(end_rss)
    );
    let after = admin.request::<Status>(&NoParams {}).unwrap();
    assert_eq!(
        (
            after.memory.models,
            after.memory.activation_cache,
            after.memory.result_cache
        ),
        (0, 0, 0),
        "unloading drops the model and its caches"
    );
    assert!(
        end_rss < start_rss + 24 * 1048576,
        "memory back near its start: {:.1} MiB at start, {:.1} MiB after unload",
        mib(start_rss),
        mib(end_rss)
    );
}
