//! An in-memory client of a [`Service`]: a connection served over a pipe, no socket and no
//! process, for the daemon's own tests.

#![allow(dead_code)] // each test binary uses only part of the client

use std::sync::Arc;
use std::time::Duration;

use convlens_daemon::server::connection::Connection;
use convlens_daemon::server::frames::read_frame;
use convlens_daemon::Service;
use convlens_shared::framing::encode_frame;
use convlens_shared::{Message, Notification, Request, RequestId, Response, ResponseError};
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufReader, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The client's end of the pipe.
pub struct Peer {
    reader: BufReader<ReadHalf<DuplexStream>>,
    writer: WriteHalf<DuplexStream>,
    next_id: i64,
    /// The notifications received so far.
    pub notifications: Vec<Notification>,
}

impl Peer {
    pub async fn send(&mut self, message: Message) {
        let frame = encode_frame(&message.to_bytes());
        self.writer.write_all(&frame).await.unwrap();
    }

    /// Sends request `method` and returns its id.
    pub async fn start(&mut self, method: &str, params: Value) -> RequestId {
        self.next_id += 1;
        let id = RequestId::Number(self.next_id);
        self.send(Message::Request(Request {
            id: id.clone(),
            method: method.into(),
            params,
        }))
        .await;
        id
    }

    /// The next message from the server (panics after 120 s).
    pub async fn next(&mut self) -> Message {
        let body = tokio::time::timeout(
            Duration::from_secs(120),
            read_frame(&mut self.reader, 1 << 30),
        )
        .await
        .expect("the server answers within 120 s")
        .expect("a well-formed frame")
        .expect("the stream is open");
        Message::parse(&body).expect("a valid message")
    }

    /// The response to `id`, keeping the notifications that come before it.
    pub async fn response(&mut self, id: &RequestId) -> Response {
        loop {
            match self.next().await {
                Message::Response(r) if r.id.as_ref() == Some(id) => return r,
                Message::Notification(n) => self.notifications.push(n),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Sends `method` and waits for its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Result<Value, ResponseError> {
        let id = self.start(method, params).await;
        self.response(&id).await.outcome
    }

    /// The `$/progress` reports received for `token`.
    pub fn reports(&self, token: &str) -> usize {
        self.notifications
            .iter()
            .filter(|n| n.method == "$/progress" && n.params["token"] == token)
            .filter(|n| n.params["value"]["kind"] == "report")
            .count()
    }
}

/// Connects a new client to `service` (the daemon's method table, `exit` signalled on
/// `exit`); returns the client's end and the task serving it, which ends when the client
/// leaves.
pub fn connect(service: &Arc<Service>, exit: &Arc<Notify>) -> (Peer, JoinHandle<()>) {
    let (client_end, server_end) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_end);
    let connection = Connection {
        service: Arc::clone(service),
        router: Arc::new(convlens_daemon::methods::table()),
        exit: Arc::clone(exit),
    };
    let served = tokio::spawn(connection.serve_stream(server_read, server_write));
    let (client_read, client_write) = tokio::io::split(client_end);
    let peer = Peer {
        reader: BufReader::new(client_read),
        writer: client_write,
        next_id: 0,
        notifications: Vec::new(),
    };
    (peer, served)
}
