//! A mistyped subcommand is not a model: `convlens predcit demo x.jpg` would otherwise read
//! `predcit` as the TUI's optional MODEL and fail on `demo` as an unknown subcommand, and
//! `convlens explian` would open the TUI on a model that does not exist. Before clap parses,
//! the first word in MODEL position is checked: one that is not a subcommand, `demo`,
//! `random:ARCH` or an existing path, and is close to a subcommand, is refused with the
//! suggestion, the way clap refuses an unknown subcommand (exit 2).

use std::ffi::OsString;

use clap::error::ErrorKind;
use clap::{Command, CommandFactory};

use super::Cli;

/// How similar (Jaro–Winkler, 0 to 1) a word must be to a subcommand to be taken for a typo.
const TYPO_SIMILARITY: f64 = 0.85;

/// The error for a mistyped subcommand in `args` (the whole command line), if there is one.
pub fn mistyped_subcommand(args: &[OsString]) -> Option<clap::Error> {
    let mut command = Cli::command();
    let word = first_positional(&command, args)?;
    let names: Vec<String> = command
        .get_subcommands()
        .flat_map(|s| std::iter::once(s.get_name()).chain(s.get_all_aliases()))
        .map(str::to_string)
        .collect();
    if names.contains(&word)
        || word == "demo"
        || word.starts_with("random:")
        || std::path::Path::new(&word).exists()
    {
        return None;
    }
    let (score, nearest) = names
        .iter()
        .map(|n| (strsim::jaro_winkler(&word, n), n))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    if score < TYPO_SIMILARITY {
        return None;
    }
    Some(command.error(
        ErrorKind::InvalidSubcommand,
        format!(
            "unrecognized subcommand '{word}'\n\n  tip: a similar subcommand exists: '{nearest}'\n  \
             (a model is a file, `demo` or `random:ARCH`)"
        ),
    ))
}

/// The first word of `args` that is not a flag or a flag's value, as the root command reads it.
fn first_positional(command: &Command, args: &[OsString]) -> Option<String> {
    let takes_value = |matches: &dyn Fn(&clap::Arg) -> bool| {
        command
            .get_arguments()
            .find(|a| matches(a))
            .is_some_and(|a| a.get_action().takes_values())
    };
    let mut words = args.iter().skip(1).filter_map(|a| a.to_str());
    while let Some(word) = words.next() {
        if word == "--" {
            return words.next().map(str::to_string);
        }
        if let Some(long) = word.strip_prefix("--") {
            if !long.contains('=') && takes_value(&|a| a.get_long() == Some(long)) {
                words.next();
            }
            continue;
        }
        if let Some(short) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
            let last = short.chars().last();
            if short.chars().count() == 1 && takes_value(&|a| a.get_short() == last) {
                words.next();
            }
            continue;
        }
        return Some(word.to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> Option<String> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        mistyped_subcommand(&args).map(|e| e.to_string())
    }

    #[test]
    fn a_word_close_to_a_subcommand_is_refused_with_it() {
        let e = check(&["convlens", "predcit", "demo", "x.jpg"]).unwrap();
        assert!(e.contains("unrecognized subcommand 'predcit'"), "{e}");
        assert!(e.contains("a similar subcommand exists: 'predict'"), "{e}");
        let e = check(&["convlens", "--device", "cpu", "explian"]).unwrap();
        assert!(e.contains("'explain'"), "{e}");
    }

    #[test]
    fn models_subcommands_and_flag_values_pass() {
        assert_eq!(check(&["convlens"]), None);
        assert_eq!(check(&["convlens", "demo"]), None);
        assert_eq!(check(&["convlens", "random:resnet18"]), None);
        assert_eq!(check(&["convlens", "predict", "demo", "x.jpg"]), None);
        // `--socket layers` is a flag's value, not a word in MODEL position.
        assert_eq!(check(&["convlens", "--socket", "layers", "demo"]), None);
        // A word far from every subcommand is left to the model loader's own error.
        assert_eq!(check(&["convlens", "weights-of-my-run.pt"]), None);
        // An existing path is a model whatever its name.
        let dir = std::env::temp_dir().join(format!("convlens-typo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("explian");
        std::fs::write(&file, b"").unwrap();
        let path = file.display().to_string();
        assert_eq!(check(&["convlens", &path]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
