//! The convlens terminal UI: browse a network layer by layer and unit by unit, over SSH, with
//! pictures drawn in the terminal.
//!
//! The app ([`app::App`]) is a pure state machine: [`event::Event`]s in (keys, daemon answers),
//! [`request::Outgoing`] requests out. Each view's part of that state, and the requests the
//! view needs, lives in [`state`], one file per view. [`link`] carries requests to the daemon
//! and its answers back as events; [`ui::draw`] draws the state; [`runtime`] ties them to a
//! real terminal.

pub mod app;
pub mod data;
pub mod event;
pub mod folder;
pub mod heatmap;
pub mod images;
pub mod keys;
pub mod layout;
pub mod link;
pub mod photos;
pub mod remote;
pub mod request;
pub mod runtime;
pub mod state;
pub mod timeline;
pub mod tree;
pub mod ui;
pub mod widgets;

pub use images::Graphics;
pub use runtime::{run, Options};
