//! Lesson 05, Step 6: the fixed prior N(0, I) against a learned mixture-of-Gaussians prior on the
//! same 2-D model (same data, seed and epochs). The notebook calls [`measure_fixed_prior`] (Step 5)
//! and [`compare_priors`] (Step 6); `vaelab experiment prior` calls [`run_experiment`], which
//! trains both models and calls the same [`compare_priors`].

use ndarray::{Array2, ArrayView2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::{ElboSurgery, MixturePrior, elbo_surgery, sample_aggregate_posterior};
use crate::base::error::{Error, Result};
use crate::base::seeds;
use crate::base::stats::{Estimate, paired_difference};
use crate::engine::data::{DigitSplit, binarize_bernoulli_rows, binarize_fixed, evenly_spaced};
use crate::engine::eval::{
    ElboStats, ElboSummary, IsEstimate, elbo_stats, importance_sampled_log_likelihood,
};
use crate::engine::store::{ModelStore, Stage};
use crate::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{LatentPrior, Likelihood, Vae, VaeConfig};
use crate::plot::Figure;

/// Lesson 05's comparison of the fixed prior N(0, I) with a learned mixture-of-Gaussians prior on
/// the same 2-D model: the notebook's Step 6 and `vaelab experiment prior`.
/// [`PriorExperimentConfig::lesson`] holds the notebook's values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriorExperimentConfig {
    /// H, the encoder trunk's and decoder's hidden width (784-H-Z Bernoulli VAE, ReLU).
    pub hidden: usize,
    /// Z (the plots need 2).
    pub latent_dim: usize,
    /// K, components of the learned mixture prior.
    pub components: usize,
    /// Epochs per model.
    pub epochs: usize,
    /// Seeds both models' initialisation and training ([`TrainConfig::seed`]), and the evaluation
    /// generator of [`run_experiment`] (`StdRng` from [`seeds::PRIOR_EVALUATION`], the notebook's
    /// `rng`).
    pub seed: u64,
    /// Test digits measured, evenly spaced over the 2,000 (clamped to what there is; at least 2).
    pub n_test: usize,
    /// S, draws of z per test digit for the test ELBO.
    pub elbo_samples: usize,
    /// K, importance samples per test digit for log p(x).
    pub k: usize,
    /// `chunk_rows` of [`importance_sampled_log_likelihood`] (the notebook's 20).
    pub is_chunk_rows: usize,
    /// S, draws per digit of ELBO surgery.
    pub surgery_samples: usize,
    /// Rows per chunk of `elbo_stats` and `elbo_surgery`.
    pub chunk: usize,
    /// Draws from each aggregate posterior for the plots.
    pub aggregate_draws: usize,
}

impl Default for PriorExperimentConfig {
    fn default() -> Self {
        Self::lesson()
    }
}

impl PriorExperimentConfig {
    /// The notebook's experiment: 784-64-2, K = 10, 12 epochs of Adam 1e-3 at B = 128, seed 5, all
    /// 2,000 test digits, ELBO with S = 10, IS with K = 20 (chunks of 20 rows), surgery with S = 4,
    /// chunks of 1,000, 2,000 aggregate draws.
    pub fn lesson() -> Self {
        PriorExperimentConfig {
            hidden: 64,
            latent_dim: 2,
            components: 10,
            epochs: 12,
            seed: 5,
            n_test: 2000,
            elbo_samples: 10,
            k: 20,
            is_chunk_rows: 20,
            surgery_samples: 4,
            chunk: 1000,
            aggregate_draws: 2000,
        }
    }

    /// The model with prior `prior`: D = 784, one hidden layer of width H, Z latents, Bernoulli.
    pub fn vae_config(&self, prior: LatentPrior) -> VaeConfig {
        VaeConfig::bernoulli(784, vec![self.hidden], self.latent_dim).with_prior(prior)
    }

