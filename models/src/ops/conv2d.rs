//! `nn.Conv2d`: grouped, strided, dilated 2-D convolution with explicit or TF-style 'same' padding.

use std::sync::{Arc, OnceLock};

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use super::col2im::conv_input_gradient_by_gemm;
use super::conv2d_cpu;
use super::cpu_slice::with_f32;
use super::depthwise::{depthwise_forward, depthwise_input_gradient};
use super::depthwise_cpu;
use super::epilogue::{ChannelAffine, Epilogue};
use super::pointwise_cpu::FusedActivation;
use super::strided::place_strided;
use super::winograd_cpu::{self, WinogradKernel};
use super::{Activation, BatchNorm2d, Convolutions};

/// How a convolution or pooling window pads its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Fixed zeros on each side: top, bottom, left, right.
    Explicit {
        /// Rows above.
        top: usize,
        /// Rows below.
        bottom: usize,
        /// Columns on the left.
        left: usize,
        /// Columns on the right.
        right: usize,
    },
    /// TensorFlow's 'same': output = ceil(input / stride), the odd pixel padded at the end.
    Same,
}

impl Padding {
    /// The same padding on every side.
    pub fn symmetric(pad: usize) -> Self {
        Padding::Explicit {
            top: pad,
            bottom: pad,
            left: pad,
            right: pad,
        }
    }

    /// (top, bottom, left, right) for an input of `h`×`w` and a window of effective size `kh`×`kw`.
    pub fn resolve(
        &self,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        stride: usize,
    ) -> (usize, usize, usize, usize) {
        match *self {
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => (top, bottom, left, right),
            Padding::Same => {
                let total = |size: usize, k: usize| {
                    let out = size.div_ceil(stride);
                    ((out.saturating_sub(1)) * stride + k).saturating_sub(size)
                };
                let (ph, pw) = (total(h, kh), total(w, kw));
                (ph / 2, ph - ph / 2, pw / 2, pw - pw / 2)
            }
        }
    }
}

/// A 2-D convolution layer; fields as in PyTorch's `nn.Conv2d` state_dict.
#[derive(Clone, Debug)]
pub struct Conv2d {
    /// Kernel, [out_channels, in_channels / groups, kh, kw].
    pub weight: Tensor,
    /// Per-output-channel bias, when the layer has one.
    pub bias: Option<Tensor>,
    /// Stride (the same along both axes).
    pub stride: usize,
    /// Padding.
    pub padding: Padding,
    /// Dilation (the same along both axes).
    pub dilation: usize,
    /// Number of groups.
    pub groups: usize,
    /// The kernel of the input gradient, made on first use.
    backward_kernel: OnceLock<Tensor>,
    /// The weight as [in_channels·kh·kw, out_channels], made on first use.
    weight_transposed: OnceLock<Tensor>,
    /// The weight as [out_channels, kh, kw, in_channels / groups] for the CPU fast path.
    weight_taps_major: OnceLock<Tensor>,
    /// [`Conv2d::weight_taps_major`] packed for the CPU's small planes, made on first use.
    weight_packed: conv2d_cpu::PackedWeight,
    /// The weight's transpose [in_channels·kh·kw, out_channels] packed for the CPU's input
    /// gradient of small planes, made on first use.
    weight_transposed_packed: conv2d_cpu::PackedWeight,
    /// The kernel in the Winograd domain, made on first use.
    winograd: OnceLock<Arc<WinogradKernel>>,
    /// The input gradient's kernel ([`Conv2d::backward_kernel`]) in the Winograd domain, made
    /// on first use.
    winograd_backward: OnceLock<Arc<WinogradKernel>>,
}

