//! The convlens wire protocol, shared by the daemon and its clients (the CLI, the TUI).
//!
//! Messages are JSON-RPC 2.0 ([`message`]) framed as in the Language Server Protocol
//! (`Content-Length: N\r\n\r\n` + UTF-8 JSON, [`framing`]) on a Unix socket ([`paths`]). Each
//! method's parameters and result are typed in [`methods`]; binary results (maps, images) travel
//! as base64 ([`array`]). [`client::Client`] is a blocking client with a reader thread.
//! `docs/PROTOCOL.md` shows an example of every message.

pub mod array;
pub mod build_id;
pub mod choices;
pub mod client;
pub mod codes;
pub mod defaults;
pub mod framing;
pub mod message;
pub mod methods;
pub mod paths;
pub mod region;
pub mod sync;
pub mod target;

pub use client::{Client, ClientError};
pub use message::{Message, Notification, Request, RequestId, Response, ResponseError};
pub use methods::{NotificationMethod, RequestMethod};

/// The protocol's version; `initialize` reports it and clients refuse another.
pub const PROTOCOL_VERSION: u32 = 1;
