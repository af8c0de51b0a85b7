//! `initialize`, `shutdown` and `exit`: the start and the end of a session, as in LSP.

use serde::{Deserialize, Serialize};

use super::{notification, request, NoParams};

request!(
    /// The first request of every connection: who the client is; answers who the daemon is and
    /// what it can do. Every other request before it gets `ServerNotInitialized`.
    Initialize,
    "initialize",
    InitializeParams,
    InitializeResult
);
request!(
    /// Asks the daemon to stop: it answers `null`, refuses further requests, and exits on
    /// `exit` (or when this client disconnects).
    Shutdown,
    "shutdown",
    NoParams,
    ()
);
notification!(
    /// Ends the daemon's process (after `shutdown`).
    Exit,
    "exit",
    NoParams
);

/// A program's name and version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// Its name.
    pub name: String,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `initialize`'s parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeParams {
    /// The client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_info: Option<Info>,
    /// The client's process id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_id: Option<u32>,
}

/// `initialize`'s result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResult {
    /// The daemon (`convlens-daemon` and its version).
    pub server_info: Info,
    /// [`crate::PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// What the build is: the daemon executable's size and mtime, so that a client built
    /// differently can tell a stale daemon.
    pub build: String,
    /// The daemon's process id.
    pub pid: u32,
    /// What it can do.
    pub capabilities: Capabilities,
}

/// What the daemon can do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Where models run (`cpu`, `cuda:0`).
    pub device: String,
    /// Every request method it answers.
    pub methods: Vec<String>,
    /// Every notification it sends.
    pub notifications: Vec<String>,
    /// The largest frame it reads, in bytes.
    pub max_frame_bytes: usize,
}
