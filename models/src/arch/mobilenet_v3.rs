//! Placeholder: filled in by the architecture work.

use super::Architecture;

/// The architectures of this family.
pub static ARCHITECTURES: [Architecture; 0] = [];
