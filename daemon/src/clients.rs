//! The connected clients and how messages reach them: each connection has a writer task fed by
//! a channel; notifications go to one client, to the subscribers of a watch, or to all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use convlens_shared::methods::NotificationMethod;
use convlens_shared::{Message, Notification};
use tokio::sync::mpsc::UnboundedSender;

use convlens_shared::sync::lock;

/// A connection's number.
pub type ClientId = u64;

/// Who hears a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subscriber {
    /// The daemon's own `--watch`: every client.
    Everyone,
    /// One client.
    Client(ClientId),
}

/// The connected clients.
#[derive(Default)]
pub struct Clients {
    senders: Mutex<HashMap<ClientId, UnboundedSender<Message>>>,
    next: AtomicU64,
}

impl Clients {
    /// Registers a connection whose writer reads `tx`; returns its id.
    pub fn add(&self, tx: UnboundedSender<Message>) -> ClientId {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        lock(&self.senders).insert(id, tx);
        id
    }

    /// Forgets a connection.
    pub fn remove(&self, id: ClientId) {
        lock(&self.senders).remove(&id);
    }

    /// How many are connected.
    pub fn count(&self) -> usize {
        lock(&self.senders).len()
    }

    /// Sends `message` to client `id` (dropped if it has gone).
    pub fn send(&self, id: ClientId, message: Message) {
        if let Some(tx) = lock(&self.senders).get(&id) {
            let _ = tx.send(message);
        }
    }

    /// Sends notification `N` to `to`.
    pub fn notify<N: NotificationMethod>(&self, to: Subscriber, params: &N::Params) {
        let message = notification::<N>(params);
        match to {
            Subscriber::Client(id) => self.send(id, message),
            Subscriber::Everyone => {
                for tx in lock(&self.senders).values() {
                    let _ = tx.send(message.clone());
                }
            }
        }
    }
}

/// Notification `N` with `params` as a message.
pub fn notification<N: NotificationMethod>(params: &N::Params) -> Message {
    Message::Notification(Notification {
        method: N::NAME.into(),
        params: serde_json::to_value(params).unwrap_or_default(),
    })
}
