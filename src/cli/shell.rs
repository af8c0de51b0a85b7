//! `convlens completions SHELL` and `convlens man`: shell completions and a man page generated
//! from the same clap definitions as `--help` (clap_complete, clap_mangen), written to stdout.

use std::io::Write;

use super::scope;

/// Arguments of `convlens completions`.
#[derive(clap::Args, Debug)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

/// Writes the completion script for the shell asked for.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<()> {
    let mut command = scope::command();
    // Into memory first: clap_complete panics when its writer fails (`| head` closing the pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "convlens", &mut script);
    std::io::stdout().write_all(&script)?;
    Ok(())
}

/// Writes the man page (roff) of `convlens` and its subcommands.
pub fn man() -> anyhow::Result<()> {
    let command = scope::command();
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(command.clone()).render(&mut out)?;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("convlens-{}", sub.get_name());
        writeln!(out)?;
        clap_mangen::Man::new(sub.clone())
            .title(name)
            .render(&mut out)?;
    }
    Ok(())
}
