//! A tensor's values copied to the host: what the unit views hand to a renderer, a `.npy` writer
//! or the wire protocol.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::{Error, Result};

/// A float32 array in row-major order with its shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostArray {
    /// The dimensions.
    pub shape: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<f32>,
}

impl HostArray {
    /// The values of `t` (any device, any float dtype) as float32 on the host.
    pub fn from_tensor(t: &Tensor) -> Result<Self> {
        let host = t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        Ok(HostArray {
            shape: host.dims().to_vec(),
            data: host.flatten_all()?.to_vec1::<f32>()?,
        })
    }

    /// The array as a CPU tensor.
    pub fn to_tensor(&self) -> Result<Tensor> {
        Ok(Tensor::from_vec(
            self.data.clone(),
            self.shape.as_slice(),
            &Device::Cpu,
        )?)
    }

    /// Writes the array as a float32 `.npy` file.
    pub fn write_npy(&self, path: &std::path::Path) -> Result<()> {
        self.to_tensor()?.write_npy(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })
    }

    /// The value at a multi-index (no bounds check beyond the slice's).
    pub fn at(&self, index: &[usize]) -> Option<f32> {
        if index.len() != self.shape.len() || index.iter().zip(&self.shape).any(|(i, d)| i >= d) {
            return None;
        }
        let flat = index
            .iter()
            .zip(&self.shape)
            .fold(0usize, |acc, (&i, &d)| acc * d + i);
        self.data.get(flat).copied()
    }
}
