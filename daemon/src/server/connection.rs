//! One client connection: a reader loop that sorts frames into requests and notifications, a
//! writer task that sends responses and notifications in order, and the requests in flight
//! (so that `$/cancelRequest` can reach them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use convlens_models::progress::{CancelFlag, Progress, Silent};
use convlens_shared::codes::{self, kind};
use convlens_shared::framing::FrameError;
use convlens_shared::methods::cancel::{CancelParams, CancelRequest};
use convlens_shared::methods::lifecycle::{
    Capabilities, Exit, Info, Initialize, InitializeResult, Shutdown,
};
use convlens_shared::methods::{images, model, progress, NotificationMethod, RequestMethod};
use convlens_shared::{Message, Request, RequestId, Response, ResponseError};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::{oneshot, Notify};

use super::frames::read_frame;
use super::progress::JobProgress;
use crate::clients::ClientId;
use crate::error::MethodError;
use crate::methods::call::NoPartials;
use crate::methods::router::{Mode, Router};
use crate::service::Service;
use crate::watch::Owner;
use convlens_shared::sync::lock;

/// Requests of this connection that may still be cancelled.
type InFlight = Arc<Mutex<HashMap<RequestId, Arc<CancelFlag>>>>;

/// What a connection needs from the server.
pub struct Connection {
    /// The service.
    pub service: Arc<Service>,
    /// The methods.
    pub router: Arc<Router>,
    /// Signalled to end the daemon (`exit`).
    pub exit: Arc<Notify>,
}

impl Connection {
    /// Serves a socket's `stream` until the client leaves or sends unframeable bytes; a peer
    /// with another uid is refused before anything is read.
    pub async fn serve(self, stream: UnixStream) {
        match super::socket::peer_is_us(&stream) {
            Ok(true) => {}
            Ok(false) | Err(_) => {
                let uid = stream.peer_cred().map(|c| c.uid()).ok();
                tracing::warn!(?uid, "refused a peer with another uid");
                return;
            }
        }
        let (read_half, write_half) = stream.into_split();
        self.serve_stream(read_half, write_half).await
    }

    /// Serves one client's session over any byte stream (a socket's halves, or an in-memory
    /// pipe in tests) until the client leaves or sends unframeable bytes.
    pub async fn serve_stream<R, W>(self, read_half: R, mut write_half: W)
    where
        R: AsyncRead + Unpin + Send,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
        let client = self.service.clients.add(tx.clone());
        tracing::info!(client, "client connected");
        let writer = tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                let frame = convlens_shared::framing::encode_frame(&message.to_bytes());
                if write_half.write_all(&frame).await.is_err() {
                    break;
                }
            }
            let _ = write_half.shutdown().await;
        });
        let mut session = Session {
            service: Arc::clone(&self.service),
            router: Arc::clone(&self.router),
            exit: Arc::clone(&self.exit),
            client,
            tx,
            initialized: false,
            asked_shutdown: false,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
        };
        let mut reader = BufReader::new(read_half);
        let max = self.service.config.max_frame;
        loop {
            match read_frame(&mut reader, max).await {
                Ok(Some(body)) => session.handle(&body),
                Ok(None) | Err(FrameError::Io(_)) => break,
                Err(e) => {
                    // The stream cannot be resynchronized: say why, then close.
                    tracing::warn!(client, "closing: {e}");
                    session.respond(
                        None,
                        Err(ResponseError::new(
                            codes::INVALID_REQUEST,
                            e.to_string(),
                            kind::FRAME,
                        )),
                    );
                    break;
                }
            }
        }
        for flag in lock(&session.in_flight).values() {
            flag.cancel();
        }
        self.service.clients.remove(client);
        self.service.watches.remove_owner(&Owner::Client(client));
        self.service.models.release(client);
        tracing::info!(client, "client disconnected");
        if session.asked_shutdown {
            self.exit.notify_one();
        }
        drop(session);
        let _ = writer.await;
    }
}

/// The state of one connection's protocol session.
struct Session {
    service: Arc<Service>,
    router: Arc<Router>,
    exit: Arc<Notify>,
    client: ClientId,
    tx: UnboundedSender<Message>,
    initialized: bool,
    asked_shutdown: bool,
    in_flight: InFlight,
}

impl Session {
    fn respond(&self, id: Option<RequestId>, outcome: Result<Value, ResponseError>) {
        let _ = self.tx.send(Message::Response(Response { id, outcome }));
    }

    fn fail(&self, id: RequestId, code: i64, message: impl Into<String>, kind: &str) {
        self.respond(Some(id), Err(ResponseError::new(code, message, kind)));
    }

    fn handle(&mut self, body: &[u8]) {
        match Message::parse(body) {
            Err(rejected) => self.respond(rejected.id, Err(rejected.error)),
            Ok(Message::Response(_)) => {}
            Ok(Message::Notification(n)) => match n.method.as_str() {
                m if m == Exit::NAME => {
                    tracing::info!(client = self.client, "exit");
                    self.exit.notify_one();
                }
                m if m == CancelRequest::NAME => {
                    if let Ok(p) = serde_json::from_value::<CancelParams>(n.params) {
                        if let Some(flag) = lock(&self.in_flight).get(&p.id) {
                            flag.cancel();
                        }
                    }
                }
                _ => {}
            },
            Ok(Message::Request(r)) => self.request(r),
        }
    }

