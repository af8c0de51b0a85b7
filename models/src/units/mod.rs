//! What a unit responds to: a convolution's filters, a layer's feature maps on an image, and the
//! deconvnet (Zeiler & Fergus 2014) or guided-backprop projection of one unit's activation down
//! to pixels, cropped to the unit's receptive field.
//!
//! Every function returns plain data ([`HostArray`] plus summary numbers, all `Serialize`) so the
//! CLI and the daemon present the same results; the `render_*` functions turn them into pictures.

mod activations;
mod array;
mod deconv;
mod feature_layer;
mod filters;
mod receptive_field;
mod tiles;

pub use activations::{
    layer_activations, layer_activations_from, range_level, render_activation_grid,
    ActivationScale, ChannelStats, LayerActivations,
};
pub use array::HostArray;
pub use deconv::{
    reconstruct, reconstruct_with_trace, render_reconstructions, DeconvOptions, Reconstruction,
    UnitPosition, UnitSelection,
};
pub use feature_layer::{feature_layer, feature_layer_in, FeatureLayer};
pub use filters::{
    conv_filters, render_filter_grid, symmetric_level, FilterBank, FilterGridOptions, FilterStats,
    KernelStats,
};
pub use receptive_field::{receptive_field, ReceptiveField};
pub use tiles::{tile_origin, upscale_factor, TILE_GAP};
