//! Where the one-shot subcommands compute: in a running daemon when there is one of this build
//! on this device (warm models, shared caches), in one started in the background when there is
//! none, or in-process with `--no-daemon` (the same handlers, called directly).

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use convlens_daemon::{Config, InProcess};
use convlens_models::progress::FnProgress;
use convlens_shared::methods::history::{AtVersionParams, ModelAtVersion};
use convlens_shared::methods::lifecycle::{Exit, Shutdown};
use convlens_shared::methods::model::{LoadParams, ModelLoad};
use convlens_shared::methods::progress::{
    PartialResultParams, ProgressParams, ProgressToken, WorkDoneProgress,
};
use convlens_shared::methods::status::Status;
use convlens_shared::methods::{NoParams, RequestMethod};
use convlens_shared::{Client, ClientError, Notification, RequestId};

use super::progress::Reporter;

/// The token the CLI passes for `$/progress`.
const WORK_DONE_TOKEN: &str = "cli";
/// The token the CLI passes for partial results.
const PARTIAL_RESULT_TOKEN: &str = "cli-partial";

/// What the CLI does with each partial result of `M` (with the progress shown, to write
/// around it).
pub type OnPartial<'a, M> =
    &'a mut (dyn FnMut(<M as RequestMethod>::Result, Option<&Reporter>) + Send);
use super::ModelArgs;

/// Why `--at-version` cannot run in this process.
const AT_VERSION_NEEDS_DAEMON: &str = "a checkpoint's versions are those the daemon kept \
    while it watched it, and this command computes in this process (--no-daemon, or no daemon \
    could be had); run it through the daemon (`convlens versions MODEL` lists them)";

/// How long an auto-started daemon lives with no client.
pub(super) const AUTO_IDLE_EXIT_SECS: u64 = 900;
/// How long to wait for an auto-started daemon's socket.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// The global flags that choose where to compute.
#[derive(Clone, Debug)]
pub struct EngineChoice {
    /// `--device`.
    pub device: String,
    /// `--no-daemon`.
    pub no_daemon: bool,
    /// `--socket` (default: the standard socket).
    pub socket: PathBuf,
    /// `--quiet`: no progress bar or progress lines.
    pub quiet: bool,
}

/// A daemon connection or an in-process service.
pub enum Backend {
    /// A running daemon.
    Daemon(Box<Client>),
    /// The handlers in this process.
    Local(InProcess),
}

/// A backend plus the paths it was given, so that its errors name them as the user typed them.
pub struct Engine {
    backend: Backend,
    /// `--quiet`: no progress shown.
    quiet: bool,
    paths: RefCell<Vec<(String, String)>>,
}

impl Engine {
    /// Connects as `choice` says: `--no-daemon`, a compatible running daemon, or one started
    /// now; in-process when no daemon can be had.
    pub fn open(choice: &EngineChoice) -> anyhow::Result<Engine> {
        let backend = if choice.no_daemon {
            None
        } else {
            daemon(choice)
        };
        let backend = match backend {
            Some(client) => Backend::Daemon(Box::new(client)),
            None => Backend::Local(local(choice)?),
        };
        Ok(Engine {
            backend,
            quiet: choice.quiet,
            paths: RefCell::new(Vec::new()),
        })
    }

    /// Whether requests go to a daemon.
    pub fn is_daemon(&self) -> bool {
        matches!(self.backend, Backend::Daemon(_))
    }

    /// `path` as the backend needs it: absolute for a daemon (it has its own folder).
    pub fn path_arg(&self, path: &Path) -> String {
        let given = path.display().to_string();
        if !self.is_daemon() || path.is_absolute() {
            return given;
        }
        let absolute = std::env::current_dir()
            .map(|d| d.join(path).display().to_string())
            .unwrap_or_else(|_| given.clone());
        self.paths.borrow_mut().push((absolute.clone(), given));
        absolute
    }

