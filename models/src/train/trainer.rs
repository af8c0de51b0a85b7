//! The training loop: AdamW (candle-nn) on cross-entropy with a cosine learning-rate decay,
//! gradients from candle's autograd, checkpoints every N steps and at the end of each epoch.

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::checkpoint::{numbered_name, CheckpointWriter, Metrics};
use super::dataset::{FashionMnist, Split};
use super::net::{SmallArch, TrainNet};
use crate::arch::fashion_mnist::CLASS_NAMES;
use crate::progress::Progress;
use crate::weights::synthetic::synthetic_tensor;
use crate::{Error, Result};

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// The architecture.
    pub arch: SmallArch,
    /// Passes over the training set.
    pub epochs: usize,
    /// Stop after this many steps even if the epochs are not done.
    pub max_steps: Option<usize>,
    /// Images per step (the last incomplete batch of an epoch is dropped).
    pub batch_size: usize,
    /// The peak learning rate (decayed along a cosine to 0 over the run).
    pub learning_rate: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Write a checkpoint every this many steps (and at each epoch's end).
    pub every: usize,
    /// Evaluate on this many test images at each checkpoint (all when `None`).
    pub eval_images: Option<usize>,
    /// Seeds the initial weights and the shuffling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            arch: SmallArch::Vgg,
            epochs: 3,
            max_steps: None,
            batch_size: 128,
            learning_rate: 2e-3,
            weight_decay: 1e-2,
            every: 200,
            eval_images: None,
            seed: 0,
        }
    }
}

/// A network being trained, its variables and its optimizer.
pub struct Trainer {
    arch: SmallArch,
    varmap: VarMap,
    net: TrainNet,
    optimizer: AdamW,
    device: Device,
    steps: usize,
}

/// One optimization step's results, still on the device.
pub struct StepOutcome {
    /// The batch's mean cross-entropy (scalar f32).
    pub loss: Tensor,
    /// How many of the batch's images were classified right (scalar f32).
    pub correct: Tensor,
}

impl Trainer {
    /// A freshly initialized `config.arch` on `device` with `config`'s optimizer settings: conv
    /// and linear weights He-uniform from the synthetic stream of `config.seed`
    /// (`crate::weights::synthetic`, reproducible in Python), biases 0, BatchNorm weight 1,
    /// running mean 0, running variance 1.
    pub fn new(config: &TrainConfig, device: &Device) -> Result<Self> {
        let arch = config.arch;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        let net = TrainNet::new(arch, CLASS_NAMES.len(), vb)?;
        initialize(&varmap, config.seed, device)?;
        let params = ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            ..Default::default()
        };
        let optimizer = AdamW::new(trainable(&varmap), params)?;
        Ok(Trainer {
            arch,
            varmap,
            net,
            optimizer,
            device: device.clone(),
            steps: 0,
        })
    }

    /// The architecture.
    pub fn arch(&self) -> SmallArch {
        self.arch
    }

    /// Optimizer steps done.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Sets the learning rate of the next steps.
    pub fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }

    /// One AdamW step on a batch (images [N, 1, 28, 28] f32, labels [N] u32).
    pub fn step(&mut self, images: &Tensor, labels: &Tensor) -> Result<StepOutcome> {
        let logits = self.net.forward_t(images, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, labels)?;
        self.optimizer.backward_step(&loss)?;
        self.steps += 1;
        let correct = correct_count(&logits.detach(), labels)?;
        Ok(StepOutcome {
            loss: loss.detach(),
            correct,
        })
    }

    /// Evaluation-mode logits [N, 10] (running BatchNorm statistics), as the engine computes them.
    pub fn logits(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self.net.forward_t(images, false)?.detach())
    }

    /// Evaluation-mode accuracy on `images`/`labels`, in batches of `batch` images.
    pub fn accuracy(&self, images: &Tensor, labels: &Tensor, batch: usize) -> Result<f64> {
        let n = images.dim(0)?;
        if n == 0 {
            return Ok(0.0);
        }
        let mut correct = Tensor::zeros((), DType::F32, &self.device)?;
        for start in (0..n).step_by(batch.max(1)) {
            let len = batch.min(n - start);
            let logits = self.logits(&images.narrow(0, start, len)?)?;
            correct = (correct + correct_count(&logits, &labels.narrow(0, start, len)?)?)?;
        }
        Ok(f64::from(correct.to_scalar::<f32>()?) / n as f64)
    }

    /// The state_dict: every variable under its PyTorch name, plus each BatchNorm's
    /// `num_batches_tracked` (the step count, i64) as PyTorch keeps it.
    pub fn state_dict(&self) -> Result<BTreeMap<String, Tensor>> {
        let data = self
            .varmap
            .data()
            .lock()
            .map_err(|_| Error::InvalidArgument("the variable map is poisoned".into()))?;
        let mut state: BTreeMap<String, Tensor> = data
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
            .collect();
        let batch_norms: Vec<String> = state
            .keys()
            .filter_map(|k| k.strip_suffix(".running_mean").map(str::to_string))
            .collect();
        for prefix in batch_norms {
            let tracked = Tensor::new(self.steps as i64, &Device::Cpu)?;
            state.insert(format!("{prefix}.num_batches_tracked"), tracked);
        }
        Ok(state)
    }
}

