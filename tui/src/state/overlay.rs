//! The overlay view's state: the explanation method (or `all` of them) and class chosen, and
//! the explanation of the current image they give.

use std::path::PathBuf;

use convlens_shared::choices::{Method, MethodKind, MethodSelection};
use convlens_shared::defaults;

use crate::data::{Explanation, Prediction};
use crate::remote::{Fetch, Remote};
use crate::request::{Feature, Outgoing, Request, Slot};
use crate::state::all_methods::AllMethodsState;
use crate::state::requester::Requester;
use crate::state::shown::Shown;

/// What an explanation was asked for: image, method (or `all`), class, CAM layer, version.
pub type ExplanationKey = (PathBuf, String, Option<usize>, Option<String>, u64);

/// The choices the method keys cycle through: every method, then `all`.
const CHOICES: usize = Method::ALL.len() + 1;

/// The chosen method and class, and the explanation.
#[derive(Debug)]
pub struct OverlayState {
    /// Index into [`Method::ALL`] (the CLI's order); one past its last is `all`.
    pub method: usize,
    /// Which of the top-5 classes to explain (0 = the top one).
    pub class_rank: usize,
    /// The explanation by one method (image, method, class, CAM layer, version).
    pub explanation: Fetch<ExplanationKey, Explanation>,
    /// Every method's explanation, when `all` is chosen.
    pub all: AllMethodsState,
}

impl Default for OverlayState {
    /// The protocol's default method, the top class, no explanation yet.
    fn default() -> Self {
        OverlayState {
            method: Method::ALL
                .iter()
                .position(|m| *m == defaults::explain::METHOD)
                .unwrap_or(0),
            class_rank: 0,
            explanation: Fetch::default(),
            all: AllMethodsState::default(),
        }
    }
}

impl OverlayState {
    /// The explanation method chosen, or `all`.
    pub fn selection(&self) -> MethodSelection {
        match Method::ALL.get(self.method % CHOICES) {
            Some(m) => MethodSelection::One(*m),
            None => MethodSelection::All,
        }
    }

    /// Whether `all` is chosen.
    pub fn is_all(&self) -> bool {
        self.selection() == MethodSelection::All
    }

    /// Its name (`all` for every method).
    pub fn method_name(&self) -> &'static str {
        self.selection().name()
    }

    /// The class explained (`None`: the top one), read from the current image's `prediction`.
    pub fn explained_class(&self, prediction: Option<&Prediction>) -> Option<usize> {
        if self.class_rank == 0 {
            return None;
        }
        prediction?.top.get(self.class_rank).map(|c| c.class)
    }

    /// Chooses the next (or previous) method, `all` after the last, wrapping around.
    pub fn step_method(&mut self, forward: bool) {
        let n = CHOICES;
        self.method = if forward {
            (self.method + 1) % n
        } else {
            (self.method + n - 1) % n
        };
    }

    /// Chooses the next (or previous) class of the current image's `prediction`, wrapping
    /// around.
    pub fn step_class(&mut self, forward: bool, prediction: Option<&Prediction>) {
        let n = prediction.map_or(1, |p| p.top.len().max(1));
        self.class_rank = if forward {
            (self.class_rank + 1) % n
        } else {
            (self.class_rank + n - 1) % n
        };
    }

    /// Asks for the current image's explanation with the method (or `all`) and class chosen.
    /// Only the choice shown has a request: the other one's is superseded in the slot, so it
    /// is forgotten and asked again when chosen again.
    pub fn refresh(
        &mut self,
        shown: &Shown,
        prediction: Option<&Prediction>,
        requester: &mut Requester,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let Some(image) = &shown.image else {
            return out;
        };
        let class = self.explained_class(prediction);
        let layer = self.cam_layer(shown);
        let method = self.selection();
        let key = (
            image.clone(),
            method.name().to_string(),
            class,
            layer.clone(),
            shown.version,
        );
        let request = || Request::Explain {
            model_id: shown.model_id.clone(),
            image: image.clone(),
            method,
            class,
            layer,
        };
        if method == MethodSelection::All {
            self.explanation.reset();
            out.extend(self.all.ask(key, request, requester));
        } else {
            self.all.reset();
            if !self.explanation.is_for(&key) {
                out.extend(requester.fetch(
                    &mut self.explanation,
                    Feature::Explain,
                    Slot::Explain,
                    key,
                    request(),
                ));
            }
        }
        out
    }

    /// The layer a CAM is asked at: the tree's selected layer when its output is a spatial map
    /// (C×H×W with H and W above 1), else none (the daemon's default, the last spatial layer);
    /// none for an attribution method (`all` asks its CAMs at that layer too).
    pub fn cam_layer(&self, shown: &Shown) -> Option<String> {
        if let MethodSelection::One(m) = self.selection() {
            if m.kind() != MethodKind::Cam {
                return None;
            }
        }
        let layer = shown.layer.as_ref()?;
        match layer.output_shape[..] {
            [_, _, h, w] if h > 1 && w > 1 => Some(layer.path.clone()),
            _ => None,
        }
    }

    /// Whether the explanation (or `all` of them) is on its way.
    pub fn is_loading(&self) -> bool {
        self.explanation.state.is_loading() || self.all.is_loading()
    }

    /// The explanation request failed: the one on its way says so.
    pub fn on_failed(&mut self, error: &str) {
        let error = error.to_string();
        if self.all.is_loading() {
            self.all.fetch.state = Remote::Failed(error);
        } else {
            self.explanation.state = Remote::Failed(error);
        }
    }

    /// Forgets the explanations, so that the next refresh asks again.
    pub fn reset(&mut self) {
        self.explanation.reset();
        self.all.reset();
    }
}
