//! How the views' refreshes ask: each request numbered under its slot (only the newest of a
//! slot has its answer kept), a feature the daemon lacks marked as such instead of asked for,
//! and photos read from disk once.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::data::Picture;
use crate::remote::{Fetch, Progress, Remote};
use crate::request::{Feature, Outgoing, Request, Slot, Ticket};

/// Photos kept in memory at most (each at most 512 pixels a side).
const MAX_PHOTOS: usize = 64;

/// The requests' sequence numbers: the next one, and the newest sent in each slot.
#[derive(Debug)]
pub struct Tickets {
    latest: HashMap<Slot, u64>,
    next_seq: u64,
}

impl Default for Tickets {
    fn default() -> Self {
        Tickets {
            latest: HashMap::new(),
            next_seq: 1,
        }
    }
}

impl Tickets {
    /// Whether `ticket` is the newest of its slot (an older one's answer is dropped).
    pub fn is_current(&self, ticket: &Ticket) -> bool {
        self.latest.get(&ticket.slot) == Some(&ticket.seq)
    }

    /// Numbers `request` under `slot`, superseding the slot's older requests.
    pub fn issue(&mut self, slot: Slot, request: Request) -> Outgoing {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.latest.insert(slot.clone(), seq);
        Outgoing {
            ticket: Ticket { slot, seq },
            request,
        }
    }
}

/// What a refresh asks with: the app's tickets, the features its daemon lacks (with the method
/// each would need) and its photos, borrowed for the refresh.
#[derive(Debug)]
pub struct Requester<'a> {
    tickets: &'a mut Tickets,
    unavailable: &'a BTreeMap<Feature, String>,
    photos: &'a mut HashMap<PathBuf, Remote<Picture>>,
}

impl<'a> Requester<'a> {
    /// Asks with `tickets`, knowing the daemon lacks `unavailable`, reading photos into `photos`.
    pub fn new(
        tickets: &'a mut Tickets,
        unavailable: &'a BTreeMap<Feature, String>,
        photos: &'a mut HashMap<PathBuf, Remote<Picture>>,
    ) -> Requester<'a> {
        Requester {
            tickets,
            unavailable,
            photos,
        }
    }

    /// The method the daemon would need for `feature`, when it lacks it.
    pub fn lacks(&self, feature: Feature) -> Option<&'a str> {
        self.unavailable.get(&feature).map(String::as_str)
    }

    /// Numbers `request` under `slot`, whatever the daemon offers.
    pub fn issue(&mut self, slot: Slot, request: Request) -> Outgoing {
        self.tickets.issue(slot, request)
    }

    /// Starts `fetch` for `key`: `request` when the daemon offers `feature`, else the "not
    /// available" state and no request.
    pub fn fetch<K: PartialEq, T>(
        &mut self,
        fetch: &mut Fetch<K, T>,
        feature: Feature,
        slot: Slot,
        key: K,
        request: Request,
    ) -> Option<Outgoing> {
        match self.lacks(feature) {
            Some(method) => {
                fetch.unavailable(key, method);
                None
            }
            None => {
                fetch.start(key);
                Some(self.issue(slot, request))
            }
        }
    }

    /// Reads the photo at `path` unless it is read or on its way. With too many photos kept,
    /// forgets every one but `keep` (the current image) first: they are read again when shown
    /// again.
    pub fn photo(&mut self, path: &PathBuf, keep: Option<&PathBuf>) -> Option<Outgoing> {
        if self.photos.contains_key(path) {
            return None;
        }
        if self.photos.len() >= MAX_PHOTOS {
            self.photos.retain(|p, _| Some(p) == keep);
        }
        self.photos
            .insert(path.clone(), Remote::Loading(Progress::default()));
        let request = Request::LoadPhoto { path: path.clone() };
        Some(self.issue(Slot::Photo(path.clone()), request))
    }
}
