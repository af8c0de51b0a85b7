//! The map view's state: the t-SNE map of the folder and the cursor moved over it.

use std::path::PathBuf;

use crate::data::FolderMap;
use crate::keys::Action;
use crate::remote::Fetch;
use crate::request::{Feature, Outgoing, Request, Slot};
use crate::state::requester::Requester;
use crate::state::shown::Shown;

/// How far one arrow key moves the cursor, as a share of the plot.
const STEP: f64 = 0.04;

/// The map and its cursor.
#[derive(Debug)]
pub struct MapState {
    /// The map of the folder (version, image count).
    pub folder_map: Fetch<(u64, usize), FolderMap>,
    /// The cursor, each coordinate in [0, 1] across the plot.
    pub cursor: (f64, f64),
}

impl Default for MapState {
    fn default() -> Self {
        MapState {
            folder_map: Fetch::default(),
            cursor: (0.5, 0.5),
        }
    }
}

impl MapState {
    /// The map point nearest to the cursor.
    pub fn nearest(&self) -> Option<usize> {
        let map = self.folder_map.state.ready()?;
        let (bx, by) = map.bounds();
        let x = bx[0] + self.cursor.0 * (bx[1] - bx[0]);
        let y = by[0] + self.cursor.1 * (by[1] - by[0]);
        map.nearest(x, y)
    }

    /// The image of the map point nearest to the cursor.
    pub fn nearest_image(&self) -> Option<&PathBuf> {
        let i = self.nearest()?;
        self.folder_map
            .state
            .ready()?
            .points
            .get(i)
            .map(|p| &p.image)
    }

    /// Moves the cursor with an arrow or page key, within the plot.
    pub fn move_cursor(&mut self, action: Action) {
        let (x, y) = &mut self.cursor;
        match action {
            Action::Left => *x -= STEP,
            Action::Right => *x += STEP,
            Action::Up => *y += STEP,
            Action::Down => *y -= STEP,
            Action::PageUp => *y += STEP * 5.0,
            Action::PageDown => *y -= STEP * 5.0,
            _ => {}
        }
        self.cursor = (self.cursor.0.clamp(0.0, 1.0), self.cursor.1.clamp(0.0, 1.0));
    }

    /// Asks for the folder's map once it has images, and the photo of the point nearest to the
    /// cursor.
    pub fn refresh(&mut self, shown: &Shown, requester: &mut Requester) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let key = (shown.version, shown.image_count);
        if !self.folder_map.is_for(&key) && shown.image_count > 0 {
            let request = Request::Map {
                model_id: shown.model_id.clone(),
                layer: None,
                folder: shown.folder.clone(),
            };
            out.extend(requester.fetch(
                &mut self.folder_map,
                Feature::Map,
                Slot::Map,
                key,
                request,
            ));
        }
        if let Some(path) = self.nearest_image() {
            out.extend(requester.photo(path, shown.image.as_ref()));
        }
        out
    }

    /// Whether the map is on its way.
    pub fn is_loading(&self) -> bool {
        self.folder_map.state.is_loading()
    }

    /// Forgets the map, so that the next refresh asks again.
    pub fn reset(&mut self) {
        self.folder_map.reset();
    }
}
