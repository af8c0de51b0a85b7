//! `folder/embed`, `folder/top` and `folder/neighbors` over the real binary and socket answer what
//! the engine answers in-process, on tests/fixtures/fashion_folder/ (250 Fashion-MNIST images)
//! with `random:small-vgg` (28×28 grayscale, so a whole pass is a few small batches).

mod daemon_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use candle_core::Device;
use convlens_models::input::Preprocess;
use convlens_models::progress::Silent;
use convlens_models::represent::neighbors::nearest_by_cosine;
use convlens_models::represent::pca::pca;
use convlens_models::represent::{summarize_folder, FolderSummary, SummaryOptions};
use convlens_models::{LoadOptions, Model};
use convlens_shared::codes;
use convlens_shared::methods::folder::{
    EmbedParams, FolderEmbed, FolderNeighbors, FolderTop, NeighborsParams, TopParams,
};
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::status::Status;
use convlens_shared::methods::NoParams;
use convlens_shared::{Client, RequestId};
use daemon_support::{assert_close, server_error, wait_for, Daemon};

/// The model every test uses: small, and the same weights in the daemon and in-process.
const MODEL: &str = "random:small-vgg";
/// A ReLU of small-vgg at 14×14 positions, with 64 units.
const LAYER: &str = "features.9";

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fashion_folder")
}

fn folder_arg() -> String {
    folder().display().to_string()
}

fn load(client: &Client) -> String {
    client
        .request::<ModelLoad>(&LoadParams {
            path: MODEL.into(),
            ..Default::default()
        })
        .unwrap()
        .model
        .model_id
}

fn engine() -> Model {
    Model::load(MODEL, &LoadOptions::default(), &Device::Cpu).unwrap()
}

/// The engine's pass over the fixture folder, uncached.
fn engine_summary(
    model: &Model,
    layer: Option<&str>,
    preprocess: Option<Preprocess>,
) -> FolderSummary {
    let options = SummaryOptions {
        layer: layer.map(str::to_string),
        preprocess,
        ..SummaryOptions::default()
    };
    summarize_folder(model, &folder(), &options, &Silent).unwrap()
}

fn paths(s: &FolderSummary) -> Vec<String> {
    s.paths.iter().map(|p| p.display().to_string()).collect()
}

