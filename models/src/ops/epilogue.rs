//! What a CPU convolution applies to each output plane as it writes it, while the plane is in
//! cache, instead of passes of their own over the whole tensor: the per-channel affine map of a
//! BatchNorm that alone reads the convolution (unfolded: `x · scale[c] + shift[c]`, the
//! operations of the BatchNorm's own CPU pass, so the same bits), then an activation that
//! alone reads that ([`FusedActivation`], the same bits as its own pass). The direct passes a
//! gradient follows take both; the fastest passes fold the BatchNorm into the kernel instead
//! ([`super::fold`]) and take the activation alone.

use candle_core::Result;

use super::pointwise_cpu::{affine_in_place, FusedActivation};

/// A BatchNorm's per-channel map in eval mode, `x · scale[c] + shift[c]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChannelAffine<'a> {
    /// One factor per channel.
    pub scale: &'a [f32],
    /// One offset per channel.
    pub shift: &'a [f32],
}

/// The maps applied to a convolution's output as it is written, in order.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Epilogue<'a> {
    /// First, a BatchNorm's map.
    pub affine: Option<ChannelAffine<'a>>,
    /// Then an activation.
    pub activation: Option<FusedActivation>,
}

impl<'a> Epilogue<'a> {
    /// Whether it applies nothing.
    pub fn is_empty(&self) -> bool {
        self.affine.is_none() && self.activation.is_none()
    }

    /// An error unless the affine map, if any, has one factor and one offset per channel of
    /// `channels`.
    pub fn check(&self, channels: usize) -> Result<()> {
        match self.affine {
            Some(a) if a.scale.len() != channels || a.shift.len() != channels => {
                candle_core::bail!(
                    "a BatchNorm of {} channels after a convolution of {channels}",
                    a.scale.len()
                )
            }
            _ => Ok(()),
        }
    }

    /// Applies the maps to `plane`, an output plane of channel `channel` (checked by
    /// [`Epilogue::check`]).
    pub fn apply_plane(&self, plane: &mut [f32], channel: usize) {
        if let Some(a) = self.affine {
            affine_in_place(plane, a.scale[channel], a.shift[channel]);
        }
        if let Some(activation) = self.activation {
            activation.apply_in_place(plane);
        }
    }

    /// Applies the maps to one image's output, `planes` of `plane` values each, channel after
    /// channel from 0.
    pub fn apply_image(&self, image: &mut [f32], plane: usize) {
        if self.is_empty() || plane == 0 {
            return;
        }
        for (channel, values) in image.chunks_exact_mut(plane).enumerate() {
            self.apply_plane(values, channel);
        }
    }
}
