//! `convlens versions MODEL`: the versions of a checkpoint the daemon keeps while it watches it
//! (one per rewrite, with the metrics written beside it); any subcommand runs on a kept one with
//! `--at-version N`.

use std::io::Write;

use anyhow::bail;
use convlens_shared::methods::history::{ModelVersions, VersionInfo};
use convlens_shared::methods::model::ModelRef;
use serde_json::Value;

use super::client::{Engine, EngineChoice};
use super::output;
use super::ModelArgs;

/// Arguments of `convlens versions`.
#[derive(clap::Args, Debug)]
pub struct VersionsArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Print the `model/versions` result as JSON.
    #[arg(long)]
    json: bool,
}

/// Lists the versions through the daemon (which starts watching the checkpoint if it did not).
pub fn run(args: &VersionsArgs, choice: &EngineChoice) -> anyhow::Result<()> {
    let engine = Engine::open(choice)?;
    if !engine.is_daemon() {
        bail!(
            "`convlens versions` needs a daemon on {} on device {}, and none could be had",
            choice.socket.display(),
            choice.device
        );
    }
    let model_id = engine.load_model(&args.model)?;
    let result = engine.request::<ModelVersions>(&ModelRef { model_id }, false)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        output::print_json!(&mut out, &result)?;
        return Ok(());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    writeln!(
        out,
        "{} ({}): {} version{}, oldest first; run any subcommand on one with --at-version N",
        args.model.model,
        result.model_id,
        result.versions.len(),
        if result.versions.len() == 1 { "" } else { "s" }
    )?;
    writeln!(
        out,
        "{:>7}  {:>12}  {:>10}  {:<4}  {:>7}  {:>5}  {:>7}  {:>8}",
        "version", "loaded", "MiB", "kept", "step", "epoch", "loss", "test acc"
    )?;
    for v in &result.versions {
        writeln!(out, "{}", row(v, now))?;
    }
    Ok(())
}

/// One version as a table row.
fn row(v: &VersionInfo, now_ms: u64) -> String {
    let metric = |name: &str| v.metrics.as_ref().and_then(|m| m.get(name));
    let number = |name: &str, f: &dyn Fn(f64) -> String| {
        metric(name)
            .and_then(Value::as_f64)
            .map_or_else(|| "-".to_string(), f)
    };
    format!(
        "{:>7}  {:>12}  {:>10.2}  {:<4}  {:>7}  {:>5}  {:>7}  {:>8}",
        v.version,
        age(now_ms.saturating_sub(v.loaded_at)),
        v.bytes as f64 / (1u64 << 20) as f64,
        if v.kept { "yes" } else { "no" },
        number("step", &|x| format!("{x}")),
        number("epoch", &|x| format!("{x}")),
        number("loss", &|x| format!("{x:.4}")),
        number("test_accuracy", &|x| format!("{:.2} %", x * 100.0)),
    )
}

/// `ms` ago, for a person (`12s ago`, `3m 05s ago`, `2h 10m ago`).
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m {:02}s ago", s / 60, s % 60),
        _ => format!("{}h {:02}m ago", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_a_person_would_say_them() {
        assert_eq!(age(999), "0s ago");
        assert_eq!(age(59_000), "59s ago");
        assert_eq!(age(185_000), "3m 05s ago");
        assert_eq!(age(7_800_000), "2h 10m ago");
    }

    #[test]
    fn a_row_shows_the_metrics_and_dashes_without_them() {
        let mut v = VersionInfo {
            version: 3,
            loaded_at: 1_000,
            source: "/run/checkpoint.safetensors".into(),
            bytes: 3 << 20,
            kept: true,
            metrics: Some(serde_json::json!({
                "step": 200, "epoch": 1, "loss": 0.51234, "test_accuracy": 0.8125
            })),
        };
        let r = row(&v, 13_000);
        for part in ["12s ago", "3.00", "yes", "200", "0.5123", "81.25 %"] {
            assert!(r.contains(part), "{part} in {r}");
        }
        v.metrics = None;
        v.kept = false;
        let r = row(&v, 13_000);
        assert!(r.contains(" no ") && r.trim_end().ends_with('-'), "{r}");
    }
}
