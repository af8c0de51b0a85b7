//! The daemon's memory: measuring the device's memory and the process's resident
//! set (from /proc, which no lighter crate reads for us).
//!
//! How long freed memory is kept, and giving it back after a model is unloaded, are
//! `convlens_models::allocator`'s: the daemon keeps freed memory for a while at start, so that
//! a new image's trace reuses the pages of the one the activation cache just evicted instead of
//! faulting fresh ones in, and hands what is free back when a model is unloaded.

/// The memory of the device models live on: the machine's RAM for the CPU (`MemTotal` of
/// /proc/meminfo), the GPU's own memory on CUDA.
pub fn device_memory(device: &candle_core::Device) -> Option<u64> {
    match device {
        #[cfg(feature = "cuda")]
        candle_core::Device::Cuda(cuda) => {
            let (_, total) = cuda.cuda_stream().context().mem_get_info().ok()?;
            Some(total as u64)
        }
        _ => machine_ram(),
    }
}

/// The machine's RAM in bytes (Linux), when known.
fn machine_ram() -> Option<u64> {
    proc_kilobytes("/proc/meminfo", "MemTotal:")
}

/// The process's resident set in bytes (Linux), when known.
pub fn resident_set_bytes() -> Option<u64> {
    proc_kilobytes("/proc/self/status", "VmRSS:")
}

/// The `KEY  N kB` line of a /proc file, in bytes.
fn proc_kilobytes(file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_has_the_machines_ram() {
        let ram = device_memory(&candle_core::Device::Cpu).expect("Linux has /proc/meminfo");
        assert!(ram > 64 << 20, "{ram} bytes");
    }
}
