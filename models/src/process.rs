//! What every convlens program does first thing in `main`, so that the binary, the daemon, and
//! each bench and example run the engine under the same settings, and the benches measure what
//! a user's process does.

/// Makes candle's idle CPU workers sleep at once ([`crate::candle_pool::park_idle_workers`])
/// and keeps freed memory for the next pass to reuse
/// ([`crate::allocator::hold_freed_memory`]).
///
/// Call it first thing in `main`, before any other thread starts: it sets an environment
/// variable, which is only sound while no other thread reads the environment.
pub fn prepare() {
    crate::candle_pool::park_idle_workers();
    crate::allocator::hold_freed_memory();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allocator::{freed_memory_hold_ms, FREED_MEMORY_HOLD};
    use crate::candle_pool::{SPIN_LIMIT, SPIN_LIMIT_VARIABLE};
    use crate::child_test::run_ignored_test;

    /// Run in a child process without candle's variable: both settings are made.
    #[test]
    #[ignore = "run by preparing_sets_both_settings in a child process"]
    fn child_prepares() {
        prepare();
        assert_eq!(
            std::env::var(SPIN_LIMIT_VARIABLE).as_deref(),
            Ok(SPIN_LIMIT.to_string().as_str())
        );
        assert_eq!(
            freed_memory_hold_ms(),
            FREED_MEMORY_HOLD.as_millis() as std::ffi::c_long
        );
    }

    #[test]
    fn preparing_sets_both_settings() {
        run_ignored_test(
            "process::tests::child_prepares",
            &[(SPIN_LIMIT_VARIABLE, None), ("MIMALLOC_PURGE_DELAY", None)],
        );
    }
}