    /// Loads the model of `args` (at `--at-version`, a frozen version: `m1@3`); returns its id.
    pub fn load_model(&self, args: &ModelArgs) -> anyhow::Result<String> {
        if let (Some(n), false) = (args.at_version, self.is_daemon()) {
            anyhow::bail!("--at-version {n}: {AT_VERSION_NEEDS_DAEMON}");
        }
        let spec = if args.model == "demo" || args.model.starts_with("random:") {
            args.model.clone()
        } else {
            self.path_arg(Path::new(&args.model))
        };
        let params = LoadParams {
            arch: args.arch.clone(),
            labels: args.labels.as_deref().map(|p| self.path_arg(p)),
            watch: Some(self.is_daemon()),
            ..args.load.params(spec, |p| self.path_arg(p))
        };
        let loaded = self.request::<ModelLoad>(&params, false)?;
        if let Some(note) = &loaded.note {
            eprintln!("note: {note}");
        }
        let id = loaded.model.model_id;
        match args.at_version {
            Some(version) => {
                let at = AtVersionParams {
                    model_id: id,
                    version,
                };
                Ok(self.request::<ModelAtVersion>(&at, false)?.model.model_id)
            }
            None => Ok(id),
        }
    }

    /// Sends `M` and waits for its result; with `progress`, long work draws a progress bar.
    pub fn request<M: RequestMethod>(
        &self,
        params: &M::Params,
        progress: bool,
    ) -> anyhow::Result<M::Result> {
        self.request_partially::<M>(params, progress, None)
    }

    /// Sends `M` and waits for its result, passing each partial result to `on_partial` as it
    /// comes (the request's `partialResultToken` is set for it); with `progress`, long work
    /// draws a progress bar.
    pub fn request_partially<M: RequestMethod>(
        &self,
        params: &M::Params,
        progress: bool,
        on_partial: Option<OnPartial<'_, M>>,
    ) -> anyhow::Result<M::Result> {
        let bar = (progress && !self.quiet).then(|| Reporter::new(M::NAME));
        let mut value = serde_json::to_value(params)?;
        if let Some(o) = value.as_object_mut() {
            if bar.is_some() {
                o.insert("workDoneToken".into(), WORK_DONE_TOKEN.into());
            }
            if on_partial.is_some() {
                o.insert("partialResultToken".into(), PARTIAL_RESULT_TOKEN.into());
            }
        }
        let params: M::Params = serde_json::from_value(value)?;
        let result = match &self.backend {
            Backend::Local(service) => {
                let report = FnProgress(|done: usize, total: usize, msg: &str| {
                    if let Some(bar) = &bar {
                        bar.report(done, total, msg);
                    }
                    Ok(())
                });
                let on_partial = Mutex::new(on_partial);
                let partial = |_: &ProgressToken, value: serde_json::Value| {
                    if let (Some(f), Ok(piece)) = (
                        convlens_shared::sync::lock(&on_partial).as_mut(),
                        serde_json::from_value::<M::Result>(value),
                    ) {
                        f(piece, bar.as_ref());
                    }
                };
                service
                    .call_typed::<M>(&params, Some(&report), Some(&partial))
                    .map_err(|e| anyhow::anyhow!(e.message))
            }
            Backend::Daemon(client) => {
                let pending = client.start::<M>(&params).map_err(client_error)?;
                if bar.is_none() && on_partial.is_none() {
                    pending.wait()
                } else {
                    follow::<M>(client, bar.as_ref(), on_partial, pending)
                }
                .map_err(client_error)
            }
        };
        if let Some(bar) = bar {
            bar.finish();
        }
        result.map_err(|e| anyhow::anyhow!(self.as_typed(&e.to_string())))
    }

    /// `message` with the absolute paths this engine made put back as the user typed them.
    fn as_typed(&self, message: &str) -> String {
        let mut text = message.to_string();
        for (absolute, given) in self.paths.borrow().iter() {
            text = text.replace(absolute, given);
        }
        text
    }
}

