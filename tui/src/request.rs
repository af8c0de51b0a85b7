//! What the app asks of the outside world: daemon calls and local photo loads, each with a
//! ticket whose slot says which view it feeds (a newer ticket for a slot supersedes the older).

use convlens_shared::choices::{MethodSelection, Preset};
use convlens_shared::methods::model::LoadParams;
use std::path::PathBuf;

/// A capability of the daemon the views depend on; the link knows which protocol method gives
/// each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Feature {
    /// The model and its layer tree.
    Model,
    /// The images of a folder and news of new ones.
    Images,
    /// Top-k classes of an image.
    Predict,
    /// Every channel of a layer for an image.
    Activations,
    /// Every unit of a layer over the folder: statistics and top images.
    FolderTop,
    /// A unit's deconvnet reconstruction.
    Deconv,
    /// A unit's activation-maximization image.
    Maximize,
    /// Attribution overlays.
    Explain,
    /// Faithfulness scores of explanations.
    Evaluate,
    /// The filters of a convolution.
    Filters,
    /// The t-SNE map of the folder.
    Map,
    /// The versions of a watched checkpoint.
    Versions,
    /// An earlier version of the model as a frozen model.
    AtVersion,
}

/// Which view a request feeds; a newer request in the same slot supersedes (cancels) the older.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The model and its tree.
    Model,
    /// The folder listing.
    Images,
    /// A photo read from disk (one slot per file: photos never supersede each other).
    Photo(PathBuf),
    /// The current image's top-5.
    Predict,
    /// The unit grid.
    Activations,
    /// The inspector's folder statistics and top images (the whole layer's).
    FolderTop,
    /// The inspector's best top image, cropped to the unit's receptive field.
    TopCrop,
    /// The inspector's reconstruction.
    Deconv,
    /// The inspector's activation maximization.
    Maximize,
    /// The overlay view.
    Explain,
    /// The overlay view's faithfulness scores.
    Evaluate,
    /// The filters view.
    Filters,
    /// The map view.
    Map,
    /// The timeline's list of versions.
    Versions,
    /// The frozen model of the version shown.
    AtVersion,
}

/// Identifies one request: its slot and its sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// The view it feeds.
    pub slot: Slot,
    /// Unique, increasing.
    pub seq: u64,
}

/// What to fetch.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Load `model` (a file, `demo`, `random:ARCH`), watch its file, and describe its layers.
    OpenModel {
        /// As given on the command line.
        model: String,
        /// How to load it beyond its path (`--graph`, preprocessing overrides).
        load: LoadParams,
    },
    /// List and watch the images of `folder`.
    ListImages {
        /// The folder.
        folder: PathBuf,
    },
    /// Read a photo from disk (done locally, not by the daemon).
    LoadPhoto {
        /// The file.
        path: PathBuf,
    },
    /// Top-5 classes of `image`.
    Predict {
        /// The model.
        model_id: String,
        /// The image.
        image: PathBuf,
    },
    /// Every channel of `layer` for `image`.
    Activations {
        /// The model.
        model_id: String,
        /// The layer.
        layer: String,
        /// The image.
        image: PathBuf,
    },
    /// Every unit of `layer` over `folder`: statistics, dead units, top images.
    FolderTop {
        /// The model.
        model_id: String,
        /// The layer.
        layer: String,
        /// The folder.
        folder: PathBuf,
    },
    /// The image of `folder` that excites a unit most, cropped to the unit's receptive field.
    TopCrop {
        /// The model.
        model_id: String,
        /// The layer.
        layer: String,
        /// The channel.
        unit: usize,
        /// The folder.
        folder: PathBuf,
    },
    /// A unit's deconvnet reconstruction on `image`.
    Deconv {
        /// The model.
        model_id: String,
        /// The layer.
        layer: String,
        /// The channel.
        unit: usize,
        /// The image.
        image: PathBuf,
    },
    /// A unit's activation-maximization image.
    Maximize {
        /// The model.
        model_id: String,
        /// The layer.
        layer: String,
        /// The channel.
        unit: usize,
        /// The preset.
        preset: Preset,
    },
    /// An attribution overlay, or every method's (`all`: each one's comes as a partial result
    /// when it is done, cheapest first).
    Explain {
        /// The model.
        model_id: String,
        /// The image.
        image: PathBuf,
        /// The method, or `all`.
        method: MethodSelection,
        /// The class (the top one when `None`).
        class: Option<usize>,
        /// The layer of a CAM, or of `all`'s CAMs (the daemon's default when `None`).
        layer: Option<String>,
    },
    /// The faithfulness scores (deletion, insertion, ROAD combined) of the explanation `Explain`
    /// with the same fields asks for: one method's, or every method's (`all`).
    Evaluate {
        /// The model.
        model_id: String,
        /// The image.
        image: PathBuf,
        /// The method, or `all`.
        method: MethodSelection,
        /// The class (the top one when `None`).
        class: Option<usize>,
        /// The layer of a CAM, or of `all`'s CAMs (the daemon's default when `None`).
        layer: Option<String>,
    },
    /// The filters of a convolution.
    Filters {
        /// The model.
        model_id: String,
        /// The layer.
        layer: String,
    },
    /// The t-SNE map of `folder`.
    Map {
        /// The model.
        model_id: String,
        /// The layer whose outputs are embedded (the penultimate one when `None`).
        layer: Option<String>,
        /// The folder.
        folder: PathBuf,
    },
    /// The versions of the model.
    Versions {
        /// The model (the live one).
        model_id: String,
    },
    /// Version `version` of the model as a frozen model, for every view to ask.
    AtVersion {
        /// The model (the live one).
        model_id: String,
        /// The version.
        version: u64,
    },
}

/// A request with its ticket.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// Its identity.
    pub ticket: Ticket,
    /// What to do.
    pub request: Request,
}
