//! A whole protocol session driven through an in-memory pipe, no socket and no process: the
//! server's connection code is generic over the byte stream (the socket tests keep what is the
//! socket's own: permissions, the peer's uid, framing on a real stream).

use std::sync::Arc;
use std::time::Duration;

mod support;

use convlens_daemon::jobs::JobQueue;
use convlens_daemon::{Config, Service};
use convlens_shared::{codes, Message, Notification};
use serde_json::{json, Value};
use tokio::sync::Notify;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_session_runs_in_memory() {
    let history = std::env::temp_dir().join(format!("convlens-in-memory-{}", std::process::id()));
    let config = Config {
        history_dir: Some(history.clone()),
        ..Config::default()
    };
    let service = Service::new(config).unwrap();
    let _ = service.jobs.set(JobQueue::start(2, 16).unwrap());
    let exit = Arc::new(Notify::new());
    let (mut peer, served) = support::connect(&service, &exit);

    // Nothing before initialize.
    let early = peer.call("model/list", json!({})).await.unwrap_err();
    assert_eq!(early.code, codes::SERVER_NOT_INITIALIZED);
    let init = peer.call("initialize", json!({})).await.unwrap();
    let methods = init["capabilities"]["methods"].as_array().unwrap();
    for m in ["model/load", "unit/maximize", "shutdown"] {
        assert!(
            methods.contains(&json!(m)),
            "initialize lists {m}: {methods:?}"
        );
    }
    assert_eq!(service.clients.count(), 1);

    // A model load.
    let loaded = peer
        .call("model/load", json!({"path": "random:small-vgg"}))
        .await
        .unwrap();
    let model = loaded["modelId"].as_str().unwrap().to_string();
    assert_eq!(loaded["arch"], "small-vgg");

    // A request with progress: a few steps of activation maximization, each reported.
    let short = json!({
        "modelId": model, "class": 3, "preset": "none", "steps": 6, "size": 28,
        "render": false, "workDoneToken": "short"
    });
    let result = peer.call("unit/maximize", short).await.unwrap();
    assert_eq!(result["steps"], 6);
    assert!(peer.reports("short") >= 1, "{:?}", peer.notifications);
    let ended = peer
        .notifications
        .iter()
        .any(|n| n.params["token"] == "short" && n.params["value"]["kind"] == "end");
    assert!(ended, "the work ends with an `end` report");

    // A cancel: a long run stopped once it has reported a step.
    let long = json!({
        "modelId": model, "class": 3, "preset": "none", "steps": 1_000_000, "size": 28,
        "render": false, "workDoneToken": "long"
    });
    let id = peer.start("unit/maximize", long).await;
    let is_step = |n: &Notification| {
        n.params["token"] == "long"
            && n.params["value"]["kind"] == "report"
            && n.params["value"]["message"]
                .as_str()
                .is_some_and(|m| !m.ends_with(" 0/1"))
    };
    assert_cancelled(&mut peer, id, is_step).await;

    // A folder sweep (`folder/evaluate`) reports each image and stops when cancelled.
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/fashion_folder")
        .canonicalize()
        .unwrap();
    let sweep = json!({
        "modelId": model, "image": folder.to_str().unwrap(), "method": "saliency",
        "metrics": ["deletion"], "render": false, "workDoneToken": "sweep"
    });
    let id = peer.start("folder/evaluate", sweep).await;
    let second_image = |n: &Notification| {
        n.params["token"] == "sweep"
            && n.params["value"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("(2 of 250)"))
    };
    assert_cancelled(&mut peer, id, second_image).await;

    // The daemon still serves after the cancel.
    let listed = peer.call("model/list", json!({})).await.unwrap();
    assert_eq!(listed["models"][0]["modelId"], json!(model));

    // Shutdown: answered, then new requests are refused; exit ends the daemon.
    assert_eq!(
        peer.call("shutdown", Value::Null).await.unwrap(),
        Value::Null
    );
    let refused = peer.call("model/list", json!({})).await.unwrap_err();
    assert_eq!(refused.kind(), Some("shuttingDown"), "{refused:?}");
    let exit_notification = Notification {
        method: "exit".into(),
        params: Value::Null,
    };
    peer.send(Message::Notification(exit_notification)).await;
    tokio::time::timeout(Duration::from_secs(10), exit.notified())
        .await
        .expect("exit is signalled");
    drop(peer);
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("the connection ends when the client leaves")
        .unwrap();
    assert_eq!(service.clients.count(), 0);
    if let Some(q) = service.jobs.get() {
        q.close();
    }
    let _ = std::fs::remove_dir_all(history);
}

/// Sends `$/cancelRequest` for request `id` at the first notification `trigger` picks, and
/// requires the request to end cancelled.
async fn assert_cancelled(
    peer: &mut support::Peer,
    id: convlens_shared::RequestId,
    trigger: impl Fn(&Notification) -> bool,
) {
    let response = loop {
        match peer.next().await {
            Message::Notification(n) => {
                let now = trigger(&n);
                peer.notifications.push(n);
                if now {
                    let cancel = Notification {
                        method: "$/cancelRequest".into(),
                        params: json!({"id": id}),
                    };
                    peer.send(Message::Notification(cancel)).await;
                }
            }
            Message::Response(r) if r.id.as_ref() == Some(&id) => break r,
            other => panic!("unexpected {other:?}"),
        }
    };
    let error = response.outcome.unwrap_err();
    assert_eq!(error.code, codes::REQUEST_CANCELLED, "{error:?}");
}
