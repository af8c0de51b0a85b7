//! Scratch buffers of f32 kept per thread and reused across layers and passes: the column
//! matrices of the im2col convolutions and the transformed tiles of the Winograd ones. A buffer
//! made fresh for each use is zeroed by the allocator each time (a `memset` of megabytes per
//! image and layer, 5% of a resnet18 gradient's time in a profile) although its user writes
//! every element before reading it.
//!
//! Hand-written: the pooling crates on crates.io hand out whole objects behind a lock or per
//! pool instance; this is a per-thread free list of a few `Vec`s.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

/// Most floats one thread keeps between uses, over all its buffers (32 MiB): enough for the
/// column matrices of a 224-px image's layers; larger buffers are freed after use.
const MOST_KEPT: usize = 8 << 20;

thread_local! {
    /// This thread's buffers not in use.
    static KEPT: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `len` floats taken from this thread's kept ones (or new). Its contents are
/// whatever its last user left (zeros only where it grew): write every element before reading
/// it. Dropping it gives it back to the thread that drops it.
#[derive(Debug)]
pub struct Scratch {
    /// The whole buffer, every element initialized: a kept buffer never shrinks, so a later,
    /// longer use does not zero again what an earlier one wrote.
    buffer: Vec<f32>,
    /// The floats handed out.
    len: usize,
}

impl Scratch {
    /// A buffer of `len` floats: the smallest kept one that holds them, else the largest grown.
    pub fn of_len(len: usize) -> Scratch {
        let taken = KEPT
            .try_with(|kept| {
                let mut kept = kept.borrow_mut();
                let fits = (0..kept.len())
                    .filter(|&i| kept[i].capacity() >= len)
                    .min_by_key(|&i| kept[i].capacity());
                let largest = (0..kept.len()).max_by_key(|&i| kept[i].capacity());
                fits.or(largest).map(|i| kept.swap_remove(i))
            })
            .ok()
            .flatten();
        let mut buffer = taken.unwrap_or_default();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        Scratch { buffer, len }
    }
}

/// Frees the calling thread's kept buffers (the next use makes new ones): part of giving free
/// memory back to the system ([`crate::allocator::release_free_memory`]), since a kept buffer
/// is memory no one is using.
pub fn free_kept() {
    // While the thread is being torn down its buffers are gone already.
    let _ = KEPT.try_with(|kept| kept.borrow_mut().clear());
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        // While the thread is being torn down its buffers are gone: the buffer is freed.
        let _ = KEPT.try_with(|kept| {
            let mut kept = kept.borrow_mut();
            let held: usize = kept.iter().map(Vec::capacity).sum();
            if held + buffer.capacity() <= MOST_KEPT {
                kept.push(buffer);
            }
        });
    }
}

impl Deref for Scratch {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.buffer[..self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buffer[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::{Scratch, MOST_KEPT};

    #[test]
    fn a_buffer_comes_back_to_its_thread_and_is_reused() {
        let mut first = Scratch::of_len(1000);
        let address = first.as_ptr();
        first[900] = 5.0;
        drop(first);
        let again = Scratch::of_len(500);
        assert_eq!(again.as_ptr(), address, "the kept buffer is reused");
        assert_eq!(again.len(), 500);
        drop(again);
        // Longer again: the length asked for, and what the first use left past the shorter
        // one's length is still there (the buffer was not zeroed anew).
        let longer = Scratch::of_len(1000);
        assert_eq!(longer.as_ptr(), address);
        assert_eq!((longer.len(), longer[900]), (1000, 5.0));
        // Two at once: the second is another buffer.
        let other = Scratch::of_len(500);
        assert_ne!(other.as_ptr(), longer.as_ptr());
    }

    #[test]
    fn freeing_the_kept_buffers_empties_the_threads_list() {
        drop(Scratch::of_len(1000));
        assert!(super::KEPT.with(|k| !k.borrow().is_empty()));
        super::free_kept();
        assert!(super::KEPT.with(|k| k.borrow().is_empty()));
    }

    #[test]
    fn the_smallest_buffer_that_fits_is_taken() {
        let (small, large) = (Scratch::of_len(100), Scratch::of_len(10_000));
        let (small_at, large_at) = (small.as_ptr(), large.as_ptr());
        drop(large);
        drop(small);
        let a = Scratch::of_len(50);
        let b = Scratch::of_len(5_000);
        assert_eq!((a.as_ptr(), b.as_ptr()), (small_at, large_at));
    }

    #[test]
    fn a_thread_keeps_at_most_its_share() {
        drop(Scratch::of_len(MOST_KEPT + 1));
        let largest = super::KEPT.with(|k| k.borrow().iter().map(Vec::capacity).max());
        assert!(
            largest.is_none_or(|c| c <= MOST_KEPT),
            "kept {largest:?} floats"
        );
    }
}