fn client_error(e: ClientError) -> anyhow::Error {
    anyhow::anyhow!(e.to_string())
}

/// Waits for `pending`, showing its `$/progress` on `bar` and passing its partial results to
/// `on_partial`.
fn follow<M: RequestMethod>(
    client: &Client,
    bar: Option<&Reporter>,
    mut on_partial: Option<OnPartial<'_, M>>,
    pending: convlens_shared::client::Pending<M>,
) -> Result<M::Result, ClientError> {
    loop {
        if let Some(outcome) = pending.try_wait() {
            // The daemon sends a request's notifications before its response, and the reader
            // thread queues them before it hands the response over: those still queued (the
            // last rows of a pass answered from its cache, say) are taken before returning.
            while let Some(n) = client.next_notification(Duration::ZERO) {
                take_notification::<M>(n, bar, &mut on_partial);
            }
            return outcome;
        }
        if let Some(n) = client.next_notification(Duration::from_millis(50)) {
            take_notification::<M>(n, bar, &mut on_partial);
        }
    }
}

/// Passes a partial result to `on_partial`, or shows a `$/progress` report on `bar`.
fn take_notification<M: RequestMethod>(
    n: Notification,
    bar: Option<&Reporter>,
    on_partial: &mut Option<OnPartial<'_, M>>,
) {
    let work = RequestId::String(WORK_DONE_TOKEN.into());
    let partial = RequestId::String(PARTIAL_RESULT_TOKEN.into());
    if n.params.get("token") == serde_json::to_value(&partial).ok().as_ref() {
        if let (Some(f), Ok(p)) = (
            on_partial.as_mut(),
            serde_json::from_value::<PartialResultParams<M::Result>>(n.params),
        ) {
            f(p.value, bar);
        }
        return;
    }
    let (Some(bar), Ok(p)) = (bar, serde_json::from_value::<ProgressParams>(n.params)) else {
        return;
    };
    if p.token != work {
        return;
    }
    match p.value {
        WorkDoneProgress::Begin { title, .. } => bar.title(title),
        WorkDoneProgress::Report { message, .. } => {
            // The daemon's reports read "<words> <done>/<total>".
            let message = message.unwrap_or_default();
            let (words, count) = message.rsplit_once(' ').unwrap_or(("", &message));
            if let Some((done, total)) = count.split_once('/') {
                bar.report(done.parse().unwrap_or(0), total.parse().unwrap_or(0), words);
            }
        }
        WorkDoneProgress::End { .. } => {}
    }
}

/// An in-process service on the chosen device.
fn local(choice: &EngineChoice) -> anyhow::Result<InProcess> {
    let config = Config {
        device: choice.device.clone(),
        ..Config::default()
    };
    InProcess::new(config).map_err(anyhow::Error::from)
}

/// How a running daemon fits this command.
enum Fit {
    /// This build on the wanted device.
    Yes,
    /// This build on another device: compute in-process.
    OtherDevice,
    /// Another build (or protocol): replace it if it serves nobody else.
    OtherBuild,
}

