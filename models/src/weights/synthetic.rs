//! Synthetic weights: a deterministic, seedable stand-in for a trained state_dict.
//!
//! The reference fixtures cannot commit the weights of vgg19 or resnet152, so both sides make the
//! same weights from the parameter's name: `tests/fixtures/synthetic.py` is the Python twin of this
//! file and must stay bit-identical with it. Written by hand because the point is to match that
//! Python code exactly, which no RNG crate promises.
//!
//! Each value is `u * scale + offset` in f64, cast to f32, where `u` in [-1, 1) is drawn from
//! SplitMix64 at counter `i + 1` with the seed `fnv1a64(name) ^ seed`:
//! - a weight of rank >= 2: scale `sqrt(6 / fan_in)` (Kaiming-uniform), offset 0;
//! - a weight of rank 1 (BatchNorm gamma): scale 0.5, offset 1;
//! - `bias`: scale 0.1; `running_mean`: scale 0.1; `running_var`: scale 0.5, offset 1;
//! - anything else (an input, say): scale 1, offset 0.

use candle_core::{Device, Tensor};

/// The 64-bit FNV-1a hash of `text`.
pub fn fnv1a64(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// SplitMix64's output for `state`.
fn splitmix64(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `count` uniform values in [-1, 1) for stream `key`.
pub fn uniform_stream(key: u64, count: usize) -> Vec<f64> {
    (0..count as u64)
        .map(|i| {
            let z = splitmix64(key.wrapping_add((i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)));
            (z >> 40) as f64 / 16_777_216.0 * 2.0 - 1.0
        })
        .collect()
}

/// The (scale, offset) rule for a parameter, from its name and shape.
fn scale_and_offset(name: &str, shape: &[usize]) -> (f64, f64) {
    let leaf = name.rsplit('.').next().unwrap_or(name);
    match leaf {
        "weight" if shape.len() >= 2 => {
            let fan_in: usize = shape[1..].iter().product();
            ((6.0 / fan_in.max(1) as f64).sqrt(), 0.0)
        }
        "weight" => (0.5, 1.0),
        "bias" | "running_mean" => (0.1, 0.0),
        "running_var" => (0.5, 1.0),
        _ => (1.0, 0.0),
    }
}

/// The synthetic tensor named `name` with `shape`, for `seed`, as f32 on `device`.
pub fn synthetic_tensor(
    name: &str,
    shape: &[usize],
    seed: u64,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let count: usize = shape.iter().product();
    let (scale, offset) = scale_and_offset(name, shape);
    let values: Vec<f32> = uniform_stream(fnv1a64(name) ^ seed, count)
        .into_iter()
        .map(|u| (u * scale + offset) as f32)
        .collect();
    Tensor::from_vec(values, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn values_lie_in_range_and_follow_the_rule() {
        let t = synthetic_tensor("bn1.running_var", &[1000], 0, &Device::Cpu).unwrap();
        let v = t.to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|x| (0.5..1.5).contains(x)));
        let spread =
            v.iter().cloned().fold(f32::MIN, f32::max) - v.iter().cloned().fold(f32::MAX, f32::min);
        assert!(
            spread > 0.9,
            "values should cover the range, spread {spread}"
        );
    }
}
