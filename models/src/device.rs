//! Choosing where tensors live: `cpu`, `cuda` or `cuda:N`.

use candle_core::Device;

use crate::{Error, Result};

/// The device named by `spec` (`cpu`, `cuda`, `cuda:N`).
pub fn parse_device(spec: &str) -> Result<Device> {
    match spec {
        "cpu" => Ok(Device::Cpu),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(ordinal)) => cuda(ordinal),
            _ => Err(Error::InvalidArgument(format!(
                "unknown device `{spec}`: use cpu, cuda or cuda:N"
            ))),
        },
    }
}

fn cuda(ordinal: usize) -> Result<Device> {
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::Unsupported(
            "this convlens was built without the `cuda` feature; see the README's GPU build".into(),
        ));
    }
    Device::new_cuda(ordinal)
        .map_err(|e| Error::Unsupported(format!("cannot open cuda:{ordinal}: {e}")))
}

/// The device named by the `CONVLENS_DEVICE` environment variable, or the CPU.
pub fn device_from_env() -> Result<Device> {
    match std::env::var("CONVLENS_DEVICE") {
        Ok(spec) if !spec.is_empty() => parse_device(&spec),
        _ => Ok(Device::Cpu),
    }
}

/// A short description of `device` (`cpu`, `cuda:0`).
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}
