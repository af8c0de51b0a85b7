//! Rendering tests: the app driven by key presses and daemon answers, drawn on ratatui's
//! TestBackend at 80×24 and 160×50, compared with insta snapshots (`tests/snapshots/`).
//!
//! The "daemon" here is `answer`: it replies to each request the app makes with small made-up
//! data of the right shape, so every request path is exercised the way the link feeds it.

use std::path::PathBuf;

use convlens_shared::choices::{Method, MethodKind, MethodSelection};
use convlens_shared::methods::folder::{
    EmbedResult, FolderUnitStat, PassReport, TopImage as WireTop, TopResult, UnitTop,
};
use convlens_shared::methods::history::{VersionInfo, VersionsResult};
use convlens_tui::app::{App, Pane, View};
use convlens_tui::data::{
    ClassScore, Evaluation, Explanation, Explanations, Faithfulness, FilterBank, Layer,
    LayerActivations, ModelView, Picture, Prediction, SkippedMethod, Tile, UnitStats,
};
use convlens_tui::event::{Connection, Event, Reply};
use convlens_tui::folder::{folder_map, layer_over_folder};
use convlens_tui::images::Images;
use convlens_tui::remote::{Progress, Remote};
use convlens_tui::request::{Feature, Outgoing, Request, Slot};
use convlens_tui::timeline::{self, Version};
use convlens_tui::ui;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui_image::picker::Picker;

const FOLDER: &str = "/photos";
/// The made-up top-5 classes, from class 281 on.
const CLASSES: [&str; 5] = ["tabby", "tiger cat", "Egyptian cat", "lynx", "tiger"];
const NAMES: [&str; 5] = [
    "astronaut.jpg",
    "chelsea.jpg",
    "coffee.jpg",
    "motorcycle_left.jpg",
    "rocket.jpg",
];

fn layer(
    path: &str,
    class: &str,
    depth: usize,
    shape: &[usize],
    params: usize,
    leaf: bool,
) -> Layer {
    Layer {
        path: path.into(),
        class_name: class.into(),
        depth,
        output_shape: shape.to_vec(),
        params,
        is_leaf: leaf,
    }
}

fn model(version: u64) -> ModelView {
    ModelView {
        model_id: "m1".into(),
        arch: "efficientnet_lite0".into(),
        source: "demo".into(),
        version,
        classes: 1000,
        total_params: 4_652_008,
        layers: vec![
            layer("_conv_stem", "Conv2d", 0, &[1, 32, 112, 112], 864, true),
            layer("_bn0", "BatchNorm2d", 0, &[1, 32, 112, 112], 64, true),
            layer("_swish", "ReLU6", 0, &[1, 32, 112, 112], 0, true),
            layer("_blocks", "Module", 0, &[1, 320, 7, 7], 2_957_920, false),
            layer("_blocks.0", "Module", 1, &[1, 16, 112, 112], 896, false),
            layer(
                "_blocks.0._depthwise_conv",
                "Conv2d",
                2,
                &[1, 32, 112, 112],
                288,
                true,
            ),
            layer(
                "_blocks.0._bn1",
                "BatchNorm2d",
                2,
                &[1, 32, 112, 112],
                64,
                true,
            ),
            layer("_blocks.0._swish", "ReLU6", 2, &[1, 32, 112, 112], 0, true),
            layer(
                "_blocks.0._project_conv",
                "Conv2d",
                2,
                &[1, 16, 112, 112],
                512,
                true,
            ),
            layer("_blocks.1", "Module", 1, &[1, 24, 56, 56], 5_136, false),
            layer(
                "_blocks.1._expand_conv",
                "Conv2d",
                2,
                &[1, 96, 112, 112],
                1_536,
                true,
            ),
            layer(
                "_blocks.1._project_conv",
                "Conv2d",
                2,
                &[1, 24, 56, 56],
                2_304,
                true,
            ),
            layer("_conv_head", "Conv2d", 0, &[1, 1280, 7, 7], 409_600, true),
            layer("_fc", "Linear", 0, &[1, 1000], 1_281_000, true),
        ],
        note: None,
    }
}

fn images() -> Vec<PathBuf> {
    NAMES
        .iter()
        .map(|n| PathBuf::from(FOLDER).join(n))
        .collect()
}

/// A smooth picture whose colours depend on `seed`.
fn picture(seed: u32, w: u32, h: u32) -> Picture {
    Picture::new(image::RgbaImage::from_fn(w, h, |x, y| {
        let r = (x * 255 / w.max(1)) as u8;
        let g = (y * 255 / h.max(1)) as u8;
        let b = ((seed * 53) % 256) as u8;
        image::Rgba([r, g, b, 255])
    }))
}

fn activations(layer: &str, image: &std::path::Path, channels: usize) -> LayerActivations {
    let (h, w) = (8, 8);
    let mut maps = Vec::with_capacity(channels * h * w);
    let mut stats = Vec::new();
    for c in 0..channels {
        let map: Vec<f32> = (0..h * w)
            .map(|i| {
                let (y, x) = ((i / w) as f32, (i % w) as f32);
                ((x * (c % 5) as f32 + y * (c % 3) as f32) / 10.0 - 0.3).max(0.0)
            })
            .collect();
        let max = map.iter().cloned().fold(f32::MIN, f32::max);
        let mean = map.iter().sum::<f32>() / map.len() as f32;
        let active = map.iter().filter(|v| **v > 0.0).count() as f32 / map.len() as f32;
        stats.push(UnitStats {
            mean,
            max,
            frac_active: active,
        });
        maps.extend(map);
    }
    LayerActivations {
        layer: layer.into(),
        image: image.to_path_buf(),
        height: h,
        width: w,
        maps,
        stats,
    }
}

fn channels_of(layer: &str) -> usize {
    model(1)
        .layers
        .iter()
        .find(|l| l.path == layer)
        .map_or(0, |l| l.channels())
}

/// The made-up pass over the folder: unit `u`'s numbers (every fourth unit dead) and its
/// ranking (the images in an order that turns with `u`).
fn folder_unit(u: usize) -> (FolderUnitStat, UnitTop) {
    let dead = u % 4 == 3;
    let stat = FolderUnitStat {
        unit: u,
        mean: if dead {
            -0.4
        } else {
            0.05 + 0.1 * (u % 7) as f32
        },
        max: if dead {
            -0.1
        } else {
            1.0 + 0.5 * (u % 5) as f32
        },
        active_fraction: if dead { 0.0 } else { (1 + u % 5) as f32 / 5.0 },
    };
    let names = images();
    let top = (0..names.len())
        .map(|i| WireTop {
            path: names[(i + u) % names.len()].display().to_string(),
            value: stat.max - 0.25 * i as f32,
            position: [i, u % 3],
        })
        .collect();
    (stat, UnitTop { unit: u, top })
}

fn report(layer: &str, units: usize) -> PassReport {
    PassReport {
        layer: layer.into(),
        units,
        positions: [7, 7],
        images: NAMES.len(),
        computed: NAMES.len(),
        ..Default::default()
    }
}

/// The predicted class of each photo on the map: (class, label, probability).
const MAP_CLASSES: [(u32, &str, f32); 5] = [
    (812, "space shuttle", 0.61),
    (281, "tabby", 0.74),
    (967, "espresso", 0.88),
    (665, "moped", 0.52),
    (812, "space shuttle", 0.93),
];

