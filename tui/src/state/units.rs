//! The unit grid's state: every channel of the selected layer for the current image, and the
//! unit under the cursor (the one the inspector shows).

use std::path::PathBuf;

use crate::data::LayerActivations;
use crate::remote::{Fetch, Remote};
use crate::request::{Feature, Outgoing, Request, Slot};
use crate::state::requester::Requester;
use crate::state::shown::Shown;

/// A unit of a layer at a checkpoint version: the layer's path, the channel, the version.
pub type UnitKey = (String, usize, u64);

/// The grid's activations and cursor.
#[derive(Debug, Default)]
pub struct UnitsState {
    /// The grid's data: the layer's channels for the current image at the version shown.
    pub activations: Fetch<(String, PathBuf, u64), LayerActivations>,
    /// The unit under the cursor.
    pub cursor: usize,
}

impl UnitsState {
    /// Asks for the selected layer's activations on the current image.
    pub fn refresh(&mut self, shown: &Shown, requester: &mut Requester) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let (Some(layer), Some(image)) = (&shown.layer, &shown.image) else {
            return out;
        };
        let key = (layer.path.clone(), image.clone(), shown.version);
        if !self.activations.is_for(&key) {
            let request = Request::Activations {
                model_id: shown.model_id.clone(),
                layer: layer.path.clone(),
                image: image.clone(),
            };
            out.extend(requester.fetch(
                &mut self.activations,
                Feature::Activations,
                Slot::Activations,
                key,
                request,
            ));
        }
        out
    }

    /// Takes the activations, keeping the cursor within the layer's channels.
    pub fn on_activations(&mut self, activations: LayerActivations) {
        self.cursor = self.cursor.min(activations.channels().saturating_sub(1));
        self.activations.state = Remote::Ready(activations);
    }

    /// Whether the activations are on their way.
    pub fn is_loading(&self) -> bool {
        self.activations.state.is_loading()
    }

    /// Forgets the activations, so that the next refresh asks again.
    pub fn reset(&mut self) {
        self.activations.reset();
    }
}
