//! How a backward signal passes through the ReLU family.

/// The rule that sends a signal back through the network (`convlens_shared::choices`): only
/// the ReLU family (ReLU, ReLU6, LeakyReLU, and Clip at zero) behaves differently under the three
/// rules; every other op passes its exact local gradient. Max pooling always routes the signal
/// through its switches (the position of the window's maximum).
pub use convlens_shared::choices::BackwardRule;
