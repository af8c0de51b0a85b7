//! The operations a graph node can perform, each with its forward pass and its backward pass
//! (the signal at the inputs given the signal at the output; weight gradients are never made).

pub mod activation;
pub mod adaptive_avg_pool;
pub mod adaptive_max_pool;
pub mod avg_pool;
pub mod batch_norm;
pub mod col2im;
pub mod column_invariant_gemm;
pub mod conv2d;
pub mod conv2d_cpu;
pub mod cosine;
pub mod cpu_slice;
pub mod depthwise;
pub mod depthwise_cpu;
pub mod elementwise;
pub mod epilogue;
pub mod fold;
pub mod layer_norm;
pub mod linear;
pub mod matmul;
pub mod max_pool;
pub mod max_pool_cpu;
pub mod packed_gemm;
pub mod pad;
pub mod pointwise_cpu;
pub mod pool;
pub mod reduce;
pub mod reshape;
pub mod resize;
pub mod scratch;
pub mod slice;
pub mod strided;
pub(crate) mod unwritten;
pub mod winograd_cpu;

use candle_core::{Result, Tensor, D};

pub use activation::Activation;
pub use adaptive_avg_pool::AdaptiveAvgPool2d;
pub use adaptive_max_pool::AdaptiveMaxPool2d;
pub use avg_pool::AvgPool2d;
pub use batch_norm::BatchNorm2d;
pub use conv2d::{Conv2d, Padding};
pub use cosine::Cosine;
pub use layer_norm::{GroupNorm, LayerNorm};
pub use linear::Linear;
pub use max_pool::MaxPool2d;
pub use pad::Pad;
pub use pool::PoolWindow;
pub use reduce::ReduceMean;
pub use reshape::{Reshape, Transpose};
pub use resize::{CoordinateMode, NearestRounding, Resize, ResizeMode, ResizeTarget};
pub use slice::{Slice, SliceAxis};

use crate::graph::BackwardRule;

/// How a forward pass may compute its convolutions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Convolutions {
    /// The direct sum (im2col and GEMM on the CPU, candle's convolution elsewhere). Passes a
    /// gradient follows run this: a ReLU's mask is decided by the sign of its pre-activation,
    /// so a pre-activation within rounding of zero would flip its mask under another order of
    /// summation, and random-weight networks have many. In `Graph::forward_by`, a
    /// convolution read only by a BatchNorm (and that by a ReLU, ReLU6 or clip) applies their
    /// maps as it writes its output ([`epilogue`]): the same operations in the same order, so
    /// the same bits as their own passes.
    #[default]
    Direct,
    /// Winograd F(4×4, 3×3) where it applies and pays on the CPU ([`winograd_cpu::pays`]),
    /// the direct sum elsewhere; in `Graph::forward_by`, a BatchNorm folded into the
    /// convolution before it ([`fold`]). For passes whose outputs only are read (logits, codes,
    /// perturbed copies), where rounding moves the result continuously: 1e-5 of the magnitude
    /// per layer; and the input gradients of a backward pass ([`Op::backward`]), linear in the
    /// signal (its masks were decided by the forward pass). The transformed and folded kernels
    /// are made on a layer's first such pass and kept (Winograd's is 4× the 3×3 weight it
    /// replaces).
    Fastest,
    /// [`Convolutions::Fastest`], each layer's path chosen as for a batch of two or more images
    /// even when the batch is one image: on the CPU a lone image's outputs then have the bits it
    /// has in any batch (embed's codes, whose sharded sweeps merge into the unsharded one bit for
    /// bit). It differs from `Fastest` only at batch 1, where a small plane takes Winograd's path
    /// as a batch does ([`winograd_cpu::pays`]) though the direct sum would be faster alone.
    FastestBatchInvariant,
}

impl Convolutions {
    /// Whether the fastest paths may be taken (Winograd, BatchNorms folded into convolutions).
    pub fn is_fastest(self) -> bool {
        matches!(
            self,
            Convolutions::Fastest | Convolutions::FastestBatchInvariant
        )
    }

    /// The batch size a layer chooses its path for, given a batch of `images`: a lone image as
    /// two under [`Convolutions::FastestBatchInvariant`].
    pub fn batch_for_paths(self, images: usize) -> usize {
        match self {
            Convolutions::FastestBatchInvariant => images.max(2),
            Convolutions::Direct | Convolutions::Fastest => images,
        }
    }
}

