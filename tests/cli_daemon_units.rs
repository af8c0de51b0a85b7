//! `convlens filters`, `activations`, `deconv` and `maximize` computed by a running daemon write
//! the same `.npy` and print the same JSON as with `--no-daemon` (the same handlers in this
//! process), and the daemon did the work; `convlens layers` and `model/layers` give a 28×28
//! model's shapes at 28 unless told otherwise, as the engine computes them.

use std::path::Path;
use std::process::Output;

use candle_core::{Device, Tensor};
use convlens_models::{LoadOptions, Model};
use convlens_shared::methods::status::Status;
use convlens_shared::methods::NoParams;

mod cli_support;
mod daemon_support;
use cli_support::succeed;
use daemon_support::{write_input, Daemon};

/// Runs `args` through the daemon `d` and again in-process; both must succeed, and the daemon
/// must have completed at least one more job.
fn both(d: &Daemon, args: &[&str], npy_daemon: &Path, npy_local: &Path) -> (Output, Output) {
    let completed = || {
        d.client()
            .request::<Status>(&NoParams {})
            .unwrap()
            .queue
            .completed
    };
    let before = completed();
    let socket = d.socket.to_str().unwrap();
    let mut with_daemon = vec!["--socket", socket];
    with_daemon.extend_from_slice(args);
    with_daemon.extend_from_slice(&["--npy", npy_daemon.to_str().unwrap()]);
    let served = succeed(&with_daemon);
    assert!(
        completed() > before,
        "{args:?}: the daemon computed nothing"
    );
    let mut local = vec!["--no-daemon", "--socket", socket];
    local.extend_from_slice(args);
    local.extend_from_slice(&["--npy", npy_local.to_str().unwrap()]);
    (served, succeed(&local))
}

/// The two `.npy` files hold the same array.
fn assert_same_npy(what: &str, a: &Path, b: &Path) {
    let (a, b) = (Tensor::read_npy(a).unwrap(), Tensor::read_npy(b).unwrap());
    assert_eq!(a.dims(), b.dims(), "{what}: shape");
    let (a, b) = (
        a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
    );
    assert!(a.iter().any(|v| *v != 0.0), "{what}: all zeros");
    assert_eq!(a, b, "{what}: values");
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn unit_subcommands_through_a_daemon_equal_the_in_process_run() {
    let d = Daemon::start("cli-units", &[]);
    let dir = &d.scratch;
    let input = dir.path("input.npy");
    write_input(&input, 64, 3);
    let input = input.to_str().unwrap();
    let npy = |name: &str| {
        (
            dir.path(&format!("{name}-d.npy")),
            dir.path(&format!("{name}-l.npy")),
        )
    };

    let (a, b) = npy("filters");
    let (served, local) = both(
        &d,
        &["filters", "random:vgg11", "--layer", "features.3", "--json"],
        &a,
        &b,
    );
    assert_same_npy("filters", &a, &b);
    assert_eq!(json(&served), json(&local));
    assert_eq!(json(&served)["layer"], "features.3");

    let (a, b) = npy("activations");
    let (served, local) = both(
        &d,
        &[
            "activations",
            "random:resnet18",
            input,
            "--layer",
            "layer1",
            "--json",
        ],
        &a,
        &b,
    );
    assert_same_npy("activations", &a, &b);
    assert_eq!(json(&served), json(&local));
    assert_eq!(json(&served)["shape"], serde_json::json!([64, 16, 16]));

    let (a, b) = npy("deconv");
    let png = dir.path("deconv.png");
    let (served, local) = both(
        &d,
        &[
            "deconv",
            "random:resnet18",
            input,
            "--layer",
            "layer2",
            "--unit",
            "7,3",
            "--json",
            "-o",
            png.to_str().unwrap(),
        ],
        &a,
        &b,
    );
    assert_same_npy("deconv", &a, &b);
    assert_eq!(json(&served), json(&local));
    assert_eq!(Tensor::read_npy(&a).unwrap().dims(), &[2, 3, 64, 64]);
    assert!(image::open(&png).is_ok());

    let (a, b) = npy("maximize");
    let gif = dir.path("max.gif");
    let (served, local) = both(
        &d,
        &[
            "maximize",
            "random:resnet18",
            "--class",
            "3",
            "--steps",
            "2",
            "--size",
            "64",
            "--diversity",
            "2",
            "--frame-every",
            "1",
            "--gif",
            gif.to_str().unwrap(),
            "--json",
        ],
        &a,
        &b,
    );
    assert_same_npy("maximize", &a, &b);
    assert_eq!(json(&served), json(&local));
    let report = json(&served);
    assert_eq!(report["objective"], "class 3");
    assert_eq!(report["images"].as_array().unwrap().len(), 2);
    assert_eq!(report["images"][0]["top"].as_array().unwrap().len(), 3);
    assert_eq!(Tensor::read_npy(&a).unwrap().dims(), &[2, 3, 64, 64]);
    use image::AnimationDecoder;
    let frames = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
        std::fs::File::open(&gif).unwrap(),
    ))
    .unwrap();
    assert_eq!(frames.into_frames().count(), 3, "steps 0, 1 and 2");
}

