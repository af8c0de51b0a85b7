//! The overlay view's `all` choice: every method's explanation of the current image, filled in
//! method by method as the daemon's partial results come (it runs the cheapest first), kept in
//! display order ([`Method::ALL`], the CLI's).

use convlens_shared::choices::{Method, MethodSelection};

use crate::data::{Explanation, Explanations, Picture};
use crate::remote::{Fetch, Remote};
use crate::request::{Feature, Outgoing, Request, Slot};
use crate::state::overlay::ExplanationKey;
use crate::state::requester::Requester;

/// One method's place in the `all` grid.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum MethodTile {
    /// Not done yet.
    #[default]
    Pending,
    /// Done.
    Done(Explanation),
    /// Skipped because it does not apply to the model (why).
    Skipped(String),
}

/// Every method's explanation of one image, as far as it has come.
#[derive(Debug)]
pub struct AllMethodsState {
    /// What was asked (image, `all`, class, CAM layer, version) and how the request stands:
    /// loading (with the daemon's progress) until the whole answer comes, then ready. The
    /// explanations are in `tiles`, which fill in while it loads.
    pub fetch: Fetch<ExplanationKey, ()>,
    /// The photo the overlays are drawn on, first in the grid.
    pub photo: Option<Picture>,
    /// One per method, in display order.
    pub tiles: Vec<MethodTile>,
}

impl Default for AllMethodsState {
    /// Nothing asked, every tile pending.
    fn default() -> Self {
        AllMethodsState {
            fetch: Fetch::default(),
            photo: None,
            tiles: vec![MethodTile::Pending; Method::ALL.len()],
        }
    }
}

impl AllMethodsState {
    /// Asks for `key`'s explanations with `request` unless they are there or on their way;
    /// a new key starts every tile over as pending.
    pub fn ask(
        &mut self,
        key: ExplanationKey,
        request: impl FnOnce() -> Request,
        requester: &mut Requester,
    ) -> Option<Outgoing> {
        if self.fetch.is_for(&key) {
            return None;
        }
        self.clear();
        requester.fetch(
            &mut self.fetch,
            Feature::Explain,
            Slot::Explain,
            key,
            request(),
        )
    }

    /// Takes in a partial result (the methods just done, the photo with the first); ignored
    /// once the whole answer is there.
    pub fn on_piece(&mut self, piece: Explanations) {
        if self.is_loading() {
            self.merge(piece);
        }
    }

    /// Takes in the whole answer.
    pub fn on_result(&mut self, all: Explanations) {
        self.clear();
        self.merge(all);
        self.fetch.state = Remote::Ready(());
    }

    /// Methods finished (done or skipped).
    pub fn finished(&self) -> usize {
        self.tiles
            .iter()
            .filter(|t| **t != MethodTile::Pending)
            .count()
    }

    /// Methods skipped.
    pub fn skipped(&self) -> usize {
        self.tiles
            .iter()
            .filter(|t| matches!(t, MethodTile::Skipped(_)))
            .count()
    }

    /// The explanations done, in display order.
    pub fn done(&self) -> impl Iterator<Item = &Explanation> {
        self.tiles.iter().filter_map(|t| match t {
            MethodTile::Done(e) => Some(e),
            _ => None,
        })
    }

    /// Whether the explanations are on their way.
    pub fn is_loading(&self) -> bool {
        self.fetch.state.is_loading()
    }

    /// Forgets everything, so that the next refresh asks again.
    pub fn reset(&mut self) {
        self.fetch.reset();
        self.clear();
    }

    fn clear(&mut self) {
        self.photo = None;
        self.tiles.fill(MethodTile::Pending);
    }

    fn merge(&mut self, piece: Explanations) {
        if piece.photo.is_some() {
            self.photo = piece.photo;
        }
        for e in piece.explanations {
            if let Some(tile) = rank_of(&e.method).and_then(|r| self.tiles.get_mut(r)) {
                *tile = MethodTile::Done(e);
            }
        }
        for s in piece.skipped {
            if let Some(tile) = rank_of(&s.method).and_then(|r| self.tiles.get_mut(r)) {
                *tile = MethodTile::Skipped(s.error);
            }
        }
    }
}

/// Where the method named `name` stands in display order.
fn rank_of(name: &str) -> Option<usize> {
    name.parse::<Method>()
        .ok()
        .map(MethodSelection::display_rank)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::SkippedMethod;

    fn explanation(method: Method) -> Explanation {
        Explanation {
            method: method.name().to_string(),
            class: 281,
            label: Some("tabby".into()),
            layer: None,
            flat: false,
            overlay: Picture::new(image::RgbaImage::new(2, 2)),
            segmentation: None,
        }
    }

    #[test]
    fn pieces_fill_their_tiles_in_display_order_until_the_whole_answer() {
        let mut all = AllMethodsState::default();
        all.fetch
            .start(("/a.jpg".into(), "all".into(), None, None, 1));
        all.on_piece(Explanations {
            photo: Some(Picture::new(image::RgbaImage::new(2, 2))),
            explanations: vec![explanation(Method::EigenCam)],
            skipped: vec![],
        });
        all.on_piece(Explanations {
            photo: None,
            explanations: vec![],
            skipped: vec![SkippedMethod {
                method: "cam".into(),
                error: "no GAP head".into(),
            }],
        });
        assert!(all.photo.is_some());
        assert_eq!((all.finished(), all.skipped()), (2, 1));
        let eigen = MethodSelection::display_rank(Method::EigenCam);
        assert!(matches!(&all.tiles[eigen], MethodTile::Done(e) if e.method == "eigencam"));
        let cam = MethodSelection::display_rank(Method::Cam);
        assert_eq!(all.tiles[cam], MethodTile::Skipped("no GAP head".into()));
        all.on_result(Explanations {
            photo: None,
            explanations: Method::ALL.iter().map(|m| explanation(*m)).collect(),
            skipped: vec![],
        });
        assert_eq!(all.finished(), Method::ALL.len());
        assert_eq!(all.fetch.state, Remote::Ready(()));
        // A piece that comes after the whole answer changes nothing.
        all.on_piece(Explanations {
            photo: None,
            explanations: vec![],
            skipped: vec![SkippedMethod {
                method: "gradcam".into(),
                error: "late".into(),
            }],
        });
        assert_eq!(all.skipped(), 0);
        all.reset();
        assert_eq!(all.finished(), 0);
        assert_eq!(all.fetch.state, Remote::<()>::Idle);
    }
}
