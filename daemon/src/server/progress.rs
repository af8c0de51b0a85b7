//! A job's [`Progress`]: it answers the engine's steps with cancellation (`$/cancelRequest`) and
//! sends `$/progress` to the client that passed a `workDoneToken`, at most every 50 ms within a
//! stage (a new stage, such as the next method of `explain --method all`, is sent at once). It
//! also carries the job's partial results to the client, as `$/progress` with their token.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use convlens_models::progress::{CancelFlag, Progress};
use convlens_models::{Error, Result};
use convlens_shared::methods::progress::{
    stage_of, Progress as ProgressMethod, ProgressParams, ProgressToken, WorkDoneProgress,
};
use convlens_shared::methods::NotificationMethod;

use crate::clients::Subscriber;
use crate::methods::call::PartialResults;
use crate::service::Service;
use convlens_shared::sync::lock;

/// The shortest time between two reports.
const REPORT_EVERY: Duration = Duration::from_millis(50);

/// Progress and cancellation of one request.
pub struct JobProgress {
    /// Set by `$/cancelRequest`.
    pub cancel: Arc<CancelFlag>,
    service: Arc<Service>,
    client: u64,
    token: Option<ProgressToken>,
    /// When the last report went, and the stage it named.
    last: Mutex<Option<(Instant, String)>>,
}

impl JobProgress {
    /// Progress of a request of `client` that passed `token`.
    pub fn new(
        service: Arc<Service>,
        client: u64,
        token: Option<ProgressToken>,
        cancel: Arc<CancelFlag>,
    ) -> Self {
        JobProgress {
            cancel,
            service,
            client,
            token,
            last: Mutex::new(None),
        }
    }

    fn send(&self, value: WorkDoneProgress) {
        if let Some(token) = &self.token {
            self.service.clients.notify::<ProgressMethod>(
                Subscriber::Client(self.client),
                &ProgressParams {
                    token: token.clone(),
                    value,
                },
            );
        }
    }

    /// `begin`.
    pub fn begin(&self, title: &str) {
        self.send(WorkDoneProgress::Begin {
            title: title.into(),
            cancellable: true,
            message: None,
            percentage: Some(0),
        });
    }

    /// `end`.
    pub fn end(&self, message: Option<String>) {
        self.send(WorkDoneProgress::End { message });
    }
}

impl PartialResults for JobProgress {
    fn send(&self, token: &ProgressToken, value: serde_json::Value) {
        let params = serde_json::json!({"token": token, "value": value});
        let message = convlens_shared::Message::Notification(convlens_shared::Notification {
            method: ProgressMethod::NAME.into(),
            params,
        });
        self.service.clients.send(self.client, message);
    }
}

impl Progress for JobProgress {
    fn step(&self, done: usize, total: usize, message: &str) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        if self.token.is_some() {
            let stage = stage_of(message);
            let mut last = lock(&self.last);
            let due = last
                .as_ref()
                .is_none_or(|(t, seen)| t.elapsed() >= REPORT_EVERY || seen != stage)
                || done >= total;
            if due {
                *last = Some((Instant::now(), stage.to_string()));
                drop(last);
                self.send(WorkDoneProgress::Report {
                    message: Some(format!("{message} {done}/{total}")),
                    percentage: (total > 0).then(|| (done.min(total) * 100 / total) as u32),
                });
            }
        }
        Ok(())
    }
}
