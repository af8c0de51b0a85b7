//! What the views show at one refresh, read once from the app and handed to every view's
//! refresh.

use std::path::PathBuf;

use ratatui::layout::Rect;

use crate::data::Layer;
use crate::state::units::UnitKey;

/// The model, checkpoint version, image, layer and unit the views show.
#[derive(Clone, Debug, PartialEq)]
pub struct Shown {
    /// The model every view asks: the live one, or the frozen copy of the pinned version.
    pub model_id: String,
    /// The checkpoint version shown.
    pub version: u64,
    /// The watched folder.
    pub folder: PathBuf,
    /// The current image.
    pub image: Option<PathBuf>,
    /// How many images the folder holds.
    pub image_count: usize,
    /// The module under the tree's cursor.
    pub layer: Option<Layer>,
    /// The unit under the grid's cursor.
    pub unit: Option<UnitKey>,
    /// The terminal's size.
    pub size: Rect,
}
