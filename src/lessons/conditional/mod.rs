//! §8 of the text (CVAE): the conditional VAE, measured on the digits with their labels. Derived in
//! `notebooks/10-cvae.ipynb`.
//!
//! The text's bound, with every term of derivation 1 conditioned on the class c:
//!
//! ```text
//! log P(x|c) ≥ E_{z~Q} log P(x|c,z) − KL(Q ‖ P(z|c))                      (the text, §CVAE)
//! ```
//!
//! The text writes Q(z|x); the engine's encoder sees c as well, Q(z|x,c) (Sohn et al. 2015,
//! "Learning Structured Output Representation using Deep Conditional Generative Models", eq. 4).
//! Derivation 1 holds for any distribution Q, so both are valid bounds; Q(z|x,c) can only close the
//! gap further, since the family with c contains the family without it.
//!
//! Three models are trained on the same data, from the same seed, with the same widths:
//!
//! | [`ModelKind`] | model | bound on |
//! |---|---|---|
//! | `Unconditional` | VAE, P(z) = N(0, I) | log P(x) |
//! | `FixedPrior` | CVAE, P(z\|c) = N(0, I) for every c (the text: "退化为了P(z)") | log P(x\|c) |
//! | `LearnedPrior` | CVAE, P(z\|c) = N(μ_c, diag exp v_c) learned | log P(x\|c) |
//!
//! A CVAE's log P(x|c) and a VAE's log P(x) are not the same quantity. To compare like with like
//! the CVAE is also scored as a model of x alone, with P(c) the training class frequencies:
//!
//! ```text
//! P(x) = Σ_c P(c) P(x|c)                          (the CVAE's marginal: a mixture over classes)
//! log P(x|c) − log P(x) = log P(c|x) − log P(c)    (Bayes' rule; ≤ −log P(c))
//! ```
//!
//! The right-hand side is what the label tells the model about x, in nats. Every P(x|c) is an
//! importance-sampled estimate ([`crate::engine::eval::importance_sampled_log_likelihood`], K samples from
//! Q(z|x,c)); since each is unbiased for P(x|c), Σ_c P(c) P̂(x|c) is unbiased for P(x) and its
//! logarithm is a stochastic lower bound like every IS estimate.

use ndarray::{Array1, Array2, ArrayView2, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::seeds;
use crate::base::stats::{Estimate, paired_difference};
use crate::engine::data::{CLASSES, DigitSplit, binarize_fixed, evenly_spaced};
use crate::engine::eval::{elbo_stats, importance_sampled_log_likelihood};
use crate::engine::store::{ModelStore, Stage};
use crate::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{PriorKind, Vae, VaeConfig};

/// Which of the three models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// A plain VAE of x: P(z) = N(0, I), no label anywhere.
    Unconditional,
    /// A CVAE with P(z|c) = N(0, I) for every class.
    FixedPrior,
    /// A CVAE with a learned Gaussian P(z|c) per class.
    LearnedPrior,
}

impl ModelKind {
    /// The three, in the order of the lesson's table.
    pub const ALL: [ModelKind; 3] =
        [ModelKind::Unconditional, ModelKind::FixedPrior, ModelKind::LearnedPrior];

    /// A short name for tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Unconditional => "VAE, P(z) = N(0, I)",
            ModelKind::FixedPrior => "CVAE, P(z|c) = N(0, I)",
            ModelKind::LearnedPrior => "CVAE, P(z|c) learned",
        }
    }

    /// Whether the model takes labels.
    pub fn conditional(self) -> bool {
        self != ModelKind::Unconditional
    }
}

/// The experiment: data, the shared architecture, training and evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvaeConfig {
    /// Training digits used, evenly spaced over the 8,000 (so every class keeps its share).
    pub n_train: usize,
    /// Test digits evaluated, evenly spaced over the 2,000.
    pub n_test: usize,
    /// H, the width of the encoder trunk's one layer and of the decoder's hidden layer.
    pub hidden: usize,
    /// Z.
    pub latent_dim: usize,
    /// Epochs per model.
    pub epochs: usize,
    /// B.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// K, importance samples per test digit (and per class for the CVAE's marginal).
    pub k: usize,
    /// Draws of z per test digit for the ELBO's reconstruction term.
    pub eval_samples: usize,
    /// Seeds every model's initialisation and training (the same for all three) and the
    /// evaluation draws.
    pub seed: u64,
}

