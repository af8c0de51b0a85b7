//! The reference inputs of Integrated Gradients.

use super::closed_set;

closed_set! {
    /// The reference input of Integrated Gradients.
    Baseline, "baseline" {
        /// Zeros in the model's input space (Captum's default).
        Zero = "zero",
        /// The input blurred (Gaussian).
        Blur = "blur",
        /// Uniform noise over the input's range, from the seed.
        Noise = "noise",
    }
}
