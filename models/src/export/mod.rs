//! `torch.export` programs (`.pt2`): PyTorch's own serialization of a whole network, read
//! without Python and lowered onto the engine's graph, so any CNN a user trains can be opened.
//!
//! - `archive.rs` reads the PT2 archive (JSON program, raw weight storages, `extra/` files);
//! - `schema.rs` is the part of the export schema read;
//! - `names.rs` names layers by PyTorch's module paths (`nn_module_stack`);
//! - `ops.rs` lists every ATen op read and the rule that lowers it;
//! - `lower.rs` and `lower_*.rs` turn ATen ops into engine ops, one file per op family.
//!
//! The program's parameters are inputs named by their state_dict keys, so a program can run
//! with its own weights or with any checkpoint of the same model bound by key.

mod archive;
mod lower;
mod lower_activation;
mod lower_arithmetic;
mod lower_conv_pool;
mod lower_norm;
mod lower_shape;
mod names;
mod ops;
mod out_spec;
mod schema;

use std::path::Path;

use candle_core::Device;

pub use archive::EXTRA_FILE;
pub use ops::supported_ops;

use crate::graph::{Graph, WeightSource};
use crate::weights::StateDict;
use crate::{Error, Result};

/// Where a program's weights come from.
#[derive(Debug)]
pub enum ProgramWeights {
    /// The weights saved in the archive.
    Archive,
    /// A checkpoint bound by state_dict key.
    StateDict(StateDict),
    /// Synthetic weights (`weights::synthetic`), for tests.
    Synthetic {
        /// The seed.
        seed: u64,
    },
}

/// What the user put into the archive's `extra/convlens.json` (all optional):
/// `{"mean": [..], "std": [..], "labels": [..], "resize": 256, "crop": 224}`.
#[derive(Clone, Debug, Default, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProgramExtra {
    /// Per-channel mean of the input normalization (0–1 pixel scale).
    #[serde(default)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation.
    #[serde(default)]
    pub std: Option<Vec<f32>>,
    /// Class names, one per output.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// The shorter side is resized to this before the centre crop.
    #[serde(default)]
    pub resize: Option<u32>,
}

/// A program lowered onto the engine.
#[derive(Debug)]
pub struct Program {
    /// The network; its layers carry PyTorch's module paths.
    pub graph: Graph,
    /// The input's channels, height and width as exported (`None`: dynamic).
    pub input_chw: [Option<usize>; 3],
    /// The archive's `extra/convlens.json`.
    pub extra: ProgramExtra,
    /// The torch version that exported it.
    pub torch_version: String,
}

/// Reads the program at `path` and binds `weights` to it.
///
/// Errors: [`Error::Format`] for an archive that is not a readable PT2 archive (truncated,
/// another schema version, an older layout), [`Error::Unsupported`] naming the op, node and
/// layer convlens cannot lower, [`Error::Weights`] for weights that do not fit, listing the first
/// few missing, unexpected and misshapen keys.
pub fn load_program(path: &Path, weights: ProgramWeights, device: &Device) -> Result<Program> {
    let archive = archive::read(path)?;
    let source = match weights {
        ProgramWeights::Archive => {
            if let Some(first) = archive.absent.first() {
                return Err(Error::Weights(format!(
                    "{}: the program was saved without the weights of {} tensors (`{first}`, …): \
                     bind a checkpoint to it (`--graph {}` with the checkpoint as MODEL)",
                    path.display(),
                    archive.absent.len(),
                    path.display()
                )));
            }
            WeightSource::StateDict(archive.weights.clone())
        }
        ProgramWeights::StateDict(dict) => WeightSource::StateDict(dict),
        ProgramWeights::Synthetic { seed } => WeightSource::Synthetic { seed },
    };
    let extra = match &archive.extra {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            Error::format(
                path,
                format!("extra/{EXTRA_FILE}: {e} (keys: mean, std, labels, resize)"),
            )
        })?,
        None => ProgramExtra::default(),
    };
    let lowered = lower::lower(&archive.program, source, &archive.constants, device).map_err(
        |e| match e {
            Error::Unsupported(m) => Error::Unsupported(format!("{}: {m}", path.display())),
            other => other,
        },
    )?;
    let fixed = |d: &schema::Dim| match d {
        schema::Dim::Fixed(n) => Some(*n),
        schema::Dim::Dynamic(_) => None,
    };
    let dims = &lowered.input_dims;
    let input_chw = [fixed(&dims[1]), fixed(&dims[2]), fixed(&dims[3])];
    let mut graph = lowered.graph;
    graph.expect_input(
        [None, input_chw[0], input_chw[1], input_chw[2]].to_vec(),
        "export it with dynamic height and width to run it at other sizes: \
         torch.export.export(model, (x,), dynamic_shapes={'x': {2: Dim('h'), 3: Dim('w')}})",
    );
    Ok(Program {
        graph,
        input_chw,
        extra,
        torch_version: archive.program.torch_version.clone(),
    })
}

/// Whether `path` is a `torch.export` archive: a `.pt2` name, or a zip with `archive_format`
/// (only the zip's directory is read).
pub fn is_program_file(path: &Path) -> bool {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pt2"))
    {
        return true;
    }
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 4];
    use std::io::Read;
    if (&file).read_exact(&mut head).is_err() || &head != b"PK\x03\x04" {
        return false;
    }
    // The archive starts at byte 0 (see `weights::torch_file::open_zip`).
    let at_start = zip::read::Config {
        archive_offset: zip::read::ArchiveOffset::Known(0),
    };
    zip::ZipArchive::with_config(at_start, file).is_ok_and(|z| {
        z.file_names_raw()
            .any(|n| n == b"archive_format" || n.ends_with(b"/archive_format"))
    })
}

/// The one `*.pt2` program in the folder of `checkpoint`, when there is exactly one.
pub fn program_beside(checkpoint: &Path) -> Option<std::path::PathBuf> {
    let dir = match checkpoint.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut found = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pt2")) && p.is_file());
    let first = found.next()?;
    found.next().is_none().then_some(first)
}