impl CvaeConfig {
    /// Small enough for notebook cells of a few seconds: all 8,000 training digits, 300 test
    /// digits, 784-64-8 Bernoulli models with ReLU, `epochs` epochs of Adam 10⁻³ at B = 128, K = 50.
    pub fn small(epochs: usize, seed: u64) -> Self {
        CvaeConfig {
            n_train: 8000,
            n_test: 300,
            hidden: 64,
            latent_dim: 8,
            epochs,
            batch_size: 128,
            lr: 1e-3,
            k: 50,
            eval_samples: 10,
            seed,
        }
    }

    /// The model of `kind`: D = 784, one hidden layer of width H, Z latents; a CVAE reads one-hot
    /// c in its encoder and decoder.
    pub fn vae_config(&self, kind: ModelKind) -> VaeConfig {
        let base = VaeConfig::bernoulli(784, vec![self.hidden], self.latent_dim);
        match kind {
            ModelKind::Unconditional => base,
            ModelKind::FixedPrior => base.with_condition(CLASSES, PriorKind::StandardNormal),
            ModelKind::LearnedPrior => base.with_condition(CLASSES, PriorKind::LearnedConditional),
        }
    }

    /// Training: Adam, β = 1 (the bound itself), the shared seed.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig::adam(self.epochs, self.batch_size, self.lr, self.seed)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field.
    pub fn validate(&self) -> Result<()> {
        if !(2..=8000).contains(&self.n_train) {
            return Err(Error::invalid("n_train", self.n_train, "must be in 2..=8000"));
        }
        if !(2..=2000).contains(&self.n_test) {
            return Err(Error::invalid("n_test", self.n_test, "must be in 2..=2000 (an SE needs two)"));
        }
        for (name, v) in [("epochs", self.epochs), ("k", self.k), ("eval_samples", self.eval_samples)] {
            if v == 0 {
                return Err(Error::invalid(name, v, "must be ≥ 1"));
            }
        }
        self.vae_config(ModelKind::LearnedPrior).validate()?;
        self.train_config().validate()
    }
}

/// The digits as the experiment uses them.
///
/// # Shapes
/// `train`: `N × D` grey levels; `test`: `M × D` binarised by x > 0.5; labels `N` and `M`;
/// `class_prior`: `C`.
#[derive(Clone, Debug)]
pub struct CvaeData {
    /// Training grey levels (binarised dynamically while training).
    pub train: Array2<f32>,
    /// Their classes.
    pub train_labels: Vec<usize>,
    /// Test digits, binarised once.
    pub test: Array2<f32>,
    /// Their classes.
    pub test_labels: Vec<usize>,
    /// P(c): the training class frequencies.
    pub class_prior: Vec<f64>,
}

impl CvaeData {
    /// The subsets of `config` from a loaded split ([`crate::engine::data::Mnist10k::load`]).
    ///
    /// # Errors
    /// `InvalidParameter` from [`CvaeConfig::validate`]; `Shape` if the split has fewer digits
    /// than asked or images that are not 784 pixels.
    pub fn from_split(split: &DigitSplit, config: &CvaeConfig) -> Result<Self> {
        config.validate()?;
        for (what, set, n) in
            [("training", &split.train, config.n_train), ("test", &split.test, config.n_test)]
        {
            if set.len() < n {
                return Err(Error::shape(format!("{what} digits"), format!("≥ {n}"), set.len()));
            }
            if set.images.ncols() != 784 {
                return Err(Error::shape(format!("{what} pixels"), 784, set.images.ncols()));
            }
        }
        let pick = |set: &crate::engine::data::Digits, n: usize| {
            let rows = evenly_spaced(set.len(), n);
            let x = set.images.select(ndarray::Axis(0), &rows);
            let labels: Vec<usize> = rows.iter().map(|&r| usize::from(set.labels[r])).collect();
            (x, labels)
        };
        let (train, train_labels) = pick(&split.train, config.n_train);
        let (test_grey, test_labels) = pick(&split.test, config.n_test);
        let mut class_prior = vec![0.0; CLASSES];
        for &l in &train_labels {
            class_prior[l] += 1.0 / train_labels.len() as f64;
        }
        Ok(CvaeData { train, train_labels, test: binarize_fixed(test_grey.view()), test_labels, class_prior })
    }

