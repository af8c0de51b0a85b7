//! Model inputs: images decoded with the `image` crate and preprocessed as torchvision does
//! (shorter side resized to 256 with antialiased bilinear filtering, centre crop 224, per-channel
//! normalization), or `.npy` tensors that are already preprocessed.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use image::{DynamicImage, GenericImageView, GrayImage, RgbImage};

use crate::resample::{resize_bilinear_window, Window};

use crate::{Error, Result};

/// How pixel values in [0, 1] become the network's input: `(x - mean) / std` per channel.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Normalization {
    /// Per-channel mean.
    pub mean: [f32; 3],
    /// Per-channel standard deviation.
    pub std: [f32; 3],
    /// Input channels (3 for RGB, 1 for grayscale models).
    pub channels: usize,
}

impl Normalization {
    /// torchvision's ImageNet statistics.
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
        channels: 3,
    };

    /// No normalization: 0–1 pixel values as `ToTensor()` gives them (mean 0, std 1).
    pub const PLAIN: Normalization = Normalization {
        mean: [0.0; 3],
        std: [1.0; 3],
        channels: 3,
    };

    /// EfficientNet-Lite's `(pixel - 127) / 128` on 0–255 pixel values.
    pub const LITE: Normalization = Normalization {
        mean: [127.0 / 255.0; 3],
        std: [128.0 / 255.0; 3],
        channels: 3,
    };

    /// These statistics for a network whose first conv takes `channels` channels (a grayscale
    /// ResNet fine-tuned from RGB weights, say): unchanged when `channels` is already
    /// `self.channels`; otherwise every channel gets the mean of the three means and the mean of
    /// the three standard deviations. For ImageNet that is mean 0.449, std 0.226, the usual
    /// choice for a one-channel model trained with `Grayscale()` and ImageNet-like statistics.
    /// Images can be read for 1 or 3 channels; other counts take `.npy` inputs only.
    pub fn with_channels(self, channels: usize) -> Normalization {
        if channels == self.channels {
            return self;
        }
        let mean = self.mean.iter().sum::<f32>() / 3.0;
        let std = self.std.iter().sum::<f32>() / 3.0;
        Normalization {
            mean: [mean; 3],
            std: [std; 3],
            channels,
        }
    }
}

/// `image` as 8-bit grayscale the way torchvision's `Grayscale` (Pillow's `convert("L")`) makes
/// it: L = 0.299 R + 0.587 G + 0.114 B, in Pillow's fixed point (weights 19595, 38470, 7471 of
/// 65536, rounded). Alpha is dropped; a grayscale image is returned as is.
pub fn to_gray(image: &DynamicImage) -> GrayImage {
    if let DynamicImage::ImageLuma8(gray) = image {
        return gray.clone();
    }
    let rgb = image.to_rgb8();
    let (w, h) = rgb.dimensions();
    let data = rgb
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            let l = u32::from(p[0]) * 19595 + u32::from(p[1]) * 38470 + u32::from(p[2]) * 7471;
            ((l + 0x8000) >> 16) as u8
        })
        .collect();
    GrayImage::from_raw(w, h, data).unwrap_or_else(|| GrayImage::new(w, h))
}

/// The preprocessing a model's images go through.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Preprocess {
    /// The shorter side is resized to this.
    pub resize: u32,
    /// Then the centre square of this size is cut out.
    pub crop: u32,
    /// Then pixel values are normalized.
    pub normalization: Normalization,
}

impl Preprocess {
    /// torchvision's standard evaluation transform with `normalization`.
    pub fn standard(normalization: Normalization) -> Self {
        Preprocess {
            resize: 256,
            crop: 224,
            normalization,
        }
    }

    /// `normalization` for an imported network whose input is `h`×`w` when known: a square
    /// input is the crop, the resize torchvision's 256/224 of it (the crop itself below 64
    /// pixels, where small images such as Fashion-MNIST's are used whole); else 256 / 224.
    pub fn for_input(normalization: Normalization, h: Option<usize>, w: Option<usize>) -> Self {
        let mut preprocess = Preprocess::standard(normalization);
        if let (Some(h), Some(w)) = (h, w) {
            if h == w {
                let side = h as u32;
                preprocess.crop = side;
                preprocess.resize = if side < 64 {
                    side
                } else {
                    (side * 256).div_ceil(224)
                };
            }
        }
        preprocess
    }

    /// The resized and centre-cropped image, before normalization (what overlays are drawn on).
    /// For a one-channel network the image is made grayscale first ([`to_gray`]), as
    /// `Grayscale()` at the start of a torchvision transform does.
    pub fn crop_image(&self, image: &DynamicImage) -> DynamicImage {
        let gray;
        let image =
            if self.normalization.channels == 1 && !matches!(image, DynamicImage::ImageLuma8(_)) {
                gray = DynamicImage::ImageLuma8(to_gray(image));
                &gray
            } else {
                image
            };
        let (w, h) = image.dimensions();
        let short = w.min(h).max(1);
        // torchvision: the longer side becomes int(size * long / short).
        let (nw, nh) = if w <= h {
            (
                self.resize,
                (u64::from(self.resize) * u64::from(h) / u64::from(short)) as u32,
            )
        } else {
            (
                (u64::from(self.resize) * u64::from(w) / u64::from(short)) as u32,
                self.resize,
            )
        };
        let (nw, nh) = (nw.max(1), nh.max(1));
        let crop = self.crop.min(nw).min(nh);
        // torchvision: top = int(round((h - crop) / 2)), Python's round-half-even.
        let offset = |size: u32| -> u32 {
            let half = f64::from(size - crop) / 2.0;
            let r = half.round();
            if (half - half.floor() - 0.5).abs() < f64::EPSILON && r % 2.0 != 0.0 {
                (r - 1.0) as u32
            } else {
                r as u32
            }
        };
        let window = Window {
            left: offset(nw) as usize,
            top: offset(nh) as usize,
            width: crop as usize,
            height: crop as usize,
        };
        resize_like_pillow(image, (nw, nh), window)
    }

