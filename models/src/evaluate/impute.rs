//! ROAD's noisy linear imputation (Rong et al. 2022, and pytorch-grad-cam's
//! `NoisyLinearImputer`): each removed pixel takes the weighted mean of its eight neighbours
//! inside the image (1/6 across an edge, 1/12 across a corner), removed neighbours included, so
//! the removed pixels solve one sparse linear system per channel (a discrete Laplace equation
//! whose boundary values are the kept pixels); then Gaussian noise of standard deviation
//! `noise` is added to them.
//!
//! The matrix is symmetric and, as long as one pixel is kept, positive definite (every region
//! of removed pixels touches a kept one), so it has one solution, the one pytorch-grad-cam's
//! direct sparse solve (SciPy's `spsolve`) finds. Two paths find it, tested equal:
//! - on the CPU, a sparse Cholesky factorization (faer's, with its fill-reducing ordering),
//!   once for all channels: about 0.1 s for 90 % of a 224×224 image;
//! - on any device (the model's, when it is not the CPU), conjugate gradients in f64 with a
//!   Jacobi preconditioner and the device's own tensor ops, the matrix never built (its
//!   product is a 3×3 convolution of the removed pixels, zero-padded). Its iterations grow with
//!   the removed regions' width (hundreds at 224×224), cheap on a GPU, slow on a CPU.
//!
//! The noise is drawn on the host from ChaCha8 seeded by the caller, so a seed gives the same
//! noise on every device (pytorch-grad-cam draws it from torch's global generator, which no
//! other program reproduces: compare with `noise = 0`).

use candle_core::{DType, Device, Tensor};
use faer::linalg::solvers::Solve;
use faer::sparse::{SparseColMat, Triplet};
use faer::{Mat, Side};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::{Error, Result};

/// The residual, relative to the right-hand side, at which the solve stops.
const TOLERANCE: f64 = 1e-11;
/// Iterations between two looks at the residual.
const CHECK_EVERY: usize = 8;

/// The weights of the eight neighbours, as a 3×3 kernel (the centre is the pixel itself).
fn neighbour_kernel() -> [f64; 9] {
    let (edge, corner) = (1.0 / 6.0, 1.0 / 12.0);
    [corner, edge, corner, edge, 0.0, edge, corner, edge, corner]
}

/// Which way the system is solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Solver {
    /// Sparse Cholesky on the host (the CPU's path).
    HostCholesky,
    /// Conjugate gradients with the device's tensor ops (every other device's path).
    DeviceConjugateGradients,
}

impl Solver {
    /// The path for a device.
    pub fn for_device(device: &Device) -> Solver {
        if device.is_cpu() {
            Solver::HostCholesky
        } else {
            Solver::DeviceConjugateGradients
        }
    }
}

