//! convlens shared crate (filled in by its own issue).