    fn request(&mut self, r: Request) {
        let Request { id, method, params } = r;
        if method == Initialize::NAME {
            if self.initialized {
                return self.fail(
                    id,
                    codes::INVALID_REQUEST,
                    "already initialized",
                    kind::INVALID_REQUEST,
                );
            }
            self.initialized = true;
            let result = initialize_result(&self.service, &self.router);
            return self.respond(
                Some(id),
                Ok(serde_json::to_value(result).unwrap_or_default()),
            );
        }
        if !self.initialized {
            return self.fail(
                id,
                codes::SERVER_NOT_INITIALIZED,
                format!("`{method}` before `initialize`"),
                kind::NOT_INITIALIZED,
            );
        }
        if self.service.is_shutting_down() {
            return self.fail(
                id,
                codes::INVALID_REQUEST,
                "the daemon is shutting down",
                kind::SHUTTING_DOWN,
            );
        }
        if method == Shutdown::NAME {
            tracing::info!(client = self.client, "shutdown");
            self.service
                .shutting_down
                .store(true, std::sync::atomic::Ordering::SeqCst);
            self.asked_shutdown = true;
            return self.respond(Some(id), Ok(Value::Null));
        }
        let Some(route) = self.router.get(&method) else {
            return self.fail(
                id,
                codes::METHOD_NOT_FOUND,
                format!("unknown method `{method}`"),
                kind::METHOD_NOT_FOUND,
            );
        };
        match route.mode {
            Mode::Inline => {
                let outcome = self
                    .router
                    .call(
                        &self.service,
                        &method,
                        params,
                        Some(self.client),
                        &Silent,
                        &NoPartials,
                    )
                    .map_err(ResponseError::from);
                self.respond(Some(id), outcome);
            }
            Mode::Job(priority) => {
                let priority = priority(&params);
                self.submit(id, method, params, priority);
            }
        }
    }

    /// Queues a job for request `id` and answers it when the job is done.
    fn submit(
        &self,
        id: RequestId,
        method: String,
        params: Value,
        priority: crate::jobs::Priority,
    ) {
        let cancel = Arc::new(CancelFlag::new());
        lock(&self.in_flight).insert(id.clone(), Arc::clone(&cancel));
        let token = params
            .get("workDoneToken")
            .and_then(|t| serde_json::from_value(t.clone()).ok());
        let (done_tx, done_rx) = oneshot::channel::<Result<Value, MethodError>>();
        let service = Arc::clone(&self.service);
        let router = Arc::clone(&self.router);
        let client = self.client;
        let job_method = method.clone();
        let job = Box::new(move || {
            let progress = JobProgress::new(Arc::clone(&service), client, token, cancel);
            let outcome = if progress.cancel.is_cancelled() {
                Err(MethodError::cancelled())
            } else {
                progress.begin(&job_method);
                let outcome = progress
                    .step(0, 1, &job_method)
                    .map_err(MethodError::from)
                    .and_then(|()| {
                        router.call(
                            &service,
                            &job_method,
                            params,
                            Some(client),
                            &progress,
                            &progress,
                        )
                    });
                progress.end(outcome.as_ref().err().map(|e| e.message.clone()));
                outcome
            };
            let _ = done_tx.send(outcome);
        });
        let Some(queue) = self.service.jobs.get() else {
            return self.fail(id, codes::INTERNAL_ERROR, "no job queue", kind::INTERNAL);
        };
        if queue.submit(priority, job).is_err() {
            lock(&self.in_flight).remove(&id);
            return self.fail(
                id,
                codes::SERVER_BUSY,
                "the daemon is busy: its job queue is full; try again",
                kind::BUSY,
            );
        }
        let tx = self.tx.clone();
        let in_flight = Arc::clone(&self.in_flight);
        tokio::spawn(async move {
            let outcome = match done_rx.await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) if e.is_cancelled() => Err(ResponseError::new(
                    codes::REQUEST_CANCELLED,
                    format!("request {id} cancelled"),
                    kind::CANCELLED,
                )),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err(ResponseError::new(
                    codes::INTERNAL_ERROR,
                    format!("{method} failed inside the daemon (see its log)"),
                    kind::INTERNAL,
                )),
            };
            lock(&in_flight).remove(&id);
            let _ = tx.send(Message::Response(Response {
                id: Some(id),
                outcome,
            }));
        });
    }
}

/// What `initialize` answers.
fn initialize_result(service: &Service, router: &Router) -> InitializeResult {
    let mut methods = vec![Initialize::NAME.to_string(), Shutdown::NAME.to_string()];
    methods.extend(router.names().map(String::from));
    InitializeResult {
        server_info: Info {
            name: "convlens-daemon".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        },
        protocol_version: convlens_shared::PROTOCOL_VERSION,
        build: convlens_shared::build_id::build_id(),
        pid: std::process::id(),
        capabilities: Capabilities {
            device: service.device_name.clone(),
            methods,
            notifications: vec![
                model::ModelReloaded::NAME.into(),
                model::ModelReloadFailed::NAME.into(),
                images::ImagesChanged::NAME.into(),
                progress::Progress::NAME.into(),
            ],
            max_frame_bytes: service.config.max_frame,
        },
    }
}
