//! One home for every default: what `convlens SUBCOMMAND --help` prints as `[default: …]`, what
//! the protocol fills in for a parameter left out, and what the engine's `Default` holds all
//! come from `convlens_shared::defaults`; this test fails when one of them changes alone.

mod cli_support;

use std::collections::BTreeMap;

use convlens_models::evaluate::road::RoadOptions;
use convlens_models::explain::ExplainOptions;
use convlens_models::maximize::MaximizeOptions;
use convlens_shared::choices::Metric;
use convlens_shared::choices::{Method, Preset};
use convlens_shared::defaults;
use convlens_shared::methods::activations::ActivationsParams;
use convlens_shared::methods::deconv::DeconvParams;
use convlens_shared::methods::evaluate::EvaluateParams;
use convlens_shared::methods::explain::ExplainParams;
use convlens_shared::methods::filters::FiltersParams;
use convlens_shared::methods::folder::{EmbedParams, NeighborsParams, TopParams};
use convlens_shared::methods::maximize::MaximizeParams;
use convlens_shared::methods::predict::PredictParams;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// Every `--flag` of `convlens SUBCOMMAND --help` with a `[default: …]`, by flag name.
fn help_defaults(subcommand: &str) -> BTreeMap<String, String> {
    let found: BTreeMap<String, String> = cli_support::help_flags(subcommand)
        .into_iter()
        .filter_map(|(flag, default)| Some((flag, default?)))
        .collect();
    assert!(!found.is_empty(), "no defaults in `{subcommand} --help`");
    found
}

/// The protocol's parameters `P` decoded from `required` alone: every default filled in by
/// serde, as the daemon sees a request that leaves them out.
fn protocol_defaults<P: DeserializeOwned + serde::Serialize>(required: Value) -> Value {
    let params: P = serde_json::from_value(required).unwrap();
    serde_json::to_value(params).unwrap()
}

/// The text `--help` prints for a JSON value.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Checks that each (flag, protocol field) pair agrees between `--help` and the protocol.
fn agree(subcommand: &str, protocol: &Value, pairs: &[(&str, &str)]) {
    let help = help_defaults(subcommand);
    for (flag, field) in pairs {
        let shown = help
            .get(*flag)
            .unwrap_or_else(|| panic!("`{subcommand} --help` shows no default for --{flag}"));
        let sent = text(&protocol[*field]);
        // Numbers are compared as numbers (`100` on the command line is `100.0` in JSON), at
        // f32 precision (an f32 default reaches JSON widened to f64).
        let same = match (shown.parse::<f64>(), sent.parse::<f64>()) {
            (Ok(a), Ok(b)) => a as f32 == b as f32,
            _ => shown == &sent,
        };
        assert!(
            same,
            "`convlens {subcommand} --{flag}` defaults to {shown}, `{field}` in the protocol to {sent}"
        );
    }
}

#[test]
fn explain_defaults_agree_between_cli_protocol_and_engine() {
    let protocol =
        protocol_defaults::<ExplainParams>(json!({"modelId": "m1", "image": "/photo.png"}));
    agree(
        "explain",
        &protocol,
        &[
            ("method", "method"),
            ("samples", "samples"),
            ("noise", "noise"),
            ("seed", "seed"),
            ("steps", "steps"),
            ("baseline", "baseline"),
            ("window", "window"),
            ("stride", "stride"),
            ("batch", "batch"),
            ("rise-masks", "riseMasks"),
            ("rise-cells", "riseCells"),
            ("rise-keep", "riseKeep"),
            ("cmap", "cmap"),
            ("alpha", "alpha"),
        ],
    );
    // The engine's defaults are the protocol's.
    let engine = ExplainOptions::default();
    let from_engine = json!({
        "method": engine.method.name(),
        "samples": engine.samples,
        "noise": engine.noise,
        "seed": engine.seed,
        "steps": engine.steps,
        "baseline": engine.baseline.name(),
        "window": engine.window,
        "stride": engine.stride,
        "batch": engine.batch_size,
        "eigenSmooth": engine.eigen_smooth,
        "augSmooth": engine.aug_smooth,
        "riseMasks": engine.rise_masks,
        "riseCells": engine.rise_cells,
        "riseKeep": engine.rise_keep,
    });
    for (field, value) in from_engine.as_object().unwrap() {
        assert_eq!(
            &protocol[field], value,
            "`{field}`: the engine's ExplainOptions::default() and the protocol differ"
        );
    }
    // And the constructor the clients use is the protocol's defaults too.
    let built = serde_json::to_value(ExplainParams::new("m1", "/photo.png")).unwrap();
    assert_eq!(built, protocol);
    assert_eq!(protocol["method"], defaults::explain::METHOD.name());
}

