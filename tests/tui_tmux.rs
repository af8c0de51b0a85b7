//! The terminal UI end to end, as a person would use it: the real `convlens` binary in tmux
//! (send-keys to type, capture-pane to read the screen), starting its own daemon on a private
//! socket. Each step waits for the screen to show what it should and fails if it does not
//! change when it should. Needs tmux (`.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use convlens_shared::methods::lifecycle::{Exit, Shutdown};
use convlens_shared::methods::NoParams;

const BIN: &str = env!("CARGO_BIN_EXE_convlens");

/// Long enough for a cold daemon start and the demo model's first forward pass on a busy
/// 2-core machine; a step that passes returns as soon as its screen shows.
const STEP: Duration = Duration::from_secs(90);

/// A tmux server of its own running the TUI, and the daemon it started.
struct Tui {
    server: String,
    dir: PathBuf,
}

impl Tui {
    /// Starts `convlens ARGS` in a `width × height` tmux window.
    fn start(name: &str, args: &[&str], width: u16, height: u16) -> Tui {
        assert!(
            Command::new("tmux")
                .arg("-V")
                .output()
                .is_ok_and(|o| o.status.success()),
            "this test needs tmux on PATH (apt-get install tmux)"
        );
        let dir = std::env::temp_dir().join(format!("convlens-tui-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tui = Tui {
            server: format!("convlens-{name}-{}", std::process::id()),
            dir,
        };
        let socket = tui.socket();
        let mut command = format!(
            "{BIN} --socket {} --graphics halfblocks",
            shell_quote(&socket)
        );
        for a in args {
            command.push(' ');
            command.push_str(&shell_quote(Path::new(a)));
        }
        // Keep the pane after the program ends so that a crash can be read.
        tui.tmux(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-e",
            "TERM=xterm-256color",
            &command,
        ]);
        tui.tmux(&["set-option", "-t", "t", "remain-on-exit", "on"]);
        tui
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("daemon.sock")
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.server)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen's text.
    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", "t", k]);
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    fn is_dead(&self) -> bool {
        self.tmux(&["list-panes", "-t", "t", "-F", "#{pane_dead}"])
            .trim()
            == "1"
    }

