//! The daemon over its real socket: several clients at once, bad frames and bad requests,
//! cancellation, refusal of other users, and its lifecycle.

mod daemon_support;

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use convlens_shared::codes;
use convlens_shared::framing::{encode_frame, read_frame};
use convlens_shared::methods::explain::{ExplainParams, ImageExplain};
use convlens_shared::methods::images::FolderParams;
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::predict::{ImagePredict, PredictParams};
use convlens_shared::methods::status::Status;
use convlens_shared::methods::watch::{WatchAdd, WatchParams};
use convlens_shared::methods::NoParams;
use convlens_shared::{Client, ClientError, Message, RequestId};
use daemon_support::{server_error, wait_for, write_input, Daemon};
use serde_json::json;

fn load_demo(client: &Client) -> String {
    client
        .request::<ModelLoad>(&LoadParams {
            path: "demo".into(),
            ..Default::default()
        })
        .unwrap()
        .model
        .model_id
}

#[test]
fn two_clients_at_once_get_their_answers_and_the_shared_notifications() {
    let photos = daemon_support::Scratch::new("photos");
    let d = Daemon::start("two", &["--watch", photos.0.to_str().unwrap()]);
    let (a, b) = (d.client(), d.client());
    let (id_a, id_b) = (load_demo(&a), load_demo(&b));
    assert_eq!(id_a, id_b, "the same model is shared");
    let x1 = photos.path("one.npy");
    let x2 = d.scratch.path("two.npy");
    write_input(&x1, 64, 1);
    write_input(&x2, 64, 2);
    // Both clients' requests are in flight together.
    let pa = a
        .start::<ImagePredict>(&PredictParams {
            model_id: id_a.clone(),
            images: vec![x1.display().to_string()],
            top: 3,
            logits: false,
        })
        .unwrap();
    let pb = b
        .start::<ImageExplain>(&ExplainParams {
            render: false,
            ..ExplainParams::new(id_b.clone(), x2.display().to_string())
        })
        .unwrap();
    let (ra, rb) = (pa.wait().unwrap(), pb.wait().unwrap());
    assert_eq!(ra.predictions[0].image, x1.display().to_string());
    assert_eq!(ra.predictions[0].top.len(), 3);
    assert_eq!(rb.explanations[0].method.name(), "gradcam");
    assert_eq!(
        rb.explanations[0].map.as_ref().unwrap().shape,
        rb.explanations[0].shape
    );

    // A client's own folder watch is its own; the daemon's --watch folder tells everyone.
    let mine = daemon_support::Scratch::new("mine");
    let w = a
        .request::<WatchAdd>(&WatchParams {
            path: mine.0.display().to_string(),
        })
        .unwrap();
    assert!(w.images.is_empty());
    write_input(&mine.path("new.npy"), 8, 3);
    let (got, _) = wait_for(&a, "images/changed", Duration::from_secs(10), |n| {
        n.params["folder"]
            == json!(std::fs::canonicalize(&mine.0)
                .unwrap()
                .display()
                .to_string())
    });
    assert_eq!(
        got.expect("client a hears its own folder").params["added"][0],
        json!(std::fs::canonicalize(&mine.0)
            .unwrap()
            .join("new.npy")
            .display()
            .to_string())
    );
    std::fs::remove_file(&x1).unwrap();
    for (name, c) in [("a", &a), ("b", &b)] {
        let (got, seen) = wait_for(c, "images/changed", Duration::from_secs(10), |n| {
            !n.params["removed"].as_array().unwrap().is_empty()
        });
        assert!(
            got.is_some(),
            "client {name} hears the shared folder: {seen:?}"
        );
        if name == "b" {
            let own = json!(std::fs::canonicalize(&mine.0)
                .unwrap()
                .display()
                .to_string());
            assert!(
                seen.iter().all(|n| n.params["folder"] != own),
                "client b never hears client a's folder: {seen:?}"
            );
        }
    }
}