    /// The shipped digits ([`crate::engine::data::Mnist10k`]) cut to `config`.
    ///
    /// # Errors
    /// As [`CvaeData::from_split`]; `Io` / `Format` if the data file cannot be read.
    pub fn load(config: &CvaeConfig) -> Result<Self> {
        Self::from_split(&crate::engine::data::Mnist10k::load()?, config)
    }
}

/// A fresh trainer for the model of `kind` ([`CvaeConfig::vae_config`], [`CvaeConfig::train_config`]).
///
/// # Errors
/// `InvalidParameter` from the configuration.
pub fn trainer(config: &CvaeConfig, kind: ModelKind) -> Result<Trainer> {
    config.validate()?;
    Trainer::new(config.vae_config(kind), config.train_config())
}

/// Trains `epochs` more epochs on `data.train` (labels given iff the model is a CVAE), calling
/// `progress` after each: a notebook splits [`train_model`] over cells with it. Goes through the
/// trained-model store ([`ModelStore::from_env`]): a stage trained before by the same engine is
/// loaded, bit for bit what training would give, its stored metrics replayed through `progress`;
/// the returned [`Stage`] prints one line saying which.
///
/// # Errors
/// Labels that do not fit the model; `Diverged` from training.
pub fn train_epochs(
    trainer: &mut Trainer,
    kind: ModelKind,
    data: &CvaeData,
    epochs: usize,
    progress: &mut dyn FnMut(&EpochMetrics),
) -> Result<Stage> {
    let set = TrainSet {
        x: data.train.view(),
        labels: kind.conditional().then_some(&data.train_labels[..]),
        binarize: true,
    };
    ModelStore::from_env().train_epochs(trainer, &set, epochs, progress)
}

/// Trains the model of `kind` for `config.epochs` epochs on `data.train`, calling `progress` after
/// every epoch.
///
/// # Errors
/// `InvalidParameter` from the configuration; `Diverged` from training.
pub fn train_model(
    config: &CvaeConfig,
    kind: ModelKind,
    data: &CvaeData,
    progress: &mut dyn FnMut(&EpochMetrics),
) -> Result<Vae<f32>> {
    let mut t = trainer(config, kind)?;
    train_epochs(&mut t, kind, data, config.epochs, progress)?;
    Ok(t.vae)
}

/// The conditional and marginal importance-sampled log-likelihoods of a CVAE, per data point.
#[derive(Clone, Debug)]
pub struct ConditionalLogLikelihood {
    /// K, importance samples per data point and class.
    pub k: usize,
    /// log P̂(x_n|c) for every class, `N × C`.
    pub per_class: Array2<f64>,
    /// log P̂(x_n|c_n) at each point's own class, `N`.
    pub conditional: Vec<f64>,
    /// log P̂(x_n) = log Σ_c P(c) P̂(x_n|c), `N`.
    pub marginal: Vec<f64>,
    /// log P(c_n|x_n) = log P̂(x_n|c_n) + log P(c_n) − log P̂(x_n), `N`.
    pub log_posterior: Vec<f64>,
    /// Fraction of points whose own class has the largest P(c|x).
    pub accuracy: f64,
}

