//! Reading a `torch.export.save` archive (PyTorch's PT2 archive format, `archive_format` = `pt2`):
//!
//! ```text
//! <root>/archive_format                       "pt2"
//! <root>/byteorder                            "little"
//! <root>/models/model.json                    the serialized ExportedProgram
//! <root>/data/weights/model_weights_config.json   state_dict key -> file and tensor metadata
//! <root>/data/weights/weight_N                raw storage bytes of each parameter and buffer
//! <root>/data/constants/…                     lifted tensor constants, the same way
//! <root>/extra/<name>                         `extra_files` given to torch.export.save
//! ```
//!
//! Nothing is executed: JSON is parsed, storages are decoded by their recorded dtype, sizes and
//! strides (bounded by the bytes present). A weight file may be absent (a program saved, or
//! stripped, without its weights): the weights are then expected from a bound checkpoint.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::Tensor;

use super::schema::{Dim, ExportedProgram, PayloadConfig, TensorMeta, SCHEMA_MAJORS};
use crate::weights::state_dict::{self, ElemType, RawTensor};
use crate::weights::torch_file::{self, open_zip, stored_entry};
use crate::{Error, Result};

/// The `extra_files` entry convlens reads its preprocessing and labels from.
pub const EXTRA_FILE: &str = "convlens.json";

/// The largest JSON document read from an archive.
const MAX_JSON_BYTES: usize = 512 << 20;

/// What an archive holds.
pub(crate) struct Archive {
    /// The program.
    pub program: ExportedProgram,
    /// The weights present, by state_dict key.
    pub weights: BTreeMap<String, Tensor>,
    /// Keys whose weight file is absent from the archive.
    pub absent: Vec<String>,
    /// Lifted tensor constants, by name.
    pub constants: BTreeMap<String, Tensor>,
    /// The `extra/convlens.json` document, when present.
    pub extra: Option<serde_json::Value>,
}

/// The element type of an export-schema `ScalarType` code.
fn elem_type(code: i64) -> Option<ElemType> {
    Some(match code {
        1 => ElemType::U8,
        2 => ElemType::I8,
        3 => ElemType::I16,
        4 => ElemType::I32,
        5 => ElemType::I64,
        6 => ElemType::F16,
        7 => ElemType::F32,
        8 => ElemType::F64,
        12 => ElemType::Bool,
        13 => ElemType::BF16,
        28 => ElemType::U16,
        _ => return None,
    })
}

/// Fixed sizes of a tensor stored in the archive (stored tensors have no symbolic sizes).
fn fixed(values: &[serde_json::Value], what: &str) -> std::result::Result<Vec<usize>, String> {
    values
        .iter()
        .map(|v| match super::schema::sym_int(v) {
            Some(Dim::Fixed(n)) => Ok(n),
            _ => Err(format!(
                "{what}: a size or stride that is not a fixed integer"
            )),
        })
        .collect()
}

/// Decodes one stored tensor.
fn decode(bytes: &[u8], meta: &TensorMeta, key: &str) -> std::result::Result<Tensor, String> {
    let dtype = elem_type(meta.dtype).ok_or_else(|| {
        format!(
            "tensor `{key}` has dtype code {}, which convlens does not read",
            meta.dtype
        )
    })?;
    let shape = fixed(&meta.sizes, key)?;
    let stride = if meta.strides.is_empty() {
        state_dict::contiguous_strides(&shape)
    } else {
        fixed(&meta.strides, key)?
    };
    if stride.len() != shape.len() {
        return Err(format!(
            "tensor `{key}`: {} strides for {} sizes",
            stride.len(),
            shape.len()
        ));
    }
    let offset = match &meta.storage_offset {
        Some(v) => match super::schema::sym_int(v) {
            Some(Dim::Fixed(n)) => n,
            _ => return Err(format!("tensor `{key}`: unreadable storage offset")),
        },
        None => 0,
    };
    let raw = RawTensor {
        bytes,
        dtype,
        big_endian: false,
        offset,
        shape,
        stride,
    };
    state_dict::decode(&raw).map_err(|e| format!("tensor `{key}`: {e}"))
}

