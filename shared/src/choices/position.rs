//! Which of a unit's activations a reconstruction keeps.

use super::closed_set;

closed_set! {
    /// Which of the unit's activations are kept.
    UnitPosition, "position" {
        /// Only the strongest one (the first maximum in row-major order), as Zeiler & Fergus
        /// did.
        Max = "max",
        /// The whole map of the unit.
        All = "all",
    }
}
