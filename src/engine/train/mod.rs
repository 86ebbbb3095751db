//! Training: seeded mini-batches, dynamic binarisation, the KL schedule, divergence checks.

use ndarray::{Array2, ArrayView2, s};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::seeds;
use crate::engine::data::binarize_bernoulli_rows;
use crate::engine::nn::{InputPath, Optimizer, OptimizerConfig, Parameters, simd};
use crate::engine::vae::{
    KlBatchWeights, KlSchedule, LossParts, Objective, Vae, VaeConfig, VaeParams, VaeWorkspace,
};

/// How to train: every choice that changes the result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// B, rows per mini-batch (the last batch of an epoch keeps the remainder, as the anchor).
    pub batch_size: usize,
    /// SGD or Adam and its hyper-parameters.
    pub optimizer: OptimizerConfig,
    /// β per step.
    pub kl_schedule: KlSchedule,
    /// Free bits λ (nats per latent unit), or none.
    pub free_bits: Option<f64>,
    /// How the KL term of each batch of an epoch is weighted: β_i = β · π_i N/B_i (see
    /// [`KlBatchWeights`]); the default, per-example, is the VAE's batch mean (β_i = β).
    #[serde(default)]
    pub kl_batch_weights: KlBatchWeights,
    /// Seeds the initialisation ([`seeds::MODEL_INIT`], ChaCha8 stream 0) and the training draws
    /// ([`seeds::TRAINING`], ChaCha8 stream 1: shuffles, binarisation, ε).
    pub seed: u64,
}

impl TrainConfig {
    /// The anchor's settings: Adam 1e-3, B = 128, β = 1, `epochs` epochs.
    pub fn anchor(epochs: usize, seed: u64) -> Self {
        Self::adam(epochs, 128, 1e-3, seed)
    }

    /// Adam with learning rate `lr` at batch size B, β = 1 throughout, no free bits, the KL
    /// weighted per example: the plain ELBO. Lessons change one field with `..` from here.
    pub fn adam(epochs: usize, batch_size: usize, lr: f64, seed: u64) -> Self {
        TrainConfig {
            epochs,
            batch_size,
            optimizer: OptimizerConfig::adam(lr),
            kl_schedule: KlSchedule::Constant { beta: 1.0 },
            free_bits: None,
            kl_batch_weights: KlBatchWeights::PerExample,
            seed,
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be >= 1"));
        }
        self.optimizer.validate()?;
        self.kl_schedule.validate()?;
        Objective::new(0.0, self.free_bits)?;
        Ok(())
    }
}

/// The training set as the trainer reads it.
#[derive(Clone, Copy, Debug)]
pub struct TrainSet<'a> {
    /// N × D values; grey levels in [0, 1] when `binarize` is set.
    pub x: ArrayView2<'a, f32>,
    /// Class of each row (a CVAE), or `None`.
    pub labels: Option<&'a [usize]>,
    /// Dynamic binarisation: a fresh Bernoulli(x) image per row per epoch.
    pub binarize: bool,
}

impl TrainSet<'_> {
    /// Checks the data against the model.
    ///
    /// # Errors
    /// `Empty`, `Shape`, `NonFinite` or `InvalidParameter` naming the row and column.
    pub fn validate(&self, vae: &Vae<f32>) -> Result<()> {
        if self.x.nrows() == 0 {
            return Err(Error::empty("training set", "row"));
        }
        if self.x.ncols() != vae.config.data_dim {
            return Err(Error::shape("training data columns", vae.config.data_dim, self.x.ncols()));
        }
        // Fast pass over all values (vectorised when x is one block of memory; it runs every
        // epoch); the indexed search below runs only to name a bad one.
        let binarize = self.binarize;
        let fine = match self.x.as_slice_memory_order() {
            Some(all) if binarize => simd::all_in_unit_interval(all),
            Some(all) => simd::all_finite(all),
            None => self.x.iter().all(|v| v.is_finite() && (!binarize || (0.0..=1.0).contains(v))),
        };
        if fine {
            return vae.check_labels(self.x.nrows(), self.labels);
        }
        for ((i, j), &v) in self.x.indexed_iter() {
            if !v.is_finite() {
                return Err(Error::NonFinite {
                    name: format!("x[{i}, {j}]"),
                    index: i * self.x.ncols() + j,
                    value: v as f64,
                });
            }
            if self.binarize && !(0.0..=1.0).contains(&v) {
                return Err(Error::invalid(
                    format!("x[{i}, {j}]"),
                    v,
                    "grey levels must be in [0, 1] to binarise",
                ));
            }
        }
        vae.check_labels(self.x.nrows(), self.labels)
    }
}