/// The program in `model_json` (from the entry `what`), if its schema version is one read here.
fn parse_program(
    model_json: serde_json::Value,
    what: &str,
    fail: &dyn Fn(String) -> Error,
) -> Result<ExportedProgram> {
    let version = model_json.get("schema_version");
    let major = version
        .and_then(|v| v.get("major"))
        .and_then(serde_json::Value::as_u64);
    let minor = version
        .and_then(|v| v.get("minor"))
        .and_then(serde_json::Value::as_u64);
    match major {
        Some(m) if SCHEMA_MAJORS.contains(&m) => {}
        Some(m) => {
            return Err(fail(format!(
                "export schema version {m}.{}: convlens reads versions {}.x to {}.x (PyTorch \
                 2.4 to 2.15); export the model with a PyTorch in that range",
                minor.unwrap_or(0),
                SCHEMA_MAJORS.start(),
                SCHEMA_MAJORS.end()
            )));
        }
        None => return Err(fail(format!("{what} has no schema_version"))),
    }
    serde_json::from_value(model_json)
        .map_err(|e| fail(format!("{what} does not follow the export schema: {e}")))
}

/// The layout `torch.export.save` wrote before PyTorch 2.6: `serialized_exported_program.json`
/// beside `serialized_state_dict.pt` and `serialized_constants.pt`, each a `torch.save` archive
/// (read by the same allow-listed reader as checkpoints).
fn read_legacy<'a>(
    zip: &mut zip::ZipArchive<std::io::Cursor<&'a [u8]>>,
    bytes: &'a [u8],
    json_name: &[u8],
    path: &Path,
) -> Result<Archive> {
    let fail = |message: String| Error::format(path, message);
    let prefix = json_name[..json_name.len() - b"serialized_exported_program.json".len()].to_vec();
    let mut entry = |name: &str| -> Result<Option<&'a [u8]>> {
        let full = [prefix.as_slice(), name.as_bytes()].concat();
        stored_entry(zip, bytes, &full).map_err(&fail)
    };
    let text = entry("serialized_exported_program.json")?
        .ok_or_else(|| fail("serialized_exported_program.json is missing".into()))?;
    if text.len() > MAX_JSON_BYTES {
        return Err(fail(format!(
            "serialized_exported_program.json is larger than {MAX_JSON_BYTES} bytes"
        )));
    }
    let model_json: serde_json::Value = serde_json::from_slice(text).map_err(|e| {
        fail(format!(
            "serialized_exported_program.json: not valid JSON: {e}"
        ))
    })?;
    let program = parse_program(model_json, "serialized_exported_program.json", &fail)?;
    let (weights, absent) = match entry("serialized_state_dict.pt")? {
        Some(inner) => (torch_file::load_zip(inner, path)?, vec![]),
        None => (
            BTreeMap::new(),
            vec!["serialized_state_dict.pt".to_string()],
        ),
    };
    let wants_constants = program
        .graph_module
        .signature
        .input_specs
        .iter()
        .any(|s| s.get("tensor_constant").is_some());
    let constants = match entry("serialized_constants.pt")? {
        Some(inner) if wants_constants => torch_file::load_zip(inner, path)?,
        _ => BTreeMap::new(),
    };
    Ok(Archive {
        program,
        weights,
        absent,
        constants,
        extra: None,
    })
}

/// Reads the archive at `path`.
pub(crate) fn read(path: &Path) -> Result<Archive> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_bytes(&bytes, path)
}

