//! The convlens engine: CNN graphs with PyTorch-style layer names, weight loading, forward and
//! backward passes. Pure computation: no sockets, no async, no terminal.

pub mod allocator;
pub mod arch;
pub mod candle_pool;
#[cfg(test)]
mod child_test;
pub mod device;
pub mod error;
pub mod evaluate;
pub mod evolve;
pub mod explain;
pub mod export;
pub mod graph;
pub mod input;
pub mod labels;
pub mod lowering;
pub mod maximize;
pub mod model;
pub mod onnx;
pub mod ops;
pub mod process;
pub mod progress;
pub mod render;
pub mod represent;
pub mod resample;
pub mod train;
pub mod units;
pub mod weights;

pub use error::{Error, Result};
pub use model::{ClassScore, LoadOptions, Model};
