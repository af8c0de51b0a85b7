//! convlens tui crate (filled in by its own issue).
