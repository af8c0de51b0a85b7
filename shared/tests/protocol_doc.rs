//! docs/PROTOCOL.md stays true: every `json` example parses as a JSON-RPC message, its
//! parameters or result as the method's Rust type, and every method has its examples.

use std::collections::BTreeSet;

use convlens_shared::methods::{
    activations, cancel, deconv, evaluate, explain, filters, folder, history, images, lifecycle,
    maximize, model, predict, progress, status, watch,
};
use convlens_shared::{Message, NotificationMethod, RequestMethod};
use serde_json::Value;

/// Checks `params` against a request's parameter type.
fn request_params<M: RequestMethod>(params: Value) -> Result<(), String> {
    let params = if params.is_null() {
        serde_json::json!({})
    } else {
        params
    };
    serde_json::from_value::<M::Params>(params)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Checks `result` against a request's result type.
fn request_result<M: RequestMethod>(result: Value) -> Result<(), String> {
    serde_json::from_value::<M::Result>(result)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Checks `params` against a notification's parameter type.
fn notification_params<N: NotificationMethod>(params: Value) -> Result<(), String> {
    let params = if params.is_null() {
        serde_json::json!({})
    } else {
        params
    };
    serde_json::from_value::<N::Params>(params)
        .map(drop)
        .map_err(|e| e.to_string())
}

type Check = fn(Value) -> Result<(), String>;

/// (name, check of its params, check of its result; `None` for notifications).
fn methods() -> Vec<(&'static str, Check, Option<Check>)> {
    macro_rules! req {
        ($t:ty) => {
            (
                <$t>::NAME,
                request_params::<$t> as Check,
                Some(request_result::<$t> as Check),
            )
        };
    }
    macro_rules! note {
        ($t:ty) => {
            (<$t>::NAME, notification_params::<$t> as Check, None)
        };
    }
    vec![
        req!(lifecycle::Initialize),
        req!(lifecycle::Shutdown),
        note!(lifecycle::Exit),
        note!(cancel::CancelRequest),
        note!(progress::Progress),
        req!(model::ModelLoad),
        req!(model::ModelList),
        req!(model::ModelUnload),
        req!(model::ModelLayers),
        note!(model::ModelReloaded),
        note!(model::ModelReloadFailed),
        req!(history::ModelVersions),
        req!(history::ModelAtVersion),
        req!(predict::ImagePredict),
        req!(explain::ImageExplain),
        req!(evaluate::ImageEvaluate),
        req!(evaluate::FolderEvaluate),
        req!(images::ImageList),
        req!(activations::UnitActivations),
        req!(deconv::UnitDeconv),
        req!(maximize::UnitMaximize),
        req!(filters::LayerFilters),
        req!(folder::FolderEmbed),
        req!(folder::FolderTop),
        req!(folder::FolderNeighbors),
        note!(images::ImagesChanged),
        req!(watch::WatchAdd),
        req!(watch::WatchRemove),
        req!(status::Status),
    ]
}

/// The fenced `json` blocks of the doc with their info strings' words after `json`.
fn examples(doc: &str) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut current: Option<(Vec<String>, String)> = None;
    for line in doc.lines() {
        if let Some((info, body)) = current.as_mut() {
            if line.starts_with("```") {
                out.push((std::mem::take(info), std::mem::take(body)));
                current = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
        } else if let Some(info) = line.strip_prefix("```json") {
            current = Some((
                info.split_whitespace().map(String::from).collect(),
                String::new(),
            ));
        }
    }
    out
}

#[test]
fn every_example_in_protocol_md_fits_its_type_and_every_method_has_one() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md is readable");
    let table = methods();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let blocks = examples(&doc);
    assert!(blocks.len() > 20, "found only {} examples", blocks.len());
    for (info, body) in blocks {
        let message = Message::parse(body.as_bytes())
            .unwrap_or_else(|e| panic!("{info:?}: {} in\n{body}", e.error.message));
        let tag = info.join(" ");
        match (
            info.first().map(String::as_str),
            info.get(1).map(String::as_str),
        ) {
            (Some("error"), _) => {
                let Message::Response(r) = message else {
                    panic!("{tag}: not a response")
                };
                let e = r.outcome.expect_err("an error example holds an error");
                assert!(e.kind().is_some(), "{tag}: an error has data.kind");
            }
            (Some(name), Some(part)) => {
                let (_, params_check, result_check) = table
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .unwrap_or_else(|| panic!("{tag}: unknown method"));
                match (part, message) {
                    ("params", Message::Request(r)) if result_check.is_some() => {
                        assert_eq!(r.method, name, "{tag}");
                        params_check(r.params).unwrap_or_else(|e| panic!("{tag}: {e}"));
                    }
                    ("params", Message::Notification(n)) if result_check.is_none() => {
                        assert_eq!(n.method, name, "{tag}");
                        params_check(n.params).unwrap_or_else(|e| panic!("{tag}: {e}"));
                    }
                    // A partial result: `$/progress` whose value is a piece of the result.
                    ("partial", Message::Notification(n)) => {
                        assert_eq!(n.method, progress::Progress::NAME, "{tag}");
                        let check = result_check.unwrap_or_else(|| panic!("{tag}: no result"));
                        let value = n.params.get("value").cloned().unwrap_or_default();
                        assert!(n.params.get("token").is_some(), "{tag}: no token");
                        check(value).unwrap_or_else(|e| panic!("{tag}: {e}"));
                    }
                    ("result", Message::Response(r)) => {
                        let check = result_check.unwrap_or_else(|| panic!("{tag}: no result"));
                        check(r.outcome.expect("a result"))
                            .unwrap_or_else(|e| panic!("{tag}: {e}"));
                    }
                    (_, m) => panic!("{tag}: unexpected {m:?}"),
                }
                seen.insert(tag);
            }
            _ => panic!("a json block needs `METHOD params|result` or `error`: {tag}"),
        }
    }
    for (name, _, result) in &table {
        assert!(
            seen.contains(&format!("{name} params")),
            "{name} has no params example"
        );
        if result.is_some() {
            assert!(
                seen.contains(&format!("{name} result")),
                "{name} has no result example"
            );
        }
    }
}
