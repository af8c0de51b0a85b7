//! Giving freed memory back to the system after a model is unloaded or replaced.
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