#[test]
fn layers_of_a_28_pixel_model_are_shaped_at_28_unless_told() {
    let model = Model::load("random:small-vgg", &LoadOptions::default(), &Device::Cpu).unwrap();
    let own = model.preprocess.crop as usize;
    assert_eq!(own, 28);
    let d = Daemon::start("cli-layers", &[]);
    let socket = d.socket.to_str().unwrap();
    for (flags, size) in [
        (vec!["--no-daemon"], own),
        (vec![], own),
        (vec!["--input-size", "56"], 56),
    ] {
        let mut args = vec!["--socket", socket, "layers", "random:small-vgg", "--json"];
        args.extend(flags.iter().copied());
        let v = json(&succeed(&args));
        assert_eq!(v["inputSize"], size, "{flags:?}");
        let tree = model.layer_tree(size).unwrap();
        let got = v["layers"].as_array().unwrap();
        assert_eq!(got.len(), tree.layers.len());
        for (g, w) in got.iter().zip(&tree.layers) {
            assert_eq!(g["path"], w.path.as_str());
            assert_eq!(
                g["output_shape"],
                serde_json::json!(w.output_shape),
                "{}",
                w.path
            );
        }
    }
    // The protocol's default is the model's own size too.
    let c = d.client();
    let loaded = c
        .request_raw(
            "model/load",
            serde_json::json!({"path": "random:small-vgg"}),
        )
        .unwrap();
    let layers = c
        .request_raw(
            "model/layers",
            serde_json::json!({"modelId": loaded["modelId"]}),
        )
        .unwrap();
    assert_eq!(layers["inputSize"], own);
    assert_eq!(loaded["inputSize"], own);
}

/// The method names of `explain`'s lines (`gradcam: class …`), in the order printed.
fn methods_printed(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(": class "))
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn explain_all_prints_each_method_as_it_is_done_cheap_first() {
    use convlens_shared::choices::MethodSelection;
    let d = Daemon::start("cli-explain-all", &[]);
    let dir = &d.scratch;
    let input = dir.path("input.npy");
    convlens_models::weights::synthetic::synthetic_tensor(
        "input",
        &[1, 1, 28, 28],
        0,
        &Device::Cpu,
    )
    .unwrap()
    .write_npy(&input)
    .unwrap();
    let grid = |name: &str| dir.path(name).to_str().unwrap().to_string();
    let (grid_d, grid_l) = (grid("all-d.png"), grid("all-l.png"));
    let args = |grid: &str| -> Vec<String> {
        [
            "explain",
            "random:small-vgg",
            input.to_str().unwrap(),
            "--method",
            "all",
            "--samples",
            "2",
            "--steps",
            "2",
            "--window",
            "14",
            "--stride",
            "14",
            "-o",
            grid,
        ]
        .map(String::from)
        .to_vec()
    };
    let socket = d.socket.to_str().unwrap();
    let run = |front: &[&str], grid: &str| {
        let mut all: Vec<String> = front.iter().map(|s| s.to_string()).collect();
        all.extend(args(grid));
        succeed(&all.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let served = run(&["--socket", socket], &grid_d);
    let local = run(&["--no-daemon"], &grid_l);
    // Each method's line comes as the method is done, the cheap ones first (CAM, then the
    // single-backward methods … occlusion last), through the daemon's partial results as in
    // this process; the final result adds no line of its own but the grid's order.
    let cheap_first: Vec<String> = MethodSelection::All
        .run_order()
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    for out in [&served, &local] {
        let printed = methods_printed(out);
        let expected: Vec<String> = cheap_first
            .iter()
            .filter(|m| printed.contains(m))
            .cloned()
            .collect();
        assert_eq!(printed, expected, "not cheap first, or printed twice");
        assert!(printed.len() >= 19, "{printed:?}");
        assert_eq!(printed.first().map(String::as_str), Some("cam"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines()
                .last()
                .unwrap_or_default()
                .starts_with("grid: the photo, then gradient,"),
            "{text}"
        );
    }
    assert_eq!(methods_printed(&served), methods_printed(&local));
    for grid in [&grid_d, &grid_l] {
        let picture = image::open(grid).unwrap();
        assert!(picture.width() >= 448, "{grid}");
    }
}