/// Importance-sampled log P(x|c) for every class c of a CVAE, and from them the marginal
/// log P(x), the label's posterior and the Bayes classifier's accuracy.
///
/// ```text
/// log P̂(x|c) = logmeanexp_k [log P(x|z_k,c) + log P(z_k|c) − log Q(z_k|x,c)],  z_k ~ Q(z|x,c)
///              (Burda et al. 2016, eq. 9, every term conditioned on c)
/// log P̂(x)   = logsumexp_c [log P(c) + log P̂(x|c)]
/// log P(c|x) = log P̂(x|c) + log P(c) − log P̂(x)                                  (Bayes' rule)
/// ```
/// One call of [`importance_sampled_log_likelihood`] per class, all points labelled c, drawing
/// from `rng` in class order. A class with P(c) = 0 contributes nothing to the sum.
///
/// # Shapes
/// `x`: `N × D`; `labels`: `N`; `class_prior`: `C`.
///
/// # Errors
/// `InvalidParameter` if the model is not a CVAE, `class_prior` is not C probabilities summing
/// to 1 (to 10⁻⁹), a label is ≥ C, or `k` is 0; `Shape` for a label count ≠ N; as
/// [`importance_sampled_log_likelihood`] for bad data.
pub fn conditional_log_likelihood(
    vae: &Vae<f32>,
    x: ArrayView2<f32>,
    labels: &[usize],
    class_prior: &[f64],
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Result<ConditionalLogLikelihood> {
    let classes = check_conditional(vae, x.nrows(), labels, class_prior)?;
    let mut per_class = Array2::<f64>::zeros((x.nrows(), classes));
    for c in 0..classes {
        is_for_class(vae, x, c, k, rng, &mut per_class)?;
    }
    Ok(combine_classes(per_class, labels, class_prior, k))
}

/// The checks of [`conditional_log_likelihood`]; the number of classes C.
fn check_conditional(vae: &Vae<f32>, n: usize, labels: &[usize], class_prior: &[f64]) -> Result<usize> {
    let classes = vae.config.classes();
    if classes == 0 {
        return Err(Error::invalid("vae", "a plain VAE", "P(x|c) needs a CVAE"));
    }
    if class_prior.len() != classes {
        return Err(Error::shape("class_prior", classes, class_prior.len()));
    }
    if let Some(i) = class_prior.iter().position(|p| !(p.is_finite() && *p >= 0.0)) {
        return Err(Error::invalid(format!("class_prior[{i}]"), class_prior[i], "must be finite and ≥ 0"));
    }
    let total: f64 = class_prior.iter().sum();
    if (total - 1.0).abs() > 1e-9 {
        return Err(Error::invalid("class_prior", format!("{class_prior:?}"), "must sum to 1"));
    }
    vae.check_labels(n, Some(labels))?;
    Ok(classes)
}

/// Column `c` of `per_class`: log P̂(x_n|c) for every point, every point labelled c (one call of
/// [`importance_sampled_log_likelihood`]).
///
/// # Shapes
/// `x`: `N × D`; `per_class`: `N × C`.
fn is_for_class(
    vae: &Vae<f32>,
    x: ArrayView2<f32>,
    c: usize,
    k: usize,
    rng: &mut ChaCha8Rng,
    per_class: &mut Array2<f64>,
) -> Result<()> {
    let all_c = vec![c; x.nrows()];
    let est = importance_sampled_log_likelihood(vae, x, Some(&all_c), k, 256, rng)?;
    per_class.column_mut(c).assign(&Array1::from(est.per_example));
    Ok(())
}

/// Marginal, posterior and accuracy from every class's log P̂(x|c) (the equations of
/// [`conditional_log_likelihood`]).
///
/// # Shapes
/// `per_class`: `N × C`; `labels`: `N`; `class_prior`: `C`.
fn combine_classes(
    per_class: Array2<f64>,
    labels: &[usize],
    class_prior: &[f64],
    k: usize,
) -> ConditionalLogLikelihood {
    let (n, classes) = per_class.dim();
    let log_prior: Vec<f64> = class_prior.iter().map(|p| p.ln()).collect();
    let mut out = ConditionalLogLikelihood {
        k,
        conditional: vec![0.0; n],
        marginal: vec![0.0; n],
        log_posterior: vec![0.0; n],
        accuracy: 0.0,
        per_class: Array2::zeros((0, 0)),
    };
    let mut correct = 0usize;
    for i in 0..n {
        let joint: Array1<f64> = (0..classes).map(|c| log_prior[c] + per_class[(i, c)]).collect();
        let marginal = crate::base::prob::log_sum_exp_1d(joint.view());
        let own = labels[i];
        out.conditional[i] = per_class[(i, own)];
        out.marginal[i] = marginal;
        out.log_posterior[i] = joint[own] - marginal;
        let best = (0..classes).fold(0, |b, c| if joint[c] > joint[b] { c } else { b });
        correct += (best == own) as usize;
    }
    out.accuracy = correct as f64 / n as f64;
    out.per_class = per_class;
    out
}

/// One model's numbers on the test digits (nats per digit, ± standard errors across digits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelEval {
    /// Which model.
    pub kind: ModelKind,
    /// Test ELBO: a bound on log P(x|c) for a CVAE, on log P(x) for the VAE.
    pub elbo: Estimate,
    /// Mean KL(Q(z|x,c) ‖ P(z|c)) (CVAE) or KL(Q(z|x) ‖ P(z)) (VAE).
    pub kl: Estimate,
    /// Mean −E_Q log P(x|z,c).
    pub distortion: Estimate,
    /// IS log P(x|c) at the digit's own class (CVAE only).
    pub log_px_given_c: Option<Estimate>,
    /// IS log P(x): the VAE's own, or the CVAE's log Σ_c P(c) P(x|c).
    pub log_px: Estimate,
    /// Mean log P(x|c) − log P(x) = mean log P(c|x) − log P(c): what the label tells (CVAE only),
    /// with its paired standard error.
    pub label_information: Option<Estimate>,
    /// Accuracy of argmax_c P(c|x) as a classifier (CVAE only).
    pub accuracy: Option<f64>,
    /// K.
    pub k: usize,
    /// KL per test digit, `N` (for histograms).
    pub kl_per_example: Vec<f64>,
    /// ELBO per test digit, `N` (for paired differences).
    pub elbo_per_example: Vec<f64>,
    /// IS log P(x) per test digit, `N`.
    pub log_px_per_example: Vec<f64>,
    /// IS log P(x|c) per test digit at its own class, `N` (empty for the VAE).
    pub log_px_given_c_per_example: Vec<f64>,
}

