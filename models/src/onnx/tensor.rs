//! Decoding ONNX tensors (initializers, `Constant` values, attribute tensors) into CPU tensors:
//! floats of any width become f32, integers and booleans i64. Bytes may sit in the message or in
//! a side file next to the model (ONNX external data), read only inside the model's folder and
//! only within that file's length.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::proto::{data_location, data_type, TensorProto};
use crate::{Error, Result};

/// The most elements one constant may have (4 GiB of f32).
pub(crate) const MAX_ELEMENTS: usize = 1 << 30;

/// Reads tensors for the model at `model`, resolving external data against its folder.
pub(crate) struct TensorReader<'a> {
    /// The .onnx file (for error messages).
    pub model: &'a Path,
    /// The folder external data locations are relative to.
    pub dir: PathBuf,
}

fn element_size(data_type: i32) -> Option<usize> {
    Some(match data_type {
        data_type::FLOAT | data_type::INT32 | data_type::UINT32 => 4,
        data_type::DOUBLE | data_type::INT64 | data_type::UINT64 => 8,
        data_type::FLOAT16 | data_type::BFLOAT16 | data_type::INT16 | data_type::UINT16 => 2,
        data_type::INT8 | data_type::UINT8 | data_type::BOOL => 1,
        _ => return None,
    })
}

fn is_float(data_type: i32) -> bool {
    matches!(
        data_type,
        data_type::FLOAT | data_type::DOUBLE | data_type::FLOAT16 | data_type::BFLOAT16
    )
}

/// Host values before they become a tensor.
enum Values {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

fn from_le_bytes(raw: &[u8], data_type: i32) -> Values {
    fn chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        raw.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    match data_type {
        data_type::FLOAT => Values::F32(chunks::<4>(raw).map(f32::from_le_bytes).collect()),
        data_type::DOUBLE => Values::F32(
            chunks::<8>(raw)
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
        ),
        data_type::FLOAT16 => Values::F32(
            chunks::<2>(raw)
                .map(|b| half::f16::from_bits(u16::from_le_bytes(b)).to_f32())
                .collect(),
        ),
        data_type::BFLOAT16 => Values::F32(
            chunks::<2>(raw)
                .map(|b| half::bf16::from_bits(u16::from_le_bytes(b)).to_f32())
                .collect(),
        ),
        data_type::INT64 => Values::I64(chunks::<8>(raw).map(i64::from_le_bytes).collect()),
        data_type::UINT64 => Values::I64(
            chunks::<8>(raw)
                .map(|b| u64::from_le_bytes(b) as i64)
                .collect(),
        ),
        data_type::INT32 => Values::I64(
            chunks::<4>(raw)
                .map(|b| i64::from(i32::from_le_bytes(b)))
                .collect(),
        ),
        data_type::UINT32 => Values::I64(
            chunks::<4>(raw)
                .map(|b| i64::from(u32::from_le_bytes(b)))
                .collect(),
        ),
        data_type::INT16 => Values::I64(
            chunks::<2>(raw)
                .map(|b| i64::from(i16::from_le_bytes(b)))
                .collect(),
        ),
        data_type::UINT16 => Values::I64(
            chunks::<2>(raw)
                .map(|b| i64::from(u16::from_le_bytes(b)))
                .collect(),
        ),
        data_type::INT8 => Values::I64(raw.iter().map(|&b| i64::from(b as i8)).collect()),
        _ => Values::I64(raw.iter().map(|&b| i64::from(b)).collect()),
    }
}

impl TensorReader<'_> {
    fn format(&self, message: String) -> Error {
        Error::format(self.model, message)
    }

