//! Every ATen op the lowering reads and the rule it is lowered by: the one list that the
//! dispatch, the no-op check and the "not supported" message all read.

/// How an op is lowered (one `Lowerer` method each; `Alias` ops compute nothing at evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    Alias,
    Conv,
    MaxPool,
    AvgPool,
    AdaptiveAvgPool,
    AdaptiveMaxPool,
    BatchNorm,
    LayerNorm,
    GroupNorm,
    Linear,
    Addmm,
    MatMul,
    Activation,
    Softmax,
    Arithmetic,
    Reduce,
    Cat,
    Reshape,
    Permute,
    Split,
    Slice,
    Select,
    Pad,
    Upsample,
    GetItem,
}

/// The ops, by name without namespace and overload (`relu_` is the in-place `relu`).
const OPS: &[(&str, Rule)] = &[
    ("alias", Rule::Alias),
    ("clone", Rule::Alias),
    ("contiguous", Rule::Alias),
    ("detach", Rule::Alias),
    ("dropout", Rule::Alias),
    ("dropout_", Rule::Alias),
    ("feature_dropout", Rule::Alias),
    ("feature_dropout_", Rule::Alias),
    ("alpha_dropout", Rule::Alias),
    ("lift_fresh_copy", Rule::Alias),
    ("identity", Rule::Alias),
    ("_assert_tensor_metadata", Rule::Alias),
    ("_assert_scalar", Rule::Alias),
    ("sym_constrain_range", Rule::Alias),
    ("sym_constrain_range_for_size", Rule::Alias),
    ("conv2d", Rule::Conv),
    ("convolution", Rule::Conv),
    ("_convolution", Rule::Conv),
    ("max_pool2d", Rule::MaxPool),
    ("max_pool2d_with_indices", Rule::MaxPool),
    ("avg_pool2d", Rule::AvgPool),
    ("adaptive_avg_pool2d", Rule::AdaptiveAvgPool),
    ("_adaptive_avg_pool2d", Rule::AdaptiveAvgPool),
    ("adaptive_max_pool2d", Rule::AdaptiveMaxPool),
    ("batch_norm", Rule::BatchNorm),
    ("_native_batch_norm_legit_no_training", Rule::BatchNorm),
    ("native_batch_norm", Rule::BatchNorm),
    ("layer_norm", Rule::LayerNorm),
    ("native_layer_norm", Rule::LayerNorm),
    ("group_norm", Rule::GroupNorm),
    ("linear", Rule::Linear),
    ("addmm", Rule::Addmm),
    ("mm", Rule::MatMul),
    ("matmul", Rule::MatMul),
    ("bmm", Rule::MatMul),
    ("relu", Rule::Activation),
    ("relu_", Rule::Activation),
    ("relu6", Rule::Activation),
    ("hardtanh", Rule::Activation),
    ("hardtanh_", Rule::Activation),
    ("clamp", Rule::Activation),
    ("clamp_", Rule::Activation),
    ("leaky_relu", Rule::Activation),
    ("leaky_relu_", Rule::Activation),
    ("elu", Rule::Activation),
    ("elu_", Rule::Activation),
    ("gelu", Rule::Activation),
    ("gelu_", Rule::Activation),
    ("silu", Rule::Activation),
    ("silu_", Rule::Activation),
    ("sigmoid", Rule::Activation),
    ("sigmoid_", Rule::Activation),
    ("tanh", Rule::Activation),
    ("tanh_", Rule::Activation),
    ("hardswish", Rule::Activation),
    ("hardswish_", Rule::Activation),
    ("hardsigmoid", Rule::Activation),
    ("hardsigmoid_", Rule::Activation),
    ("softmax", Rule::Softmax),
    ("_softmax", Rule::Softmax),
    ("add", Rule::Arithmetic),
    ("add_", Rule::Arithmetic),
    ("sub", Rule::Arithmetic),
    ("sub_", Rule::Arithmetic),
    ("mul", Rule::Arithmetic),
    ("mul_", Rule::Arithmetic),
    ("div", Rule::Arithmetic),
    ("div_", Rule::Arithmetic),
    ("mean", Rule::Reduce),
    ("sum", Rule::Reduce),
    ("cat", Rule::Cat),
    ("concat", Rule::Cat),
    ("view", Rule::Reshape),
    ("reshape", Rule::Reshape),
    ("_unsafe_view", Rule::Reshape),
    ("flatten", Rule::Reshape),
    ("squeeze", Rule::Reshape),
    ("squeeze_", Rule::Reshape),
    ("unsqueeze", Rule::Reshape),
    ("unsqueeze_", Rule::Reshape),
    ("permute", Rule::Permute),
    ("transpose", Rule::Permute),
    ("t", Rule::Permute),
    ("chunk", Rule::Split),
    ("split", Rule::Split),
    ("split_with_sizes", Rule::Split),
    ("unbind", Rule::Split),
    ("slice", Rule::Slice),
    ("select", Rule::Select),
    ("constant_pad_nd", Rule::Pad),
    ("pad", Rule::Pad),
    ("upsample_nearest2d", Rule::Upsample),
    ("upsample_bilinear2d", Rule::Upsample),
    ("getitem", Rule::GetItem),
];

/// The rule for `op`, if the lowering knows it.
pub(crate) fn rule(op: &str) -> Option<Rule> {
    OPS.iter().find(|(name, _)| *name == op).map(|&(_, r)| r)
}

/// The ops a user can name, sorted (in-place forms and internal spellings left out).
pub fn supported_ops() -> Vec<&'static str> {
    let mut names: Vec<&str> = OPS
        .iter()
        .map(|&(name, _)| name)
        .filter(|n| !n.starts_with('_') && !n.ends_with('_') && *n != "getitem")
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once() {
        let mut names: Vec<&str> = OPS.iter().map(|&(n, _)| n).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }
}