#[test]
fn embed_equals_the_engine_reports_progress_and_answers_an_unchanged_folder_at_once() {
    let d = Daemon::start("folder-embed", &[]);
    let c = d.client();
    let id = load(&c);
    let model = engine();
    let want = engine_summary(&model, None, None);

    let mut params = EmbedParams::new(&id, folder_arg());
    params.pass.cache_dir = Some(d.scratch.path("codes").display().to_string());
    params.map = convlens_shared::choices::MapKind::Pca;
    params.codes = true;
    params.render = Some("scatter".into());
    params.work_done_token = Some(RequestId::String("embed".into()));
    let got = c.start::<FolderEmbed>(&params).unwrap().wait().unwrap();
    let (progress, _) = wait_for(&c, "$/progress", Duration::from_secs(5), |n| {
        n.params["token"] == "embed" && n.params["value"]["kind"] == "report"
    });
    assert!(progress.is_some(), "the pass reports $/progress");

    let r = &got.report;
    assert_eq!(r.layer, want.layer);
    assert_eq!((r.units, r.positions), (128, [1, 1]));
    assert_eq!((r.images, r.computed, r.cached), (250, 250, 0));
    assert_eq!(r.forward_passes, 8, "250 images in batches of 32");
    assert_eq!(r.other_files, 2, "README.md and labels.csv are passed over");
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
    assert!(r.cache_file.is_some());
    assert_eq!(got.paths, paths(&want));
    let codes = got.codes.as_ref().expect("codes when asked");
    assert_eq!(codes.shape, [250, 128]);
    assert_close("codes", &codes.to_f32().unwrap(), &want.codes);
    assert_eq!(got.top1_class, want.top1_class);
    assert_close("top-1 probabilities", &got.top1_prob, &want.top1_prob);
    let labels: Vec<String> = want
        .top1_class
        .iter()
        .map(|&c| model.labels[c as usize].clone())
        .collect();
    assert_eq!(got.top1_label, labels);
    let fit = pca(&want.codes, 128, 2, 0, &Device::Cpu).unwrap();
    let points: Vec<f32> = got
        .points
        .as_ref()
        .unwrap()
        .iter()
        .flatten()
        .copied()
        .collect();
    assert_close("PCA map", &points, &fit.projected);
    let picture = got.picture.as_ref().expect("the scatter when asked");
    let image = image::load_from_memory(&picture.to_bytes().unwrap()).unwrap();
    assert!(image.width() >= 800 && image.height() >= 800);

    // The same question again: the kept result, no forward pass.
    let before = c.request::<Status>(&NoParams {}).unwrap().forward_passes;
    params.work_done_token = None;
    let again = c.request::<FolderEmbed>(&params).unwrap();
    assert_eq!(
        (
            again.report.computed,
            again.report.cached,
            again.report.forward_passes
        ),
        (0, 250, 0)
    );
    assert_eq!(again.codes, got.codes);
    assert_eq!(again.points, got.points);
    // Another question on the same folder and layer: the codes come from the disk cache.
    params.map = convlens_shared::choices::MapKind::None;
    params.render = None;
    let other = c.request::<FolderEmbed>(&params).unwrap();
    assert_eq!(
        (
            other.report.computed,
            other.report.cached,
            other.report.forward_passes
        ),
        (0, 250, 0)
    );
    assert_eq!(other.codes, got.codes);
    assert!(other.points.is_none() && other.picture.is_none());
    let after = c.request::<Status>(&NoParams {}).unwrap().forward_passes;
    assert_eq!(after, before, "no forward pass for an unchanged folder");

    // Another input size is the engine's pass at that preprocessing.
    let mut small = EmbedParams::new(&id, folder_arg());
    small.map = convlens_shared::choices::MapKind::None;
    small.codes = true;
    small.pass.size = Some(32);
    small.pass.cache = false;
    let got = c.request::<FolderEmbed>(&small).unwrap();
    let at32 = Preprocess {
        crop: 32,
        resize: 37,
        ..model.preprocess
    };
    let want = engine_summary(&model, None, Some(at32));
    assert_eq!(got.report.computed, 250);
    assert_close(
        "codes at 32×32",
        &got.codes.unwrap().to_f32().unwrap(),
        &want.codes,
    );
}

#[test]
fn top_ranks_like_a_brute_force_over_the_engines_maxima() {
    let d = Daemon::start("folder-top", &[]);
    let c = d.client();
    let id = load(&c);
    let want = engine_summary(&engine(), Some(LAYER), None);
    let (n, units, width) = (want.len(), want.shape.units, want.shape.width);
    assert_eq!((n, units, width), (250, 64, 14));

    let mut params = TopParams::new(&id, folder_arg(), LAYER);
    params.pass.cache = false;
    params.units = vec![0, 7, 63];
    params.k = 5;
    params.render = true;
    let got = c.request::<FolderTop>(&params).unwrap();
    assert_eq!(got.report.layer, LAYER);
    assert_eq!((got.report.units, got.report.positions), (64, [14, 14]));
    assert_eq!(got.units.len(), 3);
    for (ranking, &unit) in got.units.iter().zip(&params.units) {
        assert_eq!(ranking.unit, unit);
        let value = |i: usize| want.max[i * units + unit];
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| value(b).total_cmp(&value(a)).then(a.cmp(&b)));
        assert_eq!(ranking.top.len(), 5);
        for (entry, &i) in ranking.top.iter().zip(&order) {
            assert_eq!(Path::new(&entry.path), want.paths[i]);
            assert_close("maximum", &[entry.value], &[value(i)]);
            let at = want.argmax[i * units + unit] as usize;
            assert_eq!(entry.position, [at / width, at % width]);
        }
    }
    // Every unit's statistics, from the engine's codes and maxima.
    assert_eq!(got.stats.len(), units);
    for s in &got.stats {
        let u = s.unit;
        let mean = (0..n).map(|i| want.codes[i * units + u]).sum::<f32>() / n as f32;
        let max = (0..n)
            .map(|i| want.max[i * units + u])
            .fold(f32::MIN, f32::max);
        let active = (0..n).filter(|&i| want.max[i * units + u] > 0.0).count();
        assert!(
            (s.mean - mean).abs() <= 1e-4 * mean.abs().max(1.0),
            "unit {u}"
        );
        assert_eq!(s.max, max, "unit {u}");
        assert_eq!(s.active_fraction, active as f32 / n as f32, "unit {u}");
        assert_eq!(got.dead.contains(&u), active == 0, "unit {u}");
    }
    let picture = got.picture.expect("the picture when asked");
    assert_eq!(
        (picture.width, picture.height),
        (64 + 5 * 66 + 2, 3 * 66 + 2)
    );
}

