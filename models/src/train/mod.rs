//! Training the small Fashion-MNIST architectures (`small-vgg`, `small-resnet`) so that their
//! checkpoints can be watched while they learn.
//!
//! The training side uses candle-nn (a `VarMap` of variables named as PyTorch names them, AdamW)
//! and candle's autograd, unlike the rest of the engine, which has its own backward rules and
//! never computes weight gradients. It lives in the engine so that the CLI (`convlens
//! train-demo`), the tests and a daemon can drive it alike; it is the one part of the engine that
//! writes files (checkpoints, atomically, see [`checkpoint`]). A checkpoint loads back with
//! [`crate::Model::load`] and gives the training-side network's evaluation-mode logits.

pub mod checkpoint;
pub mod conv;
pub mod dataset;
pub mod idx;
pub mod net;
pub mod trainer;

pub use checkpoint::{CheckpointWriter, Metrics};
pub use dataset::{FashionMnist, Split};
pub use net::{SmallArch, TrainNet};
pub use trainer::{train, TrainConfig, TrainSummary, Trainer};