    /// The anchor's training (Adam 1e-3, B = 128, β = 1) for `epochs` epochs with `seed`.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig::anchor(self.epochs, self.seed)
    }

    /// The learned prior, `LatentPrior::Mixture { components }`.
    pub fn learned_prior(&self) -> LatentPrior {
        LatentPrior::Mixture { components: self.components }
    }

    /// A fresh trainer for the model with prior `prior` (`LatentPrior::StandardNormal` or
    /// [`Self::learned_prior`]). Both models draw their networks from the same seed, so they start
    /// from the same encoder and decoder weights.
    ///
    /// # Errors
    /// `InvalidParameter` from [`Self::validate`] or for a bad `prior`.
    pub fn trainer(&self, prior: LatentPrior) -> Result<Trainer> {
        self.validate()?;
        Trainer::new(self.vae_config(prior), self.train_config())
    }

    /// The test digits: `n_test` rows evenly spaced over the test split (all 2,000 for the lesson,
    /// i.e. the notebook's `binarize_fixed(digits.test.images.view())`), binarised by x > 0.5.
    ///
    /// # Errors
    /// `TooFewValues` if fewer than 2 rows would be measured.
    pub fn test_digits(&self, digits: &DigitSplit) -> Result<Array2<f32>> {
        let total = digits.test.len();
        let n = self.n_test.min(total);
        if n < 2 {
            return Err(Error::TooFewValues { count: n });
        }
        let rows = evenly_spaced(total, n);
        Ok(binarize_fixed(digits.test.images.select(Axis(0), &rows).view()))
    }

    /// Checks every field.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field: a count of 0, fewer than 2 test digits (a standard
    /// error needs two), or a model or training setting the engine refuses.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("epochs", self.epochs),
            ("components", self.components),
            ("k", self.k),
            ("elbo_samples", self.elbo_samples),
            ("is_chunk_rows", self.is_chunk_rows),
            ("surgery_samples", self.surgery_samples),
            ("chunk", self.chunk),
            ("aggregate_draws", self.aggregate_draws),
        ] {
            if v == 0 {
                return Err(Error::invalid(name, v, "must be ≥ 1"));
            }
        }
        if self.n_test < 2 {
            return Err(Error::invalid(
                "n_test",
                self.n_test,
                "must be ≥ 2 (a standard error needs two digits)",
            ));
        }
        self.vae_config(self.learned_prior()).validate()?;
        self.train_config().validate()
    }
}

/// Trains `epochs` more epochs on the grey-level digits `train` (binarised anew each epoch),
/// calling `progress` with each epoch's metrics: the notebook's "3 epochs per cell". Only the
/// trainer's own generator is drawn from. Goes through the trained-model store
/// ([`ModelStore::from_env`]): a stage trained before by the same engine is loaded (its stored
/// metrics replayed through `progress`), bit for bit what training would give. The returned
/// [`Stage`] prints one line: loaded from the store, or trained and stored.
///
/// # Errors
/// Bad data (see [`TrainSet::validate`]); `Diverged` from training.
pub fn train_epochs(
    trainer: &mut Trainer,
    train: ArrayView2<f32>,
    epochs: usize,
    progress: &mut dyn FnMut(&EpochMetrics),
) -> Result<Stage> {
    let set = TrainSet { x: train, labels: None, binarize: true };
    ModelStore::from_env().train_epochs(trainer, &set, epochs, progress)
}

fn check_fixed(vae: &Vae<f32>) -> Result<()> {
    if vae.config.prior != LatentPrior::StandardNormal || vae.config.condition.is_some() {
        return Err(Error::invalid(
            "fixed model's prior",
            format!("{:?}", vae.config.prior),
            "must be an unconditional N(0, I) (LatentPrior::StandardNormal)",
        ));
    }
    Ok(())
}