#[test]
fn neighbors_equal_the_engines_nearest_by_cosine() {
    let d = Daemon::start("folder-neighbors", &[]);
    let c = d.client();
    let id = load(&c);
    let want = engine_summary(&engine(), None, None);
    let query = folder().join("bag/t00018.png");
    let at = want.paths.iter().position(|p| *p == query).unwrap();

    let mut params = NeighborsParams::new(&id, folder_arg(), query.display().to_string());
    params.pass.cache = false;
    params.k = 6;
    let got = c.request::<FolderNeighbors>(&params).unwrap();
    let nearest = nearest_by_cosine(
        &want.codes,
        want.shape.units,
        want.code(at),
        6,
        &[at],
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(got.neighbors.len(), 6);
    for (g, w) in got.neighbors.iter().zip(&nearest) {
        assert_eq!(Path::new(&g.path), want.paths[w.index]);
        assert_close("similarity", &[g.similarity], &[w.similarity]);
    }
    assert!(got.neighbors.iter().all(|g| Path::new(&g.path) != query));
}

#[test]
fn bad_requests_get_one_clear_error_and_the_daemon_goes_on() {
    let d = Daemon::start("folder-errors", &[]);
    let c = d.client();
    let id = load(&c);

    let mut params = TopParams::new(&id, folder_arg(), "features.99");
    params.pass.cache = false;
    let e = server_error(c.request::<FolderTop>(&params));
    assert_eq!(
        (e.code, e.kind()),
        (codes::REQUEST_FAILED, Some("unknownLayer"))
    );
    assert!(e.message.contains("features.99"), "{}", e.message);

    let missing = d.scratch.path("no-such-folder").display().to_string();
    let mut params = EmbedParams::new(&id, &missing);
    params.pass.cache = false;
    let e = server_error(c.request::<FolderEmbed>(&params));
    assert_eq!((e.code, e.kind()), (codes::REQUEST_FAILED, Some("io")));
    assert!(e.message.contains(&missing), "{}", e.message);

    let mut params = TopParams::new(&id, folder_arg(), LAYER);
    params.pass.cache = false;
    params.units = vec![64];
    let e = server_error(c.request::<FolderTop>(&params));
    assert_eq!(e.kind(), Some("invalidArgument"));
    assert!(
        e.message.contains("unit 64 is out of range"),
        "{}",
        e.message
    );
    params.pass.layer = None;
    params.units.clear();
    let e = server_error(c.request::<FolderTop>(&params));
    assert!(e.message.contains("`layer`"), "{}", e.message);

    let text = d.scratch.path("notes.png");
    std::fs::write(&text, "not a picture").unwrap();
    let mut params = NeighborsParams::new(&id, folder_arg(), text.display().to_string());
    params.pass.cache = false;
    let e = server_error(c.request::<FolderNeighbors>(&params));
    assert_eq!((e.code, e.kind()), (codes::REQUEST_FAILED, Some("format")));
    assert!(e.message.contains("notes.png"), "{}", e.message);

    // Cancelled at the pass's first step (the request cannot have finished 250 images by then).
    let mut params = EmbedParams::new(&id, folder_arg());
    params.pass.cache = false;
    params.map = convlens_shared::choices::MapKind::None;
    let pending = c.start::<FolderEmbed>(&params).unwrap();
    c.cancel(pending.id()).unwrap();
    let e = server_error(pending.wait());
    assert_eq!(e.code, codes::REQUEST_CANCELLED);

    // The daemon still answers.
    let ok = c.request::<FolderEmbed>(&params).unwrap();
    assert_eq!(ok.report.images, 250);
    assert!(c.request::<Status>(&NoParams {}).is_ok());
}
