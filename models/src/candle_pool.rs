//! How candle's own CPU worker pool waits between operations.
//!
//! candle (0.11) runs its elementwise operations on tensors of 64K elements and more (ReLU, the
//! residual sums, the affine maps) on a pool of its own beside rayon's: one thread fewer than
//! the cores, plus the calling thread. After each operation its workers spin for up to 25 000
//! pause instructions (about a millisecond) before they sleep. In a forward pass the next
//! operation is most often a convolution on rayon's threads, so for that millisecond a spinning
//! worker takes a core from it: in a profile of the daemon's fresh-image bench, candle's worker
//! was a third of all samples, most of them spinning. Sleeping at once costs a wake-up per
//! elementwise operation instead. scripts/bench-candle-pool.sh measures both, and no pool at
//! all (docs/PERFORMANCE.md, "candle's worker pool").
//!
//! candle reads its spin limit from the environment once, when the pool starts, and has no
//! other way to set it: [`park_idle_workers`] sets that variable.

/// The environment variable candle reads its workers' spin limit from.
pub const SPIN_LIMIT_VARIABLE: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// How many times convlens lets an idle candle worker spin before it sleeps (candle's default is
/// 25 000).
pub const SPIN_LIMIT: u32 = 0;

/// Makes candle's idle CPU workers sleep after [`SPIN_LIMIT`] spins, unless the environment
/// already sets [`SPIN_LIMIT_VARIABLE`] (the user's choice stands).
///
/// Call it first thing in `main`, before any other thread starts: changing the environment is
/// only sound while no other thread reads it, and candle reads the variable once, at the first
/// elementwise operation on a large tensor.
pub fn park_idle_workers() {
    if std::env::var_os(SPIN_LIMIT_VARIABLE).is_none() {
        std::env::set_var(SPIN_LIMIT_VARIABLE, SPIN_LIMIT.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child_test::run_ignored_test;

    /// What the child process of `a_users_spin_limit_stands` sets.
    const USERS_LIMIT: &str = "777";

    /// Run in a child process without the variable: it is set to [`SPIN_LIMIT`].
    #[test]
    #[ignore = "run by the_spin_limit_is_set_where_the_user_set_none in a child process"]
    fn child_sets_the_spin_limit() {
        park_idle_workers();
        assert_eq!(
            std::env::var(SPIN_LIMIT_VARIABLE).as_deref(),
            Ok(SPIN_LIMIT.to_string().as_str())
        );
    }

    /// Run in a child process with the variable at [`USERS_LIMIT`]: it stays so.
    #[test]
    #[ignore = "run by a_users_spin_limit_stands in a child process"]
    fn child_keeps_the_users_spin_limit() {
        park_idle_workers();
        assert_eq!(
            std::env::var(SPIN_LIMIT_VARIABLE).as_deref(),
            Ok(USERS_LIMIT)
        );
    }

    #[test]
    fn the_spin_limit_is_set_where_the_user_set_none() {
        run_ignored_test(
            "candle_pool::tests::child_sets_the_spin_limit",
            &[(SPIN_LIMIT_VARIABLE, None)],
        );
    }

    #[test]
    fn a_users_spin_limit_stands() {
        run_ignored_test(
            "candle_pool::tests::child_keeps_the_users_spin_limit",
            &[(SPIN_LIMIT_VARIABLE, Some(USERS_LIMIT))],
        );
    }
}
