//! The convlens daemon: models stay loaded on the device, activations and results are cached,
//! and clients talk to it over a Unix socket in the protocol of `convlens-shared`.
//!
//! The modules are layered, each importing only from those below it (`tests/layering.rs`
//! checks): [`server`] (the socket and its connections) and [`in_process`] (the CLI's
//! `--no-daemon`) on top; [`methods`] (one handler per capability and the method table); the
//! [`service`] (the state the handlers share, and what the daemon does by itself when a watched
//! file changes); the model [`registry`] (residency); the checkpoint [`history`] and the
//! [`watch`]es; leaves at the bottom ([`cache`], [`clients`], [`jobs`], [`files`], …).

pub mod cache;
pub mod clients;
pub mod config;
pub mod device_name;
pub mod error;
pub mod files;
pub mod history;
pub mod in_process;
pub mod jobs;
pub mod logging;
pub mod memory;
pub mod methods;
pub mod registry;
pub mod render;
pub mod server;
pub mod service;
pub mod timing;
pub mod watch;

pub use config::Config;
pub use error::MethodError;
pub use in_process::InProcess;
pub use server::run;
pub use service::Service;
