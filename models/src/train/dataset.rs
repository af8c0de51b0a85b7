//! Fashion-MNIST read from its four standard IDX files (`train-images-idx3-ubyte.gz`, ...), as
//! Debian's `dataset-fashion-mnist` installs them or as Zalando distributes them.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::idx::read_idx;
use crate::arch::fashion_mnist::{CLASS_NAMES, IMAGE_SIDE, NORMALIZATION};
use crate::{Error, Result};

/// Where Debian's `dataset-fashion-mnist` package puts the files.
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// What to do when the files are not there.
pub const HOW_TO_GET: &str = "Fashion-MNIST's IDX files are not there (train-images-idx3-ubyte, \
train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each .gz or plain). \
Get them with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu: they go to \
/usr/share/datasets/fashion-mnist) or from https://github.com/zalandoresearch/fashion-mnist \
(data/fashion), and pass their folder with --data DIR; tests/fixtures/fashion-mnist in the \
convlens repository holds a small subset";

/// At most this many images per split (Fashion-MNIST has 60 000 and 10 000).
const MAX_IMAGES: usize = 1_000_000;

/// One split: images as 28×28 bytes (0 = background) and their labels.
#[derive(Clone, Debug)]
pub struct Split {
    /// `count` images of 28×28 bytes, row-major.
    pub images: Vec<u8>,
    /// `count` labels in 0..10.
    pub labels: Vec<u8>,
}

/// The training and test splits.
#[derive(Clone, Debug)]
pub struct FashionMnist {
    /// The training images (60 000 in the full set).
    pub train: Split,
    /// The test images (10 000 in the full set).
    pub test: Split,
}

impl FashionMnist {
    /// Reads both splits from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(not_found(dir));
        }
        Ok(FashionMnist {
            train: Split::load(dir, "train")?,
            test: Split::load(dir, "t10k")?,
        })
    }
}

fn not_found(path: &Path) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, HOW_TO_GET),
    }
}

/// `dir/stem.gz` or `dir/stem`, whichever exists.
fn find_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    let gz = dir.join(format!("{stem}.gz"));
    let plain = dir.join(stem);
    [gz.clone(), plain]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| not_found(&gz))
}

impl Split {
    /// Reads `{prefix}-images-idx3-ubyte[.gz]` and `{prefix}-labels-idx1-ubyte[.gz]` in `dir`.
    pub fn load(dir: &Path, prefix: &str) -> Result<Self> {
        let images_path = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let labels_path = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        let plane = IMAGE_SIDE * IMAGE_SIDE;
        let images = read_idx(&images_path, MAX_IMAGES * plane)?;
        if images.dims.len() != 3 || images.dims[1..] != [IMAGE_SIDE, IMAGE_SIDE] {
            return Err(Error::format(
                &images_path,
                format!(
                    "expected images of shape [N, 28, 28], found {:?}",
                    images.dims
                ),
            ));
        }
        let labels = read_idx(&labels_path, MAX_IMAGES)?;
        if labels.dims != [images.dims[0]] {
            return Err(Error::format(
                &labels_path,
                format!(
                    "expected {} labels (one per image of {}), found dimensions {:?}",
                    images.dims[0],
                    images_path.display(),
                    labels.dims
                ),
            ));
        }
        if let Some(bad) = labels
            .data
            .iter()
            .find(|&&l| usize::from(l) >= CLASS_NAMES.len())
        {
            return Err(Error::format(
                &labels_path,
                format!("label {bad} is not a Fashion-MNIST class (0..=9)"),
            ));
        }
        Ok(Split {
            images: images.data,
            labels: labels.data,
        })
    }

    /// The number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `count` images (all when there are fewer).
    pub fn first(&self, count: usize) -> Split {
        let n = count.min(self.len());
        let plane = IMAGE_SIDE * IMAGE_SIDE;
        Split {
            images: self.images[..n * plane].to_vec(),
            labels: self.labels[..n].to_vec(),
        }
    }

    /// The images as the network's input on `device`: f32 [N, 1, 28, 28], normalized as
    /// [`NORMALIZATION`] says (`(pixel / 255 - mean) / std`).
    pub fn images_tensor(&self, device: &Device) -> Result<Tensor> {
        let n = self.len();
        let bytes = Tensor::from_slice(&self.images, (n, 1, IMAGE_SIDE, IMAGE_SIDE), device)?;
        let (mean, std) = (
            f64::from(NORMALIZATION.mean[0]),
            f64::from(NORMALIZATION.std[0]),
        );
        let pixels = (bytes.to_dtype(DType::F32)? / 255.0)?;
        Ok(((pixels - mean)? / std)?)
    }

    /// The labels as u32 [N] on `device`.
    pub fn labels_tensor(&self, device: &Device) -> Result<Tensor> {
        let labels: Vec<u32> = self.labels.iter().map(|&l| u32::from(l)).collect();
        Ok(Tensor::from_vec(labels, self.len(), device)?)
    }
}
