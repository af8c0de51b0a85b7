//! What the small Fashion-MNIST architectures (`small-vgg`, `small-resnet`) share: one-channel
//! 28×28 inputs normalized with the training set's pixel statistics, and Fashion-MNIST's ten
//! class names (Zalando Research, MIT licence).

use crate::input::{Normalization, Preprocess};

/// The side of a Fashion-MNIST image in pixels.
pub const IMAGE_SIDE: usize = 28;

/// The ten Fashion-MNIST classes in label order.
pub const CLASS_NAMES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// `(x - 0.2860) / 0.3530` on grayscale pixels in [0, 1]: the mean and standard deviation of
/// the 60 000 training images (the same constants as `tests/fixtures/make_train.py`).
pub const NORMALIZATION: Normalization = Normalization {
    mean: [0.2860; 3],
    std: [0.3530; 3],
    channels: 1,
};

/// Images are read as grayscale, the shorter side resized to 28 and the centre 28×28 kept.
pub fn preprocess() -> Preprocess {
    Preprocess {
        resize: IMAGE_SIDE as u32,
        crop: IMAGE_SIDE as u32,
        normalization: NORMALIZATION,
    }
}

/// The class names for a model with `classes` outputs: Fashion-MNIST's for 10, else `class N`.
pub fn labels(classes: usize) -> Vec<String> {
    if classes == CLASS_NAMES.len() {
        CLASS_NAMES.iter().map(|s| s.to_string()).collect()
    } else {
        crate::labels::default_for(classes)
    }
}
