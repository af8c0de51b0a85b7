//! The daemon's memory: giving freed memory back to the system after a model is unloaded or
//! replaced, and measuring the device's memory and the process's resident set (from /proc, which
//! no lighter crate reads for us).
//!
//! glibc keeps freed memory in its per-thread arenas (and raises its mmap threshold after large
//! frees, so later tensors come from those arenas too): a daemon that unloaded every model would
//! still hold their memory. `malloc_trim(0)` returns the free pages of every arena. No crate
//! wraps it, so it is called through `libc` here.

/// Returns free heap memory to the system (glibc only; elsewhere it does nothing).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Large allocations (tensors of 1 MiB and more) get pages of their own that go back to the
/// system when freed. glibc's default raises this threshold after the first large free, after
/// which model weights land in arenas that unloading cannot shrink (a daemon that unloaded its
/// models kept about their size). Called once at start (glibc only).
pub fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a glibc malloc parameter; it is called before other threads run.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

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
