//! t-SNE maps of codes, through the `bhtsne` crate: exact for small sets, Barnes–Hut beyond, with
//! scikit-learn's defaults (perplexity 30, early exaggeration 12 for 250 of 1000 iterations,
//! learning rate `max(N / 12 / 4, 50)`, PCA initialisation scaled to a standard deviation of
//! 1e-4).
//!
//! The nearest neighbours the Barnes–Hut affinities are built from are computed here, exactly,
//! with matrix products on the device (`neighbors::knn_euclidean`), instead of by the crate's
//! vantage-point tree, which is slow on high-dimensional codes. The fit runs in its own rayon pool:
//! with one thread (the default) the map is the same bit for bit on every run; with more, the
//! order of parallel sums changes the result from run to run.

use bhtsne::{tSNE, Neighbor};
use candle_core::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::neighbors::knn_euclidean;
use super::pca::pca;
use crate::progress::Progress;
use crate::{Error, Result};

/// How the map starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum TsneInit {
    /// The first two principal components, scaled to a standard deviation of 1e-4
    /// (scikit-learn's default).
    Pca,
    /// Gaussian noise of standard deviation 1e-4 from the seed.
    Random,
}

/// t-SNE settings.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TsneOptions {
    /// Effective number of neighbours; lowered to `(N − 1) / 3` for small sets.
    pub perplexity: f32,
    /// Barnes–Hut accuracy (smaller is more exact and slower).
    pub theta: f32,
    /// Gradient-descent iterations.
    pub epochs: usize,
    /// Seed for the initialisation.
    pub seed: u64,
    /// How the map starts.
    pub init: TsneInit,
    /// Sets of at most this many points use exact t-SNE.
    pub exact_up_to: usize,
    /// Threads for the fit; 1 makes the map reproducible bit for bit, 0 uses every core.
    pub threads: usize,
}

impl Default for TsneOptions {
    fn default() -> Self {
        TsneOptions {
            perplexity: 30.0,
            theta: 0.5,
            epochs: 1000,
            seed: 0,
            init: TsneInit::Pca,
            exact_up_to: 1000,
            threads: 1,
        }
    }
}

/// A 2-D t-SNE map.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TsneMap {
    /// One point per row of the codes.
    pub points: Vec<[f32; 2]>,
    /// The perplexity used.
    pub perplexity: f32,
    /// Whether the exact algorithm ran (else Barnes–Hut).
    pub exact: bool,
}

/// The t-SNE map of `codes` (`dim` values per row). Reports progress every 10 iterations;
/// cancellation is honoured before the fit and after it (the crate's fit cannot be interrupted).
pub fn tsne(
    codes: &[f32],
    dim: usize,
    options: &TsneOptions,
    device: &Device,
    progress: &dyn Progress,
) -> Result<TsneMap> {
    if dim == 0 || !codes.len().is_multiple_of(dim) {
        return Err(Error::InvalidArgument(format!(
            "{} code values do not make rows of {dim}",
            codes.len()
        )));
    }
    let n = codes.len() / dim;
    if n < 4 {
        return Err(Error::InvalidArgument(format!(
            "t-SNE needs at least 4 images, got {n}"
        )));
    }
    if !options.perplexity.is_finite() || options.perplexity <= 0.0 {
        return Err(Error::InvalidArgument(format!(
            "the perplexity must be positive, got {}",
            options.perplexity
        )));
    }
    if options.theta.is_nan() || options.theta <= 0.0 {
        return Err(Error::InvalidArgument(format!(
            "theta must be positive, got {}",
            options.theta
        )));
    }
    if codes.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument(
            "the codes hold NaN or infinite values".into(),
        ));
    }
    // The crate refuses N − 1 < 3·perplexity.
    let perplexity = options.perplexity.min(((n - 1) / 3) as f32);
    let total = options.epochs;
    progress.step(0, total, "t-SNE: neighbours")?;
    let init = initial_map(codes, dim, options, device)?;
    let exact = n <= options.exact_up_to;
    let neighbors = if exact {
        Vec::new()
    } else {
        let k = ((3.0 * perplexity) as usize).min(n - 1);
        let centred = centre(codes, dim);
        knn_euclidean(&centred, dim, k, device)?
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|(index, distance)| Neighbor { index, distance })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    progress.step(0, total, "t-SNE")?;
    let rows: Vec<&[f32]> = codes.chunks(dim).collect();
    let cancelled = std::sync::Mutex::new(None::<Error>);
    let fit = || -> Vec<f32> {
        let mut t = tSNE::<f32, &[f32], 2>::new(&rows);
        t.perplexity(perplexity)
            .epochs(options.epochs)
            .initial_embedding(init.clone())
            .epoch_callback(|epoch, _| {
                if (epoch + 1) % 10 == 0 {
                    if let Err(e) = progress.step(epoch + 1, total, "t-SNE") {
                        if let Ok(mut slot) = cancelled.lock() {
                            slot.get_or_insert(e);
                        }
                    }
                }
            });
        if exact {
            t.exact(|a, b| euclidean(a, b));
        } else {
            t.barnes_hut_with_neighbors(options.theta, &neighbors);
        }
        t.embedding()
    };
    let embedding = if options.threads == 0 {
        fit()
    } else {
        rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads)
            .build()
            .map_err(|e| Error::InvalidArgument(format!("cannot start t-SNE threads: {e}")))?
            .install(fit)
    };
    if let Some(e) = cancelled.into_inner().ok().flatten() {
        return Err(e);
    }
    progress.step(total, total, "t-SNE done")?;
    Ok(TsneMap {
        points: embedding.chunks(2).map(|p| [p[0], p[1]]).collect(),
        perplexity,
        exact,
    })
}

fn euclidean(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// The codes minus their mean (distances unchanged, less cancellation in `|a|² + |b|² − 2a·b`).
fn centre(codes: &[f32], dim: usize) -> Vec<f32> {
    let n = codes.len() / dim;
    let mut mean = vec![0f64; dim];
    for row in codes.chunks(dim) {
        mean.iter_mut()
            .zip(row)
            .for_each(|(m, &v)| *m += f64::from(v));
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    codes
        .chunks(dim)
        .flat_map(|row| {
            row.iter()
                .zip(&mean)
                .map(|(&v, &m)| (f64::from(v) - m) as f32)
        })
        .collect()
}

fn initial_map(
    codes: &[f32],
    dim: usize,
    options: &TsneOptions,
    device: &Device,
) -> Result<Vec<f32>> {
    let n = codes.len() / dim;
    let mut map = match options.init {
        TsneInit::Pca if dim >= 2 => pca(codes, dim, 2, options.seed, device)?.projected,
        _ => {
            let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
            let normal = Normal::new(0f32, 1.0)
                .map_err(|e| Error::InvalidArgument(format!("random init: {e}")))?;
            (0..2 * n).map(|_| normal.sample(&mut rng)).collect()
        }
    };
    // Standard deviation of the first coordinate scaled to 1e-4, as scikit-learn does.
    let mean = map.iter().step_by(2).sum::<f32>() / n as f32;
    let var = map
        .iter()
        .step_by(2)
        .map(|v| (v - mean) * (v - mean))
        .sum::<f32>()
        / n as f32;
    let scale = if var > 0.0 { 1e-4 / var.sqrt() } else { 1e-4 };
    map.iter_mut().for_each(|v| *v *= scale);
    Ok(map)
}
