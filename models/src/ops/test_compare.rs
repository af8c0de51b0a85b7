//! How the ops' tests compare a fast path with the candle path: largest absolute difference, and
//! that difference relative to the reference's largest magnitude.

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
