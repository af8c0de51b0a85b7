//! How long computations report progress and learn that they were cancelled.
//!
//! The engine stays free of threads and sockets: a caller (the CLI's progress bar, the daemon's
//! `$/progress` and `$/cancelRequest`) passes a [`Progress`]; the computation calls
//! [`Progress::step`] between units of work (a batch, an optimization step) and stops with
//! [`Error::Cancelled`] when the caller asks.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Result};

/// Receives progress from a long computation and may cancel it.
pub trait Progress: Sync {
    /// `done` of `total` units are finished; `message` says what is being done. An `Err`
    /// (normally [`Error::Cancelled`]) stops the computation, which returns that error.
    fn step(&self, done: usize, total: usize, message: &str) -> Result<()>;
}

/// Reports nowhere and never cancels.
#[derive(Clone, Copy, Debug, Default)]
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _done: usize, _total: usize, _message: &str) -> Result<()> {
        Ok(())
    }
}

/// A cancellation flag that another thread sets; reports nowhere.
#[derive(Debug, Default)]
pub struct CancelFlag(AtomicBool);

impl CancelFlag {
    /// A flag not yet set.
    pub fn new() -> Self {
        CancelFlag(AtomicBool::new(false))
    }

    /// Asks the computation to stop at its next step.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether [`CancelFlag::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Progress for CancelFlag {
    fn step(&self, _done: usize, _total: usize, _message: &str) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

/// Calls a closure with each step (a CLI progress bar, a protocol notification).
pub struct FnProgress<F>(pub F);

impl<F> Progress for FnProgress<F>
where
    F: Fn(usize, usize, &str) -> Result<()> + Sync,
{
    fn step(&self, done: usize, total: usize, message: &str) -> Result<()> {
        (self.0)(done, total, message)
    }
}

/// One stage of several (one method of `explain --method all`): its steps are reported to
/// `inner` as progress over all the stages, each stage an equal share, with a message naming the
/// stage and saying which of how many it is.
pub struct Stage<'a> {
    /// Where the overall progress goes.
    pub inner: &'a dyn Progress,
    /// This stage, from 0.
    pub index: usize,
    /// How many stages there are.
    pub count: usize,
    /// The stage's name (`gradcam++`).
    pub name: &'a str,
}

/// The units each stage is worth in a [`Stage`]'s overall count.
const STAGE_UNITS: usize = 100;

impl Progress for Stage<'_> {
    fn step(&self, done: usize, total: usize, message: &str) -> Result<()> {
        let within = (done.min(total) * STAGE_UNITS)
            .checked_div(total)
            .unwrap_or(0);
        let message = format!(
            "{} ({} of {}): {message}",
            self.name,
            self.index + 1,
            self.count
        );
        self.inner.step(
            self.index * STAGE_UNITS + within,
            self.count * STAGE_UNITS,
            &message,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_stage_reports_its_share_of_the_whole() {
        let seen = Mutex::new(Vec::new());
        let record = FnProgress(|done: usize, total: usize, message: &str| {
            seen.lock()
                .unwrap()
                .push((done, total, message.to_string()));
            Ok(())
        });
        let stage = Stage {
            inner: &record,
            index: 2,
            count: 4,
            name: "smoothgrad",
        };
        stage.step(0, 50, "explain").unwrap();
        stage.step(25, 50, "explain").unwrap();
        stage.step(50, 50, "explain").unwrap();
        let seen = seen.into_inner().unwrap();
        assert_eq!(
            seen[0],
            (200, 400, "smoothgrad (3 of 4): explain".to_string())
        );
        assert_eq!((seen[1].0, seen[2].0), (250, 300));
        // Cancellation passes through.
        let cancelled = CancelFlag::new();
        cancelled.cancel();
        let stage = Stage {
            inner: &cancelled,
            index: 0,
            count: 1,
            name: "gradcam",
        };
        assert!(matches!(stage.step(0, 1, ""), Err(Error::Cancelled)));
    }
}
