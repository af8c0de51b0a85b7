//! Every method of the protocol: its name, its parameters and its result, one file per
//! capability. Field names are camelCase on the wire.

pub mod activations;
pub mod cancel;
pub mod deconv;
pub mod evaluate;
pub mod explain;
pub mod filters;
pub mod folder;
pub mod history;
pub mod images;
pub mod lifecycle;
pub mod maximize;
pub mod model;
pub mod predict;
pub mod progress;
pub mod status;
pub mod watch;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A request: a method that gets a response.
pub trait RequestMethod {
    /// The method's name on the wire.
    const NAME: &'static str;
    /// Its parameters.
    type Params: Serialize + DeserializeOwned;
    /// Its result.
    type Result: Serialize + DeserializeOwned;
}

/// A notification: a method that gets no response.
pub trait NotificationMethod {
    /// The method's name on the wire.
    const NAME: &'static str;
    /// Its parameters.
    type Params: Serialize + DeserializeOwned;
}

/// Parameters of a method that takes none (`{}` or absent).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NoParams {}

/// Declares a request type.
macro_rules! request {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty, $result:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $ty {}
        impl $crate::methods::RequestMethod for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
            type Result = $result;
        }
    };
}

/// Declares a notification type.
macro_rules! notification {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $params:ty) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $ty {}
        impl $crate::methods::NotificationMethod for $ty {
            const NAME: &'static str = $name;
            type Params = $params;
        }
    };
}

pub(crate) use notification;
pub(crate) use request;