/// A compatible daemon: the running one, or one started now. `None` when none can be had.
fn daemon(choice: &EngineChoice) -> Option<Client> {
    if let Ok(client) = Client::connect(&choice.socket) {
        match fit(&client, choice) {
            Fit::Yes => return Some(client),
            Fit::OtherDevice => return None,
            Fit::OtherBuild if !replace_stale(&client, choice) => return None,
            Fit::OtherBuild => {}
        }
    }
    // Open the device here first so that a bad `--device` fails at once, in-process.
    convlens_models::device::parse_device(&choice.device).ok()?;
    start(choice).ok()?;
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(client) = Client::connect(&choice.socket) {
            return matches!(fit(&client, choice), Fit::Yes).then_some(client);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    None
}

/// How the daemon behind `client` fits `choice`.
fn fit(client: &Client, choice: &EngineChoice) -> Fit {
    match client.server() {
        Some(s)
            if s.protocol_version == convlens_shared::PROTOCOL_VERSION
                && s.build == convlens_shared::build_id::build_id() =>
        {
            if s.capabilities.device == convlens_daemon::device_name::canonical(&choice.device) {
                Fit::Yes
            } else {
                Fit::OtherDevice
            }
        }
        _ => Fit::OtherBuild,
    }
}

/// Stops a daemon of another build or device that serves nobody else; says whether it went.
fn replace_stale(client: &Client, choice: &EngineChoice) -> bool {
    let alone = client
        .request::<Status>(&NoParams {})
        .is_ok_and(|s| s.clients <= 1 && s.queue.running == 0);
    if !alone {
        return false;
    }
    if client.request::<Shutdown>(&NoParams {}).is_err()
        || client.notify::<Exit>(&NoParams {}).is_err()
    {
        return false;
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if !choice.socket.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// Starts `convlens daemon` in the background, detached from this terminal.
fn start(choice: &EngineChoice) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    Command::new(exe)
        .arg("--device")
        .arg(&choice.device)
        .arg("daemon")
        .arg("--socket")
        .arg(&choice.socket)
        .arg("--idle-exit")
        .arg(AUTO_IDLE_EXIT_SECS.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;
    use std::os::unix::net::UnixListener;

    use convlens_shared::framing::{read_frame, write_frame};
    use convlens_shared::message::{Message, Response};
    use convlens_shared::methods::NoParams;

    use super::*;

    /// A daemon that answers the first request with `partials` partial results and then its
    /// response, all at once, as a pass answered from its cache does.
    fn answer_at_once(listener: UnixListener, partials: usize) {
        let (stream, _) = listener.accept().expect("the client connects");
        let mut reader = BufReader::new(stream.try_clone().expect("the stream"));
        let body = read_frame(&mut reader, 1 << 20)
            .expect("a frame")
            .expect("the request");
        let Ok(Message::Request(request)) = Message::parse(&body) else {
            panic!("not a request");
        };
        let mut writer = stream;
        for _ in 0..partials {
            let n = Message::Notification(Notification {
                method: "$/progress".into(),
                params: serde_json::json!({"token": PARTIAL_RESULT_TOKEN, "value": null}),
            });
            write_frame(&mut writer, n.to_value().to_string().as_bytes()).expect("written");
        }
        let r = Message::Response(Response {
            id: Some(request.id),
            outcome: Ok(serde_json::Value::Null),
        });
        write_frame(&mut writer, r.to_value().to_string().as_bytes()).expect("written");
        // Holds the connection open until the client has read everything.
        let _ = read_frame(&mut reader, 1 << 20);
    }

    #[test]
    fn partial_results_queued_before_the_response_are_all_taken() {
        let dir = std::env::temp_dir().join(format!("convlens-follow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        let socket = dir.join("daemon.sock");
        std::fs::remove_file(&socket).ok();
        let listener = UnixListener::bind(&socket).expect("a socket");
        let server = std::thread::spawn(move || answer_at_once(listener, 7));
        let client = Client::connect_uninitialized(&socket).expect("connected");
        let pending = client.start::<Shutdown>(&NoParams {}).expect("sent");
        // Everything arrives and is queued before the client looks (were it slower, the test
        // would only be easier to pass): the response is there at the first look, with the
        // partial results queued before it.
        std::thread::sleep(Duration::from_millis(200));
        let mut taken = 0;
        let mut count = |_: (), _: Option<&Reporter>| taken += 1;
        follow::<Shutdown>(
            &client,
            None,
            Some(&mut count as OnPartial<'_, Shutdown>),
            pending,
        )
        .expect("the answer");
        assert_eq!(taken, 7);
        drop(client);
        server.join().expect("the fake daemon");
        std::fs::remove_dir_all(&dir).ok();
    }
}
