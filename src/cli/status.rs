//! `convlens status`: what the running daemon holds (it starts none).

use std::io::Write;

use convlens_shared::methods::status::Status;
use convlens_shared::methods::NoParams;
use convlens_shared::Client;

use super::output;

/// Arguments of `convlens status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// Print the `status` result as JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the daemon's models, memory, watches and queue.
pub fn run(args: &StatusArgs, socket: &std::path::Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let client = match Client::connect(socket) {
        Ok(c) => c,
        Err(convlens_shared::ClientError::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            writeln!(out, "no daemon is running on {}", socket.display())?;
            return Ok(());
        }
        Err(e) => anyhow::bail!("the daemon on {}: {e}", socket.display()),
    };
    let s = client.request::<Status>(&NoParams {})?;
    if args.json {
        output::print_json!(&mut out, &s)?;
        return Ok(());
    }
    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    writeln!(
        out,
        "daemon pid {} on {}, up {}s, socket {}",
        s.pid, s.device, s.uptime_secs, s.socket
    )?;
    writeln!(out, "clients: {}", s.clients)?;
    writeln!(
        out,
        "memory: models {:.1} MiB{}, activations {:.1} MiB, results {:.1} MiB{}",
        mib(s.memory.models),
        s.memory
            .budget
            .map(|b| {
                let default = if s.memory.budget_is_default {
                    " (the default share of the device's memory; `convlens daemon --memory-budget`)"
                } else {
                    ""
                };
                format!(" of {:.1} MiB{default}", mib(b))
            })
            .unwrap_or_else(|| " (no budget)".into()),
        mib(s.memory.activation_cache),
        mib(s.memory.result_cache),
        s.memory
            .rss
            .map(|r| format!(", process {:.1} MiB", mib(r)))
            .unwrap_or_default(),
    )?;
    writeln!(
        out,
        "queue: {} interactive and {} sweeps waiting, {} running on {} workers, {} done; {} forward passes",
        s.queue.interactive, s.queue.sweeps, s.queue.running, s.queue.workers, s.queue.completed, s.forward_passes
    )?;
    writeln!(out, "models: {}", s.models.len())?;
    for m in &s.models {
        writeln!(
            out,
            "  {:<4} v{:<3} {:<20} {:>9.1} MiB  {}{}{}",
            m.model_id,
            m.version,
            m.arch,
            mib(m.bytes),
            m.source,
            if m.resident { "" } else { "  (evicted)" },
            if m.watched { "  (watched)" } else { "" },
        )?;
    }
    writeln!(out, "watches: {}", s.watches.len())?;
    for w in &s.watches {
        writeln!(
            out,
            "  {:<10} {}  ({} subscribers)",
            format!("{:?}", w.kind).to_lowercase(),
            w.path,
            w.subscribers
        )?;
    }
    Ok(())
}