impl Conv2d {
    /// A convolution from its parameters.
    pub fn new(
        weight: Tensor,
        bias: Option<Tensor>,
        stride: usize,
        padding: Padding,
        dilation: usize,
        groups: usize,
    ) -> Self {
        Conv2d {
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            backward_kernel: OnceLock::new(),
            weight_transposed: OnceLock::new(),
            weight_taps_major: OnceLock::new(),
            weight_packed: OnceLock::new(),
            weight_transposed_packed: OnceLock::new(),
            winograd: OnceLock::new(),
            winograd_backward: OnceLock::new(),
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims().first().copied().unwrap_or(0)
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.dims().get(1).copied().unwrap_or(0) * self.groups
    }

    /// Kernel height and width.
    pub fn kernel_size(&self) -> (usize, usize) {
        let d = self.weight.dims();
        (
            d.get(2).copied().unwrap_or(1),
            d.get(3).copied().unwrap_or(1),
        )
    }

    /// Whether every channel is convolved on its own (groups = in = out channels, groups > 1).
    fn is_depthwise(&self) -> bool {
        self.groups > 1
            && self.weight.dims().get(1) == Some(&1)
            && self.out_channels() == self.groups
    }

    /// The kernel's extent on its input, `dilation · (k − 1) + 1` per axis.
    pub fn effective_kernel(&self) -> (usize, usize) {
        let (kh, kw) = self.kernel_size();
        (self.dilation * (kh - 1) + 1, self.dilation * (kw - 1) + 1)
    }

    /// The padding (top, bottom, left, right) the layer adds around `x`.
    pub fn pads(&self, x: &Tensor) -> Result<(usize, usize, usize, usize)> {
        let (_, _, h, w) = x.dims4()?;
        let (kh, kw) = self.effective_kernel();
        Ok(self.padding.resolve(h, w, kh, kw, self.stride))
    }

    /// The layer's output for `x` [N, C, H, W], summed directly.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with_pads(x, self.pads(x)?, Convolutions::Direct, Epilogue::default())
    }

    /// The layer's output for `x` [N, C, H, W], computed by `convolutions`.
    pub fn forward_by(&self, x: &Tensor, convolutions: Convolutions) -> Result<Tensor> {
        self.forward_with_pads(x, self.pads(x)?, convolutions, Epilogue::default())
    }

    /// `activation` of `norm` of [`Conv2d::forward_by`] (each when given): the same values,
    /// the BatchNorm's per-channel map and the activation applied by the CPU paths as they
    /// write each image's or plane's output ([`Epilogue`]: no pass of its own over the whole
    /// output, the same bits as those passes), by the layers themselves after the convolution
    /// elsewhere (another device, an activation the CPU paths do not apply).
    pub fn forward_then(
        &self,
        x: &Tensor,
        convolutions: Convolutions,
        norm: Option<&BatchNorm2d>,
        activation: Option<&Activation>,
    ) -> Result<Tensor> {
        let fused = activation.map(FusedActivation::of);
        if self.has_cpu_path(x) && !matches!(fused, Some(None)) {
            let affine = match norm {
                Some(bn) => {
                    let (scale, shift) = bn.host_scale_and_shift()?;
                    Some(ChannelAffine { scale, shift })
                }
                None => None,
            };
            let then = Epilogue {
                affine,
                activation: fused.flatten(),
            };
            return self.forward_with_pads(x, self.pads(x)?, convolutions, then);
        }
        let mut y = self.forward_by(x, convolutions)?;
        if let Some(bn) = norm {
            y = bn.forward(&y)?;
        }
        match activation {
            Some(a) => a.forward(&y),
            None => Ok(y),
        }
    }

    /// Whether `x` goes through a CPU fast path (depthwise, or im2col/Winograd and GEMMs)
    /// rather than candle's convolution.
    fn has_cpu_path(&self, x: &Tensor) -> bool {
        if self.is_depthwise() {
            depthwise_cpu::applies(x)
        } else {
            conv2d_cpu::applies(x, &self.weight)
        }
    }

    /// The layer's output for `x` that already holds its padding (what the layer would read from
    /// its padded input): the convolution with no further padding. Incremental inference runs
    /// the layer on a window of a feature map this way.
    pub fn forward_on_padded(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with_pads(x, (0, 0, 0, 0), Convolutions::Direct, Epilogue::default())
    }

