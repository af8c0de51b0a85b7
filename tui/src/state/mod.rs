//! Each view's state, one file per view: the daemon's answers it draws, its cursor, and its
//! `refresh`, which returns the requests the view needs for what is shown now (another layer,
//! image, unit or checkpoint version asks anew and supersedes the old).
//!
//! [`crate::app::App`] holds one of each and its own refresh only dispatches: it reads what the
//! views show once ([`shown::Shown`]) and lends every view's refresh a [`requester::Requester`],
//! which numbers the requests, knows what the daemon does not offer, and reads photos.

pub mod all_methods;
pub mod filters;
pub mod inspector;
pub mod map;
pub mod overlay;
pub mod requester;
pub mod shown;
pub mod strip;
pub mod timeline;
pub mod units;

pub use all_methods::{AllMethodsState, MethodTile};
pub use filters::FiltersState;
pub use inspector::{InspectorState, MaximizeKey};
pub use map::MapState;
pub use overlay::OverlayState;
pub use requester::{Requester, Tickets};
pub use shown::Shown;
pub use strip::StripState;
pub use timeline::TimelineState;
pub use units::{UnitKey, UnitsState};
