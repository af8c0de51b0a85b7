//! The image strip's state: the folder's images, the current one, and its top-5 (which the
//! overlay view reads too).

use std::path::{Path, PathBuf};

use crate::data::Prediction;
use crate::remote::{Fetch, Remote};
use crate::request::{Feature, Outgoing, Request, Slot};
use crate::state::requester::Requester;
use crate::state::shown::Shown;

/// The folder's images, the current one and its top-5.
#[derive(Debug, Default)]
pub struct StripState {
    /// The folder's images, sorted.
    pub images: Fetch<PathBuf, Vec<PathBuf>>,
    /// Index of the current image.
    pub current: usize,
    /// The current image's top-5.
    pub prediction: Fetch<(PathBuf, u64), Prediction>,
}

impl StripState {
    /// The folder's images (empty until listed).
    pub fn image_list(&self) -> &[PathBuf] {
        self.images.state.ready().map_or(&[], |v| v)
    }

    /// The current image.
    pub fn current_image(&self) -> Option<&PathBuf> {
        self.image_list().get(self.current)
    }

    /// Lists `folder` unless it is listed (or being listed): asked before the model is there,
    /// since the listing needs none.
    pub fn refresh_listing(
        &mut self,
        folder: &PathBuf,
        requester: &mut Requester,
    ) -> Option<Outgoing> {
        if self.images.is_for(folder) {
            return None;
        }
        self.images.start(folder.clone());
        let request = Request::ListImages {
            folder: folder.clone(),
        };
        Some(requester.issue(Slot::Images, request))
    }

    /// Asks for the current image's photo and top-5.
    pub fn refresh(&mut self, shown: &Shown, requester: &mut Requester) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let Some(image) = &shown.image else {
            return out;
        };
        out.extend(requester.photo(image, shown.image.as_ref()));
        let key = (image.clone(), shown.version);
        if !self.prediction.is_for(&key) {
            let request = Request::Predict {
                model_id: shown.model_id.clone(),
                image: image.clone(),
            };
            out.extend(requester.fetch(
                &mut self.prediction,
                Feature::Predict,
                Slot::Predict,
                key,
                request,
            ));
        }
        out
    }

    /// Takes the folder's listing, keeping the current index within it.
    pub fn on_listing(&mut self, mut list: Vec<PathBuf>) {
        list.sort();
        self.images.state = Remote::Ready(list);
        self.current = self.current.min(self.image_list().len().saturating_sub(1));
    }

    /// Takes news of images `added` to and `removed` from the folder, keeping the current image
    /// current where it is still there; false (and nothing changed) when the folder is not
    /// listed yet.
    pub fn on_images_changed(&mut self, added: Vec<PathBuf>, removed: &[PathBuf]) -> bool {
        let current = self.current_image().cloned();
        let Remote::Ready(list) = &mut self.images.state else {
            return false;
        };
        list.retain(|p| !removed.contains(p));
        for p in added {
            if !list.contains(&p) {
                list.push(p);
            }
        }
        list.sort();
        self.current = current
            .and_then(|c| list.iter().position(|p| *p == c))
            .unwrap_or(self.current.min(list.len().saturating_sub(1)));
        true
    }

    /// Moves the current image by `delta`, wrapping around the folder.
    pub fn step(&mut self, delta: isize) {
        let n = self.image_list().len();
        if n == 0 {
            return;
        }
        self.current = (self.current as isize + delta).rem_euclid(n as isize) as usize;
    }

    /// Where `image` is in the folder's list: the same path, else the only file of that name
    /// (the daemon may spell the folder another way).
    pub fn position_of(&self, image: &Path) -> Option<usize> {
        let list = self.image_list();
        list.iter().position(|p| p == image).or_else(|| {
            let name = image.file_name()?;
            let mut same = list
                .iter()
                .enumerate()
                .filter(|(_, p)| p.file_name() == Some(name));
            match (same.next(), same.next()) {
                (Some((i, _)), None) => Some(i),
                _ => None,
            }
        })
    }

    /// Whether the listing or the top-5 is on its way.
    pub fn is_loading(&self) -> bool {
        self.images.state.is_loading() || self.prediction.state.is_loading()
    }

    /// Forgets the listing and the top-5, so that the next refresh asks again.
    pub fn reset(&mut self) {
        self.images.reset();
        self.prediction.reset();
    }
}
