//! How a backward signal passes through the ReLU family.

use super::closed_set;

closed_set! {
    /// The rule that sends a signal back through the network.
    ///
    /// Only the ReLU family (ReLU, ReLU6, LeakyReLU, and Clip at zero) behaves differently under
    /// the three rules; every other op passes its exact local gradient. Max pooling always
    /// routes the signal through its switches (the position of the window's maximum).
    BackwardRule, "rule" {
        /// Deconvnet (Zeiler & Fergus 2014): the positive part of the incoming signal, whatever
        /// the forward activation was.
        Deconvnet = "deconvnet" | "deconv",
        /// Guided backpropagation (Springenberg et al. 2015): the exact local gradient, then
        /// only its positive part.
        Guided = "guided" | "guided-backprop",
        /// The exact gradient, as torch.autograd computes it.
        Gradient = "gradient" | "exact",
    }
}

impl Default for BackwardRule {
    /// The exact gradient: what every method but the reconstructions sends back.
    fn default() -> Self {
        BackwardRule::Gradient
    }
}
