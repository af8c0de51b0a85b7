//! The convlens daemon: models stay loaded on the device, activations and results are cached,
//! and clients talk to it over a Unix socket in the protocol of `convlens-shared`.
//!
//! [`Service`] is the daemon without its socket: the model registry, the caches, the watches and
//! one handler per method (`methods/`). [`server`] puts it behind the socket with a job queue
//! ([`jobs`]) so that engine work never runs on the I/O tasks. The CLI's `--no-daemon` mode runs
//! the same handlers in-process through [`Service::call`].

pub mod cache;
pub mod clients;
pub mod config;
pub mod device_name;
pub mod error;
pub mod files;
pub mod jobs;
pub mod logging;
pub mod memory;
pub mod methods;
pub mod registry;
pub mod render;
pub mod server;
pub mod service;
pub mod watch;

pub use config::Config;
pub use error::MethodError;
pub use server::run;
pub use service::{Call, Service};
