//! Everything the app reacts to: key presses, the terminal's size, the clock, and what the
//! daemon said (answers, progress, notifications).

use std::path::PathBuf;

use ratatui::crossterm::event::KeyEvent;

use crate::data::{
    Evaluation, Explanation, Explanations, FilterBank, FolderMap, LayerActivations,
    LayerOverFolder, ModelView, Picture, Prediction,
};
use crate::remote::Progress;
use crate::request::{Feature, Ticket};
use crate::timeline::Version;

/// An answer to a request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The model opened.
    Model(ModelView),
    /// The folder's images.
    Images(Vec<PathBuf>),
    /// A photo read from disk.
    Photo(Picture),
    /// Top-5 classes.
    Predict(Prediction),
    /// A layer's channels.
    Activations(LayerActivations),
    /// Every unit of a layer over the folder.
    FolderTop(LayerOverFolder),
    /// A unit's best top image, cropped.
    TopCrop(Picture),
    /// A unit's reconstruction.
    Deconv(Picture),
    /// A unit's activation-maximization image.
    Maximize(Picture),
    /// An overlay.
    Explain(Explanation),
    /// Every method's overlay (`all`); as a partial result, only the methods just done.
    ExplainAll(Explanations),
    /// Faithfulness scores of one method's or every method's explanation.
    Evaluate(Evaluation),
    /// A convolution's filters.
    Filters(FilterBank),
    /// The folder map.
    Map(FolderMap),
    /// The model's versions, oldest first.
    Versions(Vec<Version>),
    /// The frozen model id of a version (`m1@3`).
    AtVersion(String),
}

/// What the daemon offers, learned when connecting.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Connection {
    /// The daemon's compute device (`cpu`, `cuda:0`).
    pub device: String,
    /// Features it lacks, each with the protocol method that would give it.
    pub unavailable: Vec<(Feature, String)>,
}

/// One input to [`crate::app::App::update`].
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A key press.
    Key(KeyEvent),
    /// The terminal's new size.
    Resize(u16, u16),
    /// Time passed (animates spinners).
    Tick,
    /// Connected to the daemon.
    Connected(Connection),
    /// The daemon could not be reached or went away.
    Disconnected(String),
    /// An answer.
    Reply(Ticket, Reply),
    /// A piece of a request's answer before the whole of it (LSP's partial results): a reply
    /// holding only what is new.
    Partial(Ticket, Reply),
    /// A request failed.
    Failed(Ticket, String),
    /// A request reported progress.
    Progress(Ticket, Progress),
    /// Files appeared in or left the watched folder.
    ImagesChanged {
        /// New files.
        added: Vec<PathBuf>,
        /// Files gone.
        removed: Vec<PathBuf>,
    },
    /// The model's file was rewritten and reloaded.
    ModelReloaded {
        /// The new version.
        version: u64,
        /// When (as shown to the user).
        at: String,
    },
    /// The model's file was rewritten but could not be loaded; the old version stays.
    ReloadFailed {
        /// Why.
        error: String,
        /// When (as shown to the user).
        at: String,
    },
}