/// The variables the optimizer updates: all but BatchNorm's running statistics, which are
/// updated by the forward pass in training mode.
fn trainable(varmap: &VarMap) -> Vec<candle_core::Var> {
    let Ok(data) = varmap.data().lock() else {
        return Vec::new();
    };
    let mut named: Vec<(&String, &candle_core::Var)> = data
        .iter()
        .filter(|(k, _)| !k.ends_with(".running_mean") && !k.ends_with(".running_var"))
        .collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    named.into_iter().map(|(_, v)| v.clone()).collect()
}

/// Sets every variable to its initial value (see [`Trainer::new`]).
fn initialize(varmap: &VarMap, seed: u64, device: &Device) -> Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::InvalidArgument("the variable map is poisoned".into()))?;
    for (name, var) in data.iter() {
        let shape = var.dims().to_vec();
        let value = if name.ends_with(".weight") && shape.len() >= 2 {
            synthetic_tensor(name, &shape, seed, device)?
        } else if name.ends_with(".weight") || name.ends_with(".running_var") {
            Tensor::ones(shape.as_slice(), DType::F32, device)?
        } else {
            Tensor::zeros(shape.as_slice(), DType::F32, device)?
        };
        var.set(&value)?;
    }
    Ok(())
}

/// How many rows of `logits` have their maximum at the label (scalar f32 on the device).
fn correct_count(logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let predicted = logits.argmax(D::Minus1)?;
    Ok(predicted.eq(labels)?.to_dtype(DType::F32)?.sum_all()?)
}

/// The cosine decay from `peak` at step 0 to 0 at `total`.
pub fn cosine_learning_rate(peak: f64, step: usize, total: usize) -> f64 {
    let t = step as f64 / total.max(1) as f64;
    peak * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
}

/// What a training run ended with.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// Every checkpoint's metrics, in order.
    pub history: Vec<Metrics>,
    /// Optimizer steps done.
    pub steps: usize,
}

