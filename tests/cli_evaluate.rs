//! `convlens evaluate`: deletion, insertion, the confidence change, ROAD and the randomization
//! check of each method's
//! explanation over images, through the daemon and in-process alike, equal to the engine's on
//! the same map (the engine's agreement with RISE's procedure and pytorch-grad-cam is
//! models/tests/evaluate_reference.rs's); the table, JSON and CSV outputs; one clear error for
//! bad input.

use std::path::PathBuf;

use candle_core::Device;
use convlens_models::evaluate::confidence::{cam_multiplier, confidence_change};
use convlens_models::evaluate::infidelity::{infidelity, infidelity_perturbations};
use convlens_models::evaluate::randomization::{cascade_groups, cascading_randomization};
use convlens_models::evaluate::relevance::input_attribution;
use convlens_models::evaluate::relevance::pixel_relevance;
use convlens_models::evaluate::road::{road, road_combined, RoadOptions, RoadOrder};
use convlens_models::evaluate::sensitivity::{sensitivity_max, sensitivity_perturbations};
use convlens_models::evaluate::{causal_curve, CausalMetric, CausalOptions};
use convlens_models::explain::{explain, ExplainOptions, Method};
use convlens_models::input::load_input;
use convlens_models::progress::Silent;
use convlens_models::{LoadOptions, Model};
use convlens_shared::defaults::{evaluate as evaluate_default, explain as explain_default};

mod cli_support;
use cli_support::{convlens, succeed};

const MODEL: &str = "random:small-vgg";
const IMAGES: [&str; 2] = [
    "tests/fixtures/fashion_folder/bag/t00018.png",
    "tests/fixtures/fashion_folder/ankle_boot/t00000.png",
];

