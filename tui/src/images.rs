//! Pictures in the terminal through ratatui-image: kitty, sixel or iTerm2 where the terminal
//! speaks it, Unicode half-blocks everywhere else. Encoding (resize + protocol bytes) runs on a
//! worker thread; until a picture is encoded for an area, the area shows a placeholder.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{self, Receiver, Sender};

use image::DynamicImage;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::widgets::Widget;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::Protocol;
use ratatui_image::{Image, Resize};

use crate::data::Picture;

/// The graphics protocol asked for on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Graphics {
    /// Ask the terminal; half-blocks when it answers nothing useful.
    #[default]
    Auto,
    /// The kitty graphics protocol.
    Kitty,
    /// Sixel.
    Sixel,
    /// iTerm2's inline images.
    Iterm2,
    /// Unicode half-blocks (works everywhere).
    Halfblocks,
}

impl std::str::FromStr for Graphics {
    type Err = String;

    fn from_str(s: &str) -> Result<Graphics, String> {
        Ok(match s {
            "auto" => Graphics::Auto,
            "kitty" => Graphics::Kitty,
            "sixel" => Graphics::Sixel,
            "iterm2" => Graphics::Iterm2,
            "halfblocks" => Graphics::Halfblocks,
            other => {
                return Err(format!(
                    "unknown graphics `{other}`: expected auto, kitty, sixel, iterm2 or halfblocks"
                ))
            }
        })
    }
}

/// The picker for `graphics`. `Auto` (and a forced protocol, for the font size) queries the
/// terminal on stdio, so call it after entering the alternate screen and before reading events.
pub fn picker_for(graphics: Graphics) -> Picker {
    let queried = || Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks());
    let forced = |protocol| {
        let mut picker = queried();
        picker.set_protocol_type(protocol);
        picker
    };
    match graphics {
        Graphics::Auto => queried(),
        Graphics::Halfblocks => Picker::halfblocks(),
        Graphics::Kitty => forced(ProtocolType::Kitty),
        Graphics::Sixel => forced(ProtocolType::Sixel),
        Graphics::Iterm2 => forced(ProtocolType::Iterm2),
    }
}

/// The name of `picker`'s protocol, for the header.
pub fn protocol_name(picker: &Picker) -> &'static str {
    match picker.protocol_type() {
        ProtocolType::Halfblocks => "halfblocks",
        ProtocolType::Sixel => "sixel",
        ProtocolType::Kitty => "kitty",
        ProtocolType::Iterm2 => "iterm2",
    }
}

/// A picture encoded for an area of this size.
type Key = (u64, u16, u16);

/// Encoded pictures kept at most; past it the cache starts over (what is on screen is
/// encoded again).
const MAX_ENCODED: usize = 96;

struct Job {
    key: Key,
    image: DynamicImage,
}

struct Worker {
    jobs: Sender<Job>,
    done: Receiver<(Key, Result<Protocol, String>)>,
}

/// Encoded pictures and the encoder.
pub struct Images {
    picker: Picker,
    encoded: HashMap<Key, Result<Protocol, String>>,
    waiting: HashSet<Key>,
    worker: Option<Worker>,
}

impl Images {
    /// Encodes on the calling thread, at once (for tests: one draw shows the pictures).
    pub fn inline(picker: Picker) -> Images {
        Images {
            picker,
            encoded: HashMap::new(),
            waiting: HashSet::new(),
            worker: None,
        }
    }

    /// Encodes on a worker thread, calling `wake` after each picture so that the UI redraws.
    pub fn threaded(picker: Picker, wake: impl Fn() + Send + 'static) -> std::io::Result<Images> {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done) = mpsc::channel();
        let encoder = picker.clone();
        std::thread::Builder::new()
            .name("convlens-image-encoder".into())
            .spawn(move || {
                while let Ok(job) = job_rx.recv() {
                    let result = encode(&encoder, job.image, job.key);
                    if done_tx.send((job.key, result)).is_err() {
                        break;
                    }
                    wake();
                }
            })?;
        Ok(Images {
            picker,
            encoded: HashMap::new(),
            waiting: HashSet::new(),
            worker: Some(Worker { jobs, done }),
        })
    }

    /// The protocol's name (`halfblocks`, `kitty`, ...).
    pub fn protocol_name(&self) -> &'static str {
        protocol_name(&self.picker)
    }

    /// Takes in what the worker finished; `true` when anything did (worth a redraw).
    pub fn receive(&mut self) -> bool {
        let Some(worker) = &self.worker else {
            return false;
        };
        let mut any = false;
        while let Ok((key, result)) = worker.done.try_recv() {
            self.waiting.remove(&key);
            self.encoded.insert(key, result);
            any = true;
        }
        any
    }

    /// Draws `picture` fitted into `area`, or a placeholder while it is being encoded.
    pub fn draw(&mut self, buf: &mut Buffer, area: Rect, picture: &Picture) {
        if area.width == 0 || area.height == 0 {
            return;
        }
        let key = (picture.id, area.width, area.height);
        if !self.encoded.contains_key(&key) {
            self.start(key, picture);
        }
        match self.encoded.get(&key) {
            Some(Ok(protocol)) => Image::new(protocol).render(centred(area, protocol.area()), buf),
            Some(Err(e)) => placeholder(buf, area, &format!("cannot draw: {e}")),
            None => placeholder(buf, area, "…"),
        }
    }

    fn start(&mut self, key: Key, picture: &Picture) {
        if self.waiting.contains(&key) {
            return;
        }
        if self.encoded.len() >= MAX_ENCODED {
            self.encoded.clear();
        }
        let image = DynamicImage::ImageRgba8((*picture.image).clone());
        match &self.worker {
            None => {
                let result = encode(&self.picker, image, key);
                self.encoded.insert(key, result);
            }
            Some(worker) => {
                if worker.jobs.send(Job { key, image }).is_ok() {
                    self.waiting.insert(key);
                }
            }
        }
    }
}

/// A rectangle of `size`'s width and height in the middle of `area`.
fn centred(area: Rect, size: Rect) -> Rect {
    let (w, h) = (size.width.min(area.width), size.height.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

fn encode(picker: &Picker, image: DynamicImage, key: Key) -> Result<Protocol, String> {
    let area = Rect::new(0, 0, key.1, key.2);
    picker
        .new_protocol(image, area, Resize::Scale(None))
        .map_err(|e| e.to_string())
}

/// Grey text in the middle of `area`.
pub fn placeholder(buf: &mut Buffer, area: Rect, text: &str) {
    let width = (text.chars().count() as u16).min(area.width);
    let x = area.x + (area.width - width) / 2;
    let y = area.y + area.height / 2;
    buf.set_stringn(
        x,
        y,
        text,
        usize::from(area.width),
        Style::default().fg(Color::DarkGray),
    );
}