#[test]
fn evaluate_defaults_agree_between_cli_protocol_and_engine() {
    let protocol = protocol_defaults::<EvaluateParams>(
        json!({"modelId": "m1", "image": "/photo.png", "metrics": ["road-morf"]}),
    );
    agree(
        "evaluate",
        &protocol,
        &[
            ("road-noise", "roadNoise"),
            ("seed", "seed"),
            ("batch", "batch"),
            ("perturbations", "perturbations"),
            ("infidelity-noise", "infidelityNoise"),
            ("sensitivity-radius", "sensitivityRadius"),
        ],
    );
    let help = help_defaults("evaluate");
    let percentiles: Vec<f64> = help["road-percentiles"]
        .split([',', ' '])
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(json!(percentiles), protocol["roadPercentiles"]);
    let engine = RoadOptions::default();
    assert_eq!(json!(engine.percentiles), protocol["roadPercentiles"]);
    assert_eq!(json!(engine.noise), protocol["roadNoise"]);
    assert_eq!(json!(engine.seed), protocol["seed"]);
    assert_eq!(json!(engine.batch), protocol["batch"]);
    // --infidelity-unnormalized is off: infidelity normalizes by default.
    assert_eq!(protocol["infidelityNormalize"], json!(true));
    let built = EvaluateParams::new(
        ExplainParams::new("m1", "/photo.png"),
        vec![Metric::RoadMorf],
    );
    assert_eq!(serde_json::to_value(built).unwrap(), protocol);
}

#[test]
fn maximize_defaults_agree_between_cli_protocol_and_engine() {
    let protocol = protocol_defaults::<MaximizeParams>(json!({"modelId": "m1", "class": 1}));
    agree(
        "maximize",
        &protocol,
        &[
            ("preset", "preset"),
            ("seed", "seed"),
            ("diversity", "diversity"),
            ("diversity-weight", "diversityWeight"),
        ],
    );
    let engine = MaximizeOptions::default();
    assert_eq!(protocol["preset"], engine.preset.name());
    assert_eq!(protocol["seed"], engine.seed);
    assert_eq!(protocol["diversity"], engine.images);
    assert_eq!(protocol["diversityWeight"], engine.diversity_weight);
    assert_eq!(protocol["top"], defaults::maximize::TOP);
    let built = serde_json::to_value(MaximizeParams::class("m1", 1)).unwrap();
    assert_eq!(built, protocol);
}

#[test]
fn activations_and_predict_defaults_agree_between_cli_and_protocol() {
    let protocol = protocol_defaults::<ActivationsParams>(
        json!({"modelId": "m1", "image": "/photo.png", "layer": "conv1"}),
    );
    agree(
        "activations",
        &protocol,
        &[("cmap", "cmap"), ("scale", "scale")],
    );
    let protocol = protocol_defaults::<PredictParams>(json!({"modelId": "m1", "images": []}));
    agree("predict", &protocol, &[("top", "top")]);
}

#[test]
fn unit_and_folder_defaults_agree_between_cli_and_protocol() {
    let protocol = protocol_defaults::<DeconvParams>(
        json!({"modelId": "m1", "image": "/photo.png", "layer": "conv1", "units": [0]}),
    );
    agree(
        "deconv",
        &protocol,
        &[("position", "position"), ("rule", "rule"), ("tile", "tile")],
    );
    let protocol = protocol_defaults::<FiltersParams>(json!({"modelId": "m1", "layer": "conv1"}));
    agree(
        "filters",
        &protocol,
        &[
            ("max-filters", "maxFilters"),
            ("max-inputs", "maxInputs"),
            ("dead-ratio", "deadRatio"),
        ],
    );
    let pass = json!({"modelId": "m1", "folder": "/photos", "layer": "conv1"});
    let protocol = protocol_defaults::<EmbedParams>(pass.clone());
    agree(
        "embed",
        &protocol,
        &[
            ("batch", "batch"),
            ("map", "map"),
            ("seed", "seed"),
            ("perplexity", "perplexity"),
            ("iterations", "iterations"),
            ("threads", "threads"),
        ],
    );
    let protocol = protocol_defaults::<TopParams>(pass.clone());
    agree(
        "top",
        &protocol,
        &[("per-unit", "k"), ("tile", "tile"), ("batch", "batch")],
    );
    let mut query = pass;
    query["image"] = json!("/photos/cat.jpg");
    let protocol = protocol_defaults::<NeighborsParams>(query);
    agree(
        "neighbors",
        &protocol,
        &[("count", "k"), ("batch", "batch")],
    );
}

#[test]
fn help_lists_every_name_of_the_closed_sets_in_their_order() {
    let help =
        String::from_utf8_lossy(&cli_support::succeed(&["explain", "--help"]).stdout).into_owned();
    let mut names = Method::NAMES.to_vec();
    names.push("all");
    assert!(
        help.contains(&format!("[possible values: {}]", names.join(", "))),
        "{help}"
    );
    let help =
        String::from_utf8_lossy(&cli_support::succeed(&["maximize", "--help"]).stdout).into_owned();
    assert!(
        help.contains(&format!("[possible values: {}]", Preset::NAMES.join(", "))),
        "{help}"
    );
}
