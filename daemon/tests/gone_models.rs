//! One-shot clients over a long-lived daemon: models whose file is deleted go once no client
//! holds them, and the resident models stay within the default memory budget (a share of the
//! machine's RAM) without any flag.

mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use convlens_daemon::config::DEFAULT_MEMORY_SHARE;
use convlens_daemon::jobs::JobQueue;
use convlens_daemon::{Config, Service};
use convlens_models::train::{TrainConfig, Trainer};
use serde_json::{json, Value};
use tokio::sync::Notify;

/// A small-vgg checkpoint of its own weights (seed `seed`) at `path`.
fn write_checkpoint(seed: u64, path: &Path) {
    let config = TrainConfig {
        seed,
        ..TrainConfig::default()
    };
    let trainer = Trainer::new(&config, &Device::Cpu).unwrap();
    let state: HashMap<String, Tensor> = trainer.state_dict().unwrap().into_iter().collect();
    candle_core::safetensors::save(&state, path).unwrap();
}

/// A client that connects, loads `path`, and leaves (a one-shot CLI command).
async fn one_shot_load(service: &Arc<Service>, exit: &Arc<Notify>, path: &Path) -> String {
    let (mut peer, served) = support::connect(service, exit);
    peer.call("initialize", json!({})).await.unwrap();
    let loaded = peer
        .call("model/load", json!({"path": path.display().to_string()}))
        .await
        .unwrap();
    drop(peer);
    served.await.unwrap();
    loaded["modelId"].as_str().unwrap().to_string()
}

/// `status` as a client sees it.
async fn status(service: &Arc<Service>, exit: &Arc<Notify>) -> Value {
    let (mut peer, served) = support::connect(service, exit);
    peer.call("initialize", json!({})).await.unwrap();
    let status = peer.call("status", Value::Null).await.unwrap();
    drop(peer);
    served.await.unwrap();
    status
}

/// The ids of the models `status` lists.
fn listed(status: &Value) -> Vec<String> {
    status["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["modelId"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_of_deleted_files_go_once_no_client_holds_them() {
    let scratch: PathBuf =
        std::env::temp_dir().join(format!("convlens-gone-models-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let config = Config {
        history_dir: Some(scratch.join("history")),
        settle: Duration::from_millis(20),
        ..Config::default()
    };
    let service = Service::new(config).unwrap();
    let _ = service.jobs.set(JobQueue::start(2, 64).unwrap());
    let exit = Arc::new(Notify::new());

    // The default budget: a share of the machine's RAM, reported as the default.
    let first = status(&service, &exit).await;
    let ram = convlens_daemon::memory::device_memory(&Device::Cpu).unwrap();
    let budget = first["memory"]["budget"]
        .as_u64()
        .expect("a budget by default");
    assert_eq!(budget, (ram as f64 * DEFAULT_MEMORY_SHARE) as u64);
    assert_eq!(first["memory"]["budgetIsDefault"], true);

    // 50 one-shot loads of distinct files.
    let files: Vec<PathBuf> = (0..50)
        .map(|i| scratch.join(format!("run-{i:02}.safetensors")))
        .collect();
    let mut ids = Vec::new();
    for (i, file) in files.iter().enumerate() {
        write_checkpoint(i as u64, file);
        ids.push(one_shot_load(&service, &exit, file).await);
    }
    let ids_before = ids.clone();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 50, "distinct files are distinct models");
    assert_eq!(listed(&status(&service, &exit).await).len(), 50);

    // A client that stays keeps the model it loaded, even with its file deleted.
    let kept_file = scratch.join("kept.safetensors");
    write_checkpoint(99, &kept_file);
    let (mut holder, holder_served) = support::connect(&service, &exit);
    holder.call("initialize", json!({})).await.unwrap();
    let kept = holder
        .call(
            "model/load",
            json!({"path": kept_file.display().to_string()}),
        )
        .await
        .unwrap()["modelId"]
        .as_str()
        .unwrap()
        .to_string();

    for file in files.iter().chain([&kept_file]) {
        std::fs::remove_file(file).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let s = status(&service, &exit).await;
        if listed(&s) == [kept.clone()] || Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        listed(&after),
        std::slice::from_ref(&kept),
        "only the held model stays"
    );
    assert!(!listed(&after).iter().any(|id| ids_before.contains(id)));
    let models = after["memory"]["models"].as_u64().unwrap();
    let rss = after["memory"]["rss"].as_u64().unwrap();
    assert!(
        models < budget && rss < budget,
        "{models} and {rss} bytes against {budget}"
    );

    // Once its client leaves, the held model goes too.
    drop(holder);
    holder_served.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(&service, &exit).await;
        if listed(&s).is_empty() {
            assert_eq!(s["memory"]["models"], 0);
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {:?}", listed(&s));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(q) = service.jobs.get() {
        q.close();
    }
    drop(service);
    std::fs::remove_dir_all(&scratch).unwrap();
}
