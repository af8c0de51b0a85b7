//! Running the `convlens` binary from the end-to-end tests, shared by every `tests/cli_*.rs`.
//!
//! Every run gets a private runtime folder (`XDG_RUNTIME_DIR`) of this test process, so the
//! daemon the binary starts for itself never shares or fights over the user's own daemon; that
//! daemon is shut down and the folder removed when the test process exits.
#![allow(dead_code)] // each test file uses the helpers it needs

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use convlens_shared::methods::lifecycle::{Exit, Shutdown};
use convlens_shared::methods::NoParams;

/// The repository root, where the binary runs.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

static RUNTIME: OnceLock<PathBuf> = OnceLock::new();

extern "C" {
    /// libc's `atexit`: runs `callback` when the process exits (after every test has run).
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

/// Stops the daemon of this process's runtime folder and removes the folder.
extern "C" fn stop_private_daemon() {
    let Some(dir) = RUNTIME.get() else { return };
    let socket = convlens_socket(dir);
    if let Ok(client) = convlens_shared::Client::connect(&socket) {
        let _ = client.request::<Shutdown>(&NoParams {});
        let _ = client.notify::<Exit>(&NoParams {});
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Where the binary puts its socket under runtime folder `dir`.
fn convlens_socket(dir: &Path) -> PathBuf {
    dir.join("convlens").join("daemon.sock")
}

/// This test process's private runtime folder (0700), made on first use.
pub fn runtime_dir() -> &'static Path {
    RUNTIME.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("convlens-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a private runtime folder");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .expect("a private runtime folder");
        // SAFETY: `stop_private_daemon` is a plain function with no arguments; registering it
        // has no other effect.
        unsafe {
            atexit(stop_private_daemon);
        }
        dir
    })
}

/// The socket of the daemon the binary starts in this process's runtime folder.
pub fn socket() -> PathBuf {
    convlens_socket(runtime_dir())
}

/// Runs the binary with `args` from the repository root.
pub fn convlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_convlens"))
        .args(args)
        .current_dir(root())
        .env("XDG_RUNTIME_DIR", runtime_dir())
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

/// Runs the binary and requires it to fail with one line of error (`error: …`) that mentions
/// `needle`, and no panic. Progress lines a sweep prints without a terminal (`folder/top:
/// embedding (12%)`) may come before it.
pub fn assert_one_clear_error(args: &[&str], needle: &str) {
    let out = convlens(args);
    assert!(!out.status.success(), "{args:?} should fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| !l.ends_with("%)")).collect();
    assert_eq!(
        errors.len(),
        1,
        "{args:?} should print one line of error: {stderr}"
    );
    assert!(errors[0].starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(needle),
        "{args:?}: `{stderr}` should mention `{needle}`"
    );
}

/// Every `--flag` that `convlens SUBCOMMAND --help` lists, with the default it states (`None`
/// when it states none). A flag's line starts with `-`; its `[default: …]` is on that line
/// (short help) or on a line below it (long help, when a description is long).
pub fn help_flags(subcommand: &str) -> std::collections::BTreeMap<String, Option<String>> {
    let out = succeed(&[subcommand, "--help"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut flags = std::collections::BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('-') {
            if let Some(rest) = line.split("--").nth(1) {
                current = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-')
                    .collect();
                flags.insert(current.clone(), None);
            }
        }
        if let Some(at) = line.find("[default: ") {
            let value = line[at + "[default: ".len()..]
                .split(']')
                .next()
                .unwrap_or_default();
            flags.insert(current.clone(), Some(value.to_string()));
        }
    }
    flags
}
