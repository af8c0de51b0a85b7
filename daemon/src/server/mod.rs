//! The daemon's process: binds the socket, starts the job queue and the `--watch` watches,
//! accepts connections, and exits on `exit`, SIGINT/SIGTERM, or when idle past `--idle-exit`.

pub mod connection;
pub mod frames;
pub mod progress;
pub mod socket;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use convlens_shared::paths;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::Notify;

use crate::config::Config;
use crate::files::FileStamp;
use crate::jobs::JobQueue;
use crate::service::Service;
use crate::watch::Owner;

/// Runs a daemon with `config` until it is told to exit.
pub fn run(config: Config) -> anyhow::Result<()> {
    convlens_models::allocator::hold_freed_memory();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("convlens-io")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(config));
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Binds, serves and returns when the daemon should exit.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let bound = socket::bind(&config.socket)?;
    let _log = crate::logging::init(&paths::log_file(&config.socket), config.foreground);
    let service = Service::new(config.clone())
        .with_context(|| format!("cannot open device `{}`", config.device))?;
    let queue = JobQueue::start(config.workers, config.queue_capacity)
        .context("cannot start the worker threads")?;
    let _ = service.jobs.set(queue);
    for path in &config.watch {
        watch_from_start(&service, path)?;
    }
    tracing::info!(
        socket = %config.socket.display(),
        device = %service.device_name,
        pid = std::process::id(),
        "daemon started"
    );
    let router = Arc::new(crate::methods::table());
    let exit = Arc::new(Notify::new());
    let mut term = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut idle_for = Duration::ZERO;
    loop {
        tokio::select! {
            accepted = bound.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let connection = connection::Connection {
                        service: Arc::clone(&service),
                        router: Arc::clone(&router),
                        exit: Arc::clone(&exit),
                    };
                    tokio::spawn(connection.serve(stream));
                }
                Err(e) => tracing::warn!("accept failed: {e}"),
            },
            _ = exit.notified() => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                // File checks, and when a model goes its copies and `malloc_trim`: off the I/O
                // task.
                let sweeper = Arc::clone(&service);
                tokio::task::spawn_blocking(move || sweeper.drop_gone_models());
                let idle = service.clients.count() == 0
                    && service.jobs.get().is_none_or(JobQueue::is_idle)
                    && !service.watches.has_client_watches();
                idle_for = if idle { idle_for + Duration::from_millis(500) } else { Duration::ZERO };
                if config.idle_exit.is_some_and(|limit| idle_for >= limit) {
                    tracing::info!("idle; exiting");
                    break;
                }
            }
        }
    }
    tracing::info!("daemon exiting");
    if let Some(q) = service.jobs.get() {
        q.close();
    }
    drop(bound);
    Ok(())
}

/// A `--watch` path: a folder or a checkpoint, for every client.
fn watch_from_start(service: &Service, path: &Path) -> anyhow::Result<()> {
    let result = if path.is_dir() {
        service.watches.add_folder(path, Owner::Everyone).map(drop)
    } else {
        service
            .watches
            .add_checkpoint(path, Owner::Everyone, FileStamp::of(path))
    };
    result.map_err(|e| anyhow::anyhow!(e.message))
}
