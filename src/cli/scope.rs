//! Where the global flags act. `--device`, `--no-daemon`, `-q` and `--socket` are global so
//! they may come before or after the subcommand, but not every subcommand uses each of them:
//! `convlens daemon --no-daemon` or `convlens man --device cuda` would be silently ignored.
//! This table is the one place that says which subcommand ignores which flag; there the flag is
//! hidden from `--help`, completions and the man page, and refused when given (exit 2).

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, Command, CommandFactory};

use super::Cli;

/// A global flag and the subcommands it does nothing for, each with the reason.
struct Scope {
    /// The flag's clap id (the field's name).
    id: &'static str,
    /// How a user writes it.
    flag: &'static str,
    /// The subcommands that ignore it (`""`: no subcommand, the TUI), and why, in a few words.
    idle_in: &'static [(&'static str, &'static str)],
}

/// Why a subcommand ignores `--no-daemon`: it never asks a daemon for its work.
const RUNS_HERE: &str = "it always computes in this process";
/// Why a subcommand ignores `--no-daemon`: only the daemon has what it shows.
const ONLY_THE_DAEMON: &str = "only the daemon has what it shows";
/// Why a subcommand ignores every engine flag.
const WRITES_TEXT: &str = "it only writes text about the command line";

/// Every global flag that some subcommand ignores.
const SCOPES: &[Scope] = &[
    Scope {
        id: "no_daemon",
        flag: "--no-daemon",
        idle_in: &[
            ("", "the terminal UI is a client of the daemon"),
            ("daemon", "it is the daemon"),
            ("status", ONLY_THE_DAEMON),
            ("versions", ONLY_THE_DAEMON),
            ("evolve", RUNS_HERE),
            ("train-demo", RUNS_HERE),
            ("completions", WRITES_TEXT),
            ("man", WRITES_TEXT),
        ],
    },
    Scope {
        id: "quiet",
        flag: "--quiet",
        idle_in: &[
            ("", "the terminal UI shows progress in its panes"),
            ("daemon", "its clients show the progress of their requests"),
            ("status", "it shows no progress"),
            ("versions", "it shows no progress"),
            ("completions", WRITES_TEXT),
            ("man", WRITES_TEXT),
        ],
    },
    Scope {
        id: "device",
        flag: "--device",
        idle_in: &[
            ("status", "it lists the running daemon's devices"),
            ("completions", WRITES_TEXT),
            ("man", WRITES_TEXT),
        ],
    },
    Scope {
        id: "socket",
        flag: "--socket",
        idle_in: &[
            ("evolve", RUNS_HERE),
            ("train-demo", RUNS_HERE),
            ("completions", WRITES_TEXT),
            ("man", WRITES_TEXT),
        ],
    },
];

/// The command line's definition, with each global flag hidden where it does nothing.
pub fn command() -> Command {
    let mut command = Cli::command();
    for scope in SCOPES {
        let Some(flag) = command.get_arguments().find(|a| a.get_id() == scope.id) else {
            continue;
        };
        let hidden = flag.clone().hide(true);
        // A subcommand that already has an argument of a global's id keeps its own copy when
        // clap propagates the globals: the hidden one.
        for &(name, _) in scope.idle_in.iter().filter(|(n, _)| !n.is_empty()) {
            command = command.mut_subcommand(name, |sub| sub.arg(hidden.clone()));
        }
    }
    command
}

/// Refuses a global flag given to a subcommand (or the TUI) that ignores it.
pub fn check(command: &mut Command, matches: &ArgMatches) -> Result<(), clap::Error> {
    let (name, used) = match matches.subcommand() {
        Some((name, sub)) => (name, sub),
        None => ("", matches),
    };
    for scope in SCOPES {
        let Some((_, why)) = scope.idle_in.iter().find(|(n, _)| *n == name) else {
            continue;
        };
        if used.value_source(scope.id) == Some(ValueSource::CommandLine) {
            let place = if name.is_empty() {
                "the terminal UI (`convlens` with no subcommand)".to_string()
            } else {
                format!("`convlens {name}`")
            };
            let command = match command.find_subcommand_mut(name) {
                Some(sub) => sub,
                None => command,
            };
            return Err(command.error(
                ErrorKind::ArgumentConflict,
                format!("{} does nothing for {place}: {why}", scope.flag),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(), String> {
        let mut command = command();
        let matches = command
            .clone()
            .try_get_matches_from(args)
            .map_err(|e| e.to_string())?;
        check(&mut command, &matches).map_err(|e| e.to_string())
    }

    #[test]
    fn every_scope_names_a_real_flag_and_subcommand() {
        let mut command = command();
        command.build();
        for scope in SCOPES {
            assert!(
                command.get_arguments().any(|a| a.get_id() == scope.id),
                "{}",
                scope.id
            );
            for (name, _) in scope.idle_in.iter().filter(|(n, _)| !n.is_empty()) {
                let sub = command.find_subcommand(name).expect(name);
                let arg = sub.get_arguments().find(|a| a.get_id() == scope.id);
                assert!(arg.is_some_and(|a| a.is_hide_set()), "{name} {}", scope.id);
            }
        }
    }

    #[test]
    fn a_flag_where_it_acts_passes_in_either_place() {
        assert_eq!(
            parse(&["convlens", "--no-daemon", "layers", "demo"]),
            Ok(())
        );
        assert_eq!(
            parse(&["convlens", "layers", "demo", "--no-daemon"]),
            Ok(())
        );
        assert_eq!(parse(&["convlens", "daemon", "--device", "cpu"]), Ok(()));
        assert_eq!(parse(&["convlens", "--device", "cpu"]), Ok(()));
    }

    #[test]
    fn a_flag_where_it_does_nothing_is_refused_in_either_place() {
        let e = parse(&["convlens", "daemon", "--no-daemon"]).unwrap_err();
        assert!(
            e.contains("--no-daemon does nothing for `convlens daemon`"),
            "{e}"
        );
        let e = parse(&["convlens", "--socket", "s", "man"]).unwrap_err();
        assert!(
            e.contains("--socket does nothing for `convlens man`"),
            "{e}"
        );
        let e = parse(&["convlens", "-q"]).unwrap_err();
        assert!(e.contains("the terminal UI"), "{e}");
    }
}