/// Writes `bytes` on a fresh connection and reads what comes back until the daemon closes it
/// or `timeout` passes; returns the messages and whether it closed.
fn raw_exchange(socket: &std::path::Path, bytes: &[u8]) -> (Vec<Message>, bool) {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&encode_frame(
        br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
    ))
    .unwrap();
    s.write_all(bytes).unwrap();
    let mut reader = BufReader::new(s);
    let mut out = Vec::new();
    loop {
        match read_frame(&mut reader, 1 << 26) {
            Ok(Some(body)) => out.push(Message::parse(&body).unwrap()),
            Ok(None) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

fn error_of(m: &Message) -> (Option<RequestId>, i64, String) {
    match m {
        Message::Response(r) => {
            let e = r.outcome.clone().unwrap_err();
            (
                r.id.clone(),
                e.code,
                e.kind().unwrap_or_default().to_string(),
            )
        }
        other => panic!("not a response: {other:?}"),
    }
}

#[test]
fn bad_frames_and_bad_requests_get_errors_and_the_daemon_goes_on() {
    let d = Daemon::start("frames", &["--max-frame", "1M"]);
    // Unframeable bytes: an error with a null id, then the connection is closed.
    for garbage in [
        &b"hello there\r\n\r\n"[..],
        b"Content-Length: twelve\r\n\r\n{}",
        b"Content-Length: 999999999999\r\n\r\n",
        b"Content-Type: text/plain\r\n\r\n",
    ] {
        let (messages, closed) = raw_exchange(&d.socket, garbage);
        assert!(closed, "{garbage:?}: the connection is closed");
        assert_eq!(
            messages.len(),
            2,
            "{garbage:?}: initialize and one error: {messages:?}"
        );
        let (id, code, kind) = error_of(&messages[1]);
        assert_eq!(
            (id, code, kind.as_str()),
            (None, codes::INVALID_REQUEST, "frame"),
            "{garbage:?}"
        );
    }
    // Over the limit: refused (the body was never read or allocated).
    let (messages, _) = raw_exchange(&d.socket, b"Content-Length: 2000000\r\n\r\n");
    let e = match &messages[1] {
        Message::Response(r) => r.outcome.clone().unwrap_err(),
        m => panic!("{m:?}"),
    };
    assert!(e.message.contains("over the limit"), "{}", e.message);

    // Bad messages inside good frames: an error each, and the same connection goes on.
    let c = Client::connect_uninitialized(&d.socket).unwrap();
    let before = server_error(c.request_raw("status", json!({})));
    assert_eq!(before.code, codes::SERVER_NOT_INITIALIZED);
    c.request_raw("initialize", json!({})).unwrap();
    c.send_bytes(&encode_frame(b"{not json")).unwrap();
    c.send_bytes(&encode_frame(&[0xff, 0xfe, 0x00])).unwrap();
    c.send_bytes(&encode_frame(br#"{"jsonrpc":"2.0","id":"x","params":{}}"#))
        .unwrap();
    let unknown = server_error(c.request_raw("model/explode", json!({})));
    assert_eq!(
        (unknown.code, unknown.kind()),
        (codes::METHOD_NOT_FOUND, Some("methodNotFound"))
    );
    let wrong = server_error(c.request_raw("image/predict", json!({"modelId": 5})));
    assert_eq!(
        (wrong.code, wrong.kind()),
        (codes::INVALID_PARAMS, Some("invalidParams"))
    );
    assert!(wrong.message.contains("image/predict"), "{}", wrong.message);
    let no_model = server_error(c.request_raw(
        "image/predict",
        json!({"modelId": "m99", "images": ["/x.png"]}),
    ));
    assert_eq!(
        (no_model.code, no_model.kind()),
        (codes::REQUEST_FAILED, Some("unknownModel"))
    );
    let missing = server_error(c.request_raw("model/load", json!({"path": "/no/such.pth"})));
    assert_eq!(
        (missing.code, missing.kind()),
        (codes::REQUEST_FAILED, Some("io"))
    );
    assert!(
        missing.message.contains("/no/such.pth"),
        "{}",
        missing.message
    );
    // The errors for the three bad frames came back with a null id or their own.
    let status = c.request_raw("status", json!({})).unwrap();
    assert!(status["pid"].as_u64().is_some());
    drop(c);

    // A raw look at the parse errors' codes.
    let (messages, _) = {
        let mut s = UnixStream::connect(&d.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        for body in [
            &br#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#[..],
            b"{not json",
            br#"{"jsonrpc":"2.0","id":"x","params":{}}"#,
            br#"[1,2]"#,
        ] {
            s.write_all(&encode_frame(body)).unwrap();
        }
        let mut reader = BufReader::new(s);
        let mut out = Vec::new();
        for _ in 0..4 {
            let body = read_frame(&mut reader, 1 << 26).unwrap().unwrap();
            out.push(Message::parse(&body).unwrap());
        }
        (out, ())
    };
    assert_eq!(error_of(&messages[1]).1, codes::PARSE_ERROR);
    assert_eq!(
        error_of(&messages[2]),
        (
            Some(RequestId::String("x".into())),
            codes::INVALID_REQUEST,
            "invalidRequest".into()
        )
    );
    assert_eq!(error_of(&messages[3]).1, codes::INVALID_REQUEST);
    // And the daemon still answers a new client.
    assert!(d.client().request::<Status>(&NoParams {}).is_ok());
}

#[test]
fn cancel_request_stops_a_long_explanation_at_its_next_step() {
    let d = Daemon::start("cancel", &[]);
    let c = d.client();
    let model = load_demo(&c);
    let x = d.scratch.path("x.npy");
    write_input(&x, 64, 7);
    let mut params = ExplainParams::new(model, x.display().to_string());
    params.method = convlens_shared::choices::Method::SmoothGrad.into();
    params.samples = 4000;
    params.batch = 2;
    params.render = false;
    params.work_done_token = Some(RequestId::String("long".into()));
    let pending = c.start::<ImageExplain>(&params).unwrap();
    let is_report = |n: &convlens_shared::Notification| n.params["value"]["kind"] == "report";
    let (first, _) = wait_for(&c, "$/progress", Duration::from_secs(60), |n| {
        is_report(n)
            && n.params["value"]["message"] != json!("image/explain 0/1")
            && n.params["value"]["message"] != json!("explain 0/4000")
    });
    assert!(first.is_some(), "the explanation reports its steps");
    let sent = Instant::now();
    c.cancel(pending.id()).unwrap();
    let outcome = pending.wait_timeout(Duration::from_secs(60));
    let latency = sent.elapsed();
    let mut after = 0;
    while let Some(n) = c.next_notification(Duration::from_millis(10)) {
        if is_report(&n) {
            after += 1;
        }
    }
    match outcome {
        Err(ClientError::Server(e)) => {
            assert_eq!(
                (e.code, e.kind()),
                (codes::REQUEST_CANCELLED, Some("cancelled"))
            )
        }
        other => panic!("expected RequestCancelled, got {other:?}"),
    }
    // It stopped at its next step: at most the report already on its way and one more.
    assert!(after <= 2, "{after} more steps ran after the cancel");
    eprintln!("cancel answered {latency:?} after it was sent");
    assert!(
        c.request::<Status>(&NoParams {}).is_ok(),
        "the daemon goes on"
    );
}

#[test]
fn a_peer_with_another_uid_is_refused() {
    if !rustix_uid_is_root() {
        eprintln!("skipped: switching to another uid needs root, and this runs as another user");
        return;
    }
    // `nobody` runs a copy of the binary that it can reach: the checkout may lie under a 0700
    // folder (root's home, a `mktemp -d`).
    let copy = match binary_for_nobody() {
        Ok(copy) => copy,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let d = Daemon::start("uid", &[]);
    let nobody = |socket: &std::path::Path| {
        use std::os::unix::process::CommandExt;
        std::process::Command::new(&copy.0)
            .args(["status", "--socket"])
            .arg(socket)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("runs as nobody")
    };
    // As made: the folder is 0700 and the socket 0600, so another user cannot even connect.
    let out = nobody(&d.socket);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("no daemon is running"), "{text}");
    // With the permissions opened, the daemon itself refuses the peer (SO_PEERCRED).
    use std::os::unix::fs::PermissionsExt;
    let dir = d.socket.parent().unwrap();
    for p in [d.scratch.0.as_path(), dir] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = nobody(&d.socket);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody must be refused");
    assert!(stderr.contains("closed the connection"), "{stderr}");
    assert!(
        d.log().contains("refused a peer with another uid"),
        "{}",
        d.log()
    );
    // We still get in.
    assert!(d.client().request::<Status>(&NoParams {}).is_ok());
}

/// A copy of the binary removed on drop.
struct BinaryCopy(std::path::PathBuf);

impl Drop for BinaryCopy {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The binary copied into a fresh 0755 folder of the temp folder that every user may enter, or
/// why there is none (a temp folder under a folder others cannot enter).
fn binary_for_nobody() -> Result<BinaryCopy, String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("convlens-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let copy = BinaryCopy(dir.join("convlens"));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::copy(daemon_support::binary(), &copy.0)
        .map_err(|e| format!("copying the binary: {e}"))?;
    std::fs::set_permissions(&copy.0, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", copy.0.display()))?;
    for ancestor in dir.ancestors().skip(1) {
        let mode = std::fs::metadata(ancestor)
            .map_err(|e| format!("{}: {e}", ancestor.display()))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            return Err(format!(
                "another user cannot enter {} (mode {:o}), so it cannot run a copy of the binary \
                 in the temp folder {}",
                ancestor.display(),
                mode & 0o777,
                dir.display()
            ));
        }
    }
    Ok(copy)
}

fn rustix_uid_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

#[test]
fn a_second_daemon_says_one_runs_and_shutdown_then_exit_ends_it() {
    let mut d = Daemon::start("life", &[]);
    let second = std::process::Command::new(daemon_support::binary())
        .args(["daemon", "--socket"])
        .arg(&d.socket)
        .output()
        .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another convlens daemon is running"),
        "{stderr}"
    );
    let c = d.client();
    let listed = c.request_raw(
        "image/list",
        serde_json::to_value(FolderParams {
            folder: "/nonexistent-dir".into(),
        })
        .unwrap(),
    );
    assert_eq!(server_error(listed).kind(), Some("io"));
    c.request_raw("shutdown", json!(null)).unwrap();
    let after = server_error(c.request_raw("status", json!({})));
    assert_eq!(after.kind(), Some("shuttingDown"));
    c.notify::<convlens_shared::methods::lifecycle::Exit>(&NoParams {})
        .unwrap();
    let status = d
        .wait_exit(Duration::from_secs(10))
        .expect("the daemon exits");
    assert!(status.success());
    assert!(!d.socket.exists(), "the socket is removed");
    // A socket file left behind (a crash) is replaced by the next daemon.
    drop(std::os::unix::net::UnixListener::bind(&d.socket).unwrap());
    assert!(d.socket.exists() && Client::connect(&d.socket).is_err());
    let mut child = std::process::Command::new(daemon_support::binary())
        .args(["daemon", "--socket"])
        .arg(&d.socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answered = false;
    while Instant::now() < deadline && !answered {
        answered = Client::connect(&d.socket).is_ok();
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(answered, "a daemon starts on a stale socket");
}