/// The N(0, I) model's encoder outputs on `test` and its ELBO surgery against N(0, I) (lesson 05,
/// Step 5). Draws from `rng`, in order: the N·Z ε of `elbo_stats` with S = 1 (only μ and log σ²
/// are used; they do not depend on S), then the N·S·Z ε of [`elbo_surgery`] (S =
/// `surgery_samples`, chunks of `chunk`).
///
/// # Shapes
/// `test`: `N × 784` binary digits.
///
/// # Errors
/// `InvalidParameter` from [`PriorExperimentConfig::validate`] or for a model whose prior is not
/// an unconditional N(0, I); bad data; as [`elbo_surgery`].
pub fn measure_fixed_prior<R: Rng + ?Sized>(
    config: &PriorExperimentConfig,
    fixed: &Vae<f32>,
    test: ArrayView2<f32>,
    rng: &mut R,
) -> Result<(ElboStats, ElboSurgery)> {
    config.validate()?;
    check_fixed(fixed)?;
    let stats = elbo_stats(fixed, test, None, 1, config.chunk, rng)?;
    let surgery = elbo_surgery(
        stats.mean.view(),
        stats.log_var.view(),
        None,
        config.surgery_samples,
        config.chunk,
        rng,
    )?;
    Ok((stats, surgery))
}

/// `n` digits drawn from the model itself, x ~ p_θ(x): z ~ p(z) (N(0, I), or the learned mixture),
/// then each pixel x_d ~ Bernoulli(E[x_d | z]) (0/1 pixels, like the binarised data).
///
/// ```text
/// p_θ(x) = ∫ p(z) p_θ(x|z) dz,      z ~ p(z),   x_d | z ~ Bernoulli(sigmoid(decoder(z))_d)
/// ```
/// Why lesson 05 needs it: Σ_x p_θ(x) p_θ(z|x) = p(z) holds for the model's **own** marginal
/// p_θ(x). The text's P(z) = Σ_x P(z|x) P(x) with P(x) the data distribution is therefore an
/// identity only when p_data = p_θ. On these draws the aggregate of the exact posteriors is p(z)
/// exactly, so [`measure_fixed_prior`] on them separates the encoder's error from the model's
/// misfit of the data. Draws from `rng`: the n·Z (or mixture) draws of
/// [`Vae::sample_prior_means`], then one `u32` per pixel, row by row
/// ([`binarize_bernoulli_rows`]).
///
/// # Shapes
/// Returns `n × D`.
///
/// # Errors
/// A conditional model (it needs labels), or a likelihood other than Bernoulli.
///
/// ```
/// use vaelab::engine::vae::{Vae, VaeConfig};
/// use vaelab::lessons::prior::sample_model_digits;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// let mut rng = StdRng::seed_from_u64(0);
/// let vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(6, vec![4], 2), &mut rng).unwrap();
/// let x = sample_model_digits(&vae, 5, &mut rng).unwrap();
/// assert_eq!(x.dim(), (5, 6));
/// assert!(x.iter().all(|&v| v == 0.0 || v == 1.0));
/// ```
pub fn sample_model_digits<R: Rng + ?Sized>(vae: &Vae<f32>, n: usize, rng: &mut R) -> Result<Array2<f32>> {
    if vae.config.condition.is_some() {
        return Err(Error::invalid("model", "a CVAE", "must be unconditional (no labels to draw from)"));
    }
    if !matches!(vae.config.likelihood, Likelihood::Bernoulli) {
        return Err(Error::invalid(
            "model's likelihood",
            format!("{:?}", vae.config.likelihood),
            "must be Bernoulli (the pixels are drawn as Bernoulli)",
        ));
    }
    let means = vae.sample_prior_means(n, None, rng)?;
    let mut x = Array2::<f32>::zeros(means.dim());
    let rows: Vec<usize> = (0..n).collect();
    binarize_bernoulli_rows(means.view(), &rows, &mut x.view_mut(), rng);
    Ok(x)
}

