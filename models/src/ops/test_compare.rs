//! How the ops' tests compare a fast path with the candle path: largest absolute difference,
//! that difference relative to the reference's largest magnitude, or the bits themselves.

use candle_core::Tensor;

/// The largest |a − b| (same shapes).
pub fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    a.sub(b)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// [`max_abs`] over the largest |b| (at least 1e-6).
pub fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
    let scale = b
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    max_abs(a, b) / scale.max(1e-6)
}

/// The bits of every value of an f32 tensor, in order: what "the same to the bit" compares.
pub fn bits(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .into_iter()
        .map(f32::to_bits)
        .collect()
}
