//! A blocking client: one Unix socket, a reader thread that hands each response to the request
//! that waits for it (by id) and each notification to a channel.
//!
//! ```no_run
//! use convlens_shared::methods::model::{LoadParams, ModelLoad};
//! use convlens_shared::methods::predict::{ImagePredict, PredictParams};
//! let client = convlens_shared::Client::connect(&convlens_shared::paths::default_socket())?;
//! let model = client.request::<ModelLoad>(&LoadParams { path: "demo".into(), ..Default::default() })?;
//! let answer = client.request::<ImagePredict>(&PredictParams {
//!     model_id: model.model.model_id,
//!     images: vec!["/photos/cat.jpg".into()],
//!     top: 5,
//!     logits: false,
//! })?;
//! # Ok::<(), convlens_shared::ClientError>(())
//! ```

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::marker::PhantomData;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};

use crate::sync::lock;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;

use crate::framing::{read_frame, write_frame, DEFAULT_MAX_FRAME};
use crate::methods::cancel::{CancelParams, CancelRequest};
use crate::methods::lifecycle::{Info, Initialize, InitializeParams, InitializeResult};
use crate::methods::{NotificationMethod, RequestMethod};
use crate::{Message, Notification, Request, RequestId, ResponseError};

/// What can go wrong talking to the daemon.
#[derive(Debug)]
pub enum ClientError {
    /// The socket could not be reached or written.
    Io(io::Error),
    /// The daemon closed the connection before answering.
    Disconnected,
    /// The daemon answered with an error.
    Server(ResponseError),
    /// The daemon's answer did not have the expected shape.
    Decode(String),
    /// No answer within the time asked.
    Timeout,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "daemon socket: {e}"),
            ClientError::Disconnected => write!(f, "the daemon closed the connection"),
            ClientError::Server(e) => write!(f, "{}", e.message),
            ClientError::Decode(m) => write!(f, "unexpected answer from the daemon: {m}"),
            ClientError::Timeout => write!(f, "the daemon did not answer in time"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Server(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

type Outcome = Result<Value, ResponseError>;

/// Requests waiting for their response; `None` once the connection is gone.
type PendingMap = Mutex<Option<HashMap<RequestId, Sender<Outcome>>>>;

/// A connection to the daemon. `Sync`: several threads may send requests at once.
pub struct Client {
    writer: Mutex<UnixStream>,
    pending: Arc<PendingMap>,
    next_id: AtomicI64,
    notifications: Mutex<Option<Receiver<Notification>>>,
    server: Option<InitializeResult>,
    reader: Option<JoinHandle<()>>,
}

/// A request sent and not yet answered.
pub struct Pending<M: RequestMethod> {
    id: RequestId,
    rx: Receiver<Outcome>,
    method: PhantomData<M>,
}

impl<M: RequestMethod> Pending<M> {
    /// The request's id (for `$/cancelRequest`).
    pub fn id(&self) -> &RequestId {
        &self.id
    }

    /// Waits for the answer.
    pub fn wait(self) -> Result<M::Result, ClientError> {
        decode::<M>(self.rx.recv().map_err(|_| ClientError::Disconnected)?)
    }

    /// Waits at most `timeout` for the answer; [`ClientError::Timeout`] keeps nothing, so call
    /// it once.
    pub fn wait_timeout(self, timeout: Duration) -> Result<M::Result, ClientError> {
        match self.rx.recv_timeout(timeout) {
            Ok(outcome) => decode::<M>(outcome),
            Err(RecvTimeoutError::Timeout) => Err(ClientError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(ClientError::Disconnected),
        }
    }

    /// The answer if it has come (for a UI's event loop); `None` while waiting.
    pub fn try_wait(&self) -> Option<Result<M::Result, ClientError>> {
        match self.rx.try_recv() {
            Ok(outcome) => Some(decode::<M>(outcome)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Err(ClientError::Disconnected)),
        }
    }
}

fn decode<M: RequestMethod>(outcome: Outcome) -> Result<M::Result, ClientError> {
    let value = outcome.map_err(ClientError::Server)?;
    serde_json::from_value(value).map_err(|e| ClientError::Decode(format!("{}: {e}", M::NAME)))
}

impl Client {
    /// Connects to the daemon at `socket` and sends `initialize`.
    pub fn connect(socket: &Path) -> Result<Client, ClientError> {
        let params = InitializeParams {
            client_info: Some(Info {
                name: "convlens-client".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            process_id: Some(std::process::id()),
        };
        Client::connect_with(socket, &params)
    }

    /// Connects and sends `initialize` with `params`.
    pub fn connect_with(socket: &Path, params: &InitializeParams) -> Result<Client, ClientError> {
        let mut client = Client::connect_uninitialized(socket)?;
        client.server = Some(client.request::<Initialize>(params)?);
        Ok(client)
    }

    /// Connects without `initialize` (to test the daemon's refusals).
    pub fn connect_uninitialized(socket: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(socket)?;
        let reading = stream.try_clone()?;
        let pending: Arc<PendingMap> = Arc::new(Mutex::new(Some(HashMap::new())));
        let (notify_tx, notify_rx) = mpsc::channel();
        let reader_pending = Arc::clone(&pending);
        let reader = std::thread::Builder::new()
            .name("convlens-client-reader".into())
            .spawn(move || read_loop(reading, &reader_pending, &notify_tx))?;
        Ok(Client {
            writer: Mutex::new(stream),
            pending,
            next_id: AtomicI64::new(1),
            notifications: Mutex::new(Some(notify_rx)),
            server: None,
            reader: Some(reader),
        })
    }

    /// What `initialize` answered (`None` for [`Client::connect_uninitialized`]).
    pub fn server(&self) -> Option<&InitializeResult> {
        self.server.as_ref()
    }

    /// Sends a request and waits for its answer.
    pub fn request<M: RequestMethod>(&self, params: &M::Params) -> Result<M::Result, ClientError> {
        self.start::<M>(params)?.wait()
    }

    /// Sends a request and returns at once; [`Pending::wait`] gets the answer.
    pub fn start<M: RequestMethod>(&self, params: &M::Params) -> Result<Pending<M>, ClientError> {
        let params =
            serde_json::to_value(params).map_err(|e| ClientError::Decode(e.to_string()))?;
        let (id, rx) = self.send_raw(M::NAME, params)?;
        Ok(Pending {
            id,
            rx,
            method: PhantomData,
        })
    }

    /// Sends a request by name with any parameters and waits for the raw result.
    pub fn request_raw(&self, method: &str, params: Value) -> Result<Value, ClientError> {
        let (_, rx) = self.send_raw(method, params)?;
        rx.recv()
            .map_err(|_| ClientError::Disconnected)?
            .map_err(ClientError::Server)
    }

    fn send_raw(
        &self,
        method: &str,
        params: Value,
    ) -> Result<(RequestId, Receiver<Outcome>), ClientError> {
        let id = RequestId::Number(self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = mpsc::channel();
        match lock(&self.pending).as_mut() {
            Some(map) => map.insert(id.clone(), tx),
            None => return Err(ClientError::Disconnected),
        };
        let message = Message::Request(Request {
            id: id.clone(),
            method: method.into(),
            params,
        });
        if let Err(e) = self.send(&message) {
            if let Some(map) = lock(&self.pending).as_mut() {
                map.remove(&id);
            }
            return Err(e);
        }
        Ok((id, rx))
    }

    /// Sends a notification.
    pub fn notify<N: NotificationMethod>(&self, params: &N::Params) -> Result<(), ClientError> {
        let params =
            serde_json::to_value(params).map_err(|e| ClientError::Decode(e.to_string()))?;
        self.send(&Message::Notification(Notification {
            method: N::NAME.into(),
            params,
        }))
    }

    /// Asks the daemon to cancel request `id` (it answers that request with RequestCancelled).
    pub fn cancel(&self, id: &RequestId) -> Result<(), ClientError> {
        self.notify::<CancelRequest>(&CancelParams { id: id.clone() })
    }

    /// Writes raw bytes to the socket (to test the daemon's framing).
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<(), ClientError> {
        use std::io::Write;
        let mut w = lock(&self.writer);
        w.write_all(bytes)?;
        Ok(w.flush()?)
    }

    fn send(&self, message: &Message) -> Result<(), ClientError> {
        write_frame(&mut *lock(&self.writer), &message.to_bytes()).map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => ClientError::Disconnected,
            _ => ClientError::Io(e),
        })
    }

    /// The next notification, waiting at most `timeout`.
    pub fn next_notification(&self, timeout: Duration) -> Option<Notification> {
        lock(&self.notifications)
            .as_ref()?
            .recv_timeout(timeout)
            .ok()
    }

    /// The channel of notifications, for a thread or event loop of its own; afterwards
    /// [`Client::next_notification`] returns `None`.
    pub fn take_notifications(&self) -> Option<Receiver<Notification>> {
        lock(&self.notifications).take()
    }

    /// Whether the connection is still open.
    pub fn is_connected(&self) -> bool {
        lock(&self.pending).is_some()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// The reader thread: responses to their waiters, notifications to the channel, until the
/// connection ends; then every waiter learns that it is gone.
fn read_loop(stream: UnixStream, pending: &PendingMap, notifications: &Sender<Notification>) {
    let mut reader = BufReader::new(stream);
    while let Ok(Some(body)) = read_frame(&mut reader, DEFAULT_MAX_FRAME) {
        match Message::parse(&body) {
            Ok(Message::Response(r)) => {
                let waiter =
                    r.id.as_ref()
                        .and_then(|id| lock(pending).as_mut()?.remove(id));
                if let Some(tx) = waiter {
                    let _ = tx.send(r.outcome);
                }
            }
            Ok(Message::Notification(n)) => {
                let _ = notifications.send(n);
            }
            Ok(Message::Request(_)) | Err(_) => {}
        }
    }
    lock(pending).take();
}
