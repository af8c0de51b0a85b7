//! The README and `--help` say the same: every `--flag` the README shows on a `convlens SUB`
//! line exists in `convlens SUB --help`, and a number the README gives a flag in brackets
//! (`[-k/--per-unit 9]`) is the default `--help` states for it.

mod cli_support;

use std::collections::BTreeMap;

/// The subcommands `convlens --help` lists.
fn subcommands() -> Vec<String> {
    let out = cli_support::succeed(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let section = text.split("Commands:").nth(1).unwrap_or_default();
    section
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The `convlens SUB …` uses in `text`: the subcommand and the rest of its span (up to the
/// closing backtick, or the end of the line, or a `#` comment).
fn uses<'a>(text: &'a str, subcommands: &[String]) -> Vec<(String, &'a str)> {
    let mut found = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("convlens ") {
            let after = &rest[at + "convlens ".len()..];
            let word = after.split_whitespace().next().unwrap_or_default();
            let span_end = after.find(['`', '#']).unwrap_or(after.len());
            if subcommands.iter().any(|s| s == word) {
                found.push((word.to_string(), &after[word.len()..span_end]));
            }
            rest = &after[span_end.min(after.len())..];
            if rest.is_empty() {
                break;
            }
            rest = &rest[1.min(rest.len())..];
        }
    }
    found
}

/// Each `--flag` in `span`, with the number that follows it when the two sit in brackets.
fn flags_in(span: &str) -> Vec<(String, Option<String>)> {
    let tokens: Vec<&str> = span
        .split(|c: char| {
            c.is_whitespace() || c == '[' || c == ']' || c == '(' || c == ')' || c == '|'
        })
        .filter(|t| !t.is_empty())
        .collect();
    let mut flags = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        for part in token.split('/') {
            let Some(name) = part.strip_prefix("--") else {
                continue;
            };
            let name: String = name
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '-')
                .collect();
            if name.is_empty() {
                continue;
            }
            let value = tokens
                .get(i + 1)
                .filter(|v| v.parse::<f64>().is_ok())
                .map(|v| v.to_string());
            flags.push((name, value));
        }
    }
    flags
}

#[test]
fn every_flag_the_readme_shows_exists_with_the_default_it_states() {
    let readme = std::fs::read_to_string(cli_support::root().join("README.md")).unwrap();
    let subcommands = subcommands();
    assert!(
        subcommands.iter().any(|s| s == "explain"),
        "{subcommands:?}"
    );
    let mut helps: BTreeMap<String, BTreeMap<String, Option<String>>> = BTreeMap::new();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (sub, span) in uses(&readme, &subcommands) {
        let help = helps
            .entry(sub.clone())
            .or_insert_with(|| cli_support::help_flags(&sub));
        for (flag, value) in flags_in(span) {
            checked += 1;
            match help.get(&flag) {
                None => wrong.push(format!("`convlens {sub}` has no --{flag}")),
                Some(Some(default)) => {
                    if let Some(value) = value {
                        let same = value.parse::<f64>().ok() == default.parse::<f64>().ok();
                        // A number in a usage line that is not the default is an example
                        // (`--every 20`); only bracketed numbers state a default.
                        let bracketed = span.contains(&format!("--{flag} {value}]"));
                        if bracketed && !same {
                            wrong.push(format!(
                                "README gives `convlens {sub} --{flag}` {value}, --help {default}"
                            ));
                        }
                    }
                }
                Some(None) => {}
            }
        }
    }
    assert!(checked > 50, "only {checked} flags read from the README");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
