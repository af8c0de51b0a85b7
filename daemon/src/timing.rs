//! Timed parts of a request that are not the daemon's own work: decoding an input and running
//! the network. Each is a `debug` event with the target [`TARGET`] (`CONVLENS_LOG=
//! convlens::timing=debug` writes them to the log), so that the warm-latency bench can take them
//! off each request's time and measure the daemon's own work within the same request.

use std::time::Instant;

/// The tracing target of the timing events.
pub const TARGET: &str = "convlens::timing";

/// A part of a request that is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Decoding and preprocessing an input image.
    Decode,
    /// A forward pass.
    Forward,
}

impl Part {
    /// The name the events carry in their `part` field.
    pub fn name(self) -> &'static str {
        match self {
            Part::Decode => "decode",
            Part::Forward => "forward",
        }
    }
}

/// Emits the event for `part`, which started at `start` and has just ended (fields `part` and
/// `ms`).
pub fn record(part: Part, start: Instant) {
    tracing::debug!(
        target: TARGET,
        part = part.name(),
        ms = start.elapsed().as_secs_f64() * 1e3
    );
}
