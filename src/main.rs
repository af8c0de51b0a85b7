//! The `convlens` binary: one-shot subcommands over the engine.

mod cli;

use std::process::ExitCode;

use clap::FromArgMatches;

fn main() -> ExitCode {
    convlens_models::process::prepare();
    let words: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(e) = cli::typo::mistyped_subcommand(&words) {
        e.exit();
    }
    let mut command = cli::scope::command();
    let matches = command.clone().get_matches_from(words);
    if let Err(e) = cli::scope::check(&mut command, &matches) {
        e.exit();
    }
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and those of its causes that add something to its message, on one line.
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
    }
    text
}

/// Whether the reader of our output went away (`convlens layers demo | head`).
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
