//! Window geometry shared by max and average pooling: output size, padding, window extraction.

use candle_core::{Result, Tensor};

use super::strided::{pad_with_value, place_strided, take_strided};

/// The size and placement of a pooling window over an input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolWindow {
    /// Kernel height and width.
    pub kernel: (usize, usize),
    /// Stride along height and width.
    pub stride: (usize, usize),
    /// Padding: top, bottom, left, right.
    pub padding: (usize, usize, usize, usize),
    /// Round the output size up (PyTorch's `ceil_mode`).
    pub ceil_mode: bool,
    /// Spacing between a window's taps along height and width (1: adjacent).
    pub dilation: (usize, usize),
}

/// One pooling window's geometry resolved for an input size.
pub struct ResolvedWindow {
    /// Output height and width.
    pub out: (usize, usize),
    /// Height and width of the padded input the windows read from.
    pub padded: (usize, usize),
}

fn output_len(size: usize, before: usize, after: usize, k: usize, s: usize, ceil: bool) -> usize {
    let span = (size + before + after).saturating_sub(k);
    let mut out = if ceil { span.div_ceil(s) } else { span / s } + 1;
    // PyTorch: the last window must start inside the input or the left padding.
    if ceil && (out - 1) * s >= size + before {
        out -= 1;
    }
    out
}

impl PoolWindow {
    /// A square window with symmetric padding, as `nn.MaxPool2d(k, s, p, ceil_mode)` takes it.
    pub fn square(kernel: usize, stride: usize, padding: usize, ceil_mode: bool) -> Self {
        PoolWindow {
            kernel: (kernel, kernel),
            stride: (stride, stride),
            padding: (padding, padding, padding, padding),
            ceil_mode,
            dilation: (1, 1),
        }
    }

    /// The window's extent on the input: `dilation · (kernel − 1) + 1` per axis.
    pub fn extent(&self) -> (usize, usize) {
        let (kh, kw) = self.kernel;
        let (dh, dw) = self.dilation;
        (dh * (kh.max(1) - 1) + 1, dw * (kw.max(1) - 1) + 1)
    }

    /// The output size for an `h`×`w` input.
    pub fn resolve(&self, h: usize, w: usize) -> ResolvedWindow {
        let (kh, kw) = self.extent();
        let (sh, sw) = self.stride;
        let (t, b, l, r) = self.padding;
        let oh = output_len(h, t, b, kh, sh, self.ceil_mode);
        let ow = output_len(w, l, r, kw, sw, self.ceil_mode);
        ResolvedWindow {
            out: (oh, ow),
            padded: ((oh - 1) * sh + kh, (ow - 1) * sw + kw),
        }
    }

    /// `x` padded with `value` so every window lies inside it (cropped where windows stop early).
    pub fn pad(&self, x: &Tensor, value: f64) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let r = self.resolve(h, w);
        let (t, _, l, _) = self.padding;
        let fit =
            |x: Tensor, dim: usize, before: usize, size: usize, want: usize| -> Result<Tensor> {
                if before + size >= want {
                    pad_with_value(&x, dim, before, 0, value)?.narrow(dim, 0, want)
                } else {
                    pad_with_value(&x, dim, before, want - before - size, value)
                }
            };
        let x = fit(x.clone(), 2, t, h, r.padded.0)?;
        fit(x, 3, l, w, r.padded.1)
    }

    /// The window element at offset (`i`, `j`) for every output position.
    pub fn window_element(
        &self,
        padded: &Tensor,
        out: (usize, usize),
        i: usize,
        j: usize,
    ) -> Result<Tensor> {
        let (dh, dw) = self.dilation;
        let rows = take_strided(padded, 2, i * dh, out.0, self.stride.0)?;
        take_strided(&rows, 3, j * dw, out.1, self.stride.1)
    }

    /// Adjoint of [`PoolWindow::window_element`]: spreads per-output values back onto the padded
    /// input's grid at offset (`i`, `j`).
    pub fn place_element(
        &self,
        values: &Tensor,
        padded: (usize, usize),
        i: usize,
        j: usize,
    ) -> Result<Tensor> {
        let (dh, dw) = self.dilation;
        let cols = place_strided(values, 3, j * dw, self.stride.1, padded.1)?;
        place_strided(&cols, 2, i * dh, self.stride.0, padded.0)
    }

    /// Crops a tensor on the padded grid back to the `h`×`w` input, zero-filling any part of the
    /// input no window covered.
    pub fn unpad(&self, padded: &Tensor, h: usize, w: usize) -> Result<Tensor> {
        let (t, _, l, _) = self.padding;
        let fit = |x: Tensor, dim: usize, before: usize, size: usize| -> Result<Tensor> {
            let have = x.dim(dim)?;
            let x = if have < before + size {
                x.pad_with_zeros(dim, 0, before + size - have)?
            } else {
                x
            };
            x.narrow(dim, before, size)
        };
        let x = fit(padded.clone(), 2, t, h)?;
        fit(x, 3, l, w)
    }
}
