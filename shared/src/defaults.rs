//! Every default of the protocol's parameters, in one place: the CLI's flags
//! (`default_value_t`), the protocol's `#[serde(default)]`s and the engine's `Default`s read
//! them from here, and `tests/defaults_agree.rs` checks that `--help`, the protocol and the
//! engine say the same.

/// `convlens explain`, `image/explain`, the engine's `ExplainOptions`.
pub mod explain {
    use crate::choices::{Baseline, Colormap, Method};

    /// The method.
    pub const METHOD: Method = Method::GradCam;
    /// SmoothGrad's samples.
    pub const SAMPLES: usize = 50;
    /// SmoothGrad's noise, as a fraction of the input's range.
    pub const NOISE: f64 = 0.15;
    /// The seed of SmoothGrad's noise.
    pub const SEED: u64 = 0;
    /// Integrated Gradients' steps.
    pub const STEPS: usize = 50;
    /// Integrated Gradients' baseline.
    pub const BASELINE: Baseline = Baseline::Zero;
    /// The occlusion window's side, in pixels.
    pub const WINDOW: usize = 16;
    /// The occlusion stride.
    pub const STRIDE: usize = 8;
    /// Inputs per batch (IG steps, occluded copies, CAM masks).
    pub const BATCH: usize = 16;
    /// Whether a CAM reduces its weighted activations by their first principal component
    /// (pytorch-grad-cam's `eigen_smooth`) instead of their sum over the channels.
    pub const EIGEN_SMOOTH: bool = false;
    /// Whether a CAM is the mean over six flipped and scaled copies of the input
    /// (pytorch-grad-cam's `aug_smooth`).
    pub const AUG_SMOOTH: bool = false;
    /// RISE's masks. The paper draws 4000 (ResNet-50) to 8000 (VGG16); 4000 take the demo five
    /// minutes on a 2-core CPU, so the default is a quarter of that (`--rise-masks 4000` for
    /// the paper's maps).
    pub const RISE_MASKS: usize = 1000;
    /// RISE's grid: cells per side (the paper's 7).
    pub const RISE_CELLS: usize = 7;
    /// RISE's probability of keeping a cell (the paper's 0.5).
    pub const RISE_KEEP: f64 = 0.5;
    /// The overlays' colormap.
    pub const CMAP: Colormap = Colormap::Viridis;
    /// The heat map's weight over the photo.
    pub const ALPHA: f32 = 0.5;
}

/// `convlens maximize`, `unit/maximize`, the engine's `MaximizeOptions`.
pub mod maximize {
    use crate::choices::Preset;

    /// The preset.
    pub const PRESET: Preset = Preset::Lucid;
    /// The seed of the starting image and the transforms.
    pub const SEED: u64 = 0;
    /// Images optimized at once.
    pub const DIVERSITY: usize = 1;
    /// The weight of the diversity term: Lucid's (`objective - 1e2 * diversity(layer)`).
    pub const DIVERSITY_WEIGHT: f64 = 100.0;
    /// Classes reported per image.
    pub const TOP: usize = 3;
}

/// `convlens activations`, `unit/activations`.
pub mod activations {
    use crate::choices::{ActivationScale, Colormap};

    /// The unit maps' colormap.
    pub const CMAP: Colormap = Colormap::Gray;
    /// The grid's scale.
    pub const SCALE: ActivationScale = ActivationScale::Shared;
}

/// `convlens predict`, `image/predict`.
pub mod predict {
    /// Classes reported per image.
    pub const TOP: usize = 5;
}

/// `convlens deconv`, `unit/deconv`.
pub mod deconv {
    use crate::choices::{BackwardRule, UnitPosition};

    /// Which activations of the unit are kept.
    pub const POSITION: UnitPosition = UnitPosition::Max;
    /// The rule sending the signal back.
    pub const RULE: BackwardRule = BackwardRule::Deconvnet;
    /// The side of the square each receptive-field crop is fitted into, in pixels.
    pub const TILE: u32 = 160;
}

/// `convlens filters`, `layer/filters`.
pub mod filters {
    /// Filters drawn (the first ones; the statistics cover all).
    pub const MAX_FILTERS: usize = 64;
    /// Input channels drawn per filter of a deeper layer.
    pub const MAX_INPUTS: usize = 32;
    /// A filter is dead when its norm is at most this fraction of the layer's median norm.
    pub const DEAD_RATIO: f32 = 0.01;
}

/// `convlens embed`, `top`, `neighbors`; `folder/embed`, `folder/top`, `folder/neighbors`.
pub mod folder {
    use crate::choices::MapKind;

    /// Images per forward pass.
    pub const BATCH: usize = 32;
    /// The map of the codes.
    pub const MAP: MapKind = MapKind::Tsne;
    /// t-SNE's perplexity.
    pub const PERPLEXITY: f32 = 30.0;
    /// t-SNE's iterations.
    pub const ITERATIONS: usize = 1000;
    /// The most images t-SNE maps: beyond, it maps every s-th image (the fewest s that keeps
    /// within), since its cost grows faster than the folder (PCA maps every image at any size).
    pub const TSNE_MAX_POINTS: usize = 100_000;
    /// Threads for t-SNE (1: the same map on every run).
    pub const THREADS: usize = 1;
    /// The seed of the map's initialisation.
    pub const SEED: u64 = 0;
    /// Top images per unit.
    pub const TOP_K: usize = 9;
    /// Neighbours of a query image.
    pub const NEIGHBORS_K: usize = 8;
    /// The side of a top image's tile, in pixels.
    pub const TILE: u32 = 64;
}

/// `convlens evaluate`, `image/evaluate`, the engine's `RoadOptions`.
pub mod evaluate {
    use crate::choices::Metric;

    /// ROAD's percentiles of the map (pytorch-grad-cam's averages and `ROADCombined`).
    pub const ROAD_PERCENTILES: [f64; 9] = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0];
    /// The noise ROAD's linear imputation adds (pytorch-grad-cam's `NoisyLinearImputer`), in
    /// the normalized input's units.
    pub const ROAD_NOISE: f64 = 0.01;
    /// Perturbations for infidelity and max-sensitivity (Captum's `n_perturb_samples`).
    pub const PERTURBATIONS: usize = 10;
    /// The standard deviation of infidelity's Gaussian perturbations (Captum's example), in
    /// the normalized input's units.
    pub const INFIDELITY_NOISE: f64 = 0.003;
    /// Whether infidelity first scales the map by its best fit (Captum's `normalize`), so maps
    /// of different scales compare.
    pub const INFIDELITY_NORMALIZE: bool = true;
    /// The radius of max-sensitivity's uniform perturbations (Captum's `perturb_radius`).
    pub const SENSITIVITY_RADIUS: f64 = 0.02;
    /// The metrics `convlens evaluate` computes unless told: every faithfulness and robustness
    /// metric. The randomization check is asked for by name: it explains the image again for
    /// every block of the network.
    pub const METRICS: [Metric; 8] = [
        Metric::Deletion,
        Metric::Insertion,
        Metric::ConfidenceChange,
        Metric::RoadMorf,
        Metric::RoadLerf,
        Metric::RoadCombined,
        Metric::Infidelity,
        Metric::SensitivityMax,
    ];
}
