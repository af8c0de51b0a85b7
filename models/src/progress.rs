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