/// One epoch's training metrics, in nats per example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean of the minimised loss over the epoch's examples.
    pub train_loss: f64,
    /// Mean single-sample ELBO over the epoch's examples (−(distortion + rate)).
    pub train_elbo: f64,
    /// Mean rate (KL).
    pub train_rate: f64,
    /// Mean distortion (−log p(x|z)).
    pub train_distortion: f64,
    /// β at the epoch's last step (with per-batch KL weights, that batch's β_M).
    pub beta: f64,
    /// Test ELBO / rate / distortion, if a test set was given.
    pub test: Option<crate::engine::eval::ElboSummary>,
    /// Wall-clock seconds of the epoch's training steps.
    pub seconds: f64,
}

/// A VAE being trained: model, optimiser, generator and every buffer of the training step.
///
/// Everything the next step depends on (parameters, Adam's moments and t, the generator's state,
/// the epoch and step counters, the configuration) is in [`crate::engine::checkpoint`]'s file, so a
/// resumed run is bit-identical to one that never stopped.
pub struct Trainer {
    /// The model.
    pub vae: Vae<f32>,
    /// The optimiser and its state.
    pub optimizer: Optimizer<f32>,
    /// How to train.
    pub config: TrainConfig,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps taken (the KL schedule's clock).
    pub step: u64,
    /// The training generator (stream 1 of the seed).
    pub rng: ChaCha8Rng,
    /// What the model is trained on, as the caller describes it (the CLI: a JSON object such as
    /// `{"source":"prototypes","seed":3}`); saved as the checkpoint's `data` metadata so that an
    /// evaluation can refuse other data. `None`: unknown.
    pub data: Option<String>,
    grads: VaeParams<f32>,
    ws: VaeWorkspace<f32>,
    x_batch: Array2<f32>,
    eps: Array2<f32>,
    labels: Vec<usize>,
    perm: Vec<usize>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("config", &self.config)
            .field("epoch", &self.epoch)
            .field("step", &self.step)
            .finish()
    }
}

impl Trainer {
    /// A fresh model initialised from [`seeds::MODEL_INIT`] of `config.seed`, and the training
    /// generator ([`seeds::TRAINING`], ChaCha8 stream [`seeds::TRAINING_CHACHA_STREAM`]).
    ///
    /// # Errors
    /// `InvalidParameter` from the configurations.
    pub fn new(vae_config: VaeConfig, config: TrainConfig) -> Result<Self> {
        config.validate()?;
        vae_config.validate()?;
        // At least: parameters, gradients and Adam's two moments (4 copies), a batch of inputs and
        // two activations per hidden unit per row, all f32; and the binary first layer's two
        // index buffers (u32, 4 bytes each like an f32) at Auto's limit, should it be chosen.
        let b = config.batch_size as u128;
        let hidden: u128 = vae_config.hidden_dims.iter().map(|&h| h as u128).sum();
        let inputs = vae_config.data_dim.saturating_add(vae_config.classes());
        let binary_index = InputPath::Auto.max_on_entries(config.batch_size, inputs).unwrap_or(0) as u128 * 2;
        let floats = vae_config
            .parameter_count()
            .saturating_mul(4)
            .saturating_add(
                b.saturating_mul((vae_config.data_dim as u128).saturating_add(hidden.saturating_mul(2))),
            )
            .saturating_add(binary_index);
        crate::base::budget::ensure_memory(
            &format!(
                "training a VAE with D = {}, H = {:?}, Z = {} on batches of {}",
                vae_config.data_dim, vae_config.hidden_dims, vae_config.latent_dim, config.batch_size
            ),
            floats.saturating_mul(4),
        )?;
        let mut init_rng = seeds::MODEL_INIT.rng(config.seed);
        let vae = Vae::from_validated(vae_config, &mut init_rng)?; // validated above
        vae.check_objective(&Objective::new(0.0, config.free_bits)?)?;
        let optimizer = Optimizer::new(config.optimizer, &vae.params)?;
        let mut rng = seeds::TRAINING.rng(config.seed);
        rng.set_stream(seeds::TRAINING_CHACHA_STREAM);
        Ok(Self::from_parts(vae, optimizer, config, 0, 0, rng))
    }

    /// Reassembles a trainer (used by checkpoint loading).
    pub(crate) fn from_parts(
        vae: Vae<f32>,
        optimizer: Optimizer<f32>,
        config: TrainConfig,
        epoch: usize,
        step: u64,
        rng: ChaCha8Rng,
    ) -> Self {
        let b = config.batch_size;
        let (d, z) = (vae.config.data_dim, vae.config.latent_dim);
        Trainer {
            grads: vae.zero_grads(),
            ws: vae.workspace(b),
            x_batch: Array2::zeros((b, d)),
            eps: Array2::zeros((b, z)),
            labels: vec![0; b],
            perm: Vec::new(),
            vae,
            optimizer,
            config,
            epoch,
            step,
            rng,
            data: None,
        }
    }

