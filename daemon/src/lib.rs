//! convlens daemon crate (filled in by its own issue).
