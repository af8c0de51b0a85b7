//! What a model was loaded from: loading the same again finds the same model.

use std::path::{Path, PathBuf};

use candle_core::Device;
use convlens_models::{LoadOptions, Model};

/// A weight file (or `demo`, `random:ARCH`) and the options it was loaded with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadKey {
    /// A weight file, `demo` or `random:ARCH`.
    pub path: String,
    /// `--arch`, `--labels`, `--graph`, `--mean`, `--std`, `--resize`.
    pub options: LoadOptions,
}

impl LoadKey {
    /// Loads it on `device`.
    pub fn load(&self, device: &Device) -> convlens_models::Result<Model> {
        Model::load(&self.path, &self.options, device)
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
        let mut options = self.options.clone();
        options.graph = options.graph.or_else(|| program.map(PathBuf::from));
        LoadKey {
            path: path.display().to_string(),
            options,
        }
    }
}
