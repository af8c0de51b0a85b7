//! The display copy of a synthesized image as the deep-visualization-toolbox shows its results
//! (`saveimagescc` with center 0): the deviation from the mean image, scaled so that its largest
//! magnitude reaches the end of the range, around mid-gray. The pixel presets keep their images
//! within a few levels of the mean (the toolbox's own example run ends at a standard deviation of
//! 1.6 levels), so as is they look flat gray. For display only: objectives and classes are of
//! the image itself.

use candle_core::{DType, Tensor};

use crate::Result;

/// `(x − mean) / (2·max|x − mean|) + 0.5` per image of `images` [B, C, H, W] in [0, 1], `mean`
/// holding one value per channel; an image equal to the mean becomes mid-gray.
pub fn stretched(images: &Tensor, mean: &[f32]) -> Result<Tensor> {
    let (b, c, _, _) = images.dims4()?;
    let images = images.to_dtype(DType::F32)?;
    let center: Vec<f32> = (0..c)
        .map(|i| mean.get(i).or(mean.last()).copied().unwrap_or(0.5))
        .collect();
    let center = Tensor::from_vec(center, (1, c, 1, 1), images.device())?;
    let deviation = images.broadcast_sub(&center)?;
    let largest = deviation
        .abs()?
        .reshape((b, ()))?
        .max_keepdim(1)?
        .reshape((b, 1, 1, 1))?;
    // 1 / (2·max), or 0 where the image is flat (then every pixel is 0.5).
    let flat = largest.le(0f32)?;
    let scale = flat.where_cond(&largest.zeros_like()?, &largest.affine(2.0, 0.0)?.recip()?)?;
    Ok(deviation.broadcast_mul(&scale)?.affine(1.0, 0.5)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn the_largest_deviation_reaches_the_end_of_the_range() {
        // Image 0 deviates by at most 0.02 (channel 1, downwards); image 1 is the mean.
        let mean = [0.5f32, 0.4];
        let data = vec![0.51, 0.5, 0.38, 0.4, 0.5, 0.5, 0.4, 0.4];
        let x = Tensor::from_vec(data, (2, 2, 1, 2), &Device::Cpu).unwrap();
        let got = stretched(&x, &mean)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let want = [0.75, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }
}