/// Evaluates a trained model of `kind` on `data.test`: ELBO and KL ([`elbo_stats`]), IS log P(x)
/// ([`importance_sampled_log_likelihood`]) for the VAE, and [`conditional_log_likelihood`] for a
/// CVAE. The draws come from stream [`seeds::CVAE_EVALUATION`] of `config.seed` (the same for every
/// model).
///
/// # Errors
/// `InvalidParameter` if `vae` does not match `kind` (labels for a plain VAE or none for a CVAE);
/// as the estimators.
pub fn evaluate(config: &CvaeConfig, kind: ModelKind, vae: &Vae<f32>, data: &CvaeData) -> Result<ModelEval> {
    Evaluation::start(config, kind, vae, data)?.finish(data)
}

/// [`evaluate`] in steps, with the same draws in the same order and so the same numbers to the
/// last bit: [`Evaluation::start`] computes the ELBO (and a VAE's IS estimate),
/// [`Evaluation::classes`] a CVAE's log P̂(x|c) for the next classes, [`Evaluation::finish`] the
/// rest. A CVAE's evaluation is C importance-sampled passes over the test digits; a notebook can
/// spread them over two cells.
#[derive(Clone, Debug)]
pub struct Evaluation {
    vae: Vae<f32>,
    k: usize,
    rng: ChaCha8Rng,
    eval: ModelEval,
    /// log P̂(x_n|c) of the classes done so far (CVAE), `N × C`.
    per_class: Array2<f64>,
    done: usize,
}

impl Evaluation {
    /// Starts the evaluation of `vae` (of kind `kind`) on `data`'s test digits: the ELBO, and for a
    /// plain VAE its importance-sampled log P(x) too.
    ///
    /// # Errors
    /// As [`evaluate`].
    pub fn start(config: &CvaeConfig, kind: ModelKind, vae: &Vae<f32>, data: &CvaeData) -> Result<Self> {
        config.validate()?;
        let mut rng = seeds::CVAE_EVALUATION.rng(config.seed);
        let labels = kind.conditional().then_some(&data.test_labels[..]);
        let x = data.test.view();
        let stats = elbo_stats(vae, x, labels, config.eval_samples, 500, &mut rng)?;
        let summary = stats.summary()?;
        let mut eval = ModelEval {
            kind,
            elbo: summary.elbo,
            kl: summary.rate,
            distortion: summary.distortion,
            log_px_given_c: None,
            log_px: summary.elbo, // replaced by the importance-sampled estimate
            label_information: None,
            accuracy: None,
            k: config.k,
            kl_per_example: stats.rate,
            elbo_per_example: stats.elbo,
            log_px_per_example: Vec::new(),
            log_px_given_c_per_example: Vec::new(),
        };
        let classes = match labels {
            None => {
                let est = importance_sampled_log_likelihood(vae, x, None, config.k, 256, &mut rng)?;
                eval.log_px = est.estimate;
                eval.log_px_per_example = est.per_example;
                0
            }
            Some(labels) => check_conditional(vae, x.nrows(), labels, &data.class_prior)?,
        };
        let per_class = Array2::zeros((x.nrows(), classes));
        Ok(Evaluation { vae: vae.clone(), k: config.k, rng, eval, per_class, done: 0 })
    }

    /// Classes whose log P̂(x|c) is done (0 for a plain VAE).
    pub fn classes_done(&self) -> usize {
        self.done
    }

