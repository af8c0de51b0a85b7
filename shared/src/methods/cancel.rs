//! `$/cancelRequest`: stops a queued or running request, which then answers
//! `RequestCancelled` (-32800).

use serde::{Deserialize, Serialize};

use super::notification;
use crate::RequestId;

notification!(
    /// Cancels the request `id` of this connection.
    CancelRequest,
    "$/cancelRequest",
    CancelParams
);

/// `$/cancelRequest`'s parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CancelParams {
    /// The request to cancel.
    pub id: RequestId,
}
