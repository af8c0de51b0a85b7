//! `convlens daemon`: keep models loaded and serve clients on a Unix socket
//! (docs/PROTOCOL.md), or `--stop` the running one.

use std::path::PathBuf;
use std::time::Duration;

use convlens_shared::methods::lifecycle::{Exit, Shutdown};
use convlens_shared::methods::NoParams;
use convlens_shared::Client;

/// Arguments of `convlens daemon` (the socket and device are the global `--socket` and
/// `--device`).
#[derive(clap::Args, Debug)]
pub struct DaemonArgs {
    /// Watch a folder of images or a checkpoint file from the start, for every client.
    #[arg(long)]
    watch: Vec<PathBuf>,
    /// Bytes resident models may take (see [`memory_budget_help`]).
    #[arg(long, value_parser = parse_budget, help = memory_budget_help())]
    memory_budget: Option<u64>,
    /// Also log to stderr.
    #[arg(long)]
    foreground: bool,
    /// Exit after this many seconds idle (see [`idle_exit_help`]).
    #[arg(long, value_name = "SECONDS", help = idle_exit_help())]
    idle_exit: Option<u64>,
    /// Worker threads for engine work (at least 2).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// The largest frame accepted, in bytes (suffixes K, M, G).
    #[arg(long, value_parser = parse_bytes)]
    max_frame: Option<u64>,
    /// Versions of each watched checkpoint kept for `model/atVersion` and `--at-version`
    /// (0: none); the oldest are dropped first.
    #[arg(long, default_value_t = convlens_daemon::Config::default().history_versions)]
    history_versions: usize,
    /// Bytes the kept checkpoint versions may take on disk together (suffixes K, M, G).
    #[arg(long, value_parser = parse_bytes, default_value = "1G")]
    history_bytes: u64,
    /// How long a changed checkpoint must stay the same (size, mtime, inode) before it is read,
    /// in milliseconds.
    #[arg(long, default_value_t = 500)]
    settle_ms: u64,
    /// Where kept checkpoint versions are copied (default: daemon-history in convlens's cache
    /// folder, ~/.cache/convlens).
    #[arg(long)]
    history_dir: Option<PathBuf>,
    /// Ask the running daemon to shut down, and exit.
    #[arg(long)]
    stop: bool,
}

/// Runs the daemon in this process (or stops the running one).
pub fn run(args: &DaemonArgs, device: &str, socket: PathBuf) -> anyhow::Result<()> {
    if args.stop {
        return stop(&socket);
    }
    let defaults = convlens_daemon::Config::default();
    let config = convlens_daemon::Config {
        socket,
        device: device.to_string(),
        watch: args
            .watch
            .iter()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
            .collect(),
        memory_budget: args.memory_budget,
        max_frame: args.max_frame.map_or(defaults.max_frame, |b| b as usize),
        workers: args.workers,
        idle_exit: args.idle_exit.map(Duration::from_secs),
        foreground: args.foreground,
        settle: Duration::from_millis(args.settle_ms),
        history_versions: args.history_versions,
        history_bytes: args.history_bytes,
        history_dir: args
            .history_dir
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        ..defaults
    };
    convlens_daemon::run(config)
}

/// Sends `shutdown` and `exit` to the daemon on `socket`.
fn stop(socket: &std::path::Path) -> anyhow::Result<()> {
    if !socket.exists() {
        println!(
            "no daemon is running on {}: nothing to stop",
            socket.display()
        );
        return Ok(());
    }
    let client = Client::connect(socket)
        .map_err(|e| anyhow::anyhow!("cannot reach the daemon on {}: {e}", socket.display()))?;
    client.request::<Shutdown>(&NoParams {})?;
    client.notify::<Exit>(&NoParams {})?;
    println!("stopped the daemon on {}", socket.display());
    Ok(())
}

/// `--idle-exit`'s help, with the idle time of the daemon a command starts by itself.
fn idle_exit_help() -> String {
    format!(
        "Exit after this many seconds with no client, no job and no client watch [default: never; \
         the daemon a command starts by itself exits after {}s]",
        super::client::AUTO_IDLE_EXIT_SECS
    )
}

/// `--memory-budget`'s help, with the default share from the daemon's config.
fn memory_budget_help() -> String {
    format!(
        "Bytes resident models may take (suffixes K, M, G; `none`: no limit); the least recently \
         used model not in use is evicted past it [default: {}% of the device's memory: the \
         machine's RAM, or the GPU's on CUDA]",
        convlens_daemon::config::DEFAULT_MEMORY_SHARE * 100.0
    )
}

/// A memory budget: a size, or `none` for no limit (`u64::MAX` in [`convlens_daemon::Config`]).
fn parse_budget(text: &str) -> Result<u64, String> {
    if text.trim().eq_ignore_ascii_case("none") {
        return Ok(u64::MAX);
    }
    parse_bytes(text)
}

/// `4096`, `512K`, `64M`, `2G` → bytes.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, scale) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{text}` is not a size in bytes (like 4096, 512M or 2G)"))
}
