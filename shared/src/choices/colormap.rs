//! The colormaps of heat maps and unit maps, as matplotlib names them.

use super::closed_set;

closed_set! {
    /// A colormap, as matplotlib names it.
    Colormap, "colormap" {
        /// Perceptually uniform, the default of overlays.
        Viridis = "viridis",
        /// Perceptually uniform, black to yellow.
        Inferno = "inferno",
        /// The classic rainbow.
        Jet = "jet",
        /// Black to white.
        Gray = "gray" | "grey",
    }
}