    /// The normalized [C, H, W] tensor for a cropped image (grayscale by [`to_gray`] for a
    /// one-channel network). Images can be read for 1 or 3 channels only.
    pub fn normalize(&self, cropped: &DynamicImage, device: &Device) -> Result<Tensor> {
        let n = self.normalization;
        if n.channels != 1 && n.channels != 3 {
            return Err(Error::Unsupported(format!(
                "the network takes {} input channels: images are read as 1 (grayscale) or 3 \
                 (RGB) channels; give a preprocessed .npy tensor instead",
                n.channels
            )));
        }
        let (w, h) = cropped.dimensions();
        let plane = (w * h) as usize;
        let data: Vec<f32> = if n.channels == 1 {
            let gray = to_gray(cropped);
            gray.pixels()
                .map(|p| (f32::from(p.0[0]) / 255.0 - n.mean[0]) / n.std[0])
                .collect()
        } else {
            let rgb = cropped.to_rgb8();
            let mut data = vec![0f32; 3 * plane];
            for (i, p) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    data[c * plane + i] = (f32::from(p.0[c]) / 255.0 - n.mean[c]) / n.std[c];
                }
            }
            data
        };
        Ok(Tensor::from_vec(
            data,
            (n.channels, h as usize, w as usize),
            device,
        )?)
    }
}

/// `window` of Pillow's bilinear resize of `image` to `nw`×`nh` (RGB, or grayscale for
/// grayscale images): the resize and the crop after it in one step, computing only the pixels
/// kept.
fn resize_like_pillow(image: &DynamicImage, (nw, nh): (u32, u32), window: Window) -> DynamicImage {
    let (iw, ih) = (image.width() as usize, image.height() as usize);
    let size = (nw as usize, nh as usize);
    let (ww, wh) = (window.width as u32, window.height as u32);
    let resized = |pixels: &[u8], channels: usize| {
        resize_bilinear_window(pixels, (iw, ih), channels, size, window)
    };
    match image {
        DynamicImage::ImageLuma8(gray) => GrayImage::from_raw(ww, wh, resized(gray.as_raw(), 1))
            .map_or_else(|| image.clone(), DynamicImage::ImageLuma8),
        DynamicImage::ImageRgb8(rgb) => RgbImage::from_raw(ww, wh, resized(rgb.as_raw(), 3))
            .map_or_else(|| image.clone(), DynamicImage::ImageRgb8),
        other => {
            let rgb = other.to_rgb8();
            RgbImage::from_raw(ww, wh, resized(rgb.as_raw(), 3))
                .map_or_else(|| image.clone(), DynamicImage::ImageRgb8)
        }
    }
}

/// Decodes an image file, naming the file when it cannot.
pub fn open_image(path: &Path) -> Result<DynamicImage> {
    if path.is_dir() {
        return Err(Error::format(
            path,
            format!(
                "a folder, not an image: give one {IMAGE_FORMATS} image (or a preprocessed .npy)"
            ),
        ));
    }
    if !path.exists() {
        return Err(Error::format(
            path,
            format!("no such image (a {IMAGE_FORMATS} file, or a preprocessed .npy)"),
        ));
    }
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let reader = image::ImageReader::open(path)
        .map_err(&io)?
        .with_guessed_format()
        .map_err(&io)?;
    let format = reader.format();
    reader.decode().map_err(|e| match (format, e) {
        (_, image::ImageError::IoError(source)) => io(source),
        (Some(format), _) => Error::format(
            path,
            format!(
                "not a readable {} image: the file is damaged, or not what its name says",
                format_name(format)
            ),
        ),
        (None, _) => Error::format(
            path,
            format!("not a {IMAGE_FORMATS} image (or a preprocessed .npy)"),
        ),
    })
}

/// The image formats read (the `image` crate's features in `Cargo.toml`).
pub const IMAGE_FORMATS: &str = "PNG, JPEG, WebP, BMP or GIF";

/// The usual name of an image format.
fn format_name(format: image::ImageFormat) -> &'static str {
    format
        .extensions_str()
        .first()
        .map_or("image", |ext| match *ext {
            "png" => "PNG",
            "jpg" | "jpeg" => "JPEG",
            "webp" => "WebP",
            "bmp" => "BMP",
            "gif" => "GIF",
            other => other,
        })
}

/// The network input [1, C, H, W] for `path`: a preprocessed `.npy` tensor as is, or an image
/// preprocessed with `preprocess`.
pub fn load_input(path: &Path, preprocess: &Preprocess, device: &Device) -> Result<Tensor> {
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    if is_npy {
        let t = Tensor::read_npy(path)
            .map_err(|e| Error::format(path, format!("not a readable .npy file: {e}")))?;
        let t = t.to_dtype(DType::F32)?;
        let c = preprocess.normalization.channels;
        let t = match t.dims() {
            [ch, _, _] if *ch == c => t.unsqueeze(0)?,
            [1, ch, _, _] if *ch == c => t,
            dims => {
                return Err(Error::Shape {
                    what: path.display().to_string(),
                    expected: format!("[{c}, H, W] or [1, {c}, H, W] float32"),
                    found: format!("{dims:?}"),
                })
            }
        };
        return Ok(t.to_device(device)?);
    }
    let image = open_image(path)?;
    let cropped = preprocess.crop_image(&image);
    Ok(preprocess.normalize(&cropped, device)?.unsqueeze(0)?)
}