    /// The tensor `t` as an f32 or i64 CPU tensor.
    pub fn read(&self, t: &TensorProto) -> Result<Tensor> {
        let name = if t.name.is_empty() {
            "(unnamed)"
        } else {
            t.name.as_str()
        };
        let dims = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<Vec<usize>, _>>()
            .map_err(|_| {
                self.format(format!(
                    "tensor `{name}` has a negative size in {:?}",
                    t.dims
                ))
            })?;
        let count = dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .filter(|&c| c <= MAX_ELEMENTS)
            .ok_or_else(|| {
                self.format(format!("tensor `{name}` of shape {dims:?} is too large"))
            })?;
        let Some(size) = element_size(t.data_type) else {
            return Err(Error::Unsupported(format!(
                "tensor `{name}` has ONNX data type {}, which convlens does not read (it reads floats, integers and booleans)",
                t.data_type
            )));
        };
        let bytes = count * size;
        let external;
        let raw: Option<&[u8]> = if t.data_location == data_location::EXTERNAL {
            external = self.external(t, name, bytes)?;
            Some(&external)
        } else if !t.raw_data.is_empty() {
            Some(&t.raw_data)
        } else {
            None
        };
        let values = match raw {
            Some(raw) => {
                if raw.len() != bytes {
                    return Err(self.format(format!(
                        "tensor `{name}` of shape {dims:?} holds {} bytes, not {bytes}",
                        raw.len()
                    )));
                }
                from_le_bytes(raw, t.data_type)
            }
            None => self.typed(t, name, count)?,
        };
        let tensor = match values {
            Values::F32(v) => Tensor::from_vec(v, dims, &Device::Cpu)?,
            Values::I64(v) => Tensor::from_vec(v, dims, &Device::Cpu)?,
        };
        debug_assert_eq!(tensor.dtype() == DType::F32, is_float(t.data_type));
        Ok(tensor)
    }

    /// Values from the typed repeated fields.
    fn typed(&self, t: &TensorProto, name: &str, count: usize) -> Result<Values> {
        let values = match t.data_type {
            data_type::FLOAT => Values::F32(t.float_data.clone()),
            data_type::DOUBLE => Values::F32(t.double_data.iter().map(|&v| v as f32).collect()),
            data_type::FLOAT16 => Values::F32(
                t.int32_data
                    .iter()
                    .map(|&v| half::f16::from_bits(v as u16).to_f32())
                    .collect(),
            ),
            data_type::BFLOAT16 => Values::F32(
                t.int32_data
                    .iter()
                    .map(|&v| half::bf16::from_bits(v as u16).to_f32())
                    .collect(),
            ),
            data_type::INT64 => Values::I64(t.int64_data.clone()),
            data_type::UINT32 | data_type::UINT64 => {
                Values::I64(t.uint64_data.iter().map(|&v| v as i64).collect())
            }
            _ => Values::I64(t.int32_data.iter().map(|&v| i64::from(v)).collect()),
        };
        let len = match &values {
            Values::F32(v) => v.len(),
            Values::I64(v) => v.len(),
        };
        if len != count {
            return Err(self.format(format!(
                "tensor `{name}` should hold {count} values, not {len}"
            )));
        }
        Ok(values)
    }

    /// The `bytes` bytes of an externally stored tensor.
    fn external(&self, t: &TensorProto, name: &str, bytes: usize) -> Result<Vec<u8>> {
        let entry = |key: &str| {
            t.external_data
                .iter()
                .find(|e| e.key == key)
                .map(|e| e.value.as_str())
        };
        let Some(location) = entry("location") else {
            return Err(self.format(format!(
                "tensor `{name}` is stored externally but names no location"
            )));
        };
        let relative = Path::new(location);
        if location.is_empty()
            || !relative
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        {
            return Err(self.format(format!(
                "tensor `{name}`: external data location `{location}` is not a plain path inside the model's folder"
            )));
        }
        let parse = |key: &str| -> Result<Option<u64>> {
            entry(key)
                .map(|v| {
                    v.parse::<u64>().map_err(|_| {
                        self.format(format!(
                            "tensor `{name}`: external data {key} `{v}` is not a number"
                        ))
                    })
                })
                .transpose()
        };
        let offset = parse("offset")?.unwrap_or(0);
        if let Some(length) = parse("length")? {
            if length != bytes as u64 {
                return Err(self.format(format!(
                    "tensor `{name}`: external data length {length} does not match its {bytes} bytes"
                )));
            }
        }
        let path = self.dir.join(relative);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let end = offset.checked_add(bytes as u64);
        if end.is_none_or(|end| end > len) {
            return Err(Error::format(
                &path,
                format!("tensor `{name}` needs bytes {offset}..{offset}+{bytes}, but the file has {len}"),
            ));
        }
        file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut data = vec![0u8; bytes];
        file.read_exact(&mut data).map_err(io)?;
        Ok(data)
    }
}