    /// How the encoder's first layer reads each batch: [`InputPath::Auto`] (the default, faster
    /// on the digits) the
    /// on-entries of a binary batch with at most [`crate::engine::nn::AUTO_MAX_DENSITY_PERCENT`]%
    /// of them on (the dense product otherwise), [`InputPath::Binary`] the on-entries of every
    /// binary batch, or [`InputPath::Dense`] always the dense product.
    pub fn set_input_path(&mut self, path: InputPath) {
        self.ws.input_path = path;
    }

    /// Whether the last step's first layer read its batch by its on-entries (see
    /// [`Trainer::set_input_path`]).
    pub fn used_binary_input(&self) -> bool {
        self.ws.used_binary_input()
    }

    /// One step on the rows `rows` of `data`: gather (and binarise), draw ε, forward, backward,
    /// check, update. Allocates nothing with the N(0, I) or a conditional prior (a mixture prior's
    /// KL allocates its `f64` scratch, O(B · K · Z), per step).
    fn train_step(
        &mut self,
        rows: &[usize],
        data: &TrainSet,
        step_in_epoch: usize,
        kl_batch_factor: f64,
    ) -> Result<(LossParts, f64)> {
        let b = rows.len();
        let mut xb = self.x_batch.slice_mut(s![..b, ..]);
        if data.binarize {
            binarize_bernoulli_rows(data.x, rows, &mut xb, &mut self.rng);
        } else {
            for (i, &r) in rows.iter().enumerate() {
                xb.row_mut(i).assign(&data.x.row(r));
            }
        }
        if let Some(all) = data.labels {
            for (i, &r) in rows.iter().enumerate() {
                self.labels[i] = all[r];
            }
        }
        for e in self.eps.slice_mut(s![..b, ..]).iter_mut() {
            *e = StandardNormal.sample(&mut self.rng);
        }
        let beta = self.config.kl_schedule.beta_at(self.step as usize) * kl_batch_factor;
        let objective = Objective { beta, free_bits: self.config.free_bits };
        let labels = data.labels.map(|_| &self.labels[..b]);
        let parts = self.vae.forward(
            self.x_batch.slice(s![..b, ..]),
            labels,
            self.eps.slice(s![..b, ..]),
            &objective,
            &mut self.ws,
        );
        // Counted from 1, as the metrics count epochs.
        let diverged = |tensor: String, detail: String| Error::Diverged {
            epoch: self.epoch + 1,
            step: step_in_epoch + 1,
            tensor,
            detail,
        };
        if !parts.loss.is_finite() {
            return Err(diverged(
                "loss".into(),
                format!("loss = {} (rate {}, distortion {})", parts.loss, parts.rate, parts.distortion),
            ));
        }
        self.vae.backward(&mut self.ws, &mut self.grads);
        if let Some((i, j, v)) = self.grads.first_non_finite() {
            return Err(diverged(format!("d_{}", self.grads.tensor_name(i)), format!("element {j} = {v}")));
        }
        let updated_finite = self.optimizer.step_checked(&mut self.vae.params, &mut self.grads);
        // Finite loss and gradients can still give a non-finite update (a huge learning rate):
        // checked here, or the last step of a run would escape every check. The step checks
        // what it writes; the scans below only name the element (they run only on a failure).
        if updated_finite {
            self.step += 1;
            return Ok((parts, beta));
        }
        if let Some((i, j, v)) = self.vae.params.first_non_finite() {
            let name = self.vae.params.tensor_name(i);
            return Err(Error::Diverged {
                epoch: self.epoch + 1,
                step: step_in_epoch + 1,
                tensor: name,
                detail: format!("element {j} = {v} after the update"),
            });
        }
        if let Some((moment, i, j, v)) = self.optimizer.first_non_finite() {
            return Err(Error::Diverged {
                epoch: self.epoch + 1,
                step: step_in_epoch + 1,
                tensor: format!("{moment}/{}", self.vae.params.tensor_name(i)),
                detail: format!("element {j} = {v} after the update"),
            });
        }
        self.step += 1;
        Ok((parts, beta))
    }

