//! The explanation methods by name, and the Integrated Gradients baselines: the closed sets of
//! `convlens_shared::choices`, shared with the CLI, the protocol and the TUI.

pub use convlens_shared::choices::{Baseline, Method, MethodKind};
