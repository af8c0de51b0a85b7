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
    }
}
