//! Representations over a folder of images: the CNN code of every image (cached on disk), maps of
//! the codes (t-SNE, PCA), the images that excite each unit most, per-unit statistics, and
//! nearest neighbours in code space.
//!
//! One pass over the folder ([`codes::summarize_folder`]) runs the network in batches and keeps,
//! per image and unit of the chosen layer, the spatial mean (the code), the maximum over positions
//! and where it is; everything else is computed from that summary.

pub mod cache;
pub mod codes;
pub mod folder;
pub mod map_render;
pub mod neighbors;
pub mod pass;
pub mod pca;
pub mod pca_stream;
pub mod shard;
pub mod shard_read;
pub mod sprite;
pub mod top_units;
pub mod tsne;
pub mod unit_grid;
pub mod unit_stats;

pub use codes::{summarize_folder, FolderSummary, LayerShape, SkippedFile, SummaryOptions};