    /// Trains one epoch: a fresh seeded shuffle, batches of `batch_size` (the last one shorter).
    ///
    /// # Errors
    /// Bad data (see [`TrainSet::validate`]); `Diverged` naming epoch, step (both counted from 1)
    /// and tensor if the loss or a gradient is not finite (the update of that step is not
    /// applied), or if the update leaves a parameter or an Adam moment non-finite (then the
    /// trainer holds that non-finite state: discard it; [`Trainer::save`] refuses to write it).
    pub fn train_epoch(&mut self, data: &TrainSet) -> Result<EpochMetrics> {
        data.validate(&self.vae)?;
        let start = std::time::Instant::now();
        let n = data.x.nrows();
        let mut perm = std::mem::take(&mut self.perm);
        perm.clear();
        perm.extend(0..n);
        perm.shuffle(&mut self.rng);
        let (mut loss, mut rate, mut distortion, mut beta) = (0.0, 0.0, 0.0, 0.0);
        let mut result = Ok(());
        let (weights, batch_size) = (self.config.kl_batch_weights, self.config.batch_size);
        for (step, rows) in perm.chunks(batch_size).enumerate() {
            let factor = weights.beta_factor(step + 1, n, batch_size);
            match self.train_step(rows, data, step, factor) {
                Ok((parts, b)) => {
                    let w = rows.len() as f64;
                    loss += parts.loss * w;
                    rate += parts.rate * w;
                    distortion += parts.distortion * w;
                    beta = b;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        self.perm = perm;
        result?;
        self.epoch += 1;
        let n = n as f64;
        Ok(EpochMetrics {
            epoch: self.epoch,
            train_loss: loss / n,
            train_elbo: -(rate + distortion) / n,
            train_rate: rate / n,
            train_distortion: distortion / n,
            beta,
            test: None,
            seconds: start.elapsed().as_secs_f64(),
        })
    }

    /// Trains until `config.epochs` epochs are done, calling `progress` after each epoch (a
    /// notebook prints a line, the CLI moves a progress bar). With a test set, each epoch's
    /// metrics include the test ELBO from one z per example, drawn from stream
    /// [`seeds::EPOCH_TEST_ELBO`] of the seed plus the epoch (so evaluation never disturbs the training
    /// stream).
    ///
    /// # Errors
    /// As [`Trainer::train_epoch`]; `Diverged` if the test metrics after an epoch are not finite;
    /// bad test data; [`crate::base::error::Error::TooFewValues`] for a
    /// test set of fewer than 2 rows (checked before training: the test ELBO's standard error needs two).
    pub fn fit(
        &mut self,
        data: &TrainSet,
        test: Option<(ArrayView2<f32>, Option<&[usize]>)>,
        mut progress: impl FnMut(&EpochMetrics),
    ) -> Result<Vec<EpochMetrics>> {
        if let Some((x, _)) = test
            && x.nrows() < 2
        {
            return Err(crate::base::error::Error::TooFewValues { count: x.nrows() });
        }
        let mut all = Vec::new();
        while self.epoch < self.config.epochs {
            let mut m = self.train_epoch(data)?;
            if let Some((x, labels)) = test {
                let mut rng = ChaCha8Rng::seed_from_u64(
                    seeds::EPOCH_TEST_ELBO.seed(self.config.seed).wrapping_add(self.epoch as u64),
                );
                let t =
                    crate::engine::eval::elbo_stats(&self.vae, x, labels, 1, 1000, &mut rng)?.summary()?;
                // Finite parameters can still be too large to evaluate: after the last epoch no
                // training step would notice, so the test metrics are checked here.
                for (name, e) in
                    [("test ELBO", t.elbo), ("test rate", t.rate), ("test distortion", t.distortion)]
                {
                    if !(e.mean.is_finite() && e.stderr.is_finite()) {
                        return Err(Error::Diverged {
                            epoch: self.epoch,
                            step: data.x.nrows().div_ceil(self.config.batch_size),
                            tensor: name.into(),
                            detail: format!("mean {} ± {} after the epoch", e.mean, e.stderr),
                        });
                    }
                }
                m.test = Some(t);
            }
            progress(&m);
            all.push(m);
        }
        Ok(all)
    }
}

/// The line a notebook prints after each epoch.
pub fn epoch_line(m: &EpochMetrics) -> String {
    let mut line = format!(
        "epoch {:3}  train loss {:8.3}  ELBO {:8.3}  rate {:6.3}  distortion {:8.3}  β {:.3}  [{:.2} s]",
        m.epoch, m.train_loss, m.train_elbo, m.train_rate, m.train_distortion, m.beta, m.seconds
    );
    if let Some(t) = &m.test {
        line += &format!(
            "  | test ELBO {:8.3}  rate {:6.3}  distortion {:8.3}",
            t.elbo.mean, t.rate.mean, t.distortion.mean
        );
    }
    line
}

#[cfg(test)]
pub(crate) mod tests;
