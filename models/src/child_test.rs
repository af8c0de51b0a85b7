//! Tests of process-wide settings (the environment, the allocator's options) run in a child
//! process of the test binary, so that they neither see nor change the other tests' process.

/// Runs the ignored test `name` of this test binary alone in a child process, with each
/// variable of `env` set (`Some`) or removed (`None`), and fails unless it passes.
pub fn run_ignored_test(name: &str, env: &[(&str, Option<&str>)]) {
    let exe = std::env::current_exe().expect("the test binary");
    let mut child = std::process::Command::new(exe);
    child.args([name, "--exact", "--ignored"]);
    for (variable, value) in env {
        match value {
            Some(value) => child.env(variable, value),
            None => child.env_remove(variable),
        };
    }
    let out = child.output().expect("the child test runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{name} in a child process: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
