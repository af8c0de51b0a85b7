//! The checkpoint timeline: the versions of the open model as the daemon keeps them
//! (`model/versions`), the metrics written beside each, and stepping from one kept version to
//! the next.

use convlens_shared::methods::history::VersionsResult;

/// One version of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct Version {
    /// 1 for the first load, one more per reload.
    pub version: u64,
    /// When the daemon loaded it, seconds since the Unix epoch.
    pub loaded_at: u64,
    /// Whether its weights can still be had (`model/atVersion`).
    pub kept: bool,
    /// The training step, from the metrics.
    pub step: Option<u64>,
    /// The training loss, from the metrics.
    pub loss: Option<f64>,
    /// The test (or validation) accuracy in [0, 1], from the metrics.
    pub accuracy: Option<f64>,
}

/// The versions of a `model/versions` answer, oldest first.
pub fn versions(result: VersionsResult) -> Vec<Version> {
    let mut out: Vec<Version> = result
        .versions
        .into_iter()
        .map(|v| {
            let metrics = v.metrics.as_ref();
            let number = |keys: &[&str]| {
                keys.iter()
                    .find_map(|k| metrics?.get(*k)?.as_f64())
                    .filter(|x| x.is_finite())
            };
            Version {
                version: v.version,
                loaded_at: v.loaded_at / 1000,
                kept: v.kept,
                step: number(&["step", "global_step"]).map(|s| s.max(0.0) as u64),
                loss: number(&["loss", "train_loss"]),
                accuracy: number(&[
                    "test_accuracy",
                    "val_accuracy",
                    "accuracy",
                    "test_acc",
                    "val_acc",
                    "acc",
                ])
                // Some writers give a percentage.
                .map(|a| if a > 1.0 { a / 100.0 } else { a }),
            }
        })
        .collect();
    out.sort_by_key(|v| v.version);
    out
}

/// The version shown after stepping one kept version earlier (`forward` false) or later from
/// `shown`; `None` when there is none that way.
pub fn step(versions: &[Version], shown: u64, forward: bool) -> Option<u64> {
    let kept = versions.iter().filter(|v| v.kept).map(|v| v.version);
    if forward {
        kept.filter(|v| *v > shown).min()
    } else {
        kept.filter(|v| *v < shown).max()
    }
}

/// The time of day of `unix_secs` in UTC, `HH:MM:SS UTC`.
pub fn time_of_day(unix_secs: u64) -> String {
    let day = unix_secs % 86_400;
    format!(
        "{:02}:{:02}:{:02} UTC",
        day / 3600,
        day % 3600 / 60,
        day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use convlens_shared::methods::history::VersionInfo;

    fn info(version: u64, kept: bool, metrics: Option<serde_json::Value>) -> VersionInfo {
        VersionInfo {
            version,
            loaded_at: 1_700_000_000_000 + version * 61_000,
            source: "/run/checkpoint.safetensors".into(),
            bytes: 10,
            kept,
            metrics,
        }
    }

    #[test]
    fn metrics_are_read_when_present() {
        let result = VersionsResult {
            model_id: "m1".into(),
            versions: vec![
                info(
                    2,
                    true,
                    Some(serde_json::json!({"step": 400, "loss": 0.41, "test_accuracy": 0.875})),
                ),
                info(1, true, None),
                info(3, true, Some(serde_json::json!({"epoch": 3, "acc": 91.5}))),
            ],
        };
        let v = versions(result);
        assert_eq!(
            v.iter().map(|v| v.version).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert_eq!((v[0].step, v[0].loss, v[0].accuracy), (None, None, None));
        assert_eq!(v[1].step, Some(400));
        assert_eq!(v[1].loss, Some(0.41));
        assert_eq!(v[1].accuracy, Some(0.875));
        assert!((v[2].accuracy.unwrap() - 0.915).abs() < 1e-12);
        assert_eq!(v[1].loaded_at, (1_700_000_000_000 + 2 * 61_000) / 1000);
    }

    #[test]
    fn stepping_skips_versions_no_longer_kept() {
        let v = versions(VersionsResult {
            model_id: "m1".into(),
            versions: vec![
                info(1, true, None),
                info(2, false, None),
                info(3, true, None),
                info(4, true, None),
            ],
        });
        // A brute force: every kept version, and the neighbour of `shown` among them.
        let kept: Vec<u64> = v.iter().filter(|v| v.kept).map(|v| v.version).collect();
        for shown in 1..=4 {
            let earlier = kept.iter().rev().find(|k| **k < shown).copied();
            let later = kept.iter().find(|k| **k > shown).copied();
            assert_eq!(step(&v, shown, false), earlier, "earlier than {shown}");
            assert_eq!(step(&v, shown, true), later, "later than {shown}");
        }
        assert_eq!(step(&v, 3, false), Some(1));
        assert_eq!(step(&v, 4, true), None);
    }

    #[test]
    fn times_of_day_are_utc() {
        assert_eq!(
            time_of_day(86_400 * 3 + 3600 * 13 + 60 * 5 + 9),
            "13:05:09 UTC"
        );
    }
}
