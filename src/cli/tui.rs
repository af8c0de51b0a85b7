//! `convlens [MODEL] [--images DIR] [--graphics G]`: the terminal UI, talking to the daemon
//! (started in the background when none runs).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use convlens_shared::methods::lifecycle::{Info, InitializeParams};
use convlens_shared::Client;
use convlens_tui::Graphics;

/// How long a daemon started for the TUI lives once no client is left.
const IDLE_EXIT_SECS: u64 = 900;
/// How long to wait for a daemon started here to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of the terminal UI (the command line with no subcommand).
#[derive(clap::Args, Debug)]
pub struct TuiArgs {
    /// Model to browse: a weights file, `demo` or `random:ARCH` (default: the bundled demo).
    model: Option<String>,
    /// Folder of images to browse (default: the bundled photos for the demo, else this folder).
    #[arg(long)]
    images: Option<PathBuf>,
    #[command(flatten)]
    load: super::LoadFlags,
    /// How pictures are drawn: auto, kitty, sixel, iterm2 or halfblocks.
    #[arg(long, default_value = "auto", value_parser = parse_graphics)]
    graphics: Graphics,
}

fn parse_graphics(s: &str) -> Result<Graphics, String> {
    s.parse()
}

/// Starts the TUI on the daemon at `socket` (the standard one when `None`).
pub fn run(args: &TuiArgs, device: &str, socket: Option<PathBuf>) -> anyhow::Result<()> {
    let socket = socket.unwrap_or_else(convlens_shared::paths::default_socket);
    let model = args.model.clone().unwrap_or_else(|| "demo".into());
    let folder = match (&args.images, args.model.is_none()) {
        (Some(dir), _) => {
            anyhow::ensure!(dir.is_dir(), "--images {}: not a folder", dir.display());
            dir.clone()
        }
        (None, true) => {
            let cache = socket.parent().unwrap_or(Path::new("/tmp"));
            convlens_tui::photos::demo_folder(cache).map_err(|e| {
                anyhow::anyhow!(
                    "cannot write the demo photos under {}: {e}",
                    cache.display()
                )
            })?
        }
        (None, false) => std::env::current_dir()?,
    };
    let folder = std::path::absolute(&folder)?;
    let device = device.to_string();
    let load = args.load.params(String::new(), |p| {
        std::path::absolute(p).map_or_else(|_| p.display().to_string(), |a| a.display().to_string())
    });
    convlens_tui::run(convlens_tui::Options {
        model,
        load,
        folder,
        graphics: args.graphics,
        connect: Box::new(move || connect_or_start(&socket, &device)),
    })
}

/// Connects to the daemon at `socket`, starting `convlens daemon` in the background when none
/// answers there.
fn connect_or_start(socket: &Path, device: &str) -> Result<Client, String> {
    let params = InitializeParams {
        client_info: Some(Info {
            name: "convlens-tui".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        process_id: Some(std::process::id()),
    };
    if let Ok(client) = Client::connect_with(socket, &params) {
        return Ok(client);
    }
    start_daemon(socket, device).map_err(|e| format!("cannot start `convlens daemon`: {e}"))?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match Client::connect_with(socket, &params) {
            Ok(client) => return Ok(client),
            Err(e) if Instant::now() >= deadline => {
                return Err(format!(
                    "no daemon answered on {} within {}s: {e}",
                    socket.display(),
                    START_TIMEOUT.as_secs()
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Starts `convlens daemon` detached from this terminal (its own process group, no stdio).
fn start_daemon(socket: &Path, device: &str) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    Command::new(std::env::current_exe()?)
        .arg("--device")
        .arg(device)
        .arg("daemon")
        .arg("--socket")
        .arg(socket)
        .arg("--idle-exit")
        .arg(IDLE_EXIT_SECS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}
