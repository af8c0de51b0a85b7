//! The filters view's state: the selected convolution's filters and the one under the cursor.

use crate::data::FilterBank;
use crate::remote::{Fetch, Remote};
use crate::request::{Feature, Outgoing, Request, Slot};
use crate::state::requester::Requester;
use crate::state::shown::Shown;

/// The filters and the cursor.
#[derive(Debug, Default)]
pub struct FiltersState {
    /// The selected convolution's filters (layer, version).
    pub bank: Fetch<(String, u64), FilterBank>,
    /// The filter under the cursor.
    pub cursor: usize,
}

impl FiltersState {
    /// Asks for the selected layer's filters, when it is a convolution.
    pub fn refresh(&mut self, shown: &Shown, requester: &mut Requester) -> Vec<Outgoing> {
        let mut out = Vec::new();
        let Some(conv) = shown.layer.as_ref().filter(|l| l.is_conv()) else {
            return out;
        };
        let key = (conv.path.clone(), shown.version);
        if !self.bank.is_for(&key) {
            let request = Request::Filters {
                model_id: shown.model_id.clone(),
                layer: conv.path.clone(),
            };
            out.extend(requester.fetch(
                &mut self.bank,
                Feature::Filters,
                Slot::Filters,
                key,
                request,
            ));
        }
        out
    }

    /// Takes the filters, keeping the cursor within them.
    pub fn on_bank(&mut self, bank: FilterBank) {
        self.cursor = self.cursor.min(bank.tiles.len().saturating_sub(1));
        self.bank.state = Remote::Ready(bank);
    }

    /// Whether the filters are on their way.
    pub fn is_loading(&self) -> bool {
        self.bank.state.is_loading()
    }

    /// Forgets the filters, so that the next refresh asks again.
    pub fn reset(&mut self) {
        self.bank.reset();
    }
}
