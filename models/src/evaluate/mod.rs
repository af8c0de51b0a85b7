//! Judging an explanation: how much the model's confidence depends on the pixels a map calls
//! relevant. Deletion and insertion (Petsiuk et al. 2018, the RISE paper) in `causal.rs`; the
//! blurred substrate they use in `substrate.rs`; a map brought to one relevance per pixel in
//! `relevance.rs`; pytorch-grad-cam's confidence change when the input is multiplied by the map
//! in `confidence.rs`; ROAD (remove and debias, Rong et al. 2022) in `road.rs`, with its noisy
//! linear imputation in `impute.rs`; Captum's infidelity in `infidelity.rs` and max-sensitivity
//! in `sensitivity.rs`; the cascading model-randomization sanity check in `randomization.rs`,
//! comparing maps by `similarity.rs`' rank correlation and SSIM.

pub mod causal;
pub mod confidence;
pub mod impute;
pub mod infidelity;
pub mod randomization;
pub mod relevance;
pub mod road;
pub mod sensitivity;
pub mod similarity;
pub mod substrate;

pub use causal::{causal_curve, CausalCurve, CausalMetric, CausalOptions};
