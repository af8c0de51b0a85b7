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

/// `$/progress` carrying a piece of a request's result to its `partialResultToken` (LSP's
/// partial results): `value` is of the request's result type, holding only what is new.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartialResultParams<T> {
    /// The request's `partialResultToken`.
    pub token: ProgressToken,
    /// The new part of the result.
    pub value: T,
}

/// The stage a progress report's words name: what comes before `": "` (`gradcam++ (3 of 20)`
/// of `gradcam++ (3 of 20): explain`), else the words up to their first number (`objective` of
/// `objective 12.5`). The daemon sends a report at once when the stage changes (however recent
/// the last one), and the CLI writes a line per stage when it has no terminal.
pub fn stage_of(words: &str) -> &str {
    match words.split_once(": ") {
        Some((stage, _)) => stage,
        None => words
            .split(|c: char| c.is_ascii_digit())
            .next()
            .unwrap_or_default()
            .trim(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_is_the_words_before_the_colon_or_the_first_number() {
        assert_eq!(
            stage_of("gradcam++ (3 of 20): explain"),
            "gradcam++ (3 of 20)"
        );
        assert_eq!(stage_of("objective 12.5"), "objective");
        assert_eq!(stage_of("embed"), "embed");
    }
}