/// Which tensors an op's backward step reads the values of ([`Op::backward_reads`]): a pass
/// made for a gradient keeps those and only the shape of the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackwardReads {
    /// The values of its inputs.
    pub inputs: bool,
    /// The values of its output.
    pub output: bool,
}

/// What one node of the graph computes.
#[derive(Clone, Debug)]
pub enum Op {
    /// The network's input.
    Input,
    /// `nn.Conv2d`.
    Conv2d(Conv2d),
    /// `nn.BatchNorm2d` (evaluation mode).
    BatchNorm2d(BatchNorm2d),
    /// A pointwise activation.
    Activation(Activation),
    /// `nn.MaxPool2d`.
    MaxPool2d(MaxPool2d),
    /// `nn.AvgPool2d`.
    AvgPool2d(AvgPool2d),
    /// `nn.AdaptiveAvgPool2d`.
    AdaptiveAvgPool2d(AdaptiveAvgPool2d),
    /// `nn.Linear`.
    Linear(Linear),
    /// `torch.flatten(x, start_dim)`.
    Flatten {
        /// First axis folded.
        start_dim: usize,
    },
    /// Sum of the inputs (a residual connection).
    Add,
    /// Product of two inputs (a squeeze-excitation gate).
    Mul,
    /// `torch.cat(inputs, dim)`.
    Concat {
        /// The axis.
        dim: usize,
    },
    /// `nn.Dropout` and friends: the identity at evaluation.
    Identity,
    /// Mean over the spatial axes, keeping them (`x.mean((2, 3), keepdim=True)`).
    SpatialMean,
    /// `torch.softmax(x, dim=-1)`.
    Softmax,
    /// A fixed tensor (an imported model's constant operand); it reads no input.
    Constant(Tensor),
    /// `x.reshape(..)`, the target worked out from the input's shape.
    Reshape(Reshape),
    /// `x.permute(..)`.
    Transpose(Transpose),
    /// Constant padding (`nn.ZeroPad2d`, `F.pad`).
    Pad(Pad),
    /// `F.interpolate` (nearest or bilinear).
    Resize(Resize),
    /// `a @ b` of two computed tensors.
    MatMul,
    /// `x.mean(axes, keepdim)`.
    ReduceMean(ReduceMean),
    /// `x[.., start:end:step, ..]`.
    Slice(Slice),
    /// `nn.AdaptiveMaxPool2d`.
    AdaptiveMaxPool2d(AdaptiveMaxPool2d),
    /// `nn.LayerNorm` over the trailing axes.
    LayerNorm(LayerNorm),
    /// `nn.GroupNorm`.
    GroupNorm(GroupNorm),
    /// The cosine similarity of each code [N, D] to a reference code (a similarity target).
    Cosine(Cosine),
}