/// The map's point of photo `i`.
fn map_point(i: usize) -> [f32; 2] {
    [(i as f32 * 1.7).sin() * 10.0, i as f32 * 3.0]
}

/// The made-up daemon's checkpoint history: versions 1..=`n`, the later ones with metrics.
fn history(n: u64) -> Vec<Version> {
    timeline::versions(VersionsResult {
        model_id: "m1".into(),
        versions: (1..=n)
            .map(|v| VersionInfo {
                version: v,
                loaded_at: 1_764_300_000_000 + v * 95_000,
                source: "/run/checkpoint.safetensors".into(),
                bytes: 1_000_000,
                kept: true,
                metrics: (v > 1).then(|| {
                    serde_json::json!({
                        "step": v * 200,
                        "loss": 1.2 / v as f64,
                        "test_accuracy": 0.6 + 0.1 * v as f64,
                    })
                }),
            })
            .collect(),
    })
}

/// The made-up explanation of `class` (the top one when `None`) by `method`.
fn explained(method: Method, class: Option<usize>, layer: &Option<String>) -> Explanation {
    let class = class.unwrap_or(281);
    Explanation {
        // As the daemon answers: a CAM at the layer asked for, else at the last spatial one.
        layer: (method.kind() == MethodKind::Cam)
            .then(|| layer.clone().unwrap_or_else(|| "_swish#2".into())),
        // Eigen-CAM's map comes back flat here, to show how the title says so.
        flat: method == Method::EigenCam,
        method: method.name().to_string(),
        class,
        label: CLASSES.get(class - 281).map(|l| l.to_string()),
        overlay: picture(method.name().len() as u32, 64, 64),
        segmentation: None,
    }
}

/// Why the made-up daemon skips plain CAM with `all`.
const CAM_SKIPPED: &str = "needs a global-average-pool + linear head";

/// The made-up `all`'s partial results, in the order the daemon sends them (cheapest method
/// first, plain CAM skipped, the photo with the first).
fn explained_pieces(class: Option<usize>, layer: &Option<String>) -> Vec<Explanations> {
    MethodSelection::All
        .run_order()
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let (explanations, skipped) = if m == Method::Cam {
                let skip = SkippedMethod {
                    method: m.name().into(),
                    error: CAM_SKIPPED.into(),
                };
                (vec![], vec![skip])
            } else {
                (vec![explained(m, class, layer)], vec![])
            };
            Explanations {
                photo: (i == 0).then(|| picture(99, 64, 64)),
                explanations,
                skipped,
            }
        })
        .collect()
}

/// The made-up `all`'s whole answer: every piece, in display order.
fn explained_all(class: Option<usize>, layer: &Option<String>) -> Explanations {
    let mut all = Explanations::default();
    for piece in explained_pieces(class, layer) {
        all.photo = all.photo.or(piece.photo);
        all.explanations.extend(piece.explanations);
        all.skipped.extend(piece.skipped);
    }
    let rank = |name: &str| MethodSelection::display_rank(name.parse().unwrap());
    all.explanations.sort_by_key(|e| rank(&e.method));
    all
}

/// The made-up faithfulness scores of `method` (deletion and insertion rising along the display
/// order, so that each method's are its own and the best by deletion is not the best by
/// insertion; ROAD falling from positive to negative, its best the first method).
fn faithfulness(method: Method) -> Faithfulness {
    let rank = MethodSelection::display_rank(method) as f32;
    Faithfulness {
        deletion: Some(0.12 + 0.01 * rank),
        insertion: Some(0.41 + 0.02 * rank),
        road: Some(0.1 - 0.01 * rank),
        randomization: None,
    }
}

/// The made-up randomization check of a method scored alone (the daemon checks one method at
/// a time).
const RANDOMIZATION: f32 = 0.28;

/// A method's name with its made-up scores, as the overlay's title shows them (scored alone:
/// with the randomization check).
fn scored(method: Method) -> String {
    let scores = faithfulness(method);
    format!(
        "{} (del {:.2} ins {:.2} road {:.2} rand {RANDOMIZATION:.2})",
        method.name(),
        scores.deletion.unwrap(),
        scores.insertion.unwrap(),
        scores.road.unwrap()
    )
}

/// Grad-CAM's name with its made-up scores.
fn gradcam_scored() -> String {
    scored(Method::GradCam)
}

/// The made-up `image/evaluate` of `method` (or `all`, plain CAM skipped as by `explain`).
fn evaluated(method: MethodSelection, class: Option<usize>) -> Evaluation {
    let class = class.unwrap_or(281);
    let methods: Vec<Method> = match method {
        MethodSelection::One(m) => vec![m],
        MethodSelection::All => Method::ALL.to_vec(),
    };
    let (skipped, scored): (Vec<Method>, Vec<Method>) = methods
        .into_iter()
        .partition(|m| method == MethodSelection::All && *m == Method::Cam);
    Evaluation {
        class,
        label: CLASSES.get(class - 281).map(|l| l.to_string()),
        methods: scored
            .into_iter()
            .map(|m| {
                let mut f = faithfulness(m);
                if method != MethodSelection::All {
                    f.randomization = Some(RANDOMIZATION);
                }
                (m.name().to_string(), f)
            })
            .collect(),
        skipped: skipped
            .into_iter()
            .map(|m| SkippedMethod {
                method: m.name().into(),
                error: CAM_SKIPPED.into(),
            })
            .collect(),
    }
}

/// The made-up daemon: the answer to `request`.
fn reply_to(request: &Request) -> Reply {
    match request {
        Request::OpenModel { .. } => Reply::Model(model(1)),
        Request::ListImages { .. } => Reply::Images(images()),
        Request::LoadPhoto { path } => Reply::Photo(picture(path.as_os_str().len() as u32, 96, 64)),
        Request::Predict { image, .. } => Reply::Predict(Prediction {
            image: image.clone(),
            top: CLASSES
                .iter()
                .enumerate()
                .map(|(i, l)| ClassScore {
                    class: 281 + i,
                    label: l.to_string(),
                    prob: 0.5 / (i as f32 + 1.0),
                })
                .collect(),
        }),
        Request::Activations { layer, image, .. } => {
            Reply::Activations(activations(layer, image, channels_of(layer)))
        }
        Request::FolderTop { layer, .. } => {
            let n = channels_of(layer);
            let (stats, units): (Vec<_>, Vec<_>) = (0..n).map(folder_unit).unzip();
            let result = TopResult {
                version: 1,
                report: report(layer, n),
                units,
                dead: stats
                    .iter()
                    .filter(|s| s.active_fraction == 0.0)
                    .map(|s| s.unit)
                    .collect(),
                stats,
                picture: None,
            };
            Reply::FolderTop(layer_over_folder(result).unwrap())
        }
        Request::TopCrop { unit, .. } => Reply::TopCrop(picture(*unit as u32 + 13, 48, 48)),
        Request::Deconv { unit, .. } => Reply::Deconv(picture(*unit as u32 + 7, 64, 64)),
        Request::Maximize { unit, .. } => Reply::Maximize(picture(*unit as u32 + 11, 64, 64)),
        Request::Explain {
            method: MethodSelection::One(method),
            class,
            layer,
            ..
        } => Reply::Explain(Explanation {
            label: Some(
                if class.is_some() {
                    "tiger cat"
                } else {
                    "tabby"
                }
                .into(),
            ),
            ..explained(*method, *class, layer)
        }),
        Request::Explain {
            method: MethodSelection::All,
            class,
            layer,
            ..
        } => Reply::ExplainAll(explained_all(*class, layer)),
        Request::Evaluate { method, class, .. } => Reply::Evaluate(evaluated(*method, *class)),
        Request::Filters { layer, .. } => Reply::Filters(FilterBank {
            layer: layer.clone(),
            tiles: (0..channels_of(layer))
                .map(|i| Tile {
                    width: 3,
                    height: 3,
                    pixels: (0..9)
                        .map(|p| [(i * 8) as u8, (p * 28) as u8, 128])
                        .collect(),
                })
                .collect(),
            note: "RGB of the 3 input channels".into(),
        }),
        Request::Map { .. } => Reply::Map(
            folder_map(EmbedResult {
                version: 1,
                report: report("_conv_head", 1280),
                paths: images().iter().map(|p| p.display().to_string()).collect(),
                points: Some((0..NAMES.len()).map(map_point).collect()),
                mapped: None,
                top1_class: MAP_CLASSES.iter().map(|c| c.0).collect(),
                top1_label: MAP_CLASSES.iter().map(|c| c.1.to_string()).collect(),
                top1_prob: MAP_CLASSES.iter().map(|c| c.2).collect(),
                codes: None,
                picture: None,
            })
            .unwrap(),
        ),
        Request::Versions { .. } => Reply::Versions(history(1)),
        Request::AtVersion { model_id, version } => {
            Reply::AtVersion(format!("{model_id}@{version}"))
        }
    }
}

