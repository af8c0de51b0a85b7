//! Weight files: safetensors, PyTorch checkpoints (zip and legacy), synthetic weights.

pub mod synthetic;
