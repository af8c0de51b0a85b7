//! The trainable convolution: candle's `conv2d`, with a CPU fast path for its backward pass.
//!
//! candle's autograd takes a convolution's input gradient with `conv_transpose2d`, whose CPU
//! kernel is a direct loop about fifteen times slower than the forward `conv2d` (it dominated a
//! training step). On the CPU the convolution is therefore a custom op whose forward is candle's
//! `conv2d` and whose backward is two `conv2d`s as well: the input gradient correlates the
//! stride-dilated output gradient with the flipped, transposed kernel (as the engine's own
//! `Conv2d` backward does), and the weight gradient is candle's formula. On other devices
//! candle's own `conv2d` and autograd are used unchanged.

use candle_core::{CpuStorage, CustomOp2, Device, Layout, Shape, Storage, Tensor};

/// A bias-free, ungrouped 2-d convolution with square stride and padding.
#[derive(Clone, Copy, Debug)]
pub struct ConvGeometry {
    /// The stride.
    pub stride: usize,
    /// The zero padding on each side.
    pub padding: usize,
}

impl ConvGeometry {
    /// `x` [N, C, H, W] convolved with `weight` [O, C, k, k].
    pub fn forward(self, x: &Tensor, weight: &Tensor) -> candle_core::Result<Tensor> {
        if x.device().is_cpu() {
            x.contiguous()?
                .apply_op2(&weight.contiguous()?, CpuConv(self))
        } else {
            x.conv2d(weight, self.padding, self.stride, 1, 1)
        }
    }

    /// The gradient at the input [N, C, H, W] of a convolution with `weight` given the gradient
    /// `grad` [N, O, Ho, Wo] at its output.
    pub fn input_gradient(
        self,
        grad: &Tensor,
        weight: &Tensor,
        input_size: (usize, usize),
    ) -> candle_core::Result<Tensor> {
        let k = weight.dim(2)?;
        if self.padding >= k {
            candle_core::bail!("padding {} is not below the kernel size {k}", self.padding)
        }
        let (n, o, ho, wo) = grad.dims4()?;
        let s = self.stride;
        // Insert s - 1 zeros between the gradient's values (and up to s - 1 after the last one,
        // for input rows the forward pass never reached), then correlate with the flipped kernel.
        let dilated = if s == 1 {
            grad.clone()
        } else {
            let rest_h = (input_size.0 + 2 * self.padding - k) % s;
            let rest_w = (input_size.1 + 2 * self.padding - k) % s;
            grad.reshape((n, o, ho, 1, wo, 1))?
                .pad_with_zeros(3, 0, s - 1)?
                .pad_with_zeros(5, 0, s - 1)?
                .reshape((n, o, ho * s, wo * s))?
                .narrow(2, 0, (ho - 1) * s + 1 + rest_h)?
                .narrow(3, 0, (wo - 1) * s + 1 + rest_w)?
        };
        let flipped = weight.transpose(0, 1)?.contiguous()?.flip(&[2, 3])?;
        dilated.conv2d(&flipped, k - 1 - self.padding, 1, 1, 1)
    }

    /// The gradient at `weight` [O, C, k, k] given the input `x` and the output gradient `grad`
    /// (candle's own formula).
    pub fn weight_gradient(
        self,
        x: &Tensor,
        grad: &Tensor,
        weight: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let (_, _, k0, k1) = weight.dims4()?;
        let g = x
            .transpose(0, 1)?
            .conv2d(&grad.transpose(0, 1)?, self.padding, 1, self.stride, 1)?
            .transpose(0, 1)?;
        g.narrow(2, 0, k0)?.narrow(3, 0, k1)?.contiguous()
    }
}

/// The CPU convolution op (see the module's documentation).
struct CpuConv(ConvGeometry);

/// A CPU tensor holding a copy of the f32 values `layout` selects in `storage`.
fn cpu_tensor(storage: &CpuStorage, layout: &Layout) -> candle_core::Result<Tensor> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Tensor::from_slice(&data[start..end], layout.shape(), &Device::Cpu),
        None => candle_core::bail!("the CPU convolution needs contiguous operands"),
    }
}

impl CustomOp2 for CpuConv {
    fn name(&self) -> &'static str {
        "convlens-cpu-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = cpu_tensor(s1, l1)?;
        let w = cpu_tensor(s2, l2)?;
        let y = x
            .conv2d(&w, self.0.padding, self.0.stride, 1, 1)?
            .contiguous()?;
        let (storage, layout) = y.storage_and_layout();
        match (&*storage, layout.contiguous_offsets()) {
            (Storage::Cpu(cpu), Some((0, end))) if end == layout.shape().elem_count() => {
                Ok((cpu.clone(), layout.shape().clone()))
            }
            _ => candle_core::bail!("the CPU convolution produced an unexpected layout"),
        }
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _result: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, h, w) = x.dims4()?;
        let grad_x = self.0.input_gradient(grad, weight, (h, w))?;
        let grad_w = self.0.weight_gradient(x, grad, weight)?;
        Ok((Some(grad_x), Some(grad_w)))
    }
}
