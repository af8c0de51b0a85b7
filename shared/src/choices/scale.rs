//! How the tiles of an activation grid are scaled to colours.

use super::closed_set;

closed_set! {
    /// How the tiles of an activation grid are scaled to colours.
    ActivationScale, "scale" {
        /// One range, the layer's min to max, for every tile: tiles compare with each other.
        Shared = "shared",
        /// Each tile from its own min to max: every map's pattern is visible.
        PerTile = "per-tile" | "tile",
    }
}
