//! Binary results in JSON: arrays (maps, logits) and pictures as base64 with their dtype and
//! shape.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// A dense array: row-major little-endian values, base64-encoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Array {
    /// The element type; `f32` is the only one the daemon sends.
    pub dtype: String,
    /// The shape (`[7, 7]`, `[3, 224, 224]`).
    pub shape: Vec<usize>,
    /// The bytes, base64 (standard alphabet, padded).
    pub data: String,
}

/// Why an [`Array`] or [`Png`] could not be decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl Array {
    /// `values` (row-major) with `shape`, as f32.
    pub fn from_f32(shape: &[usize], values: &[f32]) -> Array {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Array {
            dtype: "f32".into(),
            shape: shape.to_vec(),
            data: STANDARD.encode(bytes),
        }
    }

    /// The values as f32, checked against the dtype and the shape.
    pub fn to_f32(&self) -> Result<Vec<f32>, DecodeError> {
        if self.dtype != "f32" {
            return Err(DecodeError(format!(
                "array of dtype `{}`, expected f32",
                self.dtype
            )));
        }
        let bytes = STANDARD
            .decode(&self.data)
            .map_err(|e| DecodeError(format!("array data is not base64: {e}")))?;
        let count: usize = self.shape.iter().product();
        if bytes.len() != count * 4 {
            return Err(DecodeError(format!(
                "array of shape {:?} needs {} bytes, found {}",
                self.shape,
                count * 4,
                bytes.len()
            )));
        }
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// A picture as PNG bytes, base64.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Png {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The PNG file, base64 (standard alphabet, padded).
    pub data: String,
}

impl Png {
    /// Wraps encoded PNG bytes.
    pub fn from_bytes(width: u32, height: u32, png: &[u8]) -> Png {
        Png {
            width,
            height,
            data: STANDARD.encode(png),
        }
    }

    /// The PNG file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, DecodeError> {
        STANDARD
            .decode(&self.data)
            .map_err(|e| DecodeError(format!("picture data is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_round_trip_and_check_their_length() {
        let a = Array::from_f32(&[2, 2], &[1.0, -2.5, f32::MIN_POSITIVE, 3e9]);
        assert_eq!(a.to_f32().unwrap(), vec![1.0, -2.5, f32::MIN_POSITIVE, 3e9]);
        let short = Array {
            shape: vec![3, 2],
            ..a.clone()
        };
        assert!(short.to_f32().unwrap_err().0.contains("needs 24 bytes"));
        let wrong = Array {
            dtype: "f16".into(),
            ..a
        };
        assert!(wrong.to_f32().is_err());
    }
}