    /// The output for `x` padded by `pads`; `then` (only where [`Conv2d::has_cpu_path`]) applied
    /// as the CPU paths write it.
    fn forward_with_pads(
        &self,
        x: &Tensor,
        pads: (usize, usize, usize, usize),
        convolutions: Convolutions,
        then: Epilogue<'_>,
    ) -> Result<Tensor> {
        if self.is_depthwise() && self.has_cpu_path(x) {
            return depthwise_cpu::forward(
                x,
                &self.weight,
                self.bias.as_ref(),
                self.stride,
                self.dilation,
                pads,
                then,
            );
        }
        if !self.is_depthwise() && self.has_cpu_path(x) {
            let (n, c, h, w) = x.dims4()?;
            let (top, bottom, left, right) = pads;
            let (hp, wp) = (h + top + bottom, w + left + right);
            if convolutions.is_fastest()
                && hp >= 3
                && wp >= 3
                && self.winograd_pays(c, convolutions.batch_for_paths(n), (hp - 2, wp - 2))
            {
                let bias = match &self.bias {
                    Some(b) => Some(b.flatten_all()?.to_vec1::<f32>()?),
                    None => None,
                };
                let kernel = self.winograd_kernel()?;
                let output = (hp - 2, wp - 2);
                then.check(self.out_channels())?;
                let y = with_f32(x, |xs| {
                    // The transforms write the activation alone; a BatchNorm's map (which the
                    // fastest passes fold into the kernel instead) goes over each image after.
                    let activation = then.affine.is_none().then_some(then.activation).flatten();
                    let mut y = winograd_cpu::correlate(
                        xs,
                        (n, c, h, w),
                        kernel,
                        bias.as_deref(),
                        (top, left),
                        output,
                        activation,
                    )?;
                    if then.affine.is_some() {
                        let plane = output.0 * output.1;
                        y.par_chunks_mut((self.out_channels() * plane).max(1))
                            .for_each(|image| then.apply_image(image, plane));
                    }
                    Ok(y)
                })?;
                return Tensor::from_vec(
                    y,
                    (n, self.out_channels(), output.0, output.1),
                    x.device(),
                );
            }
            return conv2d_cpu::forward(
                x,
                self.weight_taps_major()?,
                &self.weight_packed,
                self.bias.as_ref(),
                self.stride,
                self.dilation,
                pads,
                self.groups,
                then,
            );
        }
        if !then.is_empty() {
            candle_core::bail!(
                "a BatchNorm or activation fused into a convolution off the CPU paths"
            );
        }
        self.forward_by_candle_with_pads(x, pads)
    }

    /// [`Conv2d::forward`] by candle's convolution (every device; the CPU fast path is checked
    /// against it).
    pub fn forward_by_candle(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_by_candle_with_pads(x, self.pads(x)?)
    }

    fn forward_by_candle_with_pads(
        &self,
        x: &Tensor,
        (top, bottom, left, right): (usize, usize, usize, usize),
    ) -> Result<Tensor> {
        if self.is_depthwise() {
            let (_, _, h, w) = x.dims4()?;
            let (kh, kw) = self.effective_kernel();
            let (hp, wp) = (h + top + bottom, w + left + right);
            let out = ((hp - kh) / self.stride + 1, (wp - kw) / self.stride + 1);
            let padded = x
                .pad_with_zeros(2, top, bottom)?
                .pad_with_zeros(3, left, right)?;
            let y = depthwise_forward(&padded, &self.weight, self.stride, self.dilation, out)?;
            return match &self.bias {
                Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
                None => Ok(y),
            };
        }
        let y = if top == bottom && left == right && top == left {
            x.conv2d(&self.weight, top, self.stride, self.dilation, self.groups)?
        } else {
            x.pad_with_zeros(2, top, bottom)?
                .pad_with_zeros(3, left, right)?
                .conv2d(&self.weight, 0, self.stride, self.dilation, self.groups)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
            None => Ok(y),
        }
    }

