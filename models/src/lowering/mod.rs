//! Making engine ops from an imported model's arguments, shared by the importers (`onnx/` for
//! ONNX, `export/` for `torch.export` programs), one file per op family in the style of tract's
//! `ops/` folders. Each importer reads its own format's arguments (ONNX attributes, ATen
//! arguments) into plain values; the functions here check them and build the op, so a rule
//! or an op added for one format reaches the other where the semantics agree.

pub mod activation;
pub mod conv_pool;
pub mod norm;
pub mod shape;

/// Why arguments cannot become an op; the importer names the op and node.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// Valid for the format, but beyond what the engine runs (a rank-5 kernel, unequal strides).
    Unsupported(String),
    /// Not valid at all (a bias of the wrong size, a group count that does not divide).
    Invalid(String),
}

/// The result of a lowering rule.
pub type Lowered<T> = std::result::Result<T, Problem>;

/// The largest kernel, stride, dilation or pad an imported op may have.
pub const MAX_WINDOW: i64 = 4096;