    /// Estimates log P̂(x|c) for the classes from [`Self::classes_done`] up to `upto` (exclusive,
    /// at most C); nothing for a plain VAE. `data` must be the data [`Self::start`] had.
    ///
    /// # Errors
    /// `Shape` if `data` has another number of test digits; as [`conditional_log_likelihood`].
    pub fn classes(&mut self, data: &CvaeData, upto: usize) -> Result<()> {
        let (n, classes) = self.per_class.dim();
        if data.test.nrows() != n {
            return Err(Error::shape(
                "test digits (the data the evaluation started with)",
                n,
                data.test.nrows(),
            ));
        }
        for c in self.done..upto.min(classes) {
            is_for_class(&self.vae, data.test.view(), c, self.k, &mut self.rng, &mut self.per_class)?;
            self.done = c + 1;
        }
        Ok(())
    }

    /// The remaining classes, then the model's numbers, as [`evaluate`] returns them.
    ///
    /// # Errors
    /// As [`Self::classes`].
    pub fn finish(mut self, data: &CvaeData) -> Result<ModelEval> {
        let classes = self.per_class.ncols();
        self.classes(data, classes)?;
        let mut eval = self.eval;
        if classes > 0 {
            let cll = combine_classes(self.per_class, &data.test_labels, &data.class_prior, self.k);
            eval.log_px_given_c = Some(Estimate::from_values(&cll.conditional)?);
            eval.log_px = Estimate::from_values(&cll.marginal)?;
            eval.label_information = Some(paired_difference(&cll.conditional, &cll.marginal)?);
            eval.accuracy = Some(cll.accuracy);
            eval.log_px_per_example = cll.marginal;
            eval.log_px_given_c_per_example = cll.conditional;
        }
        Ok(eval)
    }
}

/// Samples of every class from shared noise: row c of the grid decodes z = μ_c + σ_c ⊙ ε_j for
/// the columns j, so a column holds the same ε in every class.
///
/// ```text
/// z_cj = μ_c + exp(½ v_c) ⊙ ε_j,   image_cj = E[x | z_cj, c] = σ(decoder([z_cj, one-hot c]))
/// ```
/// With P(z|c) = N(0, I), z_cj = ε_j: the very same z in every row, only c changes. With a learned
/// prior each class draws from its own P(z|c), the same ε mapped through each class's Gaussian.
///
/// # Shapes
/// `eps`: `J × Z` → `C·J × D`, class-major (row c·J + j).
///
/// # Errors
/// `InvalidParameter` for a plain VAE; `Shape` if `eps` does not have Z columns.
pub fn class_samples(vae: &Vae<f32>, eps: ArrayView2<f32>) -> Result<Array2<f32>> {
    let classes = vae.config.classes();
    if classes == 0 {
        return Err(Error::invalid("vae", "a plain VAE", "class samples need a CVAE"));
    }
    let zd = vae.config.latent_dim;
    if eps.ncols() != zd {
        return Err(Error::shape("eps columns", zd, eps.ncols()));
    }
    let j = eps.nrows();
    let mut z = Array2::<f32>::zeros((classes * j, zd));
    let mut labels = Vec::with_capacity(classes * j);
    for c in 0..classes {
        let (m, v) = vae.prior_params(c)?;
        let sd = v.mapv(|v| (0.5 * v).exp());
        z.slice_mut(s![c * j..(c + 1) * j, ..]).assign(&(&eps * &sd + &m)); // J × Z ⊙ Z + Z
        labels.extend(std::iter::repeat_n(c, j));
    }
    Ok(vae.decode_mean(z.view(), Some(&labels)))
}

/// How much a class grid changes along its rows and along its columns: the mean absolute pixel
/// difference between two images of the same column (same ε, different c) and between two images
/// of the same row (same c, different ε).
///
/// ```text
/// by_class = mean over j, c < c'  of  (1/D) Σ_d |image_cj,d − image_c'j,d|
/// by_noise = mean over c, j < j'  of  (1/D) Σ_d |image_cj,d − image_cj',d|
/// ```
/// A decoder that takes the class from c and the style from z has by_class large; one that
/// ignores c has by_class = 0 (with P(z|c) = N(0, I), where the z of a column is the same in every row).
///
/// # Shapes
/// `eps`: `J × Z`, J ≥ 2.
///
/// # Errors
/// As [`class_samples`]; `InvalidParameter` for fewer than two columns.
pub fn grid_changes(vae: &Vae<f32>, eps: ArrayView2<f32>) -> Result<(f64, f64)> {
    let j = eps.nrows();
    if j < 2 {
        return Err(Error::invalid("eps rows", j, "need at least two columns"));
    }
    let images = class_samples(vae, eps)?;
    let (mut by_class, mut n_class, mut by_noise, mut n_noise) = (0.0, 0usize, 0.0, 0usize);
    for a in 0..images.nrows() {
        for b in a + 1..images.nrows() {
            let d = images.row(a).iter().zip(images.row(b)).map(|(x, y)| (x - y).abs() as f64).sum::<f64>()
                / images.ncols() as f64;
            if a % j == b % j {
                by_class += d;
                n_class += 1;
            } else if a / j == b / j {
                by_noise += d;
                n_noise += 1;
            }
        }
    }
    Ok((by_class / n_class.max(1) as f64, by_noise / n_noise.max(1) as f64))
}