    /// The transposed, spatially flipped kernel that correlates an output gradient into an
    /// input gradient: [in_channels, out_channels / groups, kh, kw].
    fn backward_kernel(&self) -> Result<&Tensor> {
        if let Some(k) = self.backward_kernel.get() {
            return Ok(k);
        }
        let (o, c_per_group, kh, kw) = self.weight.dims4()?;
        let g = self.groups;
        let device = self.weight.device();
        let flip =
            |n: usize| Tensor::from_vec((0..n as u32).rev().collect::<Vec<u32>>(), n, device);
        let kernel = self
            .weight
            .reshape((g, o / g, c_per_group, kh, kw))?
            .transpose(1, 2)?
            .reshape((g * c_per_group, o / g, kh, kw))?
            .index_select(&flip(kh)?, 2)?
            .index_select(&flip(kw)?, 3)?
            .contiguous()?;
        Ok(self.backward_kernel.get_or_init(|| kernel))
    }

    /// The weight flattened to [out_channels, in_channels·kh·kw] and transposed.
    fn weight_transposed(&self) -> Result<&Tensor> {
        if let Some(w) = self.weight_transposed.get() {
            return Ok(w);
        }
        let o = self.out_channels();
        let w = self.weight.reshape((o, ()))?.t()?.contiguous()?;
        Ok(self.weight_transposed.get_or_init(|| w))
    }

    /// The weight permuted to [out_channels, kh, kw, in_channels / groups].
    fn weight_taps_major(&self) -> Result<&Tensor> {
        if let Some(w) = self.weight_taps_major.get() {
            return Ok(w);
        }
        let w = conv2d_cpu::taps_major(&self.weight)?;
        Ok(self.weight_taps_major.get_or_init(|| w))
    }

    /// Whether the Winograd CPU path pays for this layer on `channels` channels into `images`
    /// output planes of `output`.
    fn winograd_pays(&self, channels: usize, images: usize, output: (usize, usize)) -> bool {
        winograd_cpu::pays(
            self.kernel_size(),
            self.stride,
            self.dilation,
            self.groups,
            (channels, self.out_channels()),
            images,
            output,
        )
    }

    /// The kernel in the Winograd domain.
    fn winograd_kernel(&self) -> Result<&WinogradKernel> {
        if let Some(k) = self.winograd.get() {
            return Ok(k);
        }
        let (o, c) = (self.out_channels(), self.in_channels());
        let weight = self.weight.to_dtype(candle_core::DType::F32)?;
        let kernel = with_f32(&weight, |ws| WinogradKernel::new(ws, o, c))?;
        Ok(self.winograd.get_or_init(|| Arc::new(kernel)))
    }

    /// The input gradient's kernel in the Winograd domain.
    fn winograd_backward_kernel(&self) -> Result<&WinogradKernel> {
        if let Some(k) = self.winograd_backward.get() {
            return Ok(k);
        }
        let (o, c) = (self.out_channels(), self.in_channels());
        let weight = self.backward_kernel()?.to_dtype(candle_core::DType::F32)?;
        let kernel = with_f32(&weight, |ws| WinogradKernel::new(ws, c, o))?;
        Ok(self.winograd_backward.get_or_init(|| Arc::new(kernel)))
    }

    /// The gradient with respect to the input `x`, given the output gradient `grad`, summed
    /// directly.
    pub fn input_gradient(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        self.input_gradient_by(x, grad, Convolutions::Direct)
    }

