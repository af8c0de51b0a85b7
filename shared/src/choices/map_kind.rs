//! The 2-D maps of a folder's CNN codes.

use super::closed_set;

closed_set! {
    /// The map made of the codes.
    MapKind, "map" {
        /// t-SNE (exact up to 1000 images, Barnes–Hut beyond).
        Tsne = "tsne",
        /// The first two principal components.
        Pca = "pca",
        /// No map.
        None = "none",
    }
}