/// [`class_samples`] as an image grid, one row per class 0..C−1.
///
/// # Errors
/// As [`class_samples`].
pub fn class_grid(vae: &Vae<f32>, eps: ArrayView2<f32>, title: &str) -> Result<plotly::Plot> {
    let images = class_samples(vae, eps)?;
    Ok(crate::plot::report::image_grid(images.view(), [28, 28], eps.nrows(), title))
}

/// The learned prior's Gaussians: (μ_c, σ_c = exp(½ v_c)) per class, each `Z`.
///
/// # Errors
/// `InvalidParameter` unless the model is a CVAE with a learned prior.
pub fn learned_prior(vae: &Vae<f32>) -> Result<Vec<(Vec<f64>, Vec<f64>)>> {
    if vae.params.prior.heads().is_none() {
        return Err(Error::invalid("vae", "no learned prior", "needs PriorKind::LearnedConditional"));
    }
    (0..vae.config.classes())
        .map(|c| {
            let (m, v) = vae.prior_params(c)?;
            Ok((m.iter().map(|&x| x as f64).collect(), v.iter().map(|&x| (0.5 * x as f64).exp()).collect()))
        })
        .collect()
}

/// The three models' results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CvaeResult {
    /// The experiment.
    pub config: CvaeConfig,
    /// P(c), the training class frequencies.
    pub class_prior: Vec<f64>,
    /// One evaluation per model, in the order of [`ModelKind::ALL`].
    pub models: Vec<ModelEval>,
    /// The learned prior's (μ_c, σ_c) per class.
    pub learned_prior: Vec<(Vec<f64>, Vec<f64>)>,
}

impl CvaeResult {
    /// The comparison table, one line per model: ELBO, KL, IS log P(x|c), IS log P(x), what the
    /// label tells, classifier accuracy (all ± SE across test digits).
    pub fn table(&self) -> String {
        let pm = |e: Option<Estimate>| match e {
            Some(Estimate { mean: v, stderr: se, .. }) => format!("{v:8.2} ± {se:4.2}"),
            None => format!("{:>15}", "–"),
        };
        let mut out = format!(
            "{:<24} {:>15} {:>13} {:>15} {:>15} {:>15} {:>6}\n",
            "model", "test ELBO", "KL", "log P(x|c)", "log P(x)", "log P(c|x)/P(c)", "acc."
        );
        for m in &self.models {
            out += &format!(
                "{:<24} {:8.2} ± {:4.2} {:6.2} ± {:4.2} {} {:8.2} ± {:4.2} {} {:>6}\n",
                m.kind.name(),
                m.elbo.mean,
                m.elbo.stderr,
                m.kl.mean,
                m.kl.stderr,
                pm(m.log_px_given_c),
                m.log_px.mean,
                m.log_px.stderr,
                pm(m.label_information),
                m.accuracy.map_or("–".to_string(), |a| format!("{:.3}", a)),
            );
        }
        let k = self.models.first().map_or(0, |m| m.k);
        out += &format!(
            "nats per test digit, ± SE across {} digits; IS with K = {k} per digit (and per class); −log P(c) ≤ {:.3}",
            self.config.n_test,
            self.class_prior.iter().filter(|&&p| p > 0.0).map(|p| -p.ln()).fold(0.0, f64::max)
        );
        out
    }

