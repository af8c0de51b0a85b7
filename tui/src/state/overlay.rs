//! The overlay view's state: the explanation method (or `all` of them) and class chosen, the
//! explanation of the current image they give, and its faithfulness scores when asked for
//! (`e`).

use std::collections::HashMap;
use std::path::PathBuf;

use convlens_shared::choices::{Method, MethodKind, MethodSelection};
use convlens_shared::defaults;

use crate::data::{Evaluation, Explanation, Prediction};
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
    /// The faithfulness scores asked for last, by what was explained: on their way, failed, or
    /// done (then kept in `scored`).
    pub scores: Fetch<ExplanationKey, ()>,
    /// The faithfulness scores computed so far, by what was explained (image, method or `all`,
    /// class, CAM layer, version): shown only while that explanation is.
    pub scored: HashMap<ExplanationKey, Evaluation>,
    /// Scores asked for with `e`, sent at the next refresh for the explanation shown then.
    pending_scores: bool,
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
            scores: Fetch::default(),
            scored: HashMap::new(),
            pending_scores: false,
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

    /// Asks for the faithfulness scores of the explanation shown, at the next refresh (unless
    /// they are there or on their way).
    pub fn ask_scores(&mut self) {
        self.pending_scores = true;
    }

    /// What the overlay shows (image, method or `all`, class, CAM layer, version), as the last
    /// refresh asked for it.
    pub fn shown_key(&self) -> Option<&ExplanationKey> {
        if self.is_all() {
            self.all.fetch.key.as_ref()
        } else {
            self.explanation.key.as_ref()
        }
    }

    /// The faithfulness scores of what the overlay shows: there, on their way, failed, or not
    /// asked for (idle). Scores of anything else (another image, method, class, layer or
    /// version) are never these.
    pub fn scores(&self) -> Remote<&Evaluation> {
        let Some(key) = self.shown_key() else {
            return Remote::Idle;
        };
        if let Some(e) = self.scored.get(key) {
            return Remote::Ready(e);
        }
        if !self.scores.is_for(key) {
            return Remote::Idle;
        }
        match &self.scores.state {
            Remote::Loading(p) => Remote::Loading(p.clone()),
            Remote::Failed(e) => Remote::Failed(e.clone()),
            Remote::Unavailable(m) => Remote::Unavailable(m.clone()),
            Remote::Idle | Remote::Ready(()) => Remote::Idle,
        }
    }

    /// Takes in the scores asked for last, kept under what they were asked for (whatever is
    /// shown now); dropped when none are on their way (forgotten since).
    pub fn on_scored(&mut self, evaluation: Evaluation) {
        if !self.scores.state.is_loading() {
            return;
        }
        if let Some(key) = self.scores.key.clone() {
            self.scored.insert(key, evaluation);
            self.scores.state = Remote::Ready(());
        }
    }

    /// The scores asked for last failed.
    pub fn on_scores_failed(&mut self, error: &str) {
        if self.scores.state.is_loading() {
            self.scores.state = Remote::Failed(error.to_string());
        }
    }

    /// Asks for the current image's explanation with the method (or `all`) and class chosen.
    /// Only the choice shown has a request: the other one's is superseded in the slot, so it
    /// is forgotten and asked again when chosen again. Scores asked for with `e` are asked with
    /// the very parameters of that explanation (so the daemon can reuse it), in a slot of
    /// their own; a newer ask supersedes an older one still running.
    pub fn refresh(
        &mut self,
        shown: &Shown,
        prediction: Option<&Prediction>,
        requester: &mut Requester,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let score = std::mem::take(&mut self.pending_scores);
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
            layer: layer.clone(),
        };
        let evaluate = || Request::Evaluate {
            model_id: shown.model_id.clone(),
            image: image.clone(),
            method,
            class,
            layer: layer.clone(),
        };
        if method == MethodSelection::All {
            self.explanation.reset();
            out.extend(self.all.ask(key.clone(), request, requester));
        } else {
            self.all.reset();
            if !self.explanation.is_for(&key) {
                out.extend(requester.fetch(
                    &mut self.explanation,
                    Feature::Explain,
                    Slot::Explain,
                    key.clone(),
                    request(),
                ));
            }
        }
        if score {
            out.extend(self.score(key, evaluate, requester));
        }
        out
    }

    /// Asks for the scores of `key` with `request` unless they are there or on their way (a
    /// failed ask is asked again).
    fn score(
        &mut self,
        key: ExplanationKey,
        request: impl FnOnce() -> Request,
        requester: &mut Requester,
    ) -> Option<Outgoing> {
        let failed = matches!(self.scores.state, Remote::Failed(_));
        if self.scored.contains_key(&key) || (self.scores.is_for(&key) && !failed) {
            return None;
        }
        requester.fetch(
            &mut self.scores,
            Feature::Evaluate,
            Slot::Evaluate,
            key,
            request(),
        )
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

    /// Whether the explanation (or `all` of them), or scores, are on their way.
    pub fn is_loading(&self) -> bool {
        self.explanation.state.is_loading()
            || self.all.is_loading()
            || self.scores.state.is_loading()
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

    /// Forgets the explanations and their scores, so that the next refresh asks again (and
    /// `e` scores anew).
    pub fn reset(&mut self) {
        self.explanation.reset();
        self.all.reset();
        self.scores.reset();
        self.scored.clear();
        self.pending_scores = false;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use ratatui::layout::Rect;

    use super::*;
    use crate::data::Faithfulness;
    use crate::state::requester::Tickets;

    fn shown(image: &str, version: u64) -> Shown {
        Shown {
            model_id: "m1".into(),
            version,
            folder: "/photos".into(),
            image: Some(image.into()),
            image_count: 2,
            layer: None,
            unit: None,
            size: Rect::new(0, 0, 160, 50),
        }
    }

    fn scored(methods: &[(Method, f32, f32)]) -> Evaluation {
        Evaluation {
            class: 281,
            label: Some("tabby".into()),
            methods: methods
                .iter()
                .map(|(m, d, i)| {
                    let f = Faithfulness {
                        deletion: Some(*d),
                        insertion: Some(*i),
                        road: None,
                        randomization: None,
                    };
                    (m.name().to_string(), f)
                })
                .collect(),
            skipped: vec![],
        }
    }

    /// A harness lending the overlay's refresh what the app would.
    struct Harness {
        tickets: Tickets,
        unavailable: BTreeMap<Feature, String>,
        photos: HashMap<PathBuf, Remote<crate::data::Picture>>,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                tickets: Tickets::default(),
                unavailable: BTreeMap::new(),
                photos: HashMap::new(),
            }
        }

        fn refresh(&mut self, overlay: &mut OverlayState, shown: &Shown) -> Vec<Outgoing> {
            let mut requester =
                Requester::new(&mut self.tickets, &self.unavailable, &mut self.photos);
            overlay.refresh(shown, None, &mut requester)
        }
    }

    fn evaluate_of(out: &[Outgoing]) -> Option<&Outgoing> {
        out.iter().find(|o| o.ticket.slot == Slot::Evaluate)
    }

    /// `e` asks with the explanation's very parameters, once; the answer lands under what was
    /// asked, on the method it names.
    #[test]
    fn scores_are_asked_with_the_explanations_parameters() {
        let mut h = Harness::new();
        let mut overlay = OverlayState::default();
        let a = shown("/photos/a.jpg", 1);
        let out = h.refresh(&mut overlay, &a);
        let Some(Request::Explain {
            model_id,
            image,
            method,
            class,
            layer,
        }) = out.first().map(|o| o.request.clone())
        else {
            panic!("no explanation asked: {out:?}");
        };
        assert!(evaluate_of(&out).is_none(), "scores only on request");
        assert_eq!(overlay.scores(), Remote::Idle);
        overlay.ask_scores();
        let out = h.refresh(&mut overlay, &a);
        assert_eq!(out.len(), 1, "the explanation is not asked again: {out:?}");
        assert_eq!(
            evaluate_of(&out).map(|o| &o.request),
            Some(&Request::Evaluate {
                model_id,
                image,
                method,
                class,
                layer,
            })
        );
        assert!(overlay.scores().is_loading());
        assert!(overlay.is_loading());
        // A second press while they run asks nothing more.
        overlay.ask_scores();
        assert!(evaluate_of(&h.refresh(&mut overlay, &a)).is_none());
        overlay.on_scored(scored(&[(Method::GradCam, 0.21, 0.72)]));
        let Remote::Ready(e) = overlay.scores() else {
            panic!("not scored: {:?}", overlay.scores());
        };
        assert_eq!(
            e.of(overlay.method_name()).and_then(|f| f.deletion),
            Some(0.21)
        );
        // Nor once they are there.
        overlay.ask_scores();
        assert!(evaluate_of(&h.refresh(&mut overlay, &a)).is_none());
    }

    /// Another image, method, class or version shows no scores of the one before; the scores
    /// kept come back with what they were asked for.
    #[test]
    fn scores_are_shown_only_with_what_they_score() {
        let mut h = Harness::new();
        let mut overlay = OverlayState::default();
        let a = shown("/photos/a.jpg", 1);
        overlay.ask_scores();
        h.refresh(&mut overlay, &a);
        overlay.on_scored(scored(&[(Method::GradCam, 0.21, 0.72)]));
        assert!(overlay.scores().ready().is_some());
        overlay.step_method(true);
        h.refresh(&mut overlay, &a);
        assert_eq!(overlay.scores(), Remote::Idle);
        overlay.step_method(false);
        h.refresh(&mut overlay, &a);
        assert!(overlay.scores().ready().is_some(), "kept under its key");
        h.refresh(&mut overlay, &shown("/photos/b.jpg", 1));
        assert_eq!(overlay.scores(), Remote::Idle);
        h.refresh(&mut overlay, &shown("/photos/a.jpg", 2));
        assert_eq!(overlay.scores(), Remote::Idle, "a new checkpoint version");
        h.refresh(&mut overlay, &a);
        assert!(overlay.scores().ready().is_some());
        // Forgotten with the explanations (`r`, a new daemon).
        overlay.reset();
        h.refresh(&mut overlay, &a);
        assert_eq!(overlay.scores(), Remote::Idle);
    }

    /// Scores that come after the image changed land under the image they were asked for, not
    /// the one shown; scores that come after they were forgotten are dropped.
    #[test]
    fn late_scores_land_under_what_they_were_asked_for() {
        let mut h = Harness::new();
        let mut overlay = OverlayState::default();
        let (a, b) = (shown("/photos/a.jpg", 1), shown("/photos/b.jpg", 1));
        overlay.ask_scores();
        h.refresh(&mut overlay, &a);
        h.refresh(&mut overlay, &b);
        assert_eq!(
            overlay.scores(),
            Remote::Idle,
            "b's are not a's, even running"
        );
        overlay.on_scored(scored(&[(Method::GradCam, 0.21, 0.72)]));
        assert_eq!(overlay.scores(), Remote::Idle, "a's scores are not b's");
        h.refresh(&mut overlay, &a);
        assert!(overlay.scores().ready().is_some());
        overlay.ask_scores();
        h.refresh(&mut overlay, &b);
        overlay.reset();
        overlay.on_scored(scored(&[(Method::GradCam, 0.5, 0.5)]));
        assert!(overlay.scored.is_empty());
    }

    /// A failed ask says so and is asked again on the next press.
    #[test]
    fn failed_scores_are_asked_again() {
        let mut h = Harness::new();
        let mut overlay = OverlayState::default();
        let a = shown("/photos/a.jpg", 1);
        overlay.ask_scores();
        let first = h.refresh(&mut overlay, &a);
        overlay.on_scores_failed("cancelled");
        assert_eq!(overlay.scores(), Remote::Failed("cancelled".into()));
        overlay.ask_scores();
        let again = h.refresh(&mut overlay, &a);
        let (first, again) = (evaluate_of(&first).unwrap(), evaluate_of(&again).unwrap());
        assert_eq!(first.request, again.request);
        assert!(again.ticket.seq > first.ticket.seq);
    }
}
