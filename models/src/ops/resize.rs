//! ONNX `Resize` / `Upsample` (`F.interpolate`, `nn.Upsample`) over the two spatial axes, in
//! nearest or (bi)linear mode with ONNX's coordinate rules. Each axis is resampled by a small
//! [out, in] matrix, so the forward pass is two matrix products and the backward pass the same
//! with the matrices transposed; it runs on every device.

use candle_core::{Device, Result, Tensor};

/// How `Resize` picks input values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMode {
    /// The nearest input pixel, rounded as given.
    Nearest(NearestRounding),
    /// Linear interpolation between the two nearest pixels on each axis.
    Linear,
}

/// ONNX's `nearest_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NearestRounding {
    /// Round, halves down.
    RoundPreferFloor,
    /// Round, halves up.
    RoundPreferCeil,
    /// Round down.
    Floor,
    /// Round up.
    Ceil,
}

/// ONNX's `coordinate_transformation_mode`: where output pixel `x` samples the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinateMode {
    /// `(x + 0.5) / scale - 0.5`.
    HalfPixel,
    /// As `HalfPixel`, but 0 when the output axis has length 1.
    PytorchHalfPixel,
    /// `x * (in - 1) / (out - 1)`.
    AlignCorners,
    /// `x / scale`.
    Asymmetric,
    /// `(x + 0.5) / scale`.
    TfHalfPixelForNn,
}

/// The output size of a resize.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ResizeTarget {
    /// Scale factors for height and width (output = floor(input × scale)).
    Scales(f64, f64),
    /// Output height and width.
    Sizes(usize, usize),
    /// The height and width of the op's second input (`F.interpolate(x, size=input.shape[-2:])`,
    /// as torchvision's segmentation models end).
    LikeSecondInput,
}

/// A resize of the last two axes of an [N, C, H, W] tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Resize {
    /// How values are picked.
    pub mode: ResizeMode,
    /// How output coordinates map onto the input.
    pub coordinates: CoordinateMode,
    /// The output size.
    pub target: ResizeTarget,
}

fn round_nearest(x: f64, rounding: NearestRounding) -> f64 {
    let frac = x - x.floor();
    match rounding {
        NearestRounding::Floor => x.floor(),
        NearestRounding::Ceil => x.ceil(),
        NearestRounding::RoundPreferFloor if frac == 0.5 => x.floor(),
        NearestRounding::RoundPreferCeil if frac == 0.5 => x.ceil(),
        _ => x.round(),
    }
}

impl Resize {
    /// (out_len, scale) for each spatial axis of an `h`×`w` input.
    fn axes(&self, h: usize, w: usize) -> Result<[(usize, usize, f64); 2]> {
        let axis =
            |len: usize, scale: Option<f64>, size: Option<usize>| -> Result<(usize, usize, f64)> {
                let (out, scale) = match (scale, size) {
                    (Some(s), _) => ((len as f64 * s).floor() as usize, s),
                    (None, Some(o)) => (o, o as f64 / len.max(1) as f64),
                    (None, None) => (len, 1.0),
                };
                if out == 0 || !scale.is_finite() || scale <= 0.0 {
                    candle_core::bail!("resize of an axis of {len} to {out}");
                }
                Ok((len, out, scale))
            };
        Ok(match self.target {
            ResizeTarget::Scales(sh, sw) => [axis(h, Some(sh), None)?, axis(w, Some(sw), None)?],
            ResizeTarget::Sizes(oh, ow) => [axis(h, None, Some(oh))?, axis(w, None, Some(ow))?],
            ResizeTarget::LikeSecondInput => {
                candle_core::bail!("a resize to its second input's size needs that input")
            }
        })
    }

    /// The [out, in] matrix resampling one axis.
    fn matrix(&self, len: usize, out: usize, scale: f64, device: &Device) -> Result<Tensor> {
        let mut m = vec![0f32; out * len];
        let last = (len - 1) as f64;
        for o in 0..out {
            let x = o as f64;
            let src = match self.coordinates {
                CoordinateMode::HalfPixel => (x + 0.5) / scale - 0.5,
                CoordinateMode::PytorchHalfPixel if out > 1 => (x + 0.5) / scale - 0.5,
                CoordinateMode::PytorchHalfPixel => 0.0,
                CoordinateMode::AlignCorners if out > 1 => x * last / (out - 1) as f64,
                CoordinateMode::AlignCorners => 0.0,
                CoordinateMode::Asymmetric => x / scale,
                CoordinateMode::TfHalfPixelForNn => (x + 0.5) / scale,
            };
            let row = &mut m[o * len..(o + 1) * len];
            match self.mode {
                ResizeMode::Nearest(rounding) => {
                    let i = round_nearest(src, rounding).clamp(0.0, last) as usize;
                    row[i] = 1.0;
                }
                ResizeMode::Linear => {
                    let src = src.clamp(0.0, last);
                    let i0 = src.floor() as usize;
                    let i1 = (i0 + 1).min(len - 1);
                    let t = (src - i0 as f64) as f32;
                    row[i0] += 1.0 - t;
                    row[i1] += t;
                }
            }
        }
        Tensor::from_vec(m, (out, len), device)
    }