fn image(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The engine's score for `method` and `metric` on `path`, at the default step and class.
fn engine_score(model: &Model, path: &str, method: Method, metric: &str) -> f32 {
    let x = load_input(&image(path), &model.preprocess, &Device::Cpu).unwrap();
    let options = ExplainOptions {
        method,
        ..ExplainOptions::default()
    };
    let e = explain(model, &x, &options).unwrap();
    let (h, w) = (x.dim(2).unwrap(), x.dim(3).unwrap());
    let kind = match metric {
        "deletion" => CausalMetric::Deletion,
        "insertion" => CausalMetric::Insertion,
        "confidence-change" => {
            let cam = cam_multiplier(&e.map, h, w).unwrap();
            return confidence_change(model, &x, &cam, e.target()).unwrap();
        }
        "infidelity" => {
            let noise = infidelity_perturbations(
                x.dims(),
                evaluate_default::PERTURBATIONS,
                evaluate_default::INFIDELITY_NOISE,
                explain_default::SEED,
                &Device::Cpu,
            )
            .unwrap();
            let attribution = input_attribution(&e.map, x.dim(1).unwrap(), h, w).unwrap();
            return infidelity(model, &x, &attribution, e.target(), &noise, true, 16).unwrap();
        }
        "sensitivity-max" => {
            let deltas = sensitivity_perturbations(
                x.dims(),
                evaluate_default::PERTURBATIONS,
                evaluate_default::SENSITIVITY_RADIUS,
                explain_default::SEED,
                &Device::Cpu,
            )
            .unwrap();
            let again_options = ExplainOptions {
                target: Some(e.target().into()),
                ..options.clone()
            };
            let mut again =
                |input: &candle_core::Tensor| Ok(explain(model, input, &again_options)?.map);
            return sensitivity_max(&mut again, &x, &e.map, &deltas, &Silent).unwrap();
        }
        "road-morf" | "road-lerf" | "road-combined" => {
            let cam = cam_multiplier(&e.map, h, w).unwrap();
            let of = |order| {
                road(
                    model,
                    &x,
                    &cam,
                    e.target(),
                    order,
                    &RoadOptions::default(),
                    &Silent,
                )
                .unwrap()
            };
            return match metric {
                "road-morf" => of(RoadOrder::MostRelevantFirst).mean,
                "road-lerf" => of(RoadOrder::LeastRelevantFirst).mean,
                _ => road_combined(
                    &of(RoadOrder::MostRelevantFirst),
                    &of(RoadOrder::LeastRelevantFirst),
                ),
            };
        }
        other => panic!("{other}"),
    };
    let relevance = pixel_relevance(&e.map, h, w).unwrap();
    let mut curve_options = CausalOptions::new(kind);
    curve_options.batch = 16;
    causal_curve(model, &x, &relevance, e.target(), &curve_options, &Silent)
        .unwrap()
        .auc
}

#[test]
fn scores_equal_the_engines_through_the_daemon_and_in_process() {
    let model = Model::load(MODEL, &LoadOptions::default(), &Device::Cpu).unwrap();
    let mut outputs = Vec::new();
    for daemon in [true, false] {
        let mut args = vec![];
        if !daemon {
            args.push("--no-daemon");
        }
        args.extend(["-q", "evaluate", MODEL, IMAGES[0], IMAGES[1]]);
        args.extend(["--method", "gradcam,saliency", "--json"]);
        let out = succeed(&args);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows = rows.as_array().unwrap().clone();
        assert_eq!(rows.len(), 32, "2 images × 2 methods × 8 metrics");
        outputs.push(rows);
    }
    assert_eq!(
        outputs[0], outputs[1],
        "the daemon's scores and the in-process ones"
    );
    for row in &outputs[0] {
        let method = match row["method"].as_str().unwrap() {
            "gradcam" => Method::GradCam,
            "saliency" => Method::Saliency,
            other => panic!("{other}"),
        };
        let metric = row["metric"].as_str().unwrap();
        let want = engine_score(&model, row["image"].as_str().unwrap(), method, metric);
        let got = row["value"].as_f64().unwrap() as f32;
        assert!(
            (got - want).abs() <= 1e-6,
            "{row}: {got} vs the engine's {want}"
        );
        if !matches!(metric, "infidelity" | "sensitivity-max") {
            assert!((-1.0..=1.0).contains(&got), "{row}");
        } else {
            assert!(got >= 0.0, "{row}");
        }
    }
}

#[test]
fn the_randomization_check_equals_the_engines_cascade_and_reports_each_block() {
    let model = Model::load(MODEL, &LoadOptions::default(), &Device::Cpu).unwrap();
    let metrics = "randomization-spearman,randomization-ssim";
    let mut outputs = Vec::new();
    for daemon in [true, false] {
        let mut args = vec![];
        if !daemon {
            args.push("--no-daemon");
        }
        args.extend(["-q", "evaluate", MODEL, IMAGES[0]]);
        args.extend([
            "--method",
            "saliency,guided-backprop",
            "--metric",
            metrics,
            "--json",
        ]);
        let rows: serde_json::Value = serde_json::from_slice(&succeed(&args).stdout).unwrap();
        outputs.push(rows.as_array().unwrap().clone());
    }
    assert_eq!(
        outputs[0], outputs[1],
        "the daemon's cascade and the in-process one"
    );
    assert_eq!(outputs[0].len(), 4, "2 methods × 2 metrics");
    let x = load_input(&image(IMAGES[0]), &model.preprocess, &Device::Cpu).unwrap();
    let (h, w) = (x.dim(2).unwrap(), x.dim(3).unwrap());
    let blocks: Vec<String> = cascade_groups(&model.graph)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for row in &outputs[0] {
        let method: Method = row["method"].as_str().unwrap().parse().unwrap();
        let options = ExplainOptions {
            method,
            ..ExplainOptions::default()
        };
        let trained = explain(&model, &x, &options).unwrap();
        let options = ExplainOptions {
            target: Some(trained.target().into()),
            ..options
        };
        let original = pixel_relevance(&trained.map, h, w).unwrap();
        let mut again = |m: &Model| pixel_relevance(&explain(m, &x, &options)?.map, h, w);
        let steps = cascading_randomization(
            &model,
            &original,
            &mut again,
            explain_default::SEED,
            &Silent,
        )
        .unwrap();
        let layers: Vec<String> = serde_json::from_value(row["layers"].clone()).unwrap();
        assert_eq!(layers, blocks, "{row}");
        let curve: Vec<f32> = serde_json::from_value(row["curve"].clone()).unwrap();
        let want: Vec<f32> = steps
            .iter()
            .map(|s| match row["metric"].as_str().unwrap() {
                "randomization-spearman" => s.spearman,
                _ => s.ssim,
            })
            .collect();
        assert_eq!(curve, want, "{row}");
        let mean = want.iter().sum::<f32>() / want.len() as f32;
        assert!(
            (row["value"].as_f64().unwrap() as f32 - mean).abs() <= 1e-6,
            "{row}"
        );
    }
    // The table ends with the block-by-block report, the output's block first.
    let table = succeed(&[
        "--no-daemon",
        "-q",
        "evaluate",
        MODEL,
        IMAGES[0],
        "--method",
        "saliency",
        "--metric",
        metrics,
    ]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.contains("randomization-ssim after re-initializing each block"),
        "{table}"
    );
    let first = table
        .lines()
        .skip_while(|l| !l.starts_with("block"))
        .nth(1)
        .unwrap();
    assert!(first.starts_with(&blocks[0]), "{table}");
}

#[test]
fn a_folder_is_swept_by_the_daemon_with_each_image_scored_as_alone_and_a_bad_file_listed() {
    let dir = std::env::temp_dir().join(format!("convlens-evaluate-folder-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::copy(image(IMAGES[0]), dir.join("a.png")).unwrap();
    std::fs::copy(image(IMAGES[1]), dir.join("sub/b.png")).unwrap();
    std::fs::write(dir.join("broken.png"), b"not a png").unwrap();
    let metrics = [
        "--metric",
        "deletion,insertion",
        "--method",
        "saliency",
        "--json",
    ];
    let rows = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = succeed(&[args, &metrics[..]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if args
            .iter()
            .any(|a| a.ends_with(dir.file_name().unwrap().to_str().unwrap()))
        {
            assert!(
                stderr.contains("broken.png"),
                "the bad file is named: {stderr}"
            );
        }
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let folder = dir.to_str().unwrap();
    for daemon in [true, false] {
        let head: &[&str] = if daemon { &[] } else { &["--no-daemon"] };
        let swept = rows(&[head, &["evaluate", MODEL, folder]].concat());
        let a = dir.join("a.png");
        let b = dir.join("sub/b.png");
        let alone = rows(
            &[
                head,
                &["evaluate", MODEL, a.to_str().unwrap(), b.to_str().unwrap()],
            ]
            .concat(),
        );
        assert_eq!(swept.len(), 4, "2 images × 2 metrics: {swept:?}");
        assert_eq!(swept, alone, "daemon: {daemon}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_table_and_csv_say_the_same() {
    let args = ["--no-daemon", "-q", "evaluate", MODEL, IMAGES[0], IMAGES[1]];
    let csv = succeed(&[&args[..], &["--method", "saliency", "--csv"]].concat());
    let csv = String::from_utf8(csv.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "image,method,metric,value");
    assert_eq!(lines.len(), 17, "2 images × 8 metrics");
    let values: Vec<f64> = lines[1..]
        .iter()
        .filter(|l| l.contains(",deletion,"))
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let mean = (values[0] + values[1]) / 2.0;
    let table = succeed(&[&args[..], &["--method", "saliency"]].concat());
    let table = String::from_utf8(table.stdout).unwrap();
    let row = table.lines().find(|l| l.starts_with("saliency")).unwrap();
    assert!(
        row.contains(&format!("{mean:.4} ± ")),
        "{table}\nmean {mean:.4}"
    );
    assert!(table.contains("2 images"), "{table}");
    // -o: the deletion and insertion panels side by side.
    let png = std::env::temp_dir().join(format!("convlens-curves-{}.png", std::process::id()));
    succeed(
        &[
            &args[..],
            &["--method", "saliency", "-o", png.to_str().unwrap()],
        ]
        .concat(),
    );
    let picture = image::open(&png).unwrap();
    assert!(picture.width() > 2 * picture.height(), "two panels");
    std::fs::remove_file(&png).ok();
}

#[test]
fn bad_input_gives_one_clear_error() {
    for (args, needle) in [
        (
            vec!["evaluate", MODEL, IMAGES[0], "--metric", "faithfulness"],
            "faithfulness",
        ),
        (
            vec![
                "evaluate",
                MODEL,
                IMAGES[0],
                "--metric",
                "road-morf",
                "--road-percentiles",
                "10,100",
            ],
            "percentile 100",
        ),
        (
            vec![
                "evaluate",
                MODEL,
                IMAGES[0],
                "--metric",
                "road-lerf",
                "--road-noise=-1",
            ],
            "noise",
        ),
        (
            vec![
                "evaluate",
                MODEL,
                IMAGES[0],
                "--metric",
                "sensitivity-max",
                "--sensitivity-radius",
                "0",
            ],
            "radius",
        ),
        (
            vec![
                "evaluate",
                MODEL,
                IMAGES[0],
                "--metric",
                "infidelity",
                "--perturbations",
                "0",
            ],
            "perturbation",
        ),
        (vec!["evaluate", MODEL, IMAGES[0], "--target", "10"], "10"),
        (
            vec!["evaluate", MODEL, IMAGES[0], "--target", "1+2"],
            "the target `1+2` sums several",
        ),
        (vec!["evaluate", MODEL, "no/such.png"], "no/such.png"),
        (vec!["evaluate", MODEL, IMAGES[0], "--step", "0"], "--step"),
    ] {
        let mut all = vec!["--no-daemon", "-q"];
        all.extend(args.iter().copied());
        let out = convlens(&all);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// A map a metric cannot judge skips that metric for that method alone: the demo's Eigen-CAM of
/// chelsea is zero (its minimum) over more than 10 % of the photo, so its 10th percentile is
/// its minimum, no pixel lies below it and ROAD keeps none; Grad-CAM's score still comes,
/// through the daemon and in-process alike.
#[test]
fn a_map_a_metric_cannot_judge_skips_that_metric_alone() {
    for daemon in [true, false] {
        let mut args = vec![];
        if !daemon {
            args.push("--no-daemon");
        }
        args.extend(["-q", "evaluate", "demo", "models/assets/photos/chelsea.jpg"]);
        args.extend(["--method", "eigencam,gradcam", "--metric", "road-combined"]);
        args.push("--json");
        let out = succeed(&args);
        let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let methods: Vec<&str> = rows
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["method"].as_str().unwrap())
            .collect();
        assert_eq!(methods, ["gradcam"], "daemon {daemon}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(
                "eigencam: skipped: road-combined: ROAD: the map's 10th percentile is its minimum"
            ),
            "daemon {daemon}: {err}"
        );
    }
}