/// Trains `config.arch` on `data`, writing checkpoints with `writer` and telling `observer`
/// about each; `progress` hears of every step (its message holds the epoch and running loss)
/// and may cancel between steps. Returns the trainer (for further use) and the metrics.
pub fn train(
    config: &TrainConfig,
    data: &FashionMnist,
    device: &Device,
    writer: &CheckpointWriter,
    observer: &mut dyn FnMut(&Metrics),
    progress: &dyn Progress,
) -> Result<(Trainer, TrainSummary)> {
    if config.batch_size == 0 || config.every == 0 || config.epochs == 0 {
        return Err(Error::InvalidArgument(
            "batch size, checkpoint interval and epochs must be at least 1".into(),
        ));
    }
    let steps_per_epoch = data.train.len() / config.batch_size;
    if steps_per_epoch == 0 {
        return Err(Error::InvalidArgument(format!(
            "the training set has {} images, fewer than one batch of {}",
            data.train.len(),
            config.batch_size
        )));
    }
    let total = (steps_per_epoch * config.epochs).min(config.max_steps.unwrap_or(usize::MAX));
    let mut trainer = Trainer::new(config, device)?;
    let train_images = data.train.images_tensor(device)?;
    let train_labels = data.train.labels_tensor(device)?;
    let test: Split = match config.eval_images {
        Some(n) => data.test.first(n),
        None => data.test.clone(),
    };
    let test_images = test.images_tensor(device)?;
    let test_labels = test.labels_tensor(device)?;

    let started = Instant::now();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
    let mut history = Vec::new();
    let mut window = Window::new(device)?;
    let mut message = format!("epoch 1/{}", config.epochs);
    progress.step(0, total, &message)?;
    'epochs: for epoch in 1..=config.epochs {
        let mut order: Vec<u32> = (0..data.train.len() as u32).collect();
        order.shuffle(&mut rng);
        let mut epoch_correct = Tensor::zeros((), DType::F32, device)?;
        let mut epoch_seen = 0usize;
        for (i, batch) in order.chunks_exact(config.batch_size).enumerate() {
            let step = trainer.steps() + 1;
            let lr = cosine_learning_rate(config.learning_rate, step - 1, total);
            trainer.set_learning_rate(lr);
            let index = Tensor::from_slice(batch, batch.len(), device)?;
            let images = train_images.index_select(&index, 0)?;
            let labels = train_labels.index_select(&index, 0)?;
            let outcome = trainer.step(&images, &labels)?;
            window.add(&outcome)?;
            epoch_correct = (epoch_correct + &outcome.correct)?;
            epoch_seen += batch.len();
            let epoch_end = i + 1 == steps_per_epoch;
            let last = step == total;
            if step % config.every == 0 || epoch_end || last {
                let correct = f64::from(epoch_correct.to_scalar::<f32>()?);
                let test_accuracy = trainer.accuracy(&test_images, &test_labels, 500)?;
                let metrics = Metrics {
                    arch: config.arch.name().to_string(),
                    step,
                    epoch,
                    steps_per_epoch,
                    loss: window.take_mean()?,
                    train_accuracy: correct / epoch_seen as f64,
                    test_accuracy: (!test.is_empty()).then_some(test_accuracy),
                    test_images: test.len(),
                    learning_rate: lr,
                    elapsed_s: started.elapsed().as_secs_f64(),
                    unix_time: SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map(|d| d.as_secs_f64())
                        .unwrap_or(0.0),
                    checkpoint: numbered_name(step),
                };
                writer.write(&trainer.state_dict()?, &metrics)?;
                observer(&metrics);
                history.push(metrics);
            }
            if step % 10 == 0 || step == total {
                message = format!(
                    "epoch {epoch}/{} · loss {:.4}",
                    config.epochs,
                    window.running_mean()?
                );
            }
            progress.step(step, total, &message)?;
            if last {
                break 'epochs;
            }
        }
    }
    let steps = trainer.steps();
    Ok((trainer, TrainSummary { history, steps }))
}

/// The losses since the last checkpoint, summed on the device.
struct Window {
    sum: Tensor,
    count: usize,
    /// A running mean for the progress message (exponential, over about 20 steps).
    recent: Tensor,
    recent_weight: f64,
}

impl Window {
    fn new(device: &Device) -> Result<Self> {
        Ok(Window {
            sum: Tensor::zeros((), DType::F32, device)?,
            count: 0,
            recent: Tensor::zeros((), DType::F32, device)?,
            recent_weight: 0.0,
        })
    }

    fn add(&mut self, outcome: &StepOutcome) -> Result<()> {
        self.sum = (&self.sum + &outcome.loss)?;
        self.count += 1;
        self.recent = ((&self.recent * 0.95)? + (&outcome.loss * 0.05)?)?;
        self.recent_weight = self.recent_weight * 0.95 + 0.05;
        Ok(())
    }

    /// The mean since the last call.
    fn take_mean(&mut self) -> Result<f64> {
        let mean = f64::from(self.sum.to_scalar::<f32>()?) / self.count.max(1) as f64;
        self.sum = self.sum.zeros_like()?;
        self.count = 0;
        Ok(mean)
    }

    /// The exponential running mean.
    fn running_mean(&self) -> Result<f64> {
        Ok(f64::from(self.recent.to_scalar::<f32>()?) / self.recent_weight.max(1e-12))
    }
}
