//! Lucid's diversity term (Olah et al. 2017, "Diversity"): the mean cosine similarity between
//! the Gram matrices of a layer's activations over every pair of images in the batch, which the
//! optimization lowers so that the images of one batch show different facets of a feature.

use candle_core::Tensor;

use crate::{Error, Result};

/// Lucid's `l2_normalize` epsilon: x / sqrt(max(Σx², ε)).
const EPSILON: f64 = 1e-10;

/// The similarity S and its gradient with respect to the activations.
#[derive(Debug)]
pub struct Diversity {
    /// S = (1/B) Σ_i Σ_{j≠i} ⟨Ĝ_i, Ĝ_j⟩, with Ĝ the L2-normalized Gram matrix of an image's
    /// activations (Lucid's `diversity` objective).
    pub similarity: f32,
    /// ∂S/∂activations, shaped like the activations.
    pub gradient: Tensor,
}

/// S and ∂S/∂F for activations `features` [B, C, H, W].
pub fn gram_similarity(features: &Tensor) -> Result<Diversity> {
    let (b, c, h, w) = features.dims4().map_err(|_| {
        Error::InvalidArgument(format!(
            "the diversity term needs a layer with channels and positions, whose output is [B, C, H, W]; this one is {:?}",
            features.dims()
        ))
    })?;
    let flat = features.reshape((b, c, h * w))?;
    let gram = flat.matmul(&flat.t()?)?; // [B, C, C]
    let norm_sq = gram.sqr()?.sum_keepdim((1, 2))?; // [B, 1, 1]
    let norm = norm_sq.clamp(EPSILON as f32, f32::MAX)?.sqrt()?;
    let unit = gram.broadcast_div(&norm)?;
    let total = unit.sum_keepdim(0)?; // Σ_j Ĝ_j, [1, C, C]
    let bf = b as f64;
    let similarity = (total.sqr()?.sum_all()?.to_scalar::<f32>()? as f64
        - unit.sqr()?.sum_all()?.to_scalar::<f32>()? as f64)
        / bf;
    // ∂S/∂Ĝ_i = (2/B)(Σ_j Ĝ_j − Ĝ_i).
    let d_unit = total.broadcast_sub(&unit)?.affine(2.0 / bf, 0.0)?;
    // Through the normalization: (d − ⟨d, Ĝ⟩ Ĝ) / ‖G‖ where ‖G‖² > ε, d / √ε where it is clamped.
    let radial = d_unit.mul(&unit)?.sum_keepdim((1, 2))?;
    let normalized = norm_sq.ge(EPSILON)?.to_dtype(unit.dtype())?;
    let d_gram = d_unit
        .sub(&unit.broadcast_mul(&radial.broadcast_mul(&normalized)?)?)?
        .broadcast_div(&norm)?;
    // G = F Fᵀ and d_gram is symmetric: ∂S/∂F = 2 · d_gram · F.
    let gradient = d_gram
        .matmul(&flat)?
        .affine(2.0, 0.0)?
        .reshape((b, c, h, w))?;
    Ok(Diversity {
        similarity: similarity as f32,
        gradient,
    })
}

/// The signal a diversity term of `weight` sends into the layer for a batch: the gradient of
/// `−weight · B · S` (Lucid's `objective − weight · diversity`, times the batch size, since the
/// main objective here is summed over the batch rather than averaged).
pub fn signal(features: &Tensor, weight: f64) -> Result<(f32, Tensor)> {
    let batch = features.dim(0)? as f64;
    let d = gram_similarity(features)?;
    Ok((d.similarity, d.gradient.affine(-weight * batch, 0.0)?))
}