    /// Waits until the screen satisfies `ok`; panics with the screen when it does not in time.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if Instant::now() > deadline || self.is_dead() {
                panic!("the screen never showed {what}:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `keys` and waits for a screen that differs from the one before and satisfies `ok`.
    fn step(&self, keys: &[&str], what: &str, ok: impl Fn(&str) -> bool) -> String {
        let before = self.screen();
        self.keys(keys);
        self.wait_for(what, |s| s != before && ok(s))
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
        if let Ok(client) = convlens_shared::Client::connect(&self.socket()) {
            let _ = client.request::<Shutdown>(&NoParams {});
            let _ = client.notify::<Exit>(&NoParams {});
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// Whether a line holds pictures drawn with half blocks (a photo, an overlay).
fn has_half_blocks(screen: &str, min: usize) -> bool {
    screen.chars().filter(|c| *c == '▀' || *c == '▄').count() >= min
}

/// Whether the screen holds braille dots (the map's scatter).
fn has_braille(screen: &str) -> bool {
    screen
        .chars()
        .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c))
}

/// The title line of the main pane (`Units …`, `Overlay …`).
fn main_title(screen: &str) -> String {
    screen.lines().nth(1).unwrap_or_default().to_string()
}

/// The unit grid's caption (`unit 7 of 0–31 · max 1.80 · mean 0.76 · active 91%`).
fn unit_caption(screen: &str) -> Option<String> {
    let line = screen
        .lines()
        .find(|l| l.contains("unit ") && l.contains(" · max "))?;
    let at = line.find("unit ")?;
    Some(line[at..].trim_end_matches([' ', '┃', '│']).to_string())
}

/// The class number in the overlay's title.
fn explained_class(screen: &str) -> Option<String> {
    let title = main_title(screen);
    let rest = title.split("· class ").nth(1)?;
    Some(rest.split_whitespace().next()?.to_string())
}

#[test]
fn browse_the_demo_as_a_person_would() {
    let tui = Tui::start("demo", &[], 100, 30);
    // The demo opens: the model's tree, the photos with their top-5, pictures as half blocks.
    let screen = tui.wait_for("the demo's layer tree and the first photo's top-5", |s| {
        s.contains("efficientnet_lite0")
            && s.contains("_conv_stem")
            && s.contains("astronaut.jpg")
            && s.contains("% ")
            && has_half_blocks(s, 40)
    });
    assert!(screen.contains("daemon: cpu"), "{screen}");
    assert!(screen.contains("5 images"), "{screen}");

    // Into a layer: down to `_blocks`, unfold it, onto block 0.
    let screen = tui.step(
        &["Down", "Down", "Down"],
        "the grid following the cursor to _blocks",
        |s| main_title(s).contains("Units _blocks"),
    );
    assert!(
        screen.contains("▾ _blocks") || screen.contains("▸ _blocks"),
        "{screen}"
    );
    tui.step(&["Down"], "block 0 selected", |s| {
        main_title(s).contains("Units _blocks.0 ")
    });
    tui.step(&["Right"], "block 0 unfolded", |s| {
        s.contains("▾ 0") && s.contains("_depthwise_conv")
    });
    tui.step(&["Down"], "a leaf of block 0", |s| {
        main_title(s).contains("Units _blocks.0._depthwise_conv")
    });

    // The unit grid: every channel of the layer as a tile with its max, the cursor's in brackets.
    let screen = tui.wait_for("the unit grid of _depthwise_conv", |s| {
        s.contains("unit 0 of 0–31 · max") && s.contains('[')
    });
    let first = unit_caption(&screen);
    let screen = tui.step(
        &["Tab", "Tab", "Right", "Right", "Down"],
        "the unit cursor moved",
        |s| {
            unit_caption(s).is_some_and(|c| Some(&c) != first.as_ref() && !c.starts_with("unit 0 "))
        },
    );
    let moved = unit_caption(&screen).unwrap_or_default();
    assert!(
        moved.contains("max ") && moved.contains("active "),
        "{moved}"
    );
    // The inspector: the unit's numbers on the image.
    let screen = tui.step(&["i"], "the inspector", |s| s.contains("Inspector unit"));
    let unit = moved
        .trim_start_matches("unit ")
        .split(' ')
        .next()
        .unwrap_or_default();
    assert!(
        screen.contains(&format!("Inspector unit {unit} ")),
        "{screen}"
    );
    assert!(
        screen
            .lines()
            .any(|l| l.contains("│image ") && l.contains('%')),
        "{screen}"
    );

    // Next image: the strip moves and the top-5 follows.
    tui.step(&["]"], "the next photo", |s| {
        s.contains("chelsea.jpg") && s.contains("% ")
    });

    // Overlays: Grad-CAM first, at the layer selected in the tree (a spatial one), then the
    // next methods, each a new picture. The overlay is encoded off the UI thread: a placeholder
    // first, then the picture.
    let at = "at _blocks.0._depthwise_conv · class";
    let screen = tui.step(&["o"], "the Grad-CAM overlay", |s| {
        main_title(s).contains(&format!("Overlay gradcam {at}")) && has_half_blocks(s, 300)
    });
    let gradcam = screen;
    let screen = tui.step(&["m"], "the Grad-CAM++ overlay", |s| {
        main_title(s).contains(&format!("Overlay gradcam++ {at}")) && has_half_blocks(s, 300)
    });
    assert_ne!(screen, gradcam);
    let screen = tui.step(&["m"], "the XGrad-CAM overlay", |s| {
        main_title(s).contains(&format!("Overlay xgradcam {at}"))
    });
    let top_class = explained_class(&screen);
    tui.step(&["c"], "the second class explained", |s| {
        main_title(s).contains(&format!("Overlay xgradcam {at}")) && explained_class(s) != top_class
    });

    // The filters of the selected depthwise convolution (one input channel each: grey tiles).
    tui.step(&["f"], "the filters view", |s| {
        main_title(s).contains("Filters _blocks.0._depthwise_conv")
            && s.contains("filter 0 of 0–31 · 3×3 · one input channel, mid-grey = 0")
    });

    // The map of the five demo photos: t-SNE in the daemon, the points in braille, the photo
    // nearest to the cursor named with its predicted class; moving the cursor redraws it.
    let screen = tui.step(&["t"], "the t-SNE map", |s| {
        main_title(s).contains("Map t-SNE of 5 images") && has_braille(s) && s.contains("▶ ")
    });
    assert!(screen.contains('%'), "{screen}");
    tui.step(
        &["Left", "Left", "Left", "Left", "Up", "Up", "Up"],
        "the map cursor moved",
        |s| main_title(s).contains("Map t-SNE of 5 images") && has_braille(s),
    );

    // The key list, then quit.
    tui.step(&["?"], "the key list", |s| {
        s.contains("Keys") && s.contains("quit")
    });
    tui.step(&["Escape"], "the key list closed", |s| {
        !s.contains("any key closes")
    });
    tui.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !tui.is_dead() {
        assert!(
            Instant::now() < deadline,
            "q did not quit:\n{}",
            tui.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_rewritten_checkpoint_refreshes_the_views() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let weights = root.join("models/assets/efficientnet_lite0.safetensors");
    let photos = root.join("models/assets/photos");
    let scratch = std::env::temp_dir().join(format!("convlens-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let checkpoint = scratch.join("efficientnet_lite0.safetensors");
    std::fs::copy(&weights, &checkpoint).unwrap();
    let folder = scratch.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    for name in ["chelsea.jpg", "coffee.jpg"] {
        std::fs::copy(photos.join(name), folder.join(name)).unwrap();
    }

    let tui = Tui::start(
        "ckpt",
        &[
            checkpoint.to_str().unwrap(),
            "--images",
            folder.to_str().unwrap(),
        ],
        100,
        30,
    );
    tui.wait_for("the checkpoint open at v1 with a top-5", |s| {
        s.contains(" · v1 · ") && s.contains("% ") && s.contains("Images 1/2")
    });
    // A photo landing in the folder joins the strip.
    std::fs::copy(photos.join("rocket.jpg"), folder.join(".rocket.partial")).unwrap();
    std::fs::rename(folder.join(".rocket.partial"), folder.join("rocket.jpg")).unwrap();
    tui.wait_for("the new photo counted", |s| s.contains("Images 1/3"));
    tui.step(&["Tab", "End"], "the new photo current", |s| {
        s.contains("rocket.jpg") && s.contains("Images 3/3")
    });
    // Rewrite it as a trainer does (a new file renamed over the old one).
    let next = scratch.join("next.safetensors");
    std::fs::copy(&weights, &next).unwrap();
    std::fs::rename(&next, &checkpoint).unwrap();
    let written = Instant::now();
    tui.wait_for("the reload notice", |s| {
        s.contains("checkpoint v2 loaded at")
    });
    let noticed = written.elapsed();
    let screen = tui.wait_for("v2 in the header and its top-5", |s| {
        s.contains(" · v2 · ") && s.contains("% ")
    });
    eprintln!(
        "checkpoint rewrite → reload notice on screen: {} ms; → tree and top-5 of v2: {} ms",
        noticed.as_millis(),
        written.elapsed().as_millis()
    );
    assert!(!screen.contains("v1 ·"), "{screen}");

    // Back to v1 on the timeline: the daemon kept it, every view asks it, the status line says so.
    let screen = tui.step(&["v"], "the timeline of two versions", |s| {
        main_title(s).contains("Timeline 2 versions · showing v2 (live)")
    });
    assert!(screen.contains("▶ v2"), "{screen}");
    let screen = tui.step(&["<"], "version 1 shown", |s| {
        s.contains("showing v1 of v2") && s.contains(" · v1/2 · ") && s.contains("% ")
    });
    assert!(screen.contains("▶ v1"), "{screen}");
    tui.step(&[">"], "the live version again", |s| {
        s.contains(" · v2 · ") && s.contains("v2 live")
    });

    // A broken rewrite is reported and the TUI goes on with v2.
    std::fs::write(scratch.join("bad.safetensors"), b"not a checkpoint").unwrap();
    std::fs::rename(scratch.join("bad.safetensors"), &checkpoint).unwrap();
    let screen = tui.wait_for("the failed reload", |s| s.contains("reload failed"));
    assert!(screen.contains(" · v2 · "), "{screen}");
    assert!(!tui.is_dead());
    drop(tui);
    let _ = std::fs::remove_dir_all(scratch);
}

/// Replays a real PyTorch run (examples/train_torch.py, committed under
/// tests/fixtures/export/train_run): the TUI opens the checkpoint bound to the run's
/// `torch.export` program with `--graph`, every checkpoint the trainer writes becomes a version, a
/// torn write leaves the previous version serving, and the timeline steps through the versions.
#[test]
fn a_pytorch_run_is_watched_through_its_program() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let run = root.join("tests/fixtures/export/train_run");
    let scratch = std::env::temp_dir().join(format!("convlens-torchrun-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let program = scratch.join("model.pt2");
    std::fs::copy(run.join("model.pt2"), &program).unwrap();
    let checkpoint = scratch.join("checkpoint.pt");
    // As the trainer writes a checkpoint: its metrics, then the weights renamed into place.
    let write = |step: usize| {
        let name = format!("step-{step:06}");
        std::fs::copy(
            run.join(format!("{name}.json")),
            scratch.join("checkpoint.json"),
        )
        .unwrap();
        let temp = scratch.join(".checkpoint.pt.tmp");
        std::fs::copy(run.join(format!("{name}.pt")), &temp).unwrap();
        std::fs::rename(&temp, &checkpoint).unwrap();
    };
    write(20);
    let images = root.join("tests/fixtures/fashion_folder/bag");
    let tui = Tui::start(
        "torchrun",
        &[
            checkpoint.to_str().unwrap(),
            "--graph",
            program.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
        ],
        120,
        32,
    );
    // The top-5 names Fashion-MNIST's classes, from the program's extra/convlens.json.
    use convlens_models::arch::fashion_mnist::CLASS_NAMES as CLASSES;
    tui.wait_for(
        "the checkpoint open at v1 with Fashion-MNIST's classes",
        |s| s.contains(" · v1 · ") && CLASSES.iter().any(|c| s.contains(c)),
    );
    write(40);
    tui.wait_for("v2 loaded", |s| s.contains(" · v2 · ") && s.contains("% "));
    // A torn write: half of the next checkpoint, left as it is.
    let bytes = std::fs::read(run.join("step-000060.pt")).unwrap();
    std::fs::write(&checkpoint, &bytes[..bytes.len() / 2]).unwrap();
    let screen = tui.wait_for("the failed reload", |s| s.contains("reload failed"));
    assert!(screen.contains(" · v2 · "), "{screen}");
    write(60);
    tui.wait_for("v3 loaded", |s| s.contains(" · v3 · ") && s.contains("% "));
    let screen = tui.step(&["v"], "the timeline of three versions", |s| {
        main_title(s).contains("Timeline 3 versions · showing v3 (live)")
    });
    assert!(screen.contains("▶ v3"), "{screen}");
    let screen = tui.step(&["<"], "version 2 shown", |s| {
        s.contains("showing v2 of v3") && s.contains(" · v2/3 · ") && s.contains("% ")
    });
    assert!(screen.contains("▶ v2"), "{screen}");
    tui.step(&["<"], "version 1 shown", |s| {
        s.contains("showing v1 of v3")
    });
    // The daemon kept each version with the trainer's metrics.
    let out = Command::new(BIN)
        .arg("--socket")
        .arg(tui.socket())
        .args(["versions", "--json", checkpoint.to_str().unwrap()])
        .args(["--graph", program.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: serde_json::Value = serde_json::from_str(&text).unwrap();
    let steps: Vec<u64> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["metrics"]["step"].as_u64())
        .collect();
    assert_eq!(steps, [20, 40, 60], "{text}");
    assert!(!tui.is_dead());
    drop(tui);
    let _ = std::fs::remove_dir_all(scratch);
}