    fn matrices(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, _, h, w) = x.dims4()?;
        if h == 0 || w == 0 {
            candle_core::bail!("resize of an empty tensor");
        }
        let [(h, oh, sh), (w, ow, sw)] = self.axes(h, w)?;
        let rows = self.matrix(h, oh, sh, x.device())?.to_dtype(x.dtype())?;
        let cols = self.matrix(w, ow, sw, x.device())?.to_dtype(x.dtype())?;
        Ok((rows, cols))
    }

    /// The resize its `inputs` ask for: to a fixed size or scale, or, with
    /// [`ResizeTarget::LikeSecondInput`], to the size of the second input.
    pub fn for_inputs(&self, inputs: &[&Tensor]) -> Result<Resize> {
        match (self.target, inputs) {
            (ResizeTarget::LikeSecondInput, [_, like]) => {
                let (_, _, h, w) = like.dims4()?;
                Ok(Resize {
                    target: ResizeTarget::Sizes(h, w),
                    ..self.clone()
                })
            }
            (ResizeTarget::LikeSecondInput, _) => {
                candle_core::bail!("a resize to its second input's size needs two inputs")
            }
            _ => Ok(self.clone()),
        }
    }

    /// The resized `x` [N, C, H, W].
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (rows, cols) = self.matrices(x)?;
        rows.broadcast_matmul(&x.contiguous()?)?
            .broadcast_matmul(&cols.t()?.contiguous()?)
    }

    /// The signal at the input: the adjoint of the resampling.
    pub fn backward(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (rows, cols) = self.matrices(x)?;
        rows.t()?
            .contiguous()?
            .broadcast_matmul(&grad.contiguous()?)?
            .broadcast_matmul(&cols)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(dims: &[usize], seed: f32) -> Tensor {
        let n: usize = dims.iter().product();
        let v: Vec<f32> = (0..n).map(|i| ((i as f32 + seed) * 0.37).cos()).collect();
        Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn nearest_doubles_pixels() {
        let x = Tensor::arange(0f32, 4., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 2))
            .unwrap();
        let r = Resize {
            mode: ResizeMode::Nearest(NearestRounding::Floor),
            coordinates: CoordinateMode::Asymmetric,
            target: ResizeTarget::Scales(2.0, 2.0),
        };
        let y = r
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(
            y,
            vec![0., 0., 1., 1., 0., 0., 1., 1., 2., 2., 3., 3., 2., 2., 3., 3.]
        );
    }

    #[test]
    fn bilinear_half_pixel_matches_torch() {
        // torch.nn.functional.interpolate(arange(4).view(1,1,1,4), size=(1,6), mode="bilinear")
        let x = Tensor::arange(0f32, 4., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 1, 4))
            .unwrap();
        let r = Resize {
            mode: ResizeMode::Linear,
            coordinates: CoordinateMode::PytorchHalfPixel,
            target: ResizeTarget::Sizes(1, 6),
        };
        let y = r
            .forward(&x)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // The value equals the source coordinate, (o + 0.5) * 4/6 - 0.5 clamped to [0, 3].
        let src = [0.0f32, 0.5, 7.0 / 6.0, 11.0 / 6.0, 2.5, 3.0];
        for (i, (&got, &s)) in y.iter().zip(src.iter()).enumerate() {
            assert!((got - s).abs() < 1e-6, "pixel {i}: {got} vs {s}");
        }
    }

    /// Both modes are linear in x, so <w, resize(x)> = <backward(w), x>, and the gradient of
    /// sum(w * resize(x)) matches a finite difference.
    #[test]
    fn backward_is_the_adjoint() {
        for (mode, coordinates, target) in [
            (
                ResizeMode::Nearest(NearestRounding::RoundPreferFloor),
                CoordinateMode::HalfPixel,
                ResizeTarget::Scales(1.5, 2.0),
            ),
            (
                ResizeMode::Linear,
                CoordinateMode::AlignCorners,
                ResizeTarget::Sizes(7, 3),
            ),
        ] {
            let r = Resize {
                mode,
                coordinates,
                target,
            };
            let x = values(&[2, 3, 4, 5], 0.0);
            let y = r.forward(&x).unwrap();
            let w = values(y.dims(), 3.0);
            let g = r.backward(&x, &w).unwrap();
            assert_eq!(g.dims(), x.dims());
            let lhs = y
                .mul(&w)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let rhs = g
                .mul(&x)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
            let mut bumped = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            bumped[17] += 0.5;
            let xb = Tensor::from_vec(bumped, x.dims(), &Device::Cpu).unwrap();
            let yb = r
                .forward(&xb)
                .unwrap()
                .mul(&w)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let slope = (yb - lhs) / 0.5;
            let g17 = g.flatten_all().unwrap().to_vec1::<f32>().unwrap()[17];
            assert!((slope - g17).abs() < 1e-4, "{slope} vs {g17}");
        }
    }
}
