//! Output buffers allocated without zeroing. `vec![0f32; len]` writes every element once before
//! a kernel writes it again: ahead of each layer's output a stream of zeros through memory, a
//! tenth of the demo's batch-8 pass in a profile (ad hoc, 2026-12-08). Here each part of an
//! output is first written by the kernel that computes it (a GEMM that does not read its
//! destination), or filled, in cache, right before a kernel adds into it; the buffer becomes
//! floats only once every part was written ([`written`]).

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A buffer of `len` floats, none written yet.
pub(crate) fn unwritten(len: usize) -> Box<[MaybeUninit<f32>]> {
    Box::new_uninit_slice(len)
}

/// `part` filled with `value`, as floats.
pub(crate) fn fill(part: &mut [MaybeUninit<f32>], value: f32) -> &mut [f32] {
    part.fill(MaybeUninit::new(value));
    // SAFETY: every element was written just above.
    unsafe { assume_written(part) }
}

/// `part` as floats.
///
/// # Safety
/// Every element of `part` was written.
pub(crate) unsafe fn assume_written(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`, and the caller wrote each element.
    unsafe { std::slice::from_raw_parts_mut(part.as_mut_ptr().cast::<f32>(), part.len()) }
}

/// The floats of `buffer`.
///
/// # Safety
/// Every element of `buffer` was written.
pub(crate) unsafe fn written(buffer: Box<[MaybeUninit<f32>]>) -> Vec<f32> {
    // SAFETY: the caller wrote each element.
    unsafe { buffer.assume_init() }.into_vec()
}

/// `len` floats written part by part in parallel: `write(state, index, part)` is given each
/// part of `part_len` floats in turn (the last one shorter), filled with zeros in cache just
/// before, and a `state` made by `init` (one per task, as rayon's `for_each_init`). Every part
/// is visited, so every float is written.
pub(crate) fn written_in_parts<S>(
    len: usize,
    part_len: usize,
    init: impl Fn() -> S + Sync + Send,
    write: impl Fn(&mut S, usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut buffer = unwritten(len);
    if len > 0 {
        buffer
            .par_chunks_mut(part_len.max(1))
            .enumerate()
            .for_each_init(init, |state, (index, part)| {
                write(state, index, fill(part, 0.0))
            });
    }
    // SAFETY: the parts cover the buffer, and each was filled before `write` got it.
    unsafe { written(buffer) }
}

/// An error unless `values` holds the n·c·h·w values of a batch shaped `dims`: a kernel that
/// writes an output part for each input part writes them all only then.
pub(crate) fn input_holds(
    values: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
) -> candle_core::Result<()> {
    if values.len() != n * c * h * w {
        candle_core::bail!(
            "an input of {} values where its shape [{n}, {c}, {h}, {w}] asks for {}",
            values.len(),
            n * c * h * w
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filled_buffer_holds_its_values() {
        let mut buffer = unwritten(10);
        fill(&mut buffer[..4], 1.5);
        let rest = fill(&mut buffer[4..], -2.0);
        rest[0] = 3.0;
        // SAFETY: both parts were filled.
        let floats = unsafe { written(buffer) };
        assert_eq!(
            floats,
            [1.5, 1.5, 1.5, 1.5, 3.0, -2.0, -2.0, -2.0, -2.0, -2.0]
        );
    }

    #[test]
    fn each_part_is_written_in_its_place() {
        let floats = written_in_parts(
            10,
            4,
            || 0usize,
            |calls, index, part| {
                *calls += 1;
                assert!(part.iter().all(|&v| v == 0.0));
                for (k, v) in part.iter_mut().enumerate() {
                    *v = (index * 4 + k) as f32;
                }
            },
        );
        assert_eq!(floats, (0..10).map(|v| v as f32).collect::<Vec<_>>());
        assert!(written_in_parts(0, 4, || (), |_, _, _| unreachable!()).is_empty());
    }

    #[test]
    fn an_input_shorter_than_its_shape_is_refused() {
        assert!(input_holds(&[0.0; 24], (2, 3, 2, 2)).is_ok());
        let e = input_holds(&[0.0; 23], (2, 3, 2, 2)).unwrap_err();
        assert!(e.to_string().contains("[2, 3, 2, 2]"), "{e}");
    }
}
