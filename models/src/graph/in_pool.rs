//! Runs a whole pass on rayon's pool. A pass makes dozens of parallel sections (each
//! convolution's column matrix, its GEMM, its epilogue, the pooling, the elementwise steps).
//! Called from a thread outside the pool, each section is handed to the pool's workers and the
//! calling thread sleeps until they finish, then wakes for the next: two thread wake-ups per
//! section. Run on a worker, the pass does its own share of each section and only hands the
//! rest to the other workers. Measured on resnet18 at batch 1 (2 threads, `forward_loop`,
//! alternated): the input gradient 60–63 → 54–57 ms, resnet50's forward pass 64–69 → 61–63 ms.

/// `pass()` run on one of rayon's workers (at once when the caller is one already).
pub fn in_pool<R: Send>(pass: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return pass();
    }
    rayon::scope(|_| pass())
}

#[cfg(test)]
mod tests {
    use super::in_pool;

    #[test]
    fn a_pass_runs_on_a_worker_and_gives_its_value() {
        assert!(rayon::current_thread_index().is_none());
        let (on_worker, value) = in_pool(|| (rayon::current_thread_index().is_some(), 7));
        assert!(on_worker);
        assert_eq!(value, 7);
        // From a worker: on that same worker.
        let same = in_pool(|| {
            let outer = std::thread::current().id();
            in_pool(|| std::thread::current().id()) == outer
        });
        assert!(same);
    }
}
