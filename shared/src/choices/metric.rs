//! The faithfulness metrics `convlens evaluate` computes.

use super::closed_set;

closed_set! {
    /// A score of how faithful an explanation is.
    Metric, "metric" {
        /// The class's probability as the most relevant pixels are removed (RISE); its area,
        /// lower is more faithful.
        Deletion = "deletion",
        /// The class's probability as the most relevant pixels are added to a blurred input
        /// (RISE); its area, higher is more faithful.
        Insertion = "insertion",
        /// pytorch-grad-cam's confidence change: the class's probability with the input
        /// multiplied by the map (scaled to [0, 1]) less without; higher is more faithful.
        ConfidenceChange = "confidence-change",
        /// ROAD, most relevant first: the change in the class's probability when the pixels
        /// above each percentile of the map are removed and imputed (noisy linear), averaged;
        /// lower is more faithful.
        RoadMorf = "road-morf",
        /// ROAD, least relevant first: the same with the least relevant pixels removed;
        /// higher is more faithful.
        RoadLerf = "road-lerf",
        /// ROAD combined: (least − most relevant first) / 2; higher is more faithful.
        RoadCombined = "road-combined",
        /// Captum's infidelity: how far Σ map · I is from the change in the class's logit
        /// under Gaussian perturbations I, squared and averaged (the map scaled by its best
        /// fit); lower is more faithful.
        Infidelity = "infidelity",
        /// Captum's max-sensitivity: the largest relative change of the explanation under
        /// small uniform perturbations of the input; lower is more robust.
        SensitivityMax = "sensitivity-max",
        /// The model-randomization sanity check (Adebayo et al. 2018): the layers re-initialized
        /// from the output down, one block more at each step, and Spearman's rank correlation
        /// of the map with the trained model's after each; the mean over the cascade, lower
        /// passes (the map depends on the weights it explains).
        RandomizationSpearman = "randomization-spearman",
        /// The same cascade compared by SSIM; the mean, lower passes.
        RandomizationSsim = "randomization-ssim",
    }
}
