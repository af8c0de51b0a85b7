//! How the CLI shows long work: a bar on a terminal (the overall share done, an ETA, and what is
//! being done: "gradcam++ (3 of 20): explain"); without a terminal, a line on stderr each time
//! the stage changes and every half minute in a long one; nothing with `--quiet`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use convlens_shared::methods::progress::stage_of;
use convlens_shared::sync::lock;
use indicatif::{ProgressBar, ProgressStyle};

/// The longest a stage goes without a line when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(30);

/// Where the progress of one request goes.
pub enum Reporter {
    /// A bar on a terminal.
    Bar(ProgressBar),
    /// Lines on stderr: the request's name, and the last stage written and when.
    Lines {
        /// The request's name (`image/explain`).
        title: String,
        /// The stage last written and when.
        last: Mutex<Option<(String, Instant)>>,
    },
}

impl Reporter {
    /// A bar when stderr is a terminal, else lines; titled `title`.
    pub fn new(title: &str) -> Reporter {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>12} [{bar:30}] {percent:>3}% eta {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_prefix(title.to_string());
            Reporter::Bar(bar)
        } else {
            Reporter::Lines {
                title: title.to_string(),
                last: Mutex::new(None),
            }
        }
    }

    /// The work's title changed (the daemon's `begin`).
    pub fn title(&self, title: String) {
        match self {
            Reporter::Bar(bar) => bar.set_prefix(title),
            Reporter::Lines { .. } => {}
        }
    }

    /// `done` of `total` units are finished; `words` say what is being done.
    pub fn report(&self, done: usize, total: usize, words: &str) {
        match self {
            Reporter::Bar(bar) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(words.to_string());
            }
            // The first report only repeats the request's name.
            Reporter::Lines { title, .. } if words == title => {}
            Reporter::Lines { title, last } => {
                let stage = stage_of(words).to_string();
                let mut last = lock(last);
                let due = match last.as_ref() {
                    Some((seen, at)) => *seen != stage || at.elapsed() >= LINE_EVERY,
                    None => true,
                };
                if due {
                    let percent = (done.min(total) * 100).checked_div(total).unwrap_or(0);
                    eprintln!("{title}: {words} ({percent}%)");
                    *last = Some((stage, Instant::now()));
                }
            }
        }
    }

    /// Runs `f` (which writes to the terminal) with the bar out of its way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match self {
            Reporter::Bar(bar) => bar.suspend(f),
            Reporter::Lines { .. } => f(),
        }
    }

    /// The work is over: the bar is cleared.
    pub fn finish(&self) {
        if let Reporter::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