/// `a − b` for two estimates from **independent** draws (different data or different ε), with
/// SE = √(SE_a² + SE_b²). When the two share the data points and are positively correlated
/// across them (the same test digits measured twice) this SE is too large, so a claim that the
/// difference is k SE from 0 is then conservative. `samples` is the smaller of the two.
///
/// ```
/// use vaelab::base::stats::Estimate;
/// use vaelab::lessons::prior::difference_of_independent;
/// let d = difference_of_independent(
///     Estimate { mean: 5.0, stderr: 0.3, samples: 100 },
///     Estimate { mean: 2.0, stderr: 0.4, samples: 50 },
/// );
/// assert_eq!((d.mean, d.stderr, d.samples), (3.0, 0.5, 50));
/// ```
pub fn difference_of_independent(a: Estimate, b: Estimate) -> Estimate {
    Estimate { mean: a.mean - b.mean, stderr: a.stderr.hypot(b.stderr), samples: a.samples.min(b.samples) }
}

/// One model's measurements on the test digits.
#[derive(Clone, Debug, Serialize)]
pub struct PriorModel {
    /// "N(0, I)" or "mixture K = …".
    pub name: String,
    /// Test ELBO, rate and distortion (S = `elbo_samples` draws per digit).
    pub elbo: ElboSummary,
    /// Importance-sampled log p(x) (K = `k`) with its SE across digits.
    pub is_log_likelihood: Estimate,
    /// ELBO surgery against the model's own prior.
    pub surgery: ElboSurgery,
}

/// The comparison: both models and the paired differences (mixture − N(0, I)). The serialised
/// fields are `vaelab experiment prior`'s JSON; the skipped ones are what the notebook and the
/// page plot.
#[derive(Clone, Debug, Serialize)]
pub struct PriorComparison {
    /// Epochs per model.
    pub epochs: usize,
    /// Mixture components.
    pub components: usize,
    /// K for the IS estimate.
    pub k: usize,
    /// Seed of the models' initialisation and training (and of [`run_experiment`]'s evaluation
    /// generator).
    pub seed: u64,
    /// The fixed-prior model, then the learned-prior model.
    pub models: [PriorModel; 2],
    /// Mean over test digits of ELBO(mixture) − ELBO(N(0, I)), with its paired SE.
    pub elbo_difference: Estimate,
    /// The same for the IS log p(x).
    pub log_likelihood_difference: Estimate,
    /// The learned mixture weights π.
    pub mixture_weights: Vec<f64>,
    /// Per-digit ELBO terms and encoder outputs (S = `elbo_samples`), fixed then learned.
    #[serde(skip)]
    pub stats: [ElboStats; 2],
    /// Per-digit IS estimates, fixed then learned.
    #[serde(skip)]
    pub is: [IsEstimate; 2],
    /// `aggregate_draws × Z` draws from the learned model's aggregate posterior.
    #[serde(skip)]
    pub learned_draws: Array2<f64>,
    /// The learned prior p_θ in `f64`.
    #[serde(skip)]
    pub mixture: MixturePrior<f64>,
}

