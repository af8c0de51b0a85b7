//! Rendering tests: the app driven by key presses and daemon answers, drawn on ratatui's
//! TestBackend at 80×24 and 160×50, compared with insta snapshots (`tests/snapshots/`).
//!
//! The "daemon" here is `answer`: it replies to each request the app makes with small made-up
//! data of the right shape, so every request path is exercised the way the link feeds it.

use std::path::PathBuf;

use convlens_tui::app::{App, Pane, View};
use convlens_tui::data::{
    ClassScore, Explanation, FilterBank, FolderMap, FolderStats, Layer, LayerActivations, MapPoint,
    ModelView, Picture, Prediction, Tile, TopImage, UnitStats,
};
use convlens_tui::event::{Connection, Event, Reply};
use convlens_tui::images::Images;
use convlens_tui::remote::{Progress, Remote};
use convlens_tui::request::{Feature, Outgoing, Request, Slot};
use convlens_tui::ui;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui_image::picker::Picker;

const FOLDER: &str = "/photos";
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

/// The made-up daemon: the answer to `request`.
fn reply_to(request: &Request) -> Reply {
    match request {
        Request::OpenModel { .. } => Reply::Model(model(1)),
        Request::ListImages { .. } => Reply::Images(images()),
        Request::LoadPhoto { path } => Reply::Photo(picture(path.as_os_str().len() as u32, 96, 64)),
        Request::Predict { image, .. } => Reply::Predict(Prediction {
            image: image.clone(),
            top: ["tabby", "tiger cat", "Egyptian cat", "lynx", "tiger"]
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
        Request::FolderStats { .. } => Reply::FolderStats(FolderStats {
            stats: UnitStats {
                mean: 0.31,
                max: 2.75,
                frac_active: 0.42,
            },
            images: 5,
        }),
        Request::Deconv { unit, .. } => Reply::Deconv(picture(*unit as u32 + 7, 64, 64)),
        Request::Maximize { unit, .. } => Reply::Maximize(picture(*unit as u32 + 11, 64, 64)),
        Request::TopImages { .. } => Reply::TopImages(
            images()
                .into_iter()
                .rev()
                .enumerate()
                .map(|(i, image)| TopImage {
                    image,
                    score: 3.0 - i as f32 * 0.5,
                })
                .collect(),
        ),
        Request::Explain { method, class, .. } => Reply::Explain(Explanation {
            method: method.clone(),
            class: class.unwrap_or(281),
            label: Some(
                if class.is_some() {
                    "tiger cat"
                } else {
                    "tabby"
                }
                .into(),
            ),
            overlay: picture(method.len() as u32, 64, 64),
        }),
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
        Request::Map { .. } => Reply::Map(FolderMap {
            layer: "_conv_head".into(),
            points: images()
                .into_iter()
                .enumerate()
                .map(|(i, image)| MapPoint {
                    image,
                    x: (i as f64 * 1.7).sin() * 10.0,
                    y: i as f64 * 3.0,
                })
                .collect(),
        }),
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
                let reply = reply_to(&o.request);
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
        assert!(s.app.unit > 1);
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
        assert!(s.app.inspector_open);
        assert_eq!(s.app.unit, 2);
    });
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
        s.settle();
        s.key(KeyCode::Up);
        s.key(KeyCode::Up);
        s.settle();
    });
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
        assert!(matches!(s.app.explanation.state, Remote::Unavailable(_)));
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
    assert!(s.app.activations.state.is_loading());
    s.send(Event::Reply(
        second.ticket.clone(),
        reply_to(&second.request),
    ));
    assert_eq!(s.app.activations.state.ready().unwrap().layer, "_swish");
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
        "Predict",
        "Activations",
        "FolderStats",
        "Deconv",
        "TopImages",
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
        for keys in ["", "i", "a", "o", "f", "t", "?"] {
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