/// [`read`] on the file's bytes; `path` names it in errors.
pub(crate) fn read_bytes(bytes: &[u8], path: &Path) -> Result<Archive> {
    let fail = |message: String| Error::format(path, message);
    let mut zip = open_zip(bytes).map_err(|e| {
        fail(format!(
            "not a torch.export archive: not a readable zip file (truncated or corrupt?): {e}"
        ))
    })?;
    let names: Vec<Vec<u8>> = zip.file_names_raw().map(<[u8]>::to_vec).collect();
    let Some(format_name) = names
        .iter()
        .filter(|n| n.as_slice() == b"archive_format" || n.ends_with(b"/archive_format"))
        .min_by_key(|n| n.len())
        .cloned()
    else {
        if let Some(json_name) = names
            .iter()
            .filter(|n| n.ends_with(b"serialized_exported_program.json"))
            .min_by_key(|n| n.len())
            .cloned()
        {
            return read_legacy(&mut zip, bytes, &json_name, path);
        }
        if names.iter().any(|n| n.ends_with(b"data.pkl")) {
            return Err(fail(
                "a torch.save checkpoint, not a torch.export program: pass it as the model and \
                 the program with --graph"
                    .into(),
            ));
        }
        return Err(fail(
            "a zip archive without `archive_format`: not saved by torch.export.save".into(),
        ));
    };
    let root = format_name[..format_name.len() - b"archive_format".len()].to_vec();
    let mut entry = |name: &str| -> Result<Option<&[u8]>> {
        let full = [root.as_slice(), name.as_bytes()].concat();
        stored_entry(&mut zip, bytes, &full).map_err(&fail)
    };
    match entry("archive_format")? {
        Some(b"pt2") => {}
        Some(other) => {
            return Err(fail(format!(
                "archive_format is `{}`, not `pt2`",
                String::from_utf8_lossy(other)
            )))
        }
        None => return Err(fail("archive_format is missing".into())),
    }
    match entry("byteorder")? {
        None | Some(b"little") => {}
        Some(other) => {
            return Err(fail(format!(
                "byte order `{}`: only little-endian archives are read",
                String::from_utf8_lossy(other)
            )))
        }
    }
    let json = |bytes: &[u8], what: &str| -> Result<serde_json::Value> {
        if bytes.len() > MAX_JSON_BYTES {
            return Err(fail(format!(
                "{what} is larger than {MAX_JSON_BYTES} bytes"
            )));
        }
        serde_json::from_slice(bytes).map_err(|e| fail(format!("{what}: not valid JSON: {e}")))
    };
    let (model_json, chosen_name) = {
        let models: Vec<String> = names
            .iter()
            .filter_map(|n| n.strip_prefix(root.as_slice()))
            .filter(|n| n.starts_with(b"models/") && n.ends_with(b".json"))
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        let chosen = if models.iter().any(|m| m == "models/model.json") {
            "models/model.json".to_string()
        } else {
            match models.as_slice() {
                [one] => one.clone(),
                [] => return Err(fail("the archive holds no program (models/*.json)".into())),
                many => {
                    return Err(fail(format!(
                        "the archive holds {} programs ({}) and none is models/model.json",
                        many.len(),
                        many.join(", ")
                    )))
                }
            }
        };
        let bytes = entry(&chosen)?.ok_or_else(|| fail(format!("{chosen} is missing")))?;
        (json(bytes, &chosen)?, chosen)
    };
    let program = parse_program(model_json, &chosen_name, &fail)?;
    let mut payloads =
        |folder: &str, config_name: &str| -> Result<(BTreeMap<String, Tensor>, Vec<String>)> {
            let config: PayloadConfig = match entry(&format!("{folder}/{config_name}"))? {
                Some(bytes) => serde_json::from_value(json(bytes, config_name)?)
                    .map_err(|e| fail(format!("{folder}/{config_name}: {e}")))?,
                None => PayloadConfig::default(),
            };
            let mut present = BTreeMap::new();
            let mut absent = Vec::new();
            for (key, p) in &config.config {
                if p.path_name.contains('/') || p.path_name.contains("..") {
                    return Err(fail(format!(
                        "weight `{key}` names the file `{}`",
                        p.path_name
                    )));
                }
                match entry(&format!("{folder}/{}", p.path_name))? {
                    None => absent.push(key.clone()),
                    Some(_) if p.use_pickle => {
                        return Err(fail(format!(
                            "weight `{key}` is stored as a pickled object (a tensor subclass?), \
                         which convlens does not read"
                        )))
                    }
                    Some(bytes) => {
                        present.insert(
                            key.clone(),
                            decode(bytes, &p.tensor_meta, key).map_err(&fail)?,
                        );
                    }
                }
            }
            Ok((present, absent))
        };
    let (weights, absent) = payloads("data/weights", "model_weights_config.json")?;
    let (constants, _) = payloads("data/constants", "model_constants_config.json")?;
    let extra = match entry(&format!("extra/{EXTRA_FILE}"))? {
        Some(bytes) => Some(json(bytes, EXTRA_FILE)?),
        None => None,
    };
    Ok(Archive {
        program,
        weights,
        absent,
        constants,
        extra,
    })
}
