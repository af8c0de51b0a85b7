//! RISE (Petsiuk et al. 2018, "RISE: Randomized Input Sampling for Explanation of Black-box
//! Models"), as its authors' code computes it: `N` random binary grids of `s`×`s` cells, each
//! kept with probability `p`, upsampled bilinearly to `(s + 1)` cells' size and cropped at a
//! random shift; the input times each mask goes through the network, and the saliency is the
//! masks weighted by the class's probability on each copy, over `N · p`. The map is [H, W] at the
//! input's resolution.

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cam::softmax_last;
use super::target::{check_classes, summed_scores};
use crate::progress::Progress;
use crate::{Error, Model, Result};

/// RISE's random draws: the grids and the shifts of the masks.
#[derive(Debug, Clone)]
pub struct RiseMasks {
    /// The binary grids, [N, s, s] (1 where the cell is kept).
    pub grids: Tensor,
    /// Each mask's shift (rows, columns) into its upsampled grid, below one cell's size.
    pub shifts: Vec<(usize, usize)>,
}

impl RiseMasks {
    /// `count` masks of `cells`×`cells` cells kept with probability `keep`, for an input of
    /// `height`×`width`, from ChaCha8 seeded with `seed` (its third stream): every grid first,
    /// then each mask's shift, in the order the authors' code draws them.
    pub fn draw(
        count: usize,
        cells: usize,
        keep: f64,
        height: usize,
        width: usize,
        seed: u64,
    ) -> Result<Self> {
        check_parameters(count, cells, keep, height, width)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(2);
        let grid: Vec<f32> = (0..count * cells * cells)
            .map(|_| f32::from(u8::from(rng.random::<f64>() < keep)))
            .collect();
        let (cell_h, cell_w) = (cell_size(height, cells), cell_size(width, cells));
        let shifts = (0..count)
            .map(|_| (rng.random_range(0..cell_h), rng.random_range(0..cell_w)))
            .collect();
        Ok(RiseMasks {
            grids: Tensor::from_vec(grid, (count, cells, cells), &Device::Cpu)?,
            shifts,
        })
    }

    /// How many masks there are.
    pub fn len(&self) -> usize {
        self.shifts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.shifts.is_empty()
    }

    /// Masks `start..start + len` for a `height`×`width` input, [len, 1, H, W] on `device`:
    /// each grid upsampled bilinearly (half-pixel centres, mirrored at the borders: scikit-image's
    /// `resize(order=1, mode='reflect', anti_aliasing=False)`, which the authors use) to
    /// `(s + 1) · ceil(H / s)` rows and as many columns, then cropped at its shift.
    pub fn masks(
        &self,
        start: usize,
        len: usize,
        height: usize,
        width: usize,
        device: &Device,
    ) -> Result<Tensor> {
        let (rows, columns) = self.upsampling_matrices(height, width, device)?;
        self.masks_with(&rows, &columns, start, len, height, width)
    }

    /// The row and column upsampling matrices for a `height`×`width` input, on `device`.
    fn upsampling_matrices(
        &self,
        height: usize,
        width: usize,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let (_, cells, _) = self.grids.dims3()?;
        Ok((
            upsampling(cells, height)?.to_device(device)?,
            upsampling(cells, width)?.to_device(device)?,
        ))
    }

    /// [`RiseMasks::masks`] with the upsampling matrices already made.
    fn masks_with(
        &self,
        rows: &Tensor,
        columns: &Tensor,
        start: usize,
        len: usize,
        height: usize,
        width: usize,
    ) -> Result<Tensor> {
        if start + len > self.shifts.len() {
            return Err(Error::InvalidArgument(format!(
                "masks {start}..{} asked of RISE's {}",
                start + len,
                self.shifts.len()
            )));
        }
        let device = rows.device();
        let mut left = Vec::with_capacity(len);
        let mut right = Vec::with_capacity(len);
        for &(dy, dx) in &self.shifts[start..start + len] {
            left.push(rows.narrow(0, dy, height)?);
            right.push(columns.narrow(0, dx, width)?.t()?);
        }
        let grids = self
            .grids
            .narrow(0, start, len)?
            .to_device(device)?
            .to_dtype(DType::F32)?;
        let masks = Tensor::stack(&left, 0)?
            .matmul(&grids)?
            .matmul(&Tensor::stack(&right, 0)?)?;
        Ok(masks.unsqueeze(1)?)
    }
}

