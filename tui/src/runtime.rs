//! The terminal loop: raw mode and the alternate screen, key and resize events from a reader
//! thread, the daemon's events from the link, redraws when something changed.

use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use ratatui::crossterm::event::{self as term, Event as TermEvent};

use crate::app::App;
use crate::event::Event;
use crate::images::{self, Graphics, Images};
use crate::link::{Connect, Link};
use crate::ui;

/// How often spinners turn.
const TICK: Duration = Duration::from_millis(120);

/// What the TUI needs to start.
pub struct Options {
    /// The model (a file, `demo`, `random:ARCH`).
    pub model: String,
    /// How to load the model beyond its path: `graph` (absolute), `mean`, `std`, `resize`.
    pub load: convlens_shared::methods::model::LoadParams,
    /// The folder of images to browse.
    pub folder: PathBuf,
    /// The graphics protocol.
    pub graphics: Graphics,
    /// Opens the daemon connection (starting a daemon when none runs).
    pub connect: Connect,
}

/// What wakes the loop.
enum Wake {
    Event(Event),
    Encoded,
}

/// Runs the TUI until the user quits.
pub fn run(options: Options) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = run_in(&mut terminal, options);
    ratatui::restore();
    result
}

fn run_in(terminal: &mut ratatui::DefaultTerminal, options: Options) -> anyhow::Result<()> {
    let picker = images::picker_for(options.graphics);
    let (tx, rx) = mpsc::channel::<Wake>();
    let mut images = Images::threaded(picker, {
        let tx = tx.clone();
        move || {
            let _ = tx.send(Wake::Encoded);
        }
    })?;
    spawn_input(tx.clone())?;
    spawn_ticks(tx.clone())?;
    let link = Link::start(
        options.connect,
        Arc::new(move |e| {
            let _ = tx.send(Wake::Event(e));
        }),
    );
    let size = terminal.size()?;
    let mut app = App::new(options.model, options.folder, size.width, size.height);
    app.load = options.load;
    terminal.draw(|f| ui::draw(f, &app, &mut images))?;
    while let Ok(first) = rx.recv() {
        let mut redraw = false;
        for wake in std::iter::once(first).chain(rx.try_iter()) {
            match wake {
                Wake::Encoded => redraw |= images.receive(),
                Wake::Event(Event::Tick) => {
                    app.update(Event::Tick);
                    redraw |= app.is_busy();
                }
                Wake::Event(e) => {
                    link.send(app.update(e));
                    redraw = true;
                }
            }
        }
        if app.quit {
            break;
        }
        if redraw {
            terminal.draw(|f| ui::draw(f, &app, &mut images))?;
        }
    }
    Ok(())
}

fn spawn_input(tx: mpsc::Sender<Wake>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("convlens-input".into())
        .spawn(move || loop {
            let event = match term::read() {
                Ok(TermEvent::Key(k)) => Event::Key(k),
                Ok(TermEvent::Resize(w, h)) => Event::Resize(w, h),
                Ok(_) => continue,
                Err(_) => break,
            };
            if tx.send(Wake::Event(event)).is_err() {
                break;
            }
        })
        .map(drop)
}

fn spawn_ticks(tx: mpsc::Sender<Wake>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("convlens-ticks".into())
        .spawn(move || {
            while tx.send(Wake::Event(Event::Tick)).is_ok() {
                std::thread::sleep(TICK);
            }
        })
        .map(drop)
}