    /// Histogram (density) of the per-digit KL of each model.
    pub fn kl_plot(&self) -> plotly::Plot {
        let mut fig =
            crate::plot::Figure::new("KL(Q(z|x,c) ‖ P(z|c)) per test digit").axes("KL (nats)", "density");
        let all: Vec<f64> = self.models.iter().flat_map(|m| m.kl_per_example.iter().copied()).collect();
        let (lo, hi) =
            (all.iter().copied().fold(f64::INFINITY, f64::min), all.iter().copied().fold(0.0, f64::max));
        for m in &self.models {
            let values = Array1::from(m.kl_per_example.clone());
            if let Ok((centres, density)) = crate::base::stats::density_histogram(&values, lo, hi + 1e-9, 30)
            {
                fig = fig.density_bars(
                    m.kind.name(),
                    centres.as_slice().expect("owned"),
                    density.as_slice().expect("owned"),
                );
            }
        }
        fig.plot()
    }

    /// The learned prior's means, one row per class (a `C × Z` heat map).
    pub fn prior_means_plot(&self) -> plotly::Plot {
        let c = self.learned_prior.len();
        let z = self.learned_prior.first().map_or(0, |p| p.0.len());
        let means = Array2::from_shape_fn((c, z), |(i, u)| self.learned_prior[i].0[u]);
        crate::plot::Figure::new(
            "learned prior: μ_c, one row per class 0..9 (top to bottom), one column per unit",
        )
        .heatmap(&means)
        .plot()
    }
}

/// How much a CVAE's class grid changes down its columns and along its rows ([`grid_changes`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridChange {
    /// Which CVAE.
    pub kind: ModelKind,
    /// Mean |Δpixel| between two classes at the same ε.
    pub by_class: f64,
    /// Mean |Δpixel| between two ε in the same class.
    pub by_noise: f64,
}

/// What [`run`] returns: the numbers, the class grids and how much c steers them.
#[derive(Clone, Serialize)]
pub struct CvaeRun {
    /// The table's numbers.
    #[serde(flatten)]
    pub result: CvaeResult,
    /// One per CVAE, from the grids' ε.
    pub grid_changes: Vec<GridChange>,
    /// The two CVAEs' class grids ([`class_grid`]).
    #[serde(skip)]
    pub grids: Vec<plotly::Plot>,
}

/// The whole experiment: load the digits, train the three models, evaluate them, and draw the two
/// CVAEs' class grids from `columns` shared ε draws (seeded by [`seeds::CVAE_GRID_EPS`] of `config.seed`, as the
/// notebook). `progress(kind, epoch)` is called after every epoch.
///
/// # Errors
/// As [`CvaeData::load`], [`train_model`] and [`evaluate`]; `InvalidParameter` for fewer than two
/// columns.
pub fn run(
    config: &CvaeConfig,
    columns: usize,
    progress: &mut dyn FnMut(ModelKind, &EpochMetrics),
) -> Result<CvaeRun> {
    if columns < 2 {
        return Err(Error::invalid("columns", columns, "need at least two"));
    }
    let data = CvaeData::load(config)?;
    let mut models = Vec::new();
    let mut grids = Vec::new();
    let mut changes = Vec::new();
    let mut prior = Vec::new();
    let eps = shared_eps(columns, config.latent_dim, seeds::CVAE_GRID_EPS.seed(config.seed));
    for kind in ModelKind::ALL {
        let vae = train_model(config, kind, &data, &mut |m| progress(kind, m))?;
        models.push(evaluate(config, kind, &vae, &data)?);
        if kind.conditional() {
            grids.push(class_grid(&vae, eps.view(), &grid_title(kind))?);
            let (by_class, by_noise) = grid_changes(&vae, eps.view())?;
            changes.push(GridChange { kind, by_class, by_noise });
        }
        if kind == ModelKind::LearnedPrior {
            prior = learned_prior(&vae)?;
        }
    }
    let result =
        CvaeResult { config: config.clone(), class_prior: data.class_prior, models, learned_prior: prior };
    Ok(CvaeRun { result, grid_changes: changes, grids })
}

/// `columns × Z` standard normal draws from a generator seeded with `seed`: the ε shared by every
/// row of a class grid.
pub fn shared_eps(columns: usize, latent_dim: usize, seed: u64) -> Array2<f32> {
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((columns, latent_dim), || StandardNormal.sample(&mut rng))
}

/// The title of a class grid for `kind`.
pub fn grid_title(kind: ModelKind) -> String {
    match kind {
        ModelKind::LearnedPrior => {
            "CVAE, learned P(z|c): row c decodes z = μ_c + σ_c ⊙ ε_j (same ε_j down each column)".into()
        }
        _ => format!("{}: row c decodes the same z_j with class c (one z per column)", kind.name()),
    }
}

#[cfg(test)]
mod tests;