/// One cell's size in pixels along a side of `size`: `ceil(size / cells)`.
fn cell_size(size: usize, cells: usize) -> usize {
    size.div_ceil(cells)
}

/// The [(s + 1) · cell, s] matrix of the bilinear upsampling of `cells` samples.
fn upsampling(cells: usize, size: usize) -> Result<Tensor> {
    let up = (cells + 1) * cell_size(size, cells);
    let mut m = vec![0f32; up * cells];
    let last = cells as i64 - 1;
    let mirror = |i: i64| -> usize {
        let i = if i < 0 { -i } else { i };
        let i = if i > last { 2 * last - i } else { i };
        i.clamp(0, last) as usize
    };
    for o in 0..up {
        let c = (o as f64 + 0.5) * cells as f64 / up as f64 - 0.5;
        let i0 = c.floor();
        let t = c - i0;
        let i0 = i0 as i64;
        m[o * cells + mirror(i0)] += (1.0 - t) as f32;
        m[o * cells + mirror(i0 + 1)] += t as f32;
    }
    Ok(Tensor::from_vec(m, (up, cells), &Device::Cpu)?)
}

/// Refuses parameters that make no masks.
fn check_parameters(
    count: usize,
    cells: usize,
    keep: f64,
    height: usize,
    width: usize,
) -> Result<()> {
    if count == 0 {
        return Err(Error::InvalidArgument(
            "RISE needs at least one mask (--rise-masks)".into(),
        ));
    }
    if cells == 0 || cells > height.min(width) {
        return Err(Error::InvalidArgument(format!(
            "RISE's grid of {cells}×{cells} cells does not fit a {height}×{width} input \
             (--rise-cells: 1 to {})",
            height.min(width)
        )));
    }
    if !(keep > 0.0 && keep <= 1.0) {
        return Err(Error::InvalidArgument(format!(
            "RISE keeps each cell with a probability in (0, 1], not {keep} (--rise-keep)"
        )));
    }
    Ok(())
}

/// RISE's saliency [H, W] of `input` [1, C, H, W] for the sum of the `classes`' probabilities,
/// with `masks` whose cells were kept with probability `keep`, `batch` masked copies through
/// the network at a time.
pub fn rise(
    model: &Model,
    input: &Tensor,
    classes: &[usize],
    masks: &RiseMasks,
    keep: f64,
    batch: usize,
    progress: &dyn Progress,
) -> Result<Tensor> {
    let (_, _, height, width) = input.dims4()?;
    let (_, cells, _) = masks.grids.dims3()?;
    check_parameters(masks.len(), cells, keep, height, width)?;
    let (rows, columns) = masks.upsampling_matrices(height, width, input.device())?;
    let mut total: Option<Tensor> = None;
    let mut start = 0;
    while start < masks.len() {
        let len = batch.max(1).min(masks.len() - start);
        let m = masks.masks_with(&rows, &columns, start, len, height, width)?;
        let logits = model.logits(&m.broadcast_mul(input)?)?;
        check_classes(classes, logits.dim(1)?)?;
        let p = summed_scores(&softmax_last(&logits.to_dtype(DType::F32)?)?, classes)?;
        let part = m
            .squeeze(1)?
            .broadcast_mul(&p.reshape((len, 1, 1))?)?
            .sum(0)?;
        total = Some(match total {
            Some(t) => t.add(&part)?,
            None => part,
        });
        start += len;
        progress.step(start, masks.len(), "explain")?;
    }
    let total = total.ok_or_else(|| Error::InvalidArgument("no masks".into()))?;
    Ok(total.affine(1.0 / (masks.len() as f64 * keep), 0.0)?)
}
