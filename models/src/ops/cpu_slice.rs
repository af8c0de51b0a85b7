//! Borrowing a CPU f32 tensor's elements as a plain slice, for the CPU fast paths (no copy when
//! the tensor is already contiguous).

use candle_core::{DType, Device, Result, Storage, Tensor};

/// Whether `t` lives on the CPU as f32, where the CPU fast paths apply.
pub fn is_cpu_f32(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

/// Calls `f` with the elements of `t` (a CPU f32 tensor) in row-major order. A non-contiguous
/// tensor is made contiguous first.
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> Result<R>) -> Result<R> {
    let owned;
    let t = if t.is_contiguous() {
        t
    } else {
        owned = t.contiguous()?;
        &owned
    };
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("a CPU fast path was given a tensor on {:?}", t.device())
    };
    let all = cpu.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("a CPU fast path was given a non-contiguous tensor")
    };
    match all.get(start..end) {
        Some(slice) => f(slice),
        None => candle_core::bail!("tensor storage shorter than its layout"),
    }
}