    /// [`Conv2d::input_gradient`] computed by `convolutions`. By [`Convolutions::Fastest`], a
    /// 3×3 stride-1 layer's on the CPU is the correlation of `grad` with the transposed,
    /// flipped kernel by Winograd where it pays, pixels whose window of `grad` is zero set to
    /// exactly zero as the direct sum leaves them ([`winograd_cpu::zero_outside_support`]).
    pub fn input_gradient_by(
        &self,
        x: &Tensor,
        grad: &Tensor,
        convolutions: Convolutions,
    ) -> Result<Tensor> {
        if convolutions.is_fastest()
            && !self.is_depthwise()
            && conv2d_cpu::applies(grad, &self.weight)
        {
            let (_, c, h, w) = x.dims4()?;
            let (n, o, oh, ow) = grad.dims4()?;
            let (top, _, left, _) = self.pads(x)?;
            if top <= 2
                && left <= 2
                && winograd_cpu::pays(
                    self.kernel_size(),
                    self.stride,
                    self.dilation,
                    self.groups,
                    (o, c),
                    convolutions.batch_for_paths(n),
                    (h, w),
                )
            {
                let kernel = self.winograd_backward_kernel()?;
                // The output gradient padded so that input pixel (y, x) reads the output
                // pixels whose windows cover it: rows y + top − 2 ..= y + top.
                let pad = (2 - top, 2 - left);
                let gx = with_f32(grad, |gs| {
                    let mut gx = winograd_cpu::correlate(
                        gs,
                        (n, o, oh, ow),
                        kernel,
                        None,
                        pad,
                        (h, w),
                        None,
                    )?;
                    winograd_cpu::zero_outside_support(
                        gs,
                        (n, o, oh, ow),
                        pad,
                        &mut gx,
                        c,
                        (h, w),
                    )?;
                    Ok(gx)
                })?;
                return Tensor::from_vec(gx, (n, c, h, w), grad.device());
            }
        }
        if self.is_depthwise() && depthwise_cpu::applies(grad) {
            let (_, _, h, w) = x.dims4()?;
            return depthwise_cpu::input_gradient(
                grad,
                &self.weight,
                self.stride,
                self.dilation,
                self.pads(x)?,
                (h, w),
            );
        }
        if !self.is_depthwise() && conv2d_cpu::applies(grad, &self.weight) {
            let (_, _, h, w) = x.dims4()?;
            return conv2d_cpu::input_gradient(
                grad,
                &self.weight,
                &self.weight_transposed_packed,
                self.stride,
                self.dilation,
                self.pads(x)?,
                self.groups,
                (h, w),
            );
        }
        self.input_gradient_by_candle(x, grad)
    }

    /// [`Conv2d::input_gradient`] by candle ops (every device; the CPU fast path is checked
    /// against it).
    pub fn input_gradient_by_candle(&self, x: &Tensor, grad: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (_, _, oh, ow) = grad.dims4()?;
        let (top, bottom, left, right) = self.pads(x)?;
        let (kh, kw) = self.effective_kernel();
        if self.is_depthwise() {
            let (hp, wp) = (h + top + bottom, w + left + right);
            let full =
                depthwise_input_gradient(grad, &self.weight, self.stride, self.dilation, (hp, wp))?;
            return full.narrow(2, top, h)?.narrow(3, left, w);
        }
        // Strided convolutions: Wᵀ·g then col2im, instead of correlating the zero-dilated
        // gradient (s² more work, and a huge im2col for stems with few input channels). At
        // stride 1 candle's convolution of the padded gradient is the faster of the two.
        if self.groups == 1 && self.stride > 1 {
            let (hp, wp) = (h + top + bottom, w + left + right);
            let full = conv_input_gradient_by_gemm(
                grad,
                self.weight_transposed()?,
                self.kernel_size(),
                self.stride,
                self.dilation,
                (hp, wp),
            )?;
            return full.narrow(2, top, h)?.narrow(3, left, w);
        }
        let s = self.stride;
        let dilated = place_strided(grad, 2, 0, s, (oh - 1) * s + 1)?;
        let dilated = place_strided(&dilated, 3, 0, s, (ow - 1) * s + 1)?;
        let padded =
            dilated
                .pad_with_zeros(2, kh - 1, kh - 1)?
                .pad_with_zeros(3, kw - 1, kw - 1)?;
        let full = padded.conv2d(self.backward_kernel()?, 0, 1, self.dilation, self.groups)?;
        let (hp, wp) = (h + top + bottom, w + left + right);
        let (fh, fw) = (full.dim(2)?, full.dim(3)?);
        let full = if fh < hp {
            full.pad_with_zeros(2, 0, hp - fh)?
        } else {
            full
        };
        let full = if fw < wp {
            full.pad_with_zeros(3, 0, wp - fw)?
        } else {
            full
        };
        full.narrow(2, top, h)?.narrow(3, left, w)
    }

    /// Number of parameters.
    pub fn param_count(&self) -> usize {
        self.weight.elem_count() + self.bias.as_ref().map_or(0, Tensor::elem_count)
    }
}
