//! Ops that move elements: axis permutations and constant padding.

use super::{Lowered, Problem, MAX_WINDOW};
use crate::ops::{Pad, Transpose};

/// `x.permute(perm)` for a tensor of `rank` axes (axes already made non-negative).
pub fn permutation(perm: Vec<usize>, rank: usize) -> Lowered<Transpose> {
    let mut sorted = perm.clone();
    sorted.sort_unstable();
    if sorted != (0..rank).collect::<Vec<_>>() {
        return Err(Problem::Invalid(format!(
            "{perm:?} is not a permutation of {rank} axes"
        )));
    }
    Ok(Transpose { perm })
}

/// Constant padding of a rank-`rank` tensor: `(axis, before, after)` for each padded axis.
pub fn constant_pad(rank: usize, pads: &[(usize, i64, i64)], value: f64) -> Lowered<Pad> {
    let mut per_axis = vec![(0usize, 0usize); rank];
    for &(axis, before, after) in pads {
        if before < 0 || after < 0 {
            return Err(Problem::Unsupported(format!(
                "with negative pads ({before}, {after}): cropping by padding is not supported"
            )));
        }
        if before > MAX_WINDOW || after > MAX_WINDOW {
            return Err(Problem::Invalid(format!(
                "pads ({before}, {after}) are too large"
            )));
        }
        match per_axis.get_mut(axis) {
            Some(slot) => *slot = (before as usize, after as usize),
            None => {
                return Err(Problem::Invalid(format!(
                    "a pad on axis {axis} of a rank-{rank} tensor"
                )))
            }
        }
    }
    if !value.is_finite() {
        return Err(Problem::Invalid(format!("pad value {value}")));
    }
    Ok(Pad {
        pads: per_axis,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_and_permutations_are_checked() {
        let p = constant_pad(4, &[(3, 1, 2), (2, 0, 1)], 0.5).unwrap();
        assert_eq!(p.pads, [(0, 0), (0, 0), (0, 1), (1, 2)]);
        assert!(matches!(
            constant_pad(4, &[(3, -1, 0)], 0.0),
            Err(Problem::Unsupported(_))
        ));
        assert!(permutation(vec![0, 2, 3, 1], 4).is_ok());
        assert!(permutation(vec![0, 2, 2, 1], 4).is_err());
    }
}
