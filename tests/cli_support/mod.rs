//! Running the `convlens` binary from the end-to-end tests, shared by every `tests/cli_*.rs`.
#![allow(dead_code)] // each test file uses the helpers it needs

use std::path::PathBuf;
use std::process::{Command, Output};

/// The repository root, where the binary runs.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary with `args` from the repository root.
pub fn convlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convlens"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("the convlens binary runs")
}

/// Runs the binary and requires it to succeed, showing its stderr otherwise.
pub fn succeed(args: &[&str]) -> Output {
    let out = convlens(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