impl Op {
    /// A PyTorch-like class name for display.
    pub fn class_name(&self) -> &'static str {
        match self {
            Op::Input => "Input",
            Op::Conv2d(_) => "Conv2d",
            Op::BatchNorm2d(_) => "BatchNorm2d",
            Op::Activation(a) => a.class_name(),
            Op::MaxPool2d(_) => "MaxPool2d",
            Op::AvgPool2d(_) => "AvgPool2d",
            Op::AdaptiveAvgPool2d(_) => "AdaptiveAvgPool2d",
            Op::Linear(_) => "Linear",
            Op::Flatten { .. } => "Flatten",
            Op::Add => "Add",
            Op::Mul => "Mul",
            Op::Concat { .. } => "Concat",
            Op::Identity => "Identity",
            Op::SpatialMean => "Mean",
            Op::Softmax => "Softmax",
            Op::Constant(_) => "Constant",
            Op::Reshape(Reshape::Flatten2d(_)) => "Flatten",
            Op::Reshape(_) => "Reshape",
            Op::Transpose(_) => "Permute",
            Op::Pad(_) => "Pad",
            Op::Resize(_) => "Upsample",
            Op::MatMul => "MatMul",
            Op::ReduceMean(_) => "Mean",
            Op::Slice(_) => "Slice",
            Op::AdaptiveMaxPool2d(_) => "AdaptiveMaxPool2d",
            Op::LayerNorm(_) => "LayerNorm",
            Op::GroupNorm(_) => "GroupNorm",
            Op::Cosine(_) => "CosineSimilarity",
        }
    }

    /// Number of learned parameters.
    pub fn param_count(&self) -> usize {
        match self {
            Op::Conv2d(c) => c.param_count(),
            Op::BatchNorm2d(b) => b.param_count(),
            Op::Linear(l) => l.param_count(),
            Op::Constant(t) => t.elem_count(),
            Op::LayerNorm(n) => n.param_count(),
            Op::GroupNorm(n) => n.param_count(),
            _ => 0,
        }
    }

    /// The op's output for its inputs, convolutions summed directly.
    pub fn forward(&self, inputs: &[&Tensor]) -> Result<Tensor> {
        self.forward_by(inputs, Convolutions::Direct)
    }

    /// The op's output for its inputs, convolutions by `convolutions`.
    pub fn forward_by(&self, inputs: &[&Tensor], convolutions: Convolutions) -> Result<Tensor> {
        let first = || -> Result<&Tensor> {
            match inputs.first() {
                Some(t) => Ok(*t),
                None => candle_core::bail!("{} needs an input", self.class_name()),
            }
        };
        match self {
            Op::Input | Op::Identity => Ok(first()?.clone()),
            Op::Conv2d(c) => c.forward_by(first()?, convolutions),
            Op::BatchNorm2d(b) => b.forward(first()?),
            Op::Activation(a) => a.forward(first()?),
            Op::MaxPool2d(p) => p.forward(first()?),
            Op::AvgPool2d(p) => p.forward(first()?),
            Op::AdaptiveAvgPool2d(p) => p.forward(first()?),
            Op::Linear(l) => l.forward(first()?),
            Op::Flatten { start_dim } => first()?.flatten_from(*start_dim),
            Op::Add => elementwise::add_forward(inputs),
            Op::Mul => match inputs {
                [a, b] => elementwise::mul_forward(a, b),
                _ => candle_core::bail!("Mul needs two inputs, got {}", inputs.len()),
            },
            Op::Concat { dim } => Tensor::cat(inputs, *dim),
            Op::SpatialMean => first()?.mean_keepdim(3)?.mean_keepdim(2),
            Op::Softmax => {
                let x = first()?;
                let shifted = x.broadcast_sub(&x.max_keepdim(D::Minus1)?)?.exp()?;
                shifted.broadcast_div(&shifted.sum_keepdim(D::Minus1)?)
            }
            Op::Constant(t) => Ok(t.clone()),
            Op::Reshape(r) => r.forward(first()?),
            Op::Transpose(t) => t.forward(first()?),
            Op::Pad(p) => p.forward(first()?),
            Op::Resize(r) => r.for_inputs(inputs)?.forward(first()?),
            Op::MatMul => match inputs {
                [a, b] => matmul::forward(a, b),
                _ => candle_core::bail!("MatMul needs two inputs, got {}", inputs.len()),
            },
            Op::ReduceMean(r) => r.forward(first()?),
            Op::Slice(s) => s.forward(first()?),
            Op::AdaptiveMaxPool2d(p) => p.forward(first()?),
            Op::LayerNorm(n) => n.forward(first()?),
            Op::GroupNorm(n) => n.forward(first()?),
            Op::Cosine(c) => c.forward(first()?),
        }
    }

    /// Which values [`Op::backward`] reads besides the signal (under every rule). What it does
    /// not read it may still ask the shape of.
    pub fn backward_reads(&self) -> BackwardReads {
        let (inputs, output) = match self {
            Op::Activation(a) => (a.backward_reads_input(), true),
            Op::MaxPool2d(_) | Op::Softmax => (true, true),
            Op::Mul
            | Op::MatMul
            | Op::AdaptiveMaxPool2d(_)
            | Op::LayerNorm(_)
            | Op::GroupNorm(_)
            | Op::Cosine(_)
            // The second input of a resize may hold the sizes it resizes to.
            | Op::Resize(_) => (true, false),
            Op::Input
            | Op::Identity
            | Op::Conv2d(_)
            | Op::BatchNorm2d(_)
            | Op::AvgPool2d(_)
            | Op::AdaptiveAvgPool2d(_)
            | Op::Linear(_)
            | Op::Flatten { .. }
            | Op::Add
            | Op::Concat { .. }
            | Op::SpatialMean
            | Op::Constant(_)
            | Op::Reshape(_)
            | Op::Transpose(_)
            | Op::Pad(_)
            | Op::ReduceMean(_)
            | Op::Slice(_) => (false, false),
        };
        BackwardReads { inputs, output }
    }

    /// The signal at each input, given the inputs, the output and the signal at the output.
    pub fn backward(
        &self,
        inputs: &[&Tensor],
        output: &Tensor,
        grad: &Tensor,
        rule: BackwardRule,
    ) -> Result<Vec<Tensor>> {
        let first = || -> Result<&Tensor> {
            match inputs.first() {
                Some(t) => Ok(*t),
                None => candle_core::bail!("{} needs an input", self.class_name()),
            }
        };
        let one = |t: Tensor| Ok(vec![t]);
        match self {
            Op::Input | Op::Identity => one(grad.clone()),
            Op::Conv2d(c) => one(c.input_gradient_by(first()?, grad, Convolutions::Fastest)?),
            Op::BatchNorm2d(b) => one(b.input_gradient(grad)?),
            Op::Activation(a) => one(a.backward(first()?, output, grad, rule)?),
            Op::MaxPool2d(p) => one(p.backward(first()?, output, grad)?),
            Op::AvgPool2d(p) => one(p.backward(first()?, grad)?),
            Op::AdaptiveAvgPool2d(p) => one(p.backward(first()?, grad)?),
            Op::Linear(l) => one(l.input_gradient(grad)?),
            Op::Flatten { .. } => one(grad.reshape(first()?.shape())?),
            Op::Add => inputs
                .iter()
                .map(|t| elementwise::sum_to_shape(grad, t.shape()))
                .collect(),
            Op::Mul => match inputs {
                [a, b] => {
                    let (ga, gb) = elementwise::mul_backward(a, b, grad)?;
                    Ok(vec![ga, gb])
                }
                _ => candle_core::bail!("Mul needs two inputs, got {}", inputs.len()),
            },
            Op::Concat { dim } => elementwise::concat_backward(inputs, grad, *dim),
            Op::SpatialMean => {
                let x = first()?;
                let (_, _, h, w) = x.dims4()?;
                one(grad
                    .affine(1.0 / (h * w) as f64, 0.0)?
                    .broadcast_as(x.shape())?
                    .contiguous()?)
            }
            Op::Softmax => {
                let dot = grad.mul(output)?.sum_keepdim(D::Minus1)?;
                one(output.mul(&grad.broadcast_sub(&dot)?)?)
            }
            Op::Constant(_) => Ok(vec![]),
            Op::Reshape(r) => one(r.backward(first()?, grad)?),
            Op::Transpose(t) => one(t.backward(grad)?),
            Op::Pad(p) => one(p.backward(first()?, grad)?),
            Op::Resize(r) => {
                let x = first()?;
                let mut grads = vec![r.for_inputs(inputs)?.backward(x, grad)?];
                // The second input gives only a size.
                grads.extend(
                    inputs[1..]
                        .iter()
                        .map(|t| t.zeros_like())
                        .collect::<Result<Vec<_>>>()?,
                );
                Ok(grads)
            }
            Op::MatMul => match inputs {
                [a, b] => {
                    let (ga, gb) = matmul::backward(a, b, grad)?;
                    Ok(vec![ga, gb])
                }
                _ => candle_core::bail!("MatMul needs two inputs, got {}", inputs.len()),
            },
            Op::ReduceMean(r) => one(r.backward(first()?, grad)?),
            Op::Slice(s) => one(s.backward(first()?, grad)?),
            Op::AdaptiveMaxPool2d(p) => one(p.backward(first()?, grad)?),
            Op::LayerNorm(n) => one(n.backward(first()?, grad)?),
            Op::GroupNorm(n) => one(n.backward(first()?, grad)?),
            Op::Cosine(c) => one(c.backward(first()?, grad)?),
        }
    }
}

#[cfg(test)]
pub(crate) mod test_compare;
