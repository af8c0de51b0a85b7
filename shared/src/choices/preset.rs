//! The activation-maximization presets: no prior (Simonyan et al. 2014), the four regularized
//! rows of Yosinski et al. 2015's Table 1, and Lucid's (Olah et al. 2017).

use super::closed_set;

closed_set! {
    /// An activation-maximization preset.
    Preset, "preset" {
        /// Plain gradient ascent from the mean image.
        None = "none",
        /// Yosinski et al. 2015, Table 1, row 1.
        Yosinski1 = "yosinski1",
        /// Yosinski et al. 2015, Table 1, row 2.
        Yosinski2 = "yosinski2",
        /// Yosinski et al. 2015, Table 1, row 3.
        Yosinski3 = "yosinski3",
        /// Yosinski et al. 2015, Table 1, row 4.
        Yosinski4 = "yosinski4",
        /// Lucid: a decorrelated Fourier parameterization with transformation robustness.
        Lucid = "lucid",
    }
}
