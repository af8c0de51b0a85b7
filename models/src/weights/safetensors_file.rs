//! safetensors files: a little-endian u64 header length, a JSON header, then raw little-endian
//! tensor data. Parsed and bounds-checked by the `safetensors` crate.

use std::path::Path;

use safetensors::{Dtype, SafeTensors};

use super::state_dict::{self, ElemType, RawTensor, StateDict};
use crate::error::{Error, Result};

/// The element type of a safetensors dtype, if supported.
fn elem_type(dtype: Dtype) -> Option<ElemType> {
    Some(match dtype {
        Dtype::F64 => ElemType::F64,
        Dtype::F32 => ElemType::F32,
        Dtype::F16 => ElemType::F16,
        Dtype::BF16 => ElemType::BF16,
        Dtype::I64 => ElemType::I64,
        Dtype::I32 => ElemType::I32,
        Dtype::I16 => ElemType::I16,
        Dtype::I8 => ElemType::I8,
        Dtype::U8 => ElemType::U8,
        Dtype::U16 => ElemType::U16,
        Dtype::U32 => ElemType::U32,
        Dtype::U64 => ElemType::U64,
        Dtype::BOOL => ElemType::Bool,
        _ => return None,
    })
}

/// The longest header accepted (the safetensors crate's own limit).
const MAX_HEADER: u64 = 100_000_000;

/// The header length, if `bytes` start like a safetensors file: a plausible little-endian u64
/// length (at least 2, at most [`MAX_HEADER`]), then `{` after optional whitespace. The length
/// may exceed the file (a truncated file): [`load`] reports that.
fn header_len(bytes: &[u8]) -> Option<u64> {
    let mut a = [0u8; 8];
    a.copy_from_slice(bytes.get(..8)?);
    let len = u64::from_le_bytes(a);
    if !(2..=MAX_HEADER).contains(&len) {
        return None;
    }
    let header = bytes.get(8..)?;
    let window = usize::try_from(len).map_or(header.len(), |l| l.min(header.len()));
    let first = header
        .get(..window)?
        .iter()
        .find(|b| !b.is_ascii_whitespace())?;
    (*first == b'{').then_some(len)
}

/// Whether `bytes` hold a whole safetensors header: [`header_len`]'s checks, and the header fits
/// in the file. Tried before any other format, because the first byte of the length can be
/// anything, 0x80 (a pickle's PROTO opcode) and `P` (a zip's) included.
pub(crate) fn looks_safetensors(bytes: &[u8]) -> bool {
    let left = bytes.len().saturating_sub(8) as u64;
    header_len(bytes).is_some_and(|len| len <= left)
}

/// Whether `bytes` start like a safetensors file whose header does not fit in it (so that the
/// error says "truncated" rather than "unrecognised"). Its bytes 4 to 7 are zero and byte 8 is
/// `{` or whitespace, which no pickle or zip starts with.
pub(crate) fn looks_truncated_safetensors(bytes: &[u8]) -> bool {
    header_len(bytes).is_some()
}

/// Loads a safetensors file held in `bytes`.
pub(crate) fn load(bytes: &[u8], path: &Path) -> Result<StateDict> {
    let left = bytes.len().saturating_sub(8) as u64;
    if let Some(len) = header_len(bytes).filter(|&len| len > left) {
        return Err(Error::format(
            path,
            format!("truncated: the safetensors header needs {len} bytes, {left} left"),
        ));
    }
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::format(path, format!("not a valid safetensors file: {e}")))?;
    let mut entries = Vec::new();
    for (name, view) in tensors.iter() {
        let dtype = elem_type(view.dtype()).ok_or_else(|| {
            Error::format(
                path,
                format!("tensor `{name}`: dtype {:?} is not supported", view.dtype()),
            )
        })?;
        let shape = view.shape().to_vec();
        let raw = RawTensor {
            bytes: view.data(),
            dtype,
            big_endian: false,
            offset: 0,
            stride: state_dict::contiguous_strides(&shape),
            shape,
        };
        let tensor = state_dict::decode(&raw)
            .map_err(|e| Error::format(path, format!("tensor `{name}`: {e}")))?;
        entries.push((name.to_string(), tensor));
    }
    Ok(state_dict::strip_wrapper_prefixes(entries)
        .into_iter()
        .collect())
}