/// A test session: the app, a terminal, and the requests the app has made and not yet had
/// answered.
struct Session {
    app: App,
    terminal: Terminal<TestBackend>,
    images: Images,
    pending: Vec<Outgoing>,
    /// Every request made, in order.
    log: Vec<Request>,
    /// The checkpoint versions the made-up daemon lists.
    live: u64,
}

impl Session {
    fn new(width: u16, height: u16) -> Session {
        Session::with(
            width,
            height,
            Connection {
                device: "cpu".into(),
                unavailable: vec![],
            },
        )
    }

    fn with(width: u16, height: u16, connection: Connection) -> Session {
        let mut s = Session {
            app: App::new("demo", FOLDER, width, height),
            terminal: Terminal::new(TestBackend::new(width, height)).unwrap(),
            images: Images::inline(Picker::halfblocks()),
            pending: vec![],
            log: vec![],
            live: 1,
        };
        s.send(Event::Connected(connection));
        s.settle();
        s
    }

    fn send(&mut self, event: Event) {
        let out = self.app.update(event);
        self.log.extend(out.iter().map(|o| o.request.clone()));
        self.pending.extend(out);
    }

    fn key(&mut self, code: KeyCode) {
        self.send(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    fn keys(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    /// Answers every request until the app asks for nothing more.
    fn settle(&mut self) {
        for _ in 0..20 {
            if self.pending.is_empty() {
                return;
            }
            for o in std::mem::take(&mut self.pending) {
                let reply = match o.request {
                    Request::Versions { .. } => Reply::Versions(history(self.live)),
                    _ => reply_to(&o.request),
                };
                self.send(Event::Reply(o.ticket, reply));
            }
        }
        panic!("the app keeps asking: {:?}", self.pending);
    }

    fn draw(&mut self) -> String {
        let (app, images) = (&self.app, &mut self.images);
        self.terminal.draw(|f| ui::draw(f, app, images)).unwrap();
        self.terminal.backend().to_string()
    }
}

fn both_sizes(name: &str, drive: impl Fn(&mut Session)) {
    for (w, h) in [(80, 24), (160, 50)] {
        let mut s = Session::new(w, h);
        drive(&mut s);
        let screen = s.draw();
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen);
    }
}

#[test]
fn units_view() {
    both_sizes("units", |s| {
        // Into the blocks: down to `_blocks`, unfold `_blocks.0`, onto its depthwise conv.
        for _ in 0..4 {
            s.key(KeyCode::Down);
        }
        s.key(KeyCode::Right);
        s.key(KeyCode::Down);
        s.settle();
        assert_eq!(
            s.app.selected_layer().unwrap().path,
            "_blocks.0._depthwise_conv"
        );
        s.key(KeyCode::Tab);
        s.key(KeyCode::Tab);
        s.key(KeyCode::Right);
        s.key(KeyCode::Down);
        s.settle();
        assert_eq!(s.app.focus, Pane::Main);
        assert!(s.app.units.cursor > 1);
    });
}

#[test]
fn inspector_view() {
    both_sizes("inspector", |s| {
        s.keys("1");
        s.key(KeyCode::Right);
        s.key(KeyCode::Right);
        s.key(KeyCode::Enter);
        s.settle();
        s.keys("a");
        s.settle();
        assert!(s.app.inspector.open);
        assert_eq!(s.app.units.cursor, 2);
        // The folder row and the ranking are unit 2's of the made-up pass.
        let screen = s.draw();
        let (stat, top) = folder_unit(2);
        let row = screen
            .lines()
            .find(|l| l.contains("folder "))
            .unwrap_or_else(|| panic!("no folder row:\n{screen}"));
        for want in [
            format!("{:.2}", stat.mean),
            format!("{:.2}", stat.max),
            format!("{:.0}%", stat.active_fraction * 100.0),
            format!("of {} images", NAMES.len()),
        ] {
            assert!(row.contains(&want), "{want} not in {row}");
        }
        let best = PathBuf::from(&top.top[0].path);
        let best = best.file_name().unwrap().to_string_lossy();
        assert!(screen.contains(&format!("1. {best}")), "{screen}");
    });
}

/// `A` steps the maximization preset (lucid, the default, first; then the CLI's order): the
/// inspector names it, `a` asks the daemon for that preset, and each preset's picture is kept
/// apart, so coming back to one asks nothing.
#[test]
fn maximize_preset_is_picked_with_shift_a() {
    let presets = |s: &Session| {
        s.log
            .iter()
            .filter_map(|r| match r {
                Request::Maximize { preset, .. } => Some(preset.name()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut s = Session::new(160, 50);
    s.keys("1");
    s.key(KeyCode::Right);
    s.key(KeyCode::Enter);
    s.settle();
    s.keys("a");
    s.settle();
    assert!(s.draw().contains("lucid maximization"));
    s.keys("A");
    let screen = s.draw();
    assert!(
        screen.contains("none maximization") && screen.contains("press a to compute"),
        "{screen}"
    );
    s.keys("a");
    s.settle();
    assert_eq!(presets(&s), ["lucid", "none"]);
    // Four more steps reach `yosinski4`, one more wraps around to `lucid`, whose picture is kept.
    s.keys("AAAA");
    assert!(s.draw().contains("yosinski4 maximization"));
    s.keys("Aa");
    s.settle();
    assert!(s.draw().contains("lucid maximization"));
    assert_eq!(presets(&s), ["lucid", "none"]);
}

#[test]
fn moving_between_units_needs_no_new_folder_pass() {
    let passes = |s: &Session| {
        s.log
            .iter()
            .filter(|r| matches!(r, Request::FolderTop { .. }))
            .count()
    };
    let mut s = Session::new(160, 50);
    s.keys("i");
    // The crop waits for the layer's pass, so that it only reads the daemon's cached pass.
    assert!(s
        .pending
        .iter()
        .any(|o| matches!(o.request, Request::FolderTop { .. })));
    assert!(!s
        .pending
        .iter()
        .any(|o| matches!(o.request, Request::TopCrop { .. })));
    s.settle();
    assert_eq!(passes(&s), 1);
    s.keys("1");
    for _ in 0..3 {
        s.key(KeyCode::Right);
        s.settle();
    }
    assert_eq!(s.app.units.cursor, 3);
    assert_eq!(passes(&s), 1, "a unit move asked for another folder pass");
    let crops: Vec<usize> = s
        .log
        .iter()
        .filter_map(|r| match r {
            Request::TopCrop { unit, .. } => Some(*unit),
            _ => None,
        })
        .collect();
    assert_eq!(crops, vec![0, 1, 2, 3]);
    // Unit 3 is dead in the made-up pass: the inspector says so.
    let screen = s.draw();
    let (stat, _) = folder_unit(3);
    let row = screen.lines().find(|l| l.contains("folder ")).unwrap();
    assert!(row.contains("dead"), "{row}");
    assert!(row.contains(&format!("{:.2}", stat.mean)), "{row}");
    let dead = (0..channels_of("_conv_stem"))
        .filter(|u| folder_unit(*u).0.active_fraction == 0.0)
        .count();
    assert!(
        screen.contains(&format!("layer: {dead} of 32 units dead")),
        "{screen}"
    );
    // Another layer: one new pass, for that layer.
    s.key(KeyCode::Tab);
    s.key(KeyCode::Tab);
    assert_eq!(s.app.focus, Pane::Layers);
    s.key(KeyCode::Down);
    s.settle();
    assert_eq!(passes(&s), 2);
    assert!(matches!(
        s.log.iter().rfind(|r| matches!(r, Request::FolderTop { .. })),
        Some(Request::FolderTop { layer, .. }) if layer == "_bn0"
    ));
}

#[test]
fn overlay_view() {
    both_sizes("overlay", |s| {
        s.keys("o");
        s.settle();
        s.keys("mmc");
        s.settle();
        assert_eq!(s.app.method_name(), "xgradcam");
    });
}

#[test]
fn filters_view() {
    both_sizes("filters", |s| {
        s.keys("f");
        s.settle();
        s.key(KeyCode::Right);
    });
}

#[test]
fn filters_view_of_a_non_convolution() {
    both_sizes("filters_not_conv", |s| {
        s.key(KeyCode::Down);
        s.keys("f");
        s.settle();
    });
}

#[test]
fn map_view() {
    both_sizes("map", |s| {
        s.keys("t");
        assert!(s.pending.iter().any(|o| o.request
            == Request::Map {
                model_id: "m1".into(),
                layer: None,
                folder: PathBuf::from(FOLDER),
            }));
        s.settle();
        s.key(KeyCode::Up);
        s.key(KeyCode::Up);
        s.settle();
        // The photo nearest to the cursor, by brute force over the made-up points (each axis
        // scaled by the plotted range, padded by 5 % a side).
        let range = |v: Vec<f32>| {
            let (lo, hi) = v
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), x| (l.min(*x), h.max(*x)));
            let pad = (hi - lo) * 0.05;
            (f64::from(lo - pad), f64::from(hi + pad))
        };
        let (x0, x1) = range((0..5).map(|i| map_point(i)[0]).collect());
        let (y0, y1) = range((0..5).map(|i| map_point(i)[1]).collect());
        let (cx, cy) = s.app.map.cursor;
        let distance = |i: usize| {
            let [x, y] = map_point(i);
            let dx = (f64::from(x) - x0) / (x1 - x0) - cx;
            let dy = (f64::from(y) - y0) / (y1 - y0) - cy;
            dx * dx + dy * dy
        };
        let nearest = (0..5)
            .min_by(|a, b| distance(*a).total_cmp(&distance(*b)))
            .unwrap();
        let screen = s.draw();
        assert!(screen.contains(NAMES[nearest]), "{screen}");
        let (_, label, prob) = MAP_CLASSES[nearest];
        assert!(
            screen.contains(&format!("{label} {:.0}%", prob * 100.0)),
            "{screen}"
        );
        s.key(KeyCode::Enter);
        assert_eq!(
            s.app.current_image(),
            Some(&PathBuf::from(FOLDER).join(NAMES[nearest]))
        );
        s.settle();
    });
}

#[test]
fn the_map_shows_its_progress_and_a_newer_one_supersedes_it() {
    let mut s = Session::new(80, 24);
    s.keys("t");
    let first = s
        .pending
        .iter()
        .find(|o| o.ticket.slot == Slot::Map)
        .unwrap()
        .clone();
    s.send(Event::Progress(
        first.ticket.clone(),
        Progress {
            percentage: Some(35),
            message: Some("t-SNE iteration 350/1000".into()),
        },
    ));
    let screen = s.draw();
    assert!(screen.contains("t-SNE map 35%"), "{screen}");
    insta::assert_snapshot!("map_progress_80x24", screen);
    // A photo lands: the map is asked again and the older answer no longer counts.
    s.send(Event::ImagesChanged {
        added: vec![PathBuf::from(FOLDER).join("zebra.jpg")],
        removed: vec![],
    });
    let second = s
        .pending
        .iter()
        .rfind(|o| o.ticket.slot == Slot::Map)
        .unwrap()
        .clone();
    assert!(second.ticket.seq > first.ticket.seq);
    s.send(Event::Reply(first.ticket.clone(), reply_to(&first.request)));
    assert!(s.app.map.folder_map.state.is_loading());
    s.send(Event::Reply(
        second.ticket.clone(),
        reply_to(&second.request),
    ));
    assert!(s.app.map.folder_map.state.ready().is_some());
}

/// A session whose model was reloaded twice: versions 1 to 3, the third live.
fn reloaded_twice(s: &mut Session) {
    s.live = 3;
    for v in 2..=3 {
        s.send(Event::ModelReloaded {
            version: v,
            at: format!("12:0{v}:00 UTC"),
        });
        s.settle();
    }
    assert_eq!(s.app.version_list().len(), 3);
}

/// The model ids of the view requests (everything but the model and its history) since `from`.
fn view_model_ids(s: &Session, from: usize) -> Vec<String> {
    s.log[from..]
        .iter()
        .filter_map(|r| match r {
            Request::Predict { model_id, .. }
            | Request::Activations { model_id, .. }
            | Request::FolderTop { model_id, .. }
            | Request::TopCrop { model_id, .. }
            | Request::Deconv { model_id, .. }
            | Request::Explain { model_id, .. }
            | Request::Evaluate { model_id, .. }
            | Request::Filters { model_id, .. }
            | Request::Map { model_id, .. } => Some(model_id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn timeline_view() {
    both_sizes("timeline", |s| {
        reloaded_twice(s);
        s.keys("v");
        s.settle();
        assert_eq!(s.app.view, View::Timeline);
        let before = s.log.len();
        s.keys("<");
        s.settle();
        assert_eq!(s.app.timeline.pinned, Some(2));
        assert!(s.log[before..].contains(&Request::AtVersion {
            model_id: "m1".into(),
            version: 2
        }));
        let ids = view_model_ids(s, before);
        assert!(!ids.is_empty());
        assert!(ids.iter().all(|id| id == "m1@2"), "{ids:?}");
        let screen = s.draw();
        assert!(screen.contains("showing v2 of v3"), "{screen}");
        assert!(screen.contains("v2/3"), "{screen}");
    });
}

#[test]
fn every_view_follows_the_version_stepped_to() {
    let mut s = Session::new(80, 24);
    reloaded_twice(&mut s);
    s.keys("i");
    s.settle();
    for (keys, pinned) in [("<", Some(2)), ("<", Some(1))] {
        let before = s.log.len();
        s.keys(keys);
        s.settle();
        assert_eq!(s.app.timeline.pinned, pinned);
        let ids = view_model_ids(&s, before);
        for want in ["Predict", "Activations", "FolderTop", "Deconv"] {
            assert!(
                s.log[before..]
                    .iter()
                    .any(|r| format!("{r:?}").starts_with(want)),
                "{want} not asked at {pinned:?}"
            );
        }
        let frozen = format!("m1@{}", pinned.unwrap());
        assert!(ids.iter().all(|id| *id == frozen), "{ids:?}");
    }
    // Nothing is kept before v1.
    s.keys("<");
    assert_eq!(s.app.timeline.pinned, Some(1));
    assert!(s.draw().contains("no kept checkpoint before v1"));
    // Later, twice: back to the live version and its own id.
    s.keys(">");
    s.settle();
    assert_eq!(s.app.timeline.pinned, Some(2));
    let before = s.log.len();
    s.keys(">");
    s.settle();
    assert_eq!(s.app.timeline.pinned, None);
    let ids = view_model_ids(&s, before);
    assert!(
        !ids.is_empty() && ids.iter().all(|id| id == "m1"),
        "{ids:?}"
    );
    assert!(s.draw().contains(" v3 live ·"));
    // A reload while an earlier version is shown leaves the views on it.
    s.keys("<");
    s.settle();
    s.live = 4;
    let before = s.log.len();
    s.send(Event::ModelReloaded {
        version: 4,
        at: "12:04:00 UTC".into(),
    });
    s.settle();
    assert_eq!(s.app.timeline.pinned, Some(2));
    assert!(view_model_ids(&s, before).is_empty());
    assert!(s.draw().contains("showing v2 of v4"));
}

#[test]
fn a_version_the_daemon_dropped_goes_back_to_live() {
    let mut s = Session::new(80, 24);
    reloaded_twice(&mut s);
    s.keys("<");
    let at = s
        .pending
        .iter()
        .find(|o| o.ticket.slot == Slot::AtVersion)
        .unwrap()
        .clone();
    s.send(Event::Failed(
        at.ticket,
        "version 2 is no longer kept".into(),
    ));
    assert_eq!(s.app.timeline.pinned, None);
    let screen = s.draw();
    assert!(
        screen.contains("checkpoint v2: version 2 is no longer kept"),
        "{screen}"
    );
}

#[test]
fn a_daemon_without_history_says_so() {
    let connection = Connection {
        device: "cpu".into(),
        unavailable: vec![
            (Feature::Versions, "model/versions".into()),
            (Feature::AtVersion, "model/atVersion".into()),
        ],
    };
    let mut s = Session::with(80, 24, connection);
    assert!(!s.log.iter().any(|r| matches!(r, Request::Versions { .. })));
    s.keys("<");
    assert_eq!(s.app.timeline.pinned, None);
    assert!(s.draw().contains("no checkpoint history from this daemon"));
    s.keys("v");
    let screen = s.draw();
    assert!(
        screen.contains("not available from this daemon"),
        "{screen}"
    );
    assert!(screen.contains("`model/versions`"), "{screen}");
}

#[test]
fn help_view() {
    both_sizes("help", |s| s.keys("?"));
}

#[test]
fn search_view() {
    both_sizes("search", |s| {
        s.keys("/proj");
        s.settle();
        assert_eq!(
            s.app.selected_layer().unwrap().path,
            "_blocks.0._project_conv"
        );
    });
}

#[test]
fn loading_and_unavailable_states() {
    // A daemon without the unit methods: the grid says so and nothing is asked for it.
    let connection = Connection {
        device: "cpu".into(),
        unavailable: vec![
            (Feature::Activations, "units/activations".into()),
            (Feature::Explain, "image/explain".into()),
        ],
    };
    for (w, h) in [(80, 24), (160, 50)] {
        let mut s = Session::with(w, h, connection.clone());
        assert!(!s
            .log
            .iter()
            .any(|r| matches!(r, Request::Activations { .. })));
        insta::assert_snapshot!(format!("unavailable_{w}x{h}"), s.draw());
        s.keys("o");
        assert!(s.pending.is_empty());
        assert!(matches!(
            s.app.overlay.explanation.state,
            Remote::Unavailable(_)
        ));
    }
    // A request under way shows its progress.
    let mut s = Session::new(80, 24);
    s.keys("o");
    let explain = s
        .pending
        .iter()
        .find(|o| o.ticket.slot == Slot::Explain)
        .unwrap()
        .ticket
        .clone();
    s.send(Event::Progress(
        explain,
        Progress {
            percentage: Some(40),
            message: Some("occluding".into()),
        },
    ));
    insta::assert_snapshot!("loading_80x24", s.draw());
}

#[test]
fn a_newer_request_supersedes_the_older() {
    let mut s = Session::new(80, 24);
    s.key(KeyCode::Down);
    let first = s
        .pending
        .iter()
        .find(|o| o.ticket.slot == Slot::Activations)
        .unwrap()
        .clone();
    s.key(KeyCode::Down);
    let second = s
        .pending
        .iter()
        .rfind(|o| o.ticket.slot == Slot::Activations)
        .unwrap()
        .clone();
    assert!(second.ticket.seq > first.ticket.seq);
    // The older answer arrives late: it is dropped.
    s.send(Event::Reply(first.ticket.clone(), reply_to(&first.request)));
    assert!(s.app.units.activations.state.is_loading());
    s.send(Event::Reply(
        second.ticket.clone(),
        reply_to(&second.request),
    ));
    assert_eq!(
        s.app.units.activations.state.ready().unwrap().layer,
        "_swish"
    );
}

#[test]
fn a_reloaded_checkpoint_refreshes_the_views() {
    let mut s = Session::new(80, 24);
    s.keys("i");
    s.settle();
    let before = s.log.len();
    s.send(Event::ModelReloaded {
        version: 2,
        at: "12:00:01".into(),
    });
    let asked: Vec<&Request> = s.log[before..].iter().collect();
    for want in [
        "OpenModel",
        "Versions",
        "Predict",
        "Activations",
        "FolderTop",
        "Deconv",
    ] {
        assert!(
            asked.iter().any(|r| format!("{r:?}").starts_with(want)),
            "{want} not asked again after the reload: {asked:?}"
        );
    }
    assert!(s.draw().contains("checkpoint v2 loaded at 12:00:01"));
    // A failed reload is shown and changes nothing else.
    s.settle();
    s.send(Event::ReloadFailed {
        error: "truncated file".into(),
        at: "12:00:05".into(),
    });
    assert!(s.pending.is_empty());
    assert!(s
        .draw()
        .contains("reload failed at 12:00:05: truncated file"));
}

#[test]
fn new_images_appear_in_the_strip() {
    let mut s = Session::new(160, 50);
    let added = PathBuf::from(FOLDER).join("zebra.jpg");
    s.send(Event::ImagesChanged {
        added: vec![added.clone()],
        removed: vec![],
    });
    assert_eq!(s.app.image_list().len(), 6);
    s.key(KeyCode::Tab);
    s.key(KeyCode::End);
    assert_eq!(s.app.current_image(), Some(&added));
    assert!(s.draw().contains("zebra.jpg"));
    assert!(s
        .log
        .iter()
        .any(|r| matches!(r, Request::LoadPhoto { path } if *path == added)));
}

#[test]
fn quit_and_views_by_key() {
    let mut s = Session::new(80, 24);
    s.keys("2");
    assert_eq!(s.app.view, View::Overlay);
    s.keys("3");
    assert_eq!(s.app.view, View::Filters);
    s.keys("4");
    assert_eq!(s.app.view, View::Map);
    s.keys("?");
    assert!(s.app.help);
    s.keys("x");
    assert!(!s.app.help);
    s.keys("q");
    assert!(s.app.quit);
}

#[test]
fn every_view_draws_at_any_size_without_panicking() {
    for (w, h) in [
        (1, 1),
        (10, 3),
        (20, 6),
        (40, 12),
        (79, 23),
        (100, 30),
        (139, 39),
        (240, 70),
    ] {
        let mut s = Session::new(w, h);
        for keys in ["", "i", "a", "o", "f", "t", "v", "?"] {
            s.keys(keys);
            s.settle();
            let screen = s.draw();
            assert_eq!(
                screen.lines().count(),
                usize::from(h),
                "{w}x{h} after {keys:?}"
            );
            if keys == "?" {
                s.keys("?");
            }
        }
    }
}

#[test]
fn browsing_a_big_folder_keeps_few_photos() {
    let mut s = Session::new(80, 24);
    let many: Vec<PathBuf> = (0..200)
        .map(|i| PathBuf::from(FOLDER).join(format!("{i:03}.png")))
        .collect();
    s.send(Event::ImagesChanged {
        added: many,
        removed: vec![],
    });
    for _ in 0..150 {
        s.keys("]");
        s.settle();
    }
    assert!(
        s.app.photos.len() <= 64,
        "{} photos kept",
        s.app.photos.len()
    );
    let current = s.app.current_image().unwrap().clone();
    assert!(s.app.photos.get(&current).and_then(|p| p.ready()).is_some());
}

#[test]
fn the_daemons_note_on_the_model_is_shown() {
    let mut s = Session::new(160, 50);
    s.send(Event::Key(KeyEvent::new(
        KeyCode::Char('r'),
        KeyModifiers::NONE,
    )));
    let opened = s
        .app
        .update(Event::ModelReloaded {
            version: 2,
            at: "12:00:01".into(),
        })
        .into_iter()
        .find(|o| matches!(o.request, Request::OpenModel { .. }))
        .expect("a reload opens the model again");
    let mut noted = model(2);
    noted.note =
        Some("ckpt.pt: bound to the torch.export program model.pt2 found beside it".into());
    s.send(Event::Reply(opened.ticket, Reply::Model(noted)));
    assert!(s
        .draw()
        .contains("bound to the torch.export program model.pt2"));
}

/// The overlay's CAM follows the layer selected in the tree when it is a spatial map, and the
/// title names the layer; an attribution method asks for no layer.
#[test]
fn the_overlay_cam_is_at_the_selected_spatial_layer() {
    let explains = |s: &Session| {
        s.log
            .iter()
            .filter_map(|r| match r {
                Request::Explain { method, layer, .. } => Some((*method, layer.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let mut s = Session::new(160, 50);
    s.key(KeyCode::Down);
    s.keys("o");
    s.settle();
    let (method, layer) = explains(&s).last().cloned().unwrap();
    assert_eq!(method.name(), "gradcam");
    assert_eq!(layer.as_deref(), Some("_bn0"));
    assert!(
        s.draw().contains("Overlay gradcam at _bn0 · class"),
        "{}",
        s.draw()
    );
    // `all`, after the last method: its CAMs at the selected layer too.
    s.keys(&"m".repeat(steps_from_gradcam_to_all()));
    s.settle();
    let (method, layer) = explains(&s).last().cloned().unwrap();
    assert_eq!(
        (method, layer.as_deref()),
        (MethodSelection::All, Some("_bn0"))
    );
    // An attribution method: no layer asked, none named.
    s.keys("m");
    s.settle();
    let (method, layer) = explains(&s).last().cloned().unwrap();
    assert_eq!((method.name(), layer), ("gradient", None));
}

/// A flat map is named in the overlay's title rather than left as a solid picture.
#[test]
fn a_flat_map_is_named_in_the_overlay_title() {
    let mut s = Session::new(160, 50);
    s.keys("o");
    s.settle();
    // From gradcam to eigencam, in the method list's order.
    let steps = MethodSelection::display_rank(Method::EigenCam)
        - MethodSelection::display_rank(Method::GradCam);
    s.keys(&"m".repeat(steps));
    s.settle();
    assert_eq!(s.app.method_name(), "eigencam");
    assert!(
        s.draw()
            .contains("Overlay eigencam at _conv_stem · flat map · class"),
        "{}",
        s.draw()
    );
}

/// How many `m` presses go from gradcam (the default) to `all`, which follows the last method.
fn steps_from_gradcam_to_all() -> usize {
    Method::ALL.len() - MethodSelection::display_rank(Method::GradCam)
}

/// The overlay view with `all` chosen (from gradcam, the default) and the third class, its
/// request sent and not answered yet.
fn all_methods_asked(s: &mut Session) -> Outgoing {
    s.keys("o");
    s.settle();
    s.keys(&"m".repeat(steps_from_gradcam_to_all()));
    s.keys("cc");
    assert_eq!(s.app.method_name(), "all");
    let asked = s
        .pending
        .iter()
        .rfind(|o| o.ticket.slot == Slot::Explain)
        .unwrap()
        .clone();
    s.pending.retain(|o| o.ticket.slot != Slot::Explain);
    s.settle();
    assert!(matches!(
        asked.request,
        Request::Explain {
            method: MethodSelection::All,
            class: Some(283),
            ..
        }
    ));
    asked
}

/// The first `n` partial results of `all` for `asked`, with the daemon's progress.
fn send_pieces(s: &mut Session, asked: &Outgoing, n: usize) {
    let Request::Explain { class, layer, .. } = &asked.request else {
        unreachable!()
    };
    for (i, piece) in explained_pieces(*class, layer)
        .into_iter()
        .take(n)
        .enumerate()
    {
        s.send(Event::Progress(
            asked.ticket.clone(),
            Progress {
                percentage: Some((100 * i / Method::ALL.len()) as u32),
                message: Some(format!(
                    "{} ({} of {}): explain",
                    MethodSelection::All.run_order()[i].name(),
                    i + 1,
                    Method::ALL.len()
                )),
            },
        ));
        s.send(Event::Partial(
            asked.ticket.clone(),
            Reply::ExplainAll(piece),
        ));
    }
}

/// `all` fills its grid method by method as the partial results come (cheapest first, shown
/// in display order), then the whole answer completes it.
#[test]
fn overlay_all_methods_fill_in_as_they_come() {
    for (w, h) in [(80, 24), (160, 50)] {
        let mut s = Session::new(w, h);
        let asked = all_methods_asked(&mut s);
        let screen = s.draw();
        let count = Method::ALL.len();
        assert!(
            screen.contains(&format!("all methods · 0 of {count} done")),
            "{screen}"
        );
        send_pieces(&mut s, &asked, 7);
        assert_eq!(
            (s.app.overlay.all.finished(), s.app.overlay.all.skipped()),
            (7, 1)
        );
        assert!(s.app.overlay.all.is_loading());
        let screen = s.draw();
        // The title as wide as the pane allows (cut short at 80 columns, as every title).
        let title = &format!("all methods · 7 of {count} done · class 283 Egyptian cat");
        let shown = if w == 80 {
            &format!("all methods · 7 of {count} done · class 283")
        } else {
            title
        };
        assert!(screen.contains(shown), "{screen}");
        // Tiles not done yet say so (an ellipsis where the word does not fit), as does plain
        // CAM's, skipped.
        assert!(
            screen.contains(if w == 80 { "…" } else { "pending" }),
            "{screen}"
        );
        assert!(
            screen.contains(if w == 80 { "skip" } else { "skipped: " }),
            "{screen}"
        );
        insta::assert_snapshot!(format!("overlay_all_partial_{w}x{h}"), screen);
        let Request::Explain { class, layer, .. } = &asked.request else {
            unreachable!()
        };
        s.send(Event::Reply(
            asked.ticket.clone(),
            Reply::ExplainAll(explained_all(*class, layer)),
        ));
        assert!(!s.app.overlay.all.is_loading());
        assert_eq!(s.app.overlay.all.finished(), Method::ALL.len());
        let screen = s.draw();
        assert!(
            screen.contains(&format!("all methods · {count} of {count} done")),
            "{screen}"
        );
        assert!(!screen.contains("pending"), "{screen}");
        assert!(screen.contains(" (flat)") || w == 80, "{screen}");
        insta::assert_snapshot!(format!("overlay_all_{w}x{h}"), screen);
    }
}

/// Moving to another image or method while `all` runs drops the old run: its late pieces
/// and answer change nothing, as a stale single explanation's.
#[test]
fn a_stale_all_run_is_dropped() {
    let mut s = Session::new(160, 50);
    let first = all_methods_asked(&mut s);
    send_pieces(&mut s, &first, 2);
    assert_eq!(s.app.overlay.all.finished(), 2);
    // The next image: asked anew, every tile pending again.
    s.keys("]");
    let second = s
        .pending
        .iter()
        .rfind(|o| o.ticket.slot == Slot::Explain)
        .unwrap()
        .clone();
    assert!(second.ticket.seq > first.ticket.seq);
    assert_eq!(s.app.overlay.all.finished(), 0);
    send_pieces(&mut s, &first, 5);
    s.send(Event::Reply(first.ticket.clone(), reply_to(&first.request)));
    assert_eq!(s.app.overlay.all.finished(), 0);
    assert!(s.app.overlay.all.is_loading());
    send_pieces(&mut s, &second, 3);
    assert_eq!(s.app.overlay.all.finished(), 3);
    // Another method: the single explanation is asked, `all` forgotten and its pieces dropped.
    s.keys("m");
    assert!(s.pending.iter().any(|o| matches!(
        o.request,
        Request::Explain {
            method: MethodSelection::One(Method::Gradient),
            ..
        }
    )));
    send_pieces(&mut s, &second, 6);
    assert_eq!(s.app.overlay.all.finished(), 0);
    assert!(!s.app.overlay.all.is_loading());
    s.settle();
    assert!(s.app.overlay.explanation.state.ready().is_some());
    // Back to `all`: asked again (the daemon answers from its cache).
    s.keys("M");
    s.settle();
    assert_eq!(s.app.overlay.all.finished(), Method::ALL.len());
}

/// A run that fails part way keeps what came and says why.
#[test]
fn a_failed_all_run_keeps_what_came() {
    let mut s = Session::new(160, 50);
    let asked = all_methods_asked(&mut s);
    send_pieces(&mut s, &asked, 4);
    s.send(Event::Failed(asked.ticket.clone(), "cancelled".into()));
    assert_eq!(s.app.overlay.all.finished(), 4);
    assert_eq!(
        s.app.overlay.all.fetch.state,
        Remote::Failed("cancelled".into())
    );
    let screen = s.draw();
    assert!(screen.contains("all methods: cancelled"), "{screen}");
    assert!(screen.contains("not done"), "{screen}");
}

#[test]
fn the_all_grid_draws_at_any_size_without_panicking() {
    for (w, h) in [
        (1, 1),
        (10, 3),
        (20, 6),
        (40, 12),
        (79, 23),
        (100, 30),
        (139, 39),
        (240, 70),
    ] {
        let mut s = Session::new(w, h);
        let asked = all_methods_asked(&mut s);
        for n in [0, 1, 9, Method::ALL.len()] {
            send_pieces(&mut s, &asked, n);
            let screen = s.draw();
            assert_eq!(screen.lines().count(), usize::from(h), "{w}x{h} after {n}");
        }
        s.settle();
        let screen = s.draw();
        assert_eq!(screen.lines().count(), usize::from(h), "{w}x{h}");
    }
}

/// The overlay with `e` pressed and its scores asked for, not answered yet: the request, with
/// the explanation's own parameters.
fn scores_asked(s: &mut Session) -> Outgoing {
    s.keys("e");
    let asked = s
        .pending
        .iter()
        .find(|o| o.ticket.slot == Slot::Evaluate)
        .cloned()
        .expect("no scores asked");
    s.pending.retain(|o| o.ticket.slot != Slot::Evaluate);
    let explained = s
        .log
        .iter()
        .rfind(|r| matches!(r, Request::Explain { .. }))
        .cloned();
    let Some(Request::Explain {
        model_id,
        image,
        method,
        class,
        layer,
    }) = explained
    else {
        panic!("no explanation asked");
    };
    assert_eq!(
        asked.request,
        Request::Evaluate {
            model_id,
            image,
            method,
            class,
            layer,
        }
    );
    asked
}

/// `e` scores the explanation shown: a gauge under the picture while the daemon computes, then
/// the scores beside the method's name in the title.
#[test]
fn overlay_scores_beside_the_method() {
    for (w, h) in [(80, 24), (160, 50)] {
        let mut s = Session::new(w, h);
        s.keys("o");
        s.settle();
        let asked = scores_asked(&mut s);
        s.send(Event::Progress(
            asked.ticket.clone(),
            Progress {
                percentage: Some(40),
                message: Some("deletion".into()),
            },
        ));
        let screen = s.draw();
        assert!(screen.contains("gradcam (scoring 40%)"), "{screen}");
        // The daemon's message where the line has room for it.
        let line = if w == 80 {
            "scoring gradcam 40%"
        } else {
            "scoring gradcam: deletion 40%"
        };
        assert!(screen.contains(line), "{screen}");
        assert!(
            screen.contains("⠋ scoring 40%"),
            "the status line: {screen}"
        );
        insta::assert_snapshot!(format!("overlay_scoring_{w}x{h}"), screen);
        s.send(Event::Reply(asked.ticket.clone(), reply_to(&asked.request)));
        assert!(!s.app.overlay.is_loading());
        let screen = s.draw();
        // The scores beside the name (the layer after them, where the title has room; short
        // where it has little).
        let shown = if w == 80 {
            format!(
                "Overlay gradcam (d.30 i.77 r-.08 s{})",
                &format!("{RANDOMIZATION:.2}")[1..]
            )
        } else {
            format!("Overlay {}", gradcam_scored())
        };
        assert!(screen.contains(&shown), "{screen}");
        assert!(!screen.contains("scoring"), "{screen}");
        insta::assert_snapshot!(format!("overlay_scores_{w}x{h}"), screen);
    }
}

/// Scores are shown only with what they score: another method, class or image shows none (not
/// the ones before), and coming back shows them again without asking.
#[test]
fn scores_follow_the_explanation_shown() {
    let mut s = Session::new(160, 50);
    s.keys("o");
    s.settle();
    s.keys("e");
    s.settle();
    let title = |s: &mut Session| {
        let screen = s.draw();
        screen
            .lines()
            .find(|l| l.contains("Overlay"))
            .unwrap_or_default()
            .to_string()
    };
    assert!(title(&mut s).contains(&gradcam_scored()));
    for keys in ["m", "c", "]"] {
        s.keys(keys);
        s.settle();
        assert!(
            !title(&mut s).contains("del "),
            "after {keys}: {}",
            title(&mut s)
        );
    }
    let asked = s.log.len();
    s.keys("[CM");
    s.settle();
    assert!(title(&mut s).contains(&gradcam_scored()));
    assert!(
        !s.log[asked..]
            .iter()
            .any(|r| matches!(r, Request::Evaluate { .. })),
        "kept, not asked again"
    );
    // Another method scored: its own scores.
    s.keys("me");
    s.settle();
    assert!(
        title(&mut s).contains(&scored(Method::GradCamPlusPlus)),
        "{}",
        title(&mut s)
    );
}

/// A second press on another method supersedes the first one's request: its late answer is
/// dropped, and the newer one's scores land on the method shown.
#[test]
fn a_superseded_scoring_is_dropped() {
    let mut s = Session::new(160, 50);
    s.keys("o");
    s.settle();
    let first = scores_asked(&mut s);
    s.keys("m");
    s.settle();
    let second = scores_asked(&mut s);
    assert!(second.ticket.seq > first.ticket.seq);
    assert!(matches!(
        second.request,
        Request::Evaluate {
            method: MethodSelection::One(Method::GradCamPlusPlus),
            ..
        }
    ));
    s.send(Event::Reply(first.ticket.clone(), reply_to(&first.request)));
    assert!(
        s.app.overlay.scored.is_empty(),
        "the older answer is dropped"
    );
    assert!(s.app.overlay.scores().is_loading());
    s.send(Event::Reply(
        second.ticket.clone(),
        reply_to(&second.request),
    ));
    let Remote::Ready(e) = s.app.overlay.scores() else {
        panic!("not scored");
    };
    assert_eq!(e.methods.len(), 1);
    assert_eq!(
        e.of("gradcam++"),
        Some(&Faithfulness {
            randomization: Some(RANDOMIZATION),
            ..faithfulness(Method::GradCamPlusPlus)
        })
    );
    // Back on gradcam: its scores were never kept.
    s.keys("M");
    s.settle();
    assert_eq!(s.app.overlay.scores(), Remote::Idle);
}

/// `e` on `all` scores every method in one request: each tile shows its method's scores, the
/// header the most faithful by each metric.
#[test]
fn overlay_all_scores_in_each_tile() {
    for (w, h) in [(80, 24), (160, 50)] {
        let mut s = Session::new(w, h);
        let asked = all_methods_asked(&mut s);
        s.send(Event::Reply(asked.ticket.clone(), reply_to(&asked.request)));
        let scoring = scores_asked(&mut s);
        assert!(matches!(
            scoring.request,
            Request::Evaluate {
                method: MethodSelection::All,
                class: Some(283),
                ..
            }
        ));
        s.send(Event::Progress(
            scoring.ticket.clone(),
            Progress {
                percentage: Some(15),
                message: Some("gradcam (3 of 20): deletion".into()),
            },
        ));
        let screen = s.draw();
        let line = if w == 80 {
            "scoring all methods 15%"
        } else {
            "scoring all methods: gradcam (3 of 20): deletion 15%"
        };
        assert!(screen.contains(line), "{screen}");
        assert!(
            screen.contains("· scoring 15%") || w == 80,
            "the title: {screen}"
        );
        s.send(Event::Reply(
            scoring.ticket.clone(),
            reply_to(&scoring.request),
        ));
        let screen = s.draw();
        assert!(
            screen.contains(&format!(
                "best del gradient 0.12 · ins guided-gradcam {:.2}",
                faithfulness(Method::GuidedGradCam).insertion.unwrap()
            )),
            "{screen}"
        );
        // The tiles show each method's own scores, as short as the tile needs (one metric a
        // row in the smallest).
        if w == 160 {
            assert!(screen.contains("del 0.12     del 0.13"), "{screen}");
            assert!(screen.contains("road 0.10    road 0.09"), "{screen}");
        } else {
            assert!(screen.contains(" d.12   d.13 "), "{screen}");
            assert!(screen.contains(" i.41   i.43 "), "{screen}");
        }
        insta::assert_snapshot!(format!("overlay_all_scores_{w}x{h}"), screen);
    }
}

/// A daemon without `image/evaluate` says so on `e` and is asked nothing.
#[test]
fn a_daemon_without_scores_says_so() {
    let mut s = Session::with(
        160,
        50,
        Connection {
            device: "cpu".into(),
            unavailable: vec![(Feature::Evaluate, "image/evaluate".into())],
        },
    );
    s.keys("o");
    s.settle();
    s.keys("e");
    assert!(s.pending.is_empty());
    let screen = s.draw();
    assert!(
        screen.contains("no faithfulness scores from this daemon (it has no `image/evaluate`"),
        "{screen}"
    );
}

#[test]
fn a_segmentation_is_drawn_beside_its_explanation() {
    let mut s = Session::new(160, 50);
    s.keys("o");
    s.settle();
    let solid = |rgb: [u8; 3]| {
        Picture::new(image::RgbaImage::from_pixel(
            64,
            64,
            image::Rgba([rgb[0], rgb[1], rgb[2], 255]),
        ))
    };
    let shown = |s: &mut Session| {
        s.draw();
        let buffer = s.terminal.backend().buffer().clone();
        // The columns where each colour shows, as the half-block cells paint it.
        let columns = |rgb: [u8; 3]| -> Vec<u16> {
            let color = ratatui::style::Color::Rgb(rgb[0], rgb[1], rgb[2]);
            let mut xs: Vec<u16> = buffer
                .content()
                .iter()
                .enumerate()
                .filter(|(_, c)| c.fg == color || c.bg == color)
                .map(|(i, _)| (i % usize::from(buffer.area.width)) as u16)
                .collect();
            xs.sort_unstable();
            xs.dedup();
            xs
        };
        (columns([250, 0, 0]), columns([0, 0, 250]))
    };
    let Remote::Ready(e) = &s.app.overlay.explanation.state else {
        panic!("no explanation shown");
    };
    let mut e = e.clone();
    e.overlay = solid([0, 0, 250]);
    s.app.overlay.explanation.state = Remote::Ready(e.clone());
    let (red, blue) = shown(&mut s);
    assert!(
        red.is_empty() && !blue.is_empty(),
        "a classifier: the overlay alone"
    );
    let alone = blue.clone();
    e.segmentation = Some(solid([250, 0, 0]));
    s.app.overlay.explanation.state = Remote::Ready(e);
    let (red, blue) = shown(&mut s);
    assert!(!red.is_empty() && !blue.is_empty());
    assert!(
        red.last() < blue.first(),
        "the segmentation left of the overlay: {red:?} {blue:?}"
    );
    assert!(blue.len() < alone.len(), "each takes half the room");
}
