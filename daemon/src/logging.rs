//! Logs: tracing to `daemon.log` beside the socket, and to stderr with `--foreground`.
//! `CONVLENS_LOG` sets the filter (default `info`).

use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

/// Keeps the log file's writer thread alive; drop it at exit to flush.
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Starts logging to `file` (and stderr when `foreground`). A second call does nothing.
pub fn init(file: &Path, foreground: bool) -> LogGuard {
    let filter =
        || EnvFilter::try_from_env("CONVLENS_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file);
    let (file_layer, guard) = match opened {
        Ok(f) => {
            let (writer, guard) = tracing_appender::non_blocking(f);
            (
                Some(
                    fmt::layer()
                        .with_ansi(false)
                        .with_writer(writer)
                        .with_filter(filter()),
                ),
                Some(guard),
            )
        }
        Err(e) => {
            eprintln!(
                "convlens daemon: cannot open the log {}: {e}",
                file.display()
            );
            (None, None)
        }
    };
    let stderr_layer = foreground.then(|| {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
    });
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(stderr_layer)
        .try_init();
    LogGuard(guard)
}