/// `input` [C, H, W] with the pixels where `removed` [H, W] is true replaced by the linear
/// imputation of the kept ones, plus noise of standard deviation `noise` drawn from `rng`.
pub fn noisy_linear_impute(
    input: &Tensor,
    removed: &[bool],
    noise: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Tensor> {
    noisy_linear_impute_with(
        Solver::for_device(input.device()),
        input,
        removed,
        noise,
        rng,
    )
}

/// [`noisy_linear_impute`] by the given path.
pub fn noisy_linear_impute_with(
    solver: Solver,
    input: &Tensor,
    removed: &[bool],
    noise: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Tensor> {
    let (c, h, w) = input.dims3()?;
    if removed.len() != h * w {
        return Err(Error::InvalidArgument(format!(
            "an imputation mask of {} pixels for an input of {h}×{w}",
            removed.len()
        )));
    }
    let unknowns = removed.iter().filter(|&&r| r).count();
    if unknowns == 0 {
        return Ok(input.clone());
    }
    if unknowns == removed.len() {
        return Err(Error::InvalidArgument(
            "the imputation removes every pixel: there is nothing to impute from".into(),
        ));
    }
    let device = input.device();
    let dtype = input.dtype();
    let mask: Vec<f64> = removed.iter().map(|&r| f64::from(u8::from(r))).collect();
    let mask = Tensor::from_vec(mask, (1, 1, h, w), device)?;
    let kept = mask.affine(-1.0, 1.0)?;
    let image = input.to_dtype(DType::F64)?.reshape((c, 1, h, w))?;
    let mut filled = match solver {
        Solver::HostCholesky => {
            let pixels = image
                .flatten_all()?
                .to_device(&Device::Cpu)?
                .to_vec1::<f64>()?;
            let solution = solve_on_host(&pixels, removed, c, h, w)?;
            Tensor::from_vec(solution, (c, 1, h, w), device)?
        }
        Solver::DeviceConjugateGradients => solve_on_device(&image, &mask, &kept)?,
    };
    if noise > 0.0 {
        let draws: Vec<f64> = (0..c * h * w)
            .map(|_| {
                let draw: f64 = StandardNormal.sample(rng);
                noise * draw
            })
            .collect();
        let draws = Tensor::from_vec(draws, (c, 1, h, w), device)?;
        filled = filled.add(&draws)?;
    }
    let out = image
        .broadcast_mul(&kept)?
        .add(&filled.broadcast_mul(&mask)?)?;
    Ok(out.reshape((c, h, w))?.to_dtype(dtype)?)
}

/// The solution at the removed pixels (zeros elsewhere) of `pixels` [C, H, W], by a sparse
/// Cholesky factorization of the matrix, once for every channel.
fn solve_on_host(
    pixels: &[f64],
    removed: &[bool],
    channels: usize,
    h: usize,
    w: usize,
) -> Result<Vec<f64>> {
    let kernel = neighbour_kernel();
    let mut variable = vec![usize::MAX; h * w];
    let mut unknowns = 0;
    for (i, _) in removed.iter().enumerate().filter(|(_, &r)| r) {
        variable[i] = unknowns;
        unknowns += 1;
    }
    let mut entries = Vec::with_capacity(unknowns * 5);
    let mut rhs = Mat::<f64>::zeros(unknowns, channels);
    for y in 0..h {
        for x in 0..w {
            let p = y * w + x;
            if !removed[p] {
                continue;
            }
            let row = variable[p];
            let mut diagonal = 0.0;
            for dy in 0..3 {
                for dx in 0..3 {
                    let (Some(yy), Some(xx)) = ((y + dy).checked_sub(1), (x + dx).checked_sub(1))
                    else {
                        continue;
                    };
                    let weight = kernel[dy * 3 + dx];
                    if yy >= h || xx >= w || weight == 0.0 {
                        continue;
                    }
                    diagonal += weight;
                    let q = yy * w + xx;
                    if removed[q] {
                        // The lower triangle only: Cholesky reads one side.
                        if variable[q] > row {
                            entries.push(Triplet::new(variable[q], row, -weight));
                        }
                    } else {
                        for ch in 0..channels {
                            rhs[(row, ch)] += weight * pixels[ch * h * w + q];
                        }
                    }
                }
            }
            entries.push(Triplet::new(row, row, diagonal));
        }
    }
    let matrix = SparseColMat::<usize, f64>::try_new_from_triplets(unknowns, unknowns, &entries)
        .map_err(|e| Error::InvalidArgument(format!("the imputation's matrix: {e:?}")))?;
    let factor = matrix.sp_cholesky(Side::Lower).map_err(|e| {
        Error::InvalidArgument(format!("the imputation's matrix does not factor: {e:?}"))
    })?;
    factor.solve_in_place(rhs.as_mut());
    let mut out = vec![0.0; channels * h * w];
    for (p, &v) in variable.iter().enumerate() {
        if v != usize::MAX {
            for ch in 0..channels {
                out[ch * h * w + p] = rhs[(v, ch)];
            }
        }
    }
    Ok(out)
}

/// The solution at the removed pixels (`mask` 1, zeros elsewhere) of `image` [C, 1, H, W] by
/// conjugate gradients with the device's tensor ops.
fn solve_on_device(image: &Tensor, mask: &Tensor, kept: &Tensor) -> Result<Tensor> {
    let device = image.device();
    let (c, _, h, w) = image.dims4()?;
    let kernel = Tensor::from_vec(neighbour_kernel().to_vec(), (1, 1, 3, 3), device)?;
    let neighbours = |x: &Tensor| -> Result<Tensor> { Ok(x.conv2d(&kernel, 1, 1, 1, 1)?) };
    // The weight of each pixel's neighbours inside the image: the diagonal.
    let diagonal = neighbours(&Tensor::ones((1, 1, h, w), DType::F64, device)?)?;
    // For a removed pixel p: diagonal_p x_p − Σ_removed q w_pq x_q = Σ_kept q w_pq image_q.
    let apply = |x: &Tensor| -> Result<Tensor> {
        let spread = neighbours(&x.broadcast_mul(mask)?)?;
        Ok(x.broadcast_mul(&diagonal)?
            .sub(&spread)?
            .broadcast_mul(mask)?)
    };
    let b = neighbours(&image.broadcast_mul(kept)?)?.broadcast_mul(mask)?;
    conjugate_gradients(&apply, &b, &mask.broadcast_div(&diagonal)?, c)
}

/// Solves `apply(x) = b` for `channels` independent right-hand sides [channels, 1, H, W]
/// (preconditioned by multiplying with `inverse_diagonal`, zero off the unknowns).
fn conjugate_gradients(
    apply: &dyn Fn(&Tensor) -> Result<Tensor>,
    b: &Tensor,
    inverse_diagonal: &Tensor,
    channels: usize,
) -> Result<Tensor> {
    let device = b.device();
    let per_channel = |t: &Tensor| -> Result<Vec<f64>> {
        Ok(t.flatten_from(1)?
            .sum(1)?
            .to_device(&Device::Cpu)?
            .to_vec1::<f64>()?)
    };
    let column = |values: Vec<f64>| -> Result<Tensor> {
        Ok(Tensor::from_vec(values, (channels, 1, 1, 1), device)?)
    };
    let b_norm: Vec<f64> = per_channel(&b.sqr()?)?;
    let mut x = b.zeros_like()?;
    let mut r = b.clone();
    let mut z = r.broadcast_mul(inverse_diagonal)?;
    let mut p = z.clone();
    let mut rz = per_channel(&r.mul(&z)?)?;
    let unknowns = per_channel(&inverse_diagonal.gt(0.0)?.to_dtype(DType::F64)?)?[0] as usize;
    // Conjugate gradients end in at most `unknowns` steps in exact arithmetic; rounding can
    // take a few more.
    let limit = 2 * unknowns + 100;
    for iteration in 0..limit {
        if iteration % CHECK_EVERY == 0 {
            let r_norm = per_channel(&r.sqr()?)?;
            if r_norm
                .iter()
                .zip(&b_norm)
                .all(|(r, b)| *r <= TOLERANCE * TOLERANCE * b)
            {
                return Ok(x);
            }
        }
        let ap = apply(&p)?;
        let pap = per_channel(&p.mul(&ap)?)?;
        // A channel already solved (its residual exactly zero) takes no step.
        let alpha: Vec<f64> = rz
            .iter()
            .zip(&pap)
            .map(|(rz, pap)| if *pap > 0.0 { rz / pap } else { 0.0 })
            .collect();
        let alpha = column(alpha)?;
        x = x.add(&p.broadcast_mul(&alpha)?)?;
        r = r.sub(&ap.broadcast_mul(&alpha)?)?;
        z = r.broadcast_mul(inverse_diagonal)?;
        let rz_next = per_channel(&r.mul(&z)?)?;
        let beta: Vec<f64> = rz_next
            .iter()
            .zip(&rz)
            .map(|(next, last)| if *last > 0.0 { next / last } else { 0.0 })
            .collect();
        p = z.add(&p.broadcast_mul(&column(beta)?)?)?;
        rz = rz_next;
    }
    Err(Error::InvalidArgument(format!(
        "the linear imputation did not converge in {limit} iterations"
    )))
}

/// A generator for [`noisy_linear_impute`]'s noise.
pub fn noise_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The removed pixels each equal the weighted mean of their neighbours, and the kept ones
    /// are untouched.
    #[test]
    fn removed_pixels_are_the_mean_of_their_neighbours() {
        let (c, h, w) = (2, 9, 11);
        let values: Vec<f32> = (0..c * h * w)
            .map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0)
            .collect();
        let input = Tensor::from_vec(values.clone(), (c, h, w), &Device::Cpu).unwrap();
        let removed: Vec<bool> = (0..h * w).map(|i| (i * 7 % 5) < 2 || i < w).collect();
        let out = noisy_linear_impute(&input, &removed, 0.0, &mut noise_rng(0))
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec3::<f64>()
            .unwrap();
        let k = neighbour_kernel();
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let i = y * w + x;
                    if !removed[i] {
                        assert_eq!(out[ch][y][x] as f32, values[ch * h * w + i]);
                        continue;
                    }
                    let (mut sum, mut weight) = (0.0, 0.0);
                    for dy in -1i64..=1 {
                        for dx in -1i64..=1 {
                            let (yy, xx) = (y as i64 + dy, x as i64 + dx);
                            if (dy, dx) == (0, 0) || yy < 0 || xx < 0 {
                                continue;
                            }
                            let (yy, xx) = (yy as usize, xx as usize);
                            if yy >= h || xx >= w {
                                continue;
                            }
                            let wt = k[((dy + 1) * 3 + dx + 1) as usize];
                            sum += wt * out[ch][yy][xx];
                            weight += wt;
                        }
                    }
                    assert!(
                        (out[ch][y][x] - sum / weight).abs() < 1e-6,
                        "{ch} {y} {x}: {} vs {}",
                        out[ch][y][x],
                        sum / weight
                    );
                }
            }
        }
    }

    /// The CPU's Cholesky and the devices' conjugate gradients find the same solution.
    #[test]
    fn both_solvers_agree() {
        let (c, h, w) = (3, 40, 37);
        let values: Vec<f32> = (0..c * h * w)
            .map(|i| ((i * 7919 % 1009) as f32 / 500.0) - 1.0)
            .collect();
        let input = Tensor::from_vec(values, (c, h, w), &Device::Cpu).unwrap();
        // A large block, a thin line and scattered pixels.
        let removed: Vec<bool> = (0..h * w)
            .map(|i| {
                let (y, x) = (i / w, i % w);
                (5..30).contains(&y) && (3..25).contains(&x) || x == 33 || i % 11 == 0
            })
            .collect();
        let solve = |solver| {
            noisy_linear_impute_with(solver, &input, &removed, 0.0, &mut noise_rng(0))
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        let (host, device) = (
            solve(Solver::HostCholesky),
            solve(Solver::DeviceConjugateGradients),
        );
        for (i, (a, b)) in host.iter().zip(&device).enumerate() {
            assert!((a - b).abs() < 1e-6, "{i}: {a} vs {b}");
        }
    }

    #[test]
    fn noise_is_seeded_and_only_on_removed_pixels() {
        let input = Tensor::ones((3, 6, 6), DType::F32, &Device::Cpu).unwrap();
        let removed: Vec<bool> = (0..36).map(|i| i % 3 == 0).collect();
        let a = noisy_linear_impute(&input, &removed, 0.5, &mut noise_rng(7)).unwrap();
        let b = noisy_linear_impute(&input, &removed, 0.5, &mut noise_rng(7)).unwrap();
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a, b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        for (i, v) in a.iter().enumerate() {
            if removed[i % 36] {
                assert_ne!(*v, 1.0);
            } else {
                assert_eq!(*v, 1.0);
            }
        }
    }

    #[test]
    fn nothing_to_impute_from_is_refused() {
        let input = Tensor::ones((1, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let e = noisy_linear_impute(&input, &[true; 4], 0.0, &mut noise_rng(0)).unwrap_err();
        assert!(e.to_string().contains("every pixel"), "{e}");
        assert!(noisy_linear_impute(&input, &[true; 3], 0.0, &mut noise_rng(0)).is_err());
    }
}
