//! How a backward signal passes through the ReLU family.

/// The rule that sends a signal back through the network.
///
/// Only the ReLU family (ReLU, ReLU6, LeakyReLU, and Clip at zero) behaves differently under the
/// three rules; every other op passes its exact local gradient. Max pooling always routes the
/// signal through its switches (the position of the window's maximum).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BackwardRule {
    /// The exact gradient, as torch.autograd computes it.
    #[default]
    Gradient,
    /// Guided backpropagation (Springenberg et al. 2015): the exact local gradient, then only its
    /// positive part.
    Guided,
    /// Deconvnet (Zeiler & Fergus 2014): the positive part of the incoming signal, whatever the
    /// forward activation was.
    Deconvnet,
}

impl BackwardRule {
    /// The rule's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            BackwardRule::Gradient => "gradient",
            BackwardRule::Guided => "guided",
            BackwardRule::Deconvnet => "deconvnet",
        }
    }

    /// Parses a command-line name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "gradient" | "exact" => Some(BackwardRule::Gradient),
            "guided" | "guided-backprop" => Some(BackwardRule::Guided),
            "deconvnet" | "deconv" => Some(BackwardRule::Deconvnet),
            _ => None,
        }
    }
}