/// Compares the N(0, I) model `fixed` with the learned-prior model `learned` on `test` (lesson 05,
/// Step 6): test ELBO, IS log p(x), their paired differences (mixture − N(0, I), with
/// [`paired_difference`]), and ELBO surgery against each model's own prior. Draws from `rng`, in
/// the notebook's order:
///
/// 0. unless `fixed_surgery` is given: [`measure_fixed_prior`] (the notebook does this in Step 5
///    and passes `Some(&s_later)`; nothing draws from its `rng` in between, so `None` gives the
///    same numbers from the same generator state);
/// 1. `elbo_stats` of `fixed`, then of `learned` (S = `elbo_samples`, chunks of `chunk`);
/// 2. IS log p(x) of `fixed`, then of `learned` (K = `k`, chunks of `is_chunk_rows`);
/// 3. ELBO surgery of `learned` against its own mixture prior;
/// 4. `aggregate_draws` draws from `learned`'s aggregate posterior.
///
/// # Shapes
/// `test`: `N × 784` binary digits.
///
/// # Errors
/// `InvalidParameter` from [`PriorExperimentConfig::validate`], for a `fixed` model whose prior is
/// not an unconditional N(0, I), or a `learned` model without a mixture prior; `Shape` for a
/// mixture of other than `components` components or a `fixed_surgery` of another N or S; bad data.
pub fn compare_priors<R: Rng + ?Sized>(
    config: &PriorExperimentConfig,
    fixed: &Vae<f32>,
    fixed_surgery: Option<&ElboSurgery>,
    learned: &Vae<f32>,
    test: ArrayView2<f32>,
    rng: &mut R,
) -> Result<PriorComparison> {
    config.validate()?;
    check_fixed(fixed)?;
    let mixture = learned.mixture_prior().ok_or_else(|| {
        Error::invalid(
            "learned model's prior",
            format!("{:?}", learned.config.prior),
            "must be a learned mixture (LatentPrior::Mixture)",
        )
    })?;
    if mixture.components() != config.components {
        return Err(Error::shape("learned prior components (K)", config.components, mixture.components()));
    }
    // 0. Step 5's surgery of the fixed model (the notebook's `s_later`).
    let surgery0 = match fixed_surgery {
        Some(s) => {
            if s.n != test.nrows() || s.samples != config.surgery_samples {
                return Err(Error::shape(
                    "fixed_surgery (N, S)",
                    format!("({}, {})", test.nrows(), config.surgery_samples),
                    format!("({}, {})", s.n, s.samples),
                ));
            }
            *s
        }
        None => measure_fixed_prior(config, fixed, test, rng)?.1,
    };
    // 1. Test ELBO.
    let stats0 = elbo_stats(fixed, test, None, config.elbo_samples, config.chunk, rng)?;
    let stats1 = elbo_stats(learned, test, None, config.elbo_samples, config.chunk, rng)?;
    // 2. IS log p(x).
    let is0 = importance_sampled_log_likelihood(fixed, test, None, config.k, config.is_chunk_rows, rng)?;
    let is1 = importance_sampled_log_likelihood(learned, test, None, config.k, config.is_chunk_rows, rng)?;
    // 3. Surgery against the learned prior.
    let surgery1 = elbo_surgery(
        stats1.mean.view(),
        stats1.log_var.view(),
        Some(&mixture),
        config.surgery_samples,
        config.chunk,
        rng,
    )?;
    // 4. Draws from the learned model's aggregate posterior.
    let learned_draws =
        sample_aggregate_posterior(stats1.mean.view(), stats1.log_var.view(), config.aggregate_draws, rng)?;

    let elbo_difference = paired_difference(&stats1.elbo, &stats0.elbo)?;
    let log_likelihood_difference = paired_difference(&is1.per_example, &is0.per_example)?;
    let model =
        |name: String, stats: &ElboStats, is: &IsEstimate, surgery: ElboSurgery| -> Result<PriorModel> {
            Ok(PriorModel { name, elbo: stats.summary()?, is_log_likelihood: is.estimate, surgery })
        };
    let models = [
        model("N(0, I)".into(), &stats0, &is0, surgery0)?,
        model(format!("mixture K = {}", config.components), &stats1, &is1, surgery1)?,
    ];
    Ok(PriorComparison {
        epochs: config.epochs,
        components: config.components,
        k: config.k,
        seed: config.seed,
        models,
        elbo_difference,
        log_likelihood_difference,
        mixture_weights: mixture.weights().to_vec(),
        stats: [stats0, stats1],
        is: [is0, is1],
        learned_draws,
        mixture,
    })
}

