//! `$/progress`: LSP's work-done progress (`begin`, `report`, `end`) for long requests. A
//! request asks for it by putting a `workDoneToken` in its parameters; the notifications carry
//! that token.

use serde::{Deserialize, Serialize};

use super::notification;
use crate::RequestId;

notification!(
    /// Progress of the request that passed `token`.
    Progress,
    "$/progress",
    ProgressParams
);

/// A progress token: a number or a string chosen by the client.
pub type ProgressToken = RequestId;

/// `$/progress`'s parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProgressParams {
    /// The request's `workDoneToken`.
    pub token: ProgressToken,
    /// What happened.
    pub value: WorkDoneProgress,
}

/// One step of LSP's work-done progress.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum WorkDoneProgress {
    /// The work started.
    Begin {
        /// What the work is (`explain`, `maximize`).
        title: String,
        /// Whether `$/cancelRequest` can stop it.
        #[serde(default)]
        cancellable: bool,
        /// Detail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// 0 to 100.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percentage: Option<u32>,
    },
    /// A unit of work finished.
    Report {
        /// Detail (`12/50`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// 0 to 100.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percentage: Option<u32>,
    },
    /// The work ended (done, failed or cancelled).
    End {
        /// Detail.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}
