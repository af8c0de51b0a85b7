//! The timeline's state: the model's versions, the earlier one pinned (which every view then
//! shows), and the frozen copy of it the daemon makes for the views to ask.

use crate::remote::Fetch;
use crate::request::{Feature, Outgoing, Request, Slot};
use crate::state::requester::Requester;
use crate::timeline::Version;

/// The versions, the pinned one and its frozen model.
#[derive(Debug, Default)]
pub struct TimelineState {
    /// The earlier version the views show instead of the live one, chosen on the timeline.
    pub pinned: Option<u64>,
    /// The model's versions (asked again at each live version).
    pub versions: Fetch<u64, Vec<Version>>,
    /// The frozen model id of the pinned version (`m1@3`), which every view then asks.
    pub frozen: Fetch<u64, String>,
}

impl TimelineState {
    /// The model's versions, when listed.
    pub fn version_list(&self) -> &[Version] {
        self.versions.state.ready().map_or(&[], |v| v)
    }

    /// The checkpoint version the views show: the pinned one, else `live`.
    pub fn shown_version(&self, live: u64) -> u64 {
        self.pinned.unwrap_or(live)
    }

    /// Shows `version`: `live` (the live one) follows reloads, an earlier one is pinned.
    pub fn show(&mut self, version: u64, live: u64) {
        self.pinned = (version < live).then_some(version);
    }

    /// The model the views ask: `live_id`, or the pinned version's frozen copy once made.
    pub fn model_id(&self, live_id: &str) -> Option<String> {
        match self.pinned {
            None => Some(live_id.to_string()),
            Some(_) => self.frozen.state.ready().cloned(),
        }
    }

    /// Asks for the versions of the model `live_id` at its `live_version` and, with a version
    /// pinned, for its frozen copy. The list is asked whatever the view: the status line and
    /// the version keys need it.
    pub fn refresh(
        &mut self,
        live_id: &str,
        live_version: u64,
        requester: &mut Requester,
    ) -> Vec<Outgoing> {
        let mut out = Vec::new();
        if !self.versions.is_for(&live_version) {
            // Asked again at each reload, the old list kept meanwhile (the version keys use it).
            match requester.lacks(Feature::Versions) {
                Some(method) => self.versions.unavailable(live_version, method),
                None => {
                    self.versions.revalidate(live_version);
                    let request = Request::Versions {
                        model_id: live_id.to_string(),
                    };
                    out.push(requester.issue(Slot::Versions, request));
                }
            }
        }
        // An earlier version: every view asks its frozen model, once the daemon has made it.
        if let Some(pinned) = self.pinned {
            if !self.frozen.is_for(&pinned) {
                let request = Request::AtVersion {
                    model_id: live_id.to_string(),
                    version: pinned,
                };
                out.extend(requester.fetch(
                    &mut self.frozen,
                    Feature::AtVersion,
                    Slot::AtVersion,
                    pinned,
                    request,
                ));
            }
        }
        out
    }

    /// Whether the versions or the frozen model are on their way.
    pub fn is_loading(&self) -> bool {
        self.versions.state.is_loading() || self.frozen.state.is_loading()
    }

    /// Forgets the versions and the frozen model (the pin stays), so that the next refresh
    /// asks again.
    pub fn reset(&mut self) {
        self.versions.reset();
        self.frozen.reset();
    }
}