impl PriorComparison {
    /// The learned prior's log-density as contours (log p_θ − max = −0.5, −2.5, −4.5) over the
    /// draws from the learned model's aggregate posterior, on an 81 × 81 grid spanning the draws
    /// ± 0.5 (the notebook's figure).
    ///
    /// # Errors
    /// `Shape` unless Z = 2.
    pub fn learned_prior_plot(&self) -> Result<plotly::Plot> {
        let (z1, z2) = (self.learned_draws.column(0).to_vec(), self.learned_draws.column(1).to_vec());
        let range = |v: &[f64]| {
            (
                v.iter().copied().fold(f64::INFINITY, f64::min) - 0.5,
                v.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 0.5,
            )
        };
        let axis = |(lo, hi): (f64, f64)| {
            (0..=80_i32).map(|i| lo + (hi - lo) * f64::from(i) / 80.0).collect::<Vec<f64>>()
        };
        let (gx, gy) = (axis(range(&z1)), axis(range(&z2)));
        let log_p = self.mixture.log_density_grid(&gx, &gy)?;
        Ok(Figure::new("learned prior p_θ(z) (contours) over draws from q_agg(z)")
            .axes("z₁", "z₂")
            .points(&format!("{} draws from q_agg(z)", z1.len()), &z1, &z2)
            .density_contours("p_θ(z)", &gx, &gy, &log_p, "black")
            .plot())
    }
}

/// What [`run_experiment`] returns.
#[derive(Clone, Debug)]
pub struct PriorRun {
    /// The comparison (its serialised fields are the command's JSON).
    pub comparison: PriorComparison,
    /// `aggregate_draws × Z` draws from the fixed model's aggregate posterior, drawn after every
    /// draw the notebook makes (for the command's page only).
    pub fixed_draws: Array2<f64>,
}

/// The whole experiment as `vaelab experiment prior` runs it: the test digits of `config`
/// ([`PriorExperimentConfig::test_digits`]), both models trained `epochs` epochs with
/// [`train_epochs`], [`compare_priors`] (with `fixed_surgery = None`) on a fresh
/// `StdRng::seed_from_u64(seeds::PRIOR_EVALUATION.seed(seed))`, then `aggregate_draws` draws from
/// the fixed model's aggregate posterior. `progress(model name, metrics)` after every epoch.
///
/// With `seed` 5 the trained models are the notebook's, bit for bit. Its Monte-Carlo estimates
/// agree with the notebook's only within their standard errors: the notebook's generator is the
/// same kind from the same seed, but has served Steps 2–4 before Step 5.
///
/// # Errors
/// As [`PriorExperimentConfig::validate`], [`PriorExperimentConfig::test_digits`], training and
/// [`compare_priors`].
pub fn run_experiment(
    config: &PriorExperimentConfig,
    digits: &DigitSplit,
    progress: &mut dyn FnMut(&str, &EpochMetrics),
) -> Result<PriorRun> {
    config.validate()?;
    let test = config.test_digits(digits)?;
    let train = digits.train.images.view();
    let mut fixed = config.trainer(LatentPrior::StandardNormal)?;
    train_epochs(&mut fixed, train, config.epochs, &mut |m| progress("N(0, I)", m))?;
    let mut learned = config.trainer(config.learned_prior())?;
    let name = format!("mixture K = {}", config.components);
    train_epochs(&mut learned, train, config.epochs, &mut |m| progress(&name, m))?;
    let mut rng = StdRng::seed_from_u64(seeds::PRIOR_EVALUATION.seed(config.seed));
    let comparison = compare_priors(config, &fixed.vae, None, &learned.vae, test.view(), &mut rng)?;
    let fixed_stats = &comparison.stats[0];
    let fixed_draws = sample_aggregate_posterior(
        fixed_stats.mean.view(),
        fixed_stats.log_var.view(),
        config.aggregate_draws,
        &mut rng,
    )?;
    Ok(PriorRun { comparison, fixed_draws })
}

#[cfg(test)]
mod tests;
