//! What a model was loaded from: loading the same again finds the same model.

use std::path::Path;

use candle_core::Device;
use convlens_models::{LoadOptions, Model};

/// A weight file (or `demo`, `random:ARCH`) and the options it was loaded with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadKey {
    /// A weight file, `demo` or `random:ARCH`.
    pub path: String,
    /// `--arch`.
    pub arch: Option<String>,
    /// `--labels`.
    pub labels: Option<String>,
    /// `--graph`: the `torch.export` program the weights are bound to.
    pub graph: Option<String>,
    /// `--mean`.
    pub mean: Option<Vec<f32>>,
    /// `--std`.
    pub std: Option<Vec<f32>>,
    /// `--resize`.
    pub resize: Option<u32>,
}

impl LoadKey {
    /// Loads it on `device`.
    pub fn load(&self, device: &Device) -> convlens_models::Result<Model> {
        let options = LoadOptions {
            arch: self.arch.clone(),
            labels: self.labels.as_ref().map(Into::into),
            graph: self.graph.as_ref().map(Into::into),
            mean: self.mean.clone(),
            std: self.std.clone(),
            resize: self.resize,
        };
        Model::load(&self.path, &options, device)
    }

    /// Whether it names a file (not `demo` or `random:ARCH`).
    pub fn is_file(&self) -> bool {
        self.path != "demo" && !self.path.starts_with("random:")
    }

    /// The size of its file (0 for `demo`, `random:ARCH` or an unreadable file).
    pub fn file_size(&self) -> u64 {
        if !self.is_file() {
            return 0;
        }
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }

    /// The same options on another file (a kept copy), bound to `program` — the program the
    /// first version was bound to — when no `--graph` was given (a copy has no program beside
    /// it).
    pub fn at(&self, path: &Path, program: Option<&String>) -> LoadKey {
        LoadKey {
            path: path.display().to_string(),
            graph: self.graph.clone().or_else(|| program.cloned()),
            ..self.clone()
        }
    }
}
