//! The memory allocator of every convlens program: mimalloc, declared here because every
//! binary, test, bench and example of the workspace links this crate, so all of them run on the
//! allocator the measurements of docs/PERFORMANCE.md were made with.
//!
//! Why not glibc's malloc: it maps each large block (from 128 KiB; the threshold rises after
//! large frees, up to 32 MiB) on pages of its own and unmaps them when the block is freed, so a
//! forward pass faults its activations' pages in again, one zeroed 4 KiB page at a time: in a
//! process running the demo alone at batch 8, 138 000 page faults (540 MB) per pass (measured
//! ad hoc). The daemon had pinned that threshold at 1 MiB, or unloading a model would not give
//! its weights back (glibc's arenas do not shrink), so a fresh image faulted in its whole 80 MB
//! trace. mimalloc keeps freed memory in its arenas and reuses it.
//!
//! It is built without asking for transparent huge pages (libmimalloc-sys's `no_thp`). With
//! them, a daemon that unloaded its models kept more of their memory (tests/daemon_stress.rs:
//! 13–25 MiB above its start, against 11–16 without), and in some runs the first fresh images
//! through a daemon took 180–290 ms instead of about 50 (ad hoc, this machine).
//!
//! mimalloc returns freed memory to the system after a delay (its "purge delay", 10 ms by
//! default, 100 ms for the large blocks of its arenas). A process that works in bursts, like
//! the daemon between two keystrokes of a user, would fault its pages in again each time:
//! [`hold_freed_memory`] lengthens the delay (every program calls it at start, through
//! [`crate::process::prepare`]), and [`release_free_memory`] returns what is free at once
//! (after a model is unloaded).
//!
//! The delay also matters within one long call. A segment's freed spans share one deadline,
//! set by the first of them, so while work goes on a segment gives back everything free in it
//! each delay, however recently freed, and the next batch faults it in again. Integrated
//! Gradients on resnet18 (`explain_loop`, 12 s, ad hoc): 722 000 page faults with a one-second
//! hold, 312 000 with [`FREED_MEMORY_HOLD`], 310 000 never giving memory back.

use std::time::Duration;

use libmimalloc_sys::{mi_collect, mi_option_set, mi_option_t};

/// mimalloc, unless built with the `system-allocator` feature (for measuring what it changes).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long a process keeps freed memory inside mimalloc's segments before giving it back to
/// the system; mimalloc keeps the free blocks of its arenas ten times as long (its
/// `arena_purge_mult`). Alternated on resnet18 (`explain_loop`, median of a 10 s loop, ad hoc,
/// twice): Integrated Gradients 2.85, 2.67 s at mimalloc's default, 2.54, 2.82 s at one second
/// (this hold's earlier value), 2.21, 2.12 s at ten; SmoothGrad 2.00, 2.05 / 1.92, 2.03 /
/// 1.88, 1.94 s; saliency level (47–49 ms). A process that ran one large request keeps its
/// freed memory this long while it goes on working; unloading a model returns it at once.
pub const FREED_MEMORY_HOLD: Duration = Duration::from_secs(10);

/// `mi_option_purge_delay`, the 16th name of mimalloc.h's `mi_option_e` (v3), which
/// libmimalloc-sys does not export. A test checks it against the `MIMALLOC_PURGE_DELAY`
/// variable that mimalloc reads into that option.
const PURGE_DELAY: mi_option_t = 15;

/// Keeps freed memory for [`FREED_MEMORY_HOLD`] before returning it to the system, so that the
/// next request's tensors reuse the pages of the last one's.
pub fn hold_freed_memory() {
    let ms =
        std::ffi::c_long::try_from(FREED_MEMORY_HOLD.as_millis()).unwrap_or(std::ffi::c_long::MAX);
    // SAFETY: mi_option_set stores a number in mimalloc's option table; it takes no pointer.
    unsafe { mi_option_set(PURGE_DELAY, ms) };
    #[cfg(feature = "system-allocator")]
    system::give_large_blocks_pages_of_their_own();
}

/// Returns free memory to the system now: mimalloc's free arena memory, and the free pages (and
/// kept scratch buffers, `ops::scratch`) of the calling thread and of rayon's threads. A thread
/// keeps the pages it allocated until it collects them itself: other long-lived threads call
/// [`release_thread_free_memory`].
pub fn release_free_memory() {
    rayon::broadcast(|_| release_thread_free_memory());
    release_thread_free_memory();
}

/// Returns the calling thread's free pages (its kept scratch buffers freed first), and
/// mimalloc's free arena memory, to the system.
pub fn release_thread_free_memory() {
    crate::ops::scratch::free_kept();
    // SAFETY: mi_collect only walks mimalloc's own structures under their locks.
    unsafe { mi_collect(true) };
    #[cfg(feature = "system-allocator")]
    system::trim();
}

/// With the `system-allocator` feature, what convlens did with glibc's malloc before mimalloc,
/// so that scripts/bench-allocator.sh compares against it: a process that holds memory (the
/// daemon) gave every block of 1 MiB or more pages of its own, or unloading a model would not
/// give its weights back (glibc raises its threshold after large frees, and arenas do not
/// shrink), and `malloc_trim` returned free arena pages.
#[cfg(feature = "system-allocator")]
mod system {
    /// Blocks of 1 MiB and more get pages of their own, returned when freed.
    pub fn give_large_blocks_pages_of_their_own() {
        // SAFETY: mallopt only sets a glibc malloc parameter.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        }
    }

    /// Returns the free pages of every glibc arena.
    pub fn trim() {
        // SAFETY: malloc_trim only walks glibc's own arenas under their locks.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// How long freed memory is kept before it goes back to the system, in milliseconds
/// (negative: never).
#[cfg(test)]
pub(crate) fn freed_memory_hold_ms() -> std::ffi::c_long {
    // SAFETY: mi_option_get reads mimalloc's option table; it takes no pointer.
    unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the child process of `the_purge_delay_option_is_the_one_mimalloc_reads` sets.
    const CHILD_DELAY_MS: std::ffi::c_long = 4321;

    /// Run in a child process with `MIMALLOC_PURGE_DELAY` set: the option numbered
    /// [`PURGE_DELAY`] holds that variable's value.
    #[test]
    #[ignore = "run by the_purge_delay_option_is_the_one_mimalloc_reads in a child process"]
    fn child_reads_the_purge_delay() {
        assert_eq!(freed_memory_hold_ms(), CHILD_DELAY_MS);
    }

    #[test]
    fn the_purge_delay_option_is_the_one_mimalloc_reads() {
        let delay = CHILD_DELAY_MS.to_string();
        crate::child_test::run_ignored_test(
            "allocator::tests::child_reads_the_purge_delay",
            &[("MIMALLOC_PURGE_DELAY", Some(delay.as_str()))],
        );
    }

    #[test]
    fn holding_freed_memory_sets_the_delay() {
        hold_freed_memory();
        assert_eq!(
            freed_memory_hold_ms(),
            FREED_MEMORY_HOLD.as_millis() as std::ffi::c_long
        );
    }
}
