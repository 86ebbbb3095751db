//! The two collapses (两种collapse, §7 of the text; lesson `09-two-collapses.ipynb`): "one, the KL
//! term too large, the model does not use z at all; two, the KL term too small, the decoder
//! degenerates".
//!
//! Both are measured on one family of models, a Bernoulli VAE on the shipped digits trained with
//! loss D + βR (Higgins et al. 2017, eq. 4), one model per β or per remedy ([`collapse_runs`]):
//!
//! | collapse | what the text says | what is measured ([`CollapsePoint`]) |
//! |---|---|---|
//! | (a) β large | z unused | rate R → 0, active units → 0, encoder σ → 1, prior samples ≈ the mean image ([`sample_distances`]) |
//! | (a′) decoder strong enough | z unused even at β = 1 | the same on data whose pixels are independent ([`CollapseData::IndependentPixels`]), whose exact log p(x) is known ([`independent_bernoulli_log_likelihood`]) |
//! | (b) β → 0 | the decoder degenerates | R grows, σ → 0, KL(q_agg ‖ p) grows ([`crate::lessons::prior::elbo_surgery`]), prior samples leave the data while reconstructions stay sharp; the importance-sampled log-likelihood falls |
//!
//! Why a strong decoder ignores z (Chen et al. 2017, "Variational Lossy Autoencoder", §2.2):
//!
//! ```text
//! ELBO(x) = log p(x) − KL(q(z|x) ‖ p(z|x))         (derivation 2 of the text)
//! ```
//! If the decoder alone can reach the data's log-likelihood (a decoder that ignores z and puts
//! out the data distribution itself), that model has p(z|x) = p(z), so q = p(z) makes the gap 0
//! and the ELBO is log p*(x) exactly, the largest any model can have on average (Gibbs). A model
//! that uses z can at best tie, and only if its q(z|x) is the exact posterior; every imperfection
//! of the encoder is paid for in the gap. Independent-pixel data makes a factorised Bernoulli
//! decoder exactly that strong.
//!
//! Remedies ([`Variant`]): KL warm-up ([`KlSchedule::LinearWarmup`], Bowman et al. 2016, §3.1;
//! Sønderby et al. 2016) and free bits ([`crate::engine::vae::Objective`], Kingma et al. 2016, eq. 15).
//!
//! # Shapes
//! Digits are `N × D` grey levels (D = 784). Training digits are binarised dynamically (a fresh
//! Bernoulli(grey) draw per step) and the test digits by one seeded Bernoulli(grey) draw, so the
//! test digits, the importance-sampled log-likelihood and the mean-image baseline D₀ all live on
//! the same binarisation ([`mean_image_log_likelihood`]).

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::seeds;
use crate::base::stats::{Estimate, paired_difference};
use crate::engine::data::{DigitSplit, binarize_bernoulli_rows, evenly_spaced};
use crate::engine::eval::{active_units, elbo_stats, importance_sampled_log_likelihood};
use crate::engine::store::{ModelStore, Stage};
use crate::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{KlSchedule, Vae, VaeConfig};

mod slider;
pub use slider::{BetaFrame, BetaMove, beta_frames, beta_moves, beta_slider};

/// Mean distances of generated images to the data's mean image and to their nearest data image,
/// as RMS per pixel.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleDistances {
    /// S, the number of images measured.
    pub n: usize,
    /// Mean over images of ‖s − x̄‖ / √D, with its standard error across images.
    pub to_mean: Estimate,
    /// Mean over images of min_n ‖s − x_n‖ / √D, with its standard error across images.
    pub to_nearest: Estimate,
}

/// How far each image of `samples` is from the mean image of `data` and from the nearest row of
/// `data`: the number behind "samples ≈ the mean digit".
///
/// ```text
/// x̄ = (1/N) Σ_n x_n
/// to_mean(s)    = ‖s − x̄‖₂ / √D
/// to_nearest(s) = min_n ‖s − x_n‖₂ / √D
/// ```
/// Both are RMS differences per pixel (grey levels in [0, 1] give values in [0, 1]). A collapsed
/// decoder draws the same image whatever z, close to x̄: to_mean ≈ 0 and to_nearest ≈ the typical
/// distance of x̄ to a digit. A good model's samples look like digits: to_nearest < to_mean.
/// Accumulated in f64.
///
/// # Shapes
/// `samples`: `S × D`, `data`: `N × D`.
///
/// # Errors
/// `Empty` for no data rows, `TooFewValues` for fewer than 2 samples (the standard errors need
/// two), `Shape` if D differs, `NonFinite` for a NaN or ∞.
///
/// ```
/// use vaelab::lessons::collapse::sample_distances;
/// use vaelab::ndarray::array;
/// // Data (0, 0) and (2, 2): mean (1, 1). The sample (1, 1) is the mean, and √((1 + 1)/2) = 1
/// // from both data points; the sample (0, 0) is 1 from the mean and 0 from the first point.
/// let d = sample_distances(array![[1.0f32, 1.0], [0.0, 0.0]].view(), array![[0.0f32, 0.0], [2.0, 2.0]].view()).unwrap();
/// // Both distances are (0, 1) or (1, 0): mean ½, s = √½, stderr = √½/√2 = ½.
/// assert_eq!((d.to_mean.mean, d.to_nearest.mean), (0.5, 0.5));
/// assert!((d.to_mean.stderr - 0.5).abs() < 1e-15 && (d.to_nearest.stderr - 0.5).abs() < 1e-15);
/// ```
pub fn sample_distances(samples: ArrayView2<f32>, data: ArrayView2<f32>) -> Result<SampleDistances> {
    for (what, a) in [("samples", samples), ("data", data)] {
        if a.nrows() == 0 || a.ncols() == 0 {
            return Err(Error::empty(what, "row and column"));
        }
        if let Some(i) = a.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                name: what.into(),
                index: i,
                value: f64::from(a.iter().nth(i).copied().unwrap_or(f32::NAN)),
            });
        }
    }
    if samples.ncols() != data.ncols() {
        return Err(Error::shape("samples columns (D)", data.ncols(), samples.ncols()));
    }
    if samples.nrows() < 2 {
        return Err(Error::TooFewValues { count: samples.nrows() });
    }
    let d = data.ncols() as f64;
    let mean_image = data.mapv(f64::from).mean_axis(Axis(0)).expect("non-empty"); // D
    let (mut to_mean, mut to_nearest) =
        (Vec::with_capacity(samples.nrows()), Vec::with_capacity(samples.nrows()));
    for s in samples.rows() {
        let m: f64 = s.iter().zip(&mean_image).map(|(&a, &b)| (f64::from(a) - b).powi(2)).sum();
        to_mean.push((m / d).sqrt());
        let nearest = data
            .rows()
            .into_iter()
            .map(|x| s.iter().zip(x).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum::<f64>())
            .fold(f64::INFINITY, f64::min);
        to_nearest.push((nearest / d).sqrt());
    }
    Ok(SampleDistances {
        n: samples.nrows(),
        to_mean: Estimate::from_values(&to_mean)?,
        to_nearest: Estimate::from_values(&to_nearest)?,
    })
}

/// log p(x) of binary images under independent Bernoulli pixels with probabilities `p`, per row:
/// the exact log-likelihood of [`CollapseData::IndependentPixels`] data.
///
/// ```text
/// log p(x) = Σ_d [ x_d log p_d + (1 − x_d) log(1 − p_d) ]
/// E_x[−log p(x)] = Σ_d h(p_d),   h(p) = −p log p − (1 − p) log(1 − p)   (the entropy; Cover & Thomas 2006, eq. 2.5)
/// ```
/// A pixel with p_d = 0 and x_d = 0 contributes 0 (0 log 0 = 0); a row that is impossible under
/// `p` (x_d = 1 where p_d = 0) gets −∞, its exact value.
///
/// # Shapes
/// `x`: `N × D` with entries 0 or 1; `p`: `D`. Returns `N`.
///
/// # Errors
/// `Empty` for no rows, `Shape` if D differs, `InvalidParameter` for a p_d outside [0, 1] or an
/// x entry other than 0 and 1.
///
/// ```
/// use vaelab::lessons::collapse::independent_bernoulli_log_likelihood;
/// use vaelab::ndarray::array;
/// // Two fair pixels: every image has probability ¼.
/// let l = independent_bernoulli_log_likelihood(array![[1.0f32, 0.0]].view(), array![0.5f32, 0.5].view()).unwrap();
/// assert!((l[0] - 0.25f64.ln()).abs() < 1e-12);
/// ```
pub fn independent_bernoulli_log_likelihood(x: ArrayView2<f32>, p: ArrayView1<f32>) -> Result<Vec<f64>> {
    if x.nrows() == 0 {
        return Err(Error::empty("x", "row"));
    }
    if x.ncols() != p.len() {
        return Err(Error::shape("x columns (D)", p.len(), x.ncols()));
    }
    if let Some((d, v)) = p.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
        return Err(Error::invalid(format!("p[{d}]"), v, "must be a probability in [0, 1]"));
    }
    if let Some(((i, j), v)) = x.indexed_iter().find(|(_, v)| !(**v == 0.0 || **v == 1.0)) {
        return Err(Error::invalid(format!("x[{i}, {j}]"), v, "must be 0 or 1 (binary images)"));
    }
    Ok(x.rows()
        .into_iter()
        .map(|row| {
            row.iter()
                .zip(p)
                .map(|(&x, &p)| {
                    let p = f64::from(p);
                    if x == 1.0 { p.ln() } else { (-p).ln_1p() }
                })
                .sum()
        })
        .collect())
}

/// The entropy of independent Bernoulli pixels, Σ_d h(p_d) in nats: the best expected distortion a
/// decoder that ignores z can reach on data with pixel means p (and the exact E[−log p(x)] of
/// [`CollapseData::IndependentPixels`] data).
///
/// ```text
/// D₀ = Σ_d h(p_d),   h(p) = −p log p − (1 − p) log(1 − p),   0 log 0 = 0
/// ```
/// A constant decoder q_d pays E[−log Bern(x_d; q_d)] = h(p_d) + KL(Bern(p_d) ‖ Bern(q_d)) per pixel,
/// smallest at q_d = p_d (Gibbs' inequality), so D₀ is the distortion of collapse (a).
///
/// # Errors
/// `InvalidParameter` for a p_d outside [0, 1].
///
/// ```
/// use vaelab::lessons::collapse::bernoulli_entropy;
/// use vaelab::ndarray::array;
/// // A fair pixel carries log 2 nats, a certain one nothing.
/// assert!((bernoulli_entropy(array![0.5f32, 0.0, 1.0].view()).unwrap() - 2f64.ln()).abs() < 1e-12);
/// ```
pub fn bernoulli_entropy(p: ArrayView1<f32>) -> Result<f64> {
    if let Some((d, v)) = p.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
        return Err(Error::invalid(format!("p[{d}]"), v, "must be a probability in [0, 1]"));
    }
    let xlogx = |q: f64| if q > 0.0 { q * q.ln() } else { 0.0 };
    Ok(p.iter().map(|&p| -xlogx(f64::from(p)) - xlogx(1.0 - f64::from(p))).sum())
}

/// The mean-image model: log p₀(x) of each binary row under independent Bernoulli pixels with the
/// training pixel means, each probability kept inside [ε, 1 − ε] with ε = 1/(N_train + 2):
///
/// ```text
/// p̃_d = min(max(x̄_d, ε), 1 − ε),   log p₀(x) = Σ_d [ x_d log p̃_d + (1 − x_d) log(1 − p̃_d) ]
/// ```
/// The clamp matters only for pixels no training digit ever touched (x̄_d = 0): a test digit with
/// a stroke there would otherwise get log p₀ = −∞. It costs at most D·ε nats on a digit that has
/// no such pixel. This is the z-free density model the VAEs are compared with, on the same binary
/// test digits as their importance-sampled log-likelihoods; its mean −log p₀(x) over data drawn
/// with pixel means x̄ is D₀ = Σ_d h(x̄_d) (up to the clamp).
///
/// # Shapes
/// `x`: `N × D` binary; `pixel_means`: `D`. Returns `N`.
///
/// # Errors
/// As [`independent_bernoulli_log_likelihood`]; `InvalidParameter` for `n_train` = 0.
///
/// ```
/// use vaelab::lessons::collapse::mean_image_log_likelihood;
/// use vaelab::ndarray::array;
/// // A pixel never on in 8 training digits: ε = 1/10, so a test stroke there costs log 10.
/// let l = mean_image_log_likelihood(array![[1.0f32]].view(), array![0.0f32].view(), 8).unwrap();
/// assert!((l[0] - 0.1f64.ln()).abs() < 1e-6);
/// ```
pub fn mean_image_log_likelihood(
    x: ArrayView2<f32>,
    pixel_means: ArrayView1<f32>,
    n_train: usize,
) -> Result<Vec<f64>> {
    if n_train == 0 {
        return Err(Error::invalid("n_train", 0, "must be ≥ 1"));
    }
    if let Some((d, v)) = pixel_means.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
        return Err(Error::invalid(format!("pixel_means[{d}]"), v, "must be a probability in [0, 1]"));
    }
    let eps = 1.0 / (n_train as f32 + 2.0);
    let clamped = pixel_means.mapv(|p| p.clamp(eps, 1.0 - eps));
    independent_bernoulli_log_likelihood(x, clamped.view())
}

/// The slope of the rate–distortion curve between two models measured on the same test digits,
/// `−ΔD/ΔR`, with a standard error:
///
/// ```text
/// s = (D̄_a − D̄_b) / (R̄_b − R̄_a)
/// u_n = [ (D_a,n − D_b,n) − s (R_b,n − R_a,n) ] / (R̄_b − R̄_a),   SE(s) = sd(u) / √N
/// ```
/// (the ratio estimator's linearisation, or delta method; Cochran 1977, §6.3). Point a is the one
/// with the smaller rate; for the z-free model pass its rates as zeros. A model trained to the
/// minimum of D + βR sits where the curve's slope −dD/dR is β; the curve is convex, so the slope
/// falls as R grows and a chord's slope lies between the slopes at its two ends.
///
/// # Shapes
/// All four slices `N`, one value per test digit, in the same order.
///
/// # Errors
/// `Shape` if the lengths differ, `TooFewValues` for N < 2, `InvalidParameter` if R̄_b ≤ R̄_a.
///
/// ```
/// use vaelab::lessons::collapse::chord_slope;
/// // D falls by 4 where R rises by 2 on every digit: slope 2, no spread.
/// let s = chord_slope(&[10.0, 12.0], &[0.0, 0.0], &[6.0, 8.0], &[2.0, 2.0]).unwrap();
/// assert_eq!((s.mean, s.stderr), (2.0, 0.0));
/// ```
pub fn chord_slope(d_a: &[f64], r_a: &[f64], d_b: &[f64], r_b: &[f64]) -> Result<Estimate> {
    let n = d_a.len();
    for (name, v) in [("r_a", r_a), ("d_b", d_b), ("r_b", r_b)] {
        if v.len() != n {
            return Err(Error::shape(name, n, v.len()));
        }
    }
    if n < 2 {
        return Err(Error::TooFewValues { count: n });
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / n as f64;
    let dr = mean(r_b) - mean(r_a);
    if dr.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
        return Err(Error::invalid("mean r_b − mean r_a", dr, "must be > 0 (point b has the larger rate)"));
    }
    let slope = (mean(d_a) - mean(d_b)) / dr;
    let u: Vec<f64> = (0..n).map(|i| ((d_a[i] - d_b[i]) - slope * (r_b[i] - r_a[i])) / dr).collect();
    let spread = Estimate::from_values(&u)?;
    Ok(Estimate { mean: slope, stderr: spread.stderr, samples: n })
}

/// The importance-sampled log-likelihood of one model at one K, on the IS test digits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IsAtK {
    /// K.
    pub k: usize,
    /// log p̂_K(x_n) per IS test digit.
    pub per_example: Vec<f64>,
    /// Their mean with its standard error.
    pub estimate: Estimate,
}

/// Which data the models are trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollapseData {
    /// The shipped digits: training digits binarised dynamically, test digits by one seeded
    /// Bernoulli(grey) draw (the same binarisation, so D₀ and the log-likelihoods compare).
    Digits,
    /// Images with the digits' pixel means x̄_d but independent pixels: every training image is a
    /// fresh Bernoulli(x̄) draw, the test images one fixed draw. A factorised decoder can model
    /// them exactly without z.
    IndependentPixels,
}

/// One way of weighing the KL term: a schedule for β and optional free bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Variant {
    /// A short name for tables and plots.
    pub label: String,
    /// β per step.
    pub kl_schedule: KlSchedule,
    /// Free bits λ in nats per latent unit, or none.
    pub free_bits: Option<f64>,
}

impl Variant {
    /// Constant β.
    pub fn constant(beta: f64) -> Self {
        Variant { label: format!("β = {beta}"), kl_schedule: KlSchedule::Constant { beta }, free_bits: None }
    }

    /// β reached linearly over the first `warmup_steps` steps (KL warm-up).
    pub fn warmup(beta: f64, warmup_steps: usize) -> Self {
        Variant {
            label: format!("β = {beta}, warm-up {warmup_steps} steps"),
            kl_schedule: KlSchedule::LinearWarmup { beta, warmup_steps },
            free_bits: None,
        }
    }

    /// Constant β with free bits λ per unit.
    pub fn free_bits(beta: f64, lambda: f64) -> Self {
        Variant {
            label: format!("β = {beta}, free bits {lambda}"),
            kl_schedule: KlSchedule::Constant { beta },
            free_bits: Some(lambda),
        }
    }

    /// β at the end of training (the schedule's target).
    pub fn final_beta(&self) -> f64 {
        match self.kl_schedule {
            KlSchedule::Constant { beta }
            | KlSchedule::LinearWarmup { beta, .. }
            | KlSchedule::Cyclical { beta, .. } => beta,
        }
    }
}

/// The experiment: data, model size, training and measurement budgets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CollapseConfig {
    /// Digits or independent pixels.
    pub data: CollapseData,
    /// Training digits used (evenly spaced over the 8,000, so every class is in).
    pub n_train: usize,
    /// Test digits measured (evenly spaced over the 2,000).
    pub n_test: usize,
    /// H, the width of the encoder trunk and of the decoder.
    pub hidden: usize,
    /// Z.
    pub latent_dim: usize,
    /// Epochs per model.
    pub epochs: usize,
    /// B.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// K, importance samples per test digit for the log-likelihood.
    pub k: usize,
    /// Test digits given the (slower) importance-sampled log-likelihood: the first of the test set.
    pub n_is: usize,
    /// Draws of z per test digit for ELBO surgery's Monte-Carlo terms.
    pub surgery_samples: usize,
    /// Prior samples decoded per model (distances and image grid).
    pub prior_samples: usize,
    /// Seeds the data subset draws, every model's initialisation and training (the same for every
    /// variant, so models differ only in the variant) and the evaluation draws.
    pub seed: u64,
}

impl CollapseConfig {
    /// A budget for a notebook cell (about a second or two per model on a quiet machine): 2,000
    /// training digits, 500 test digits, a 784-128-16 Bernoulli VAE, Adam 2e-3 at B = 100, K = 50
    /// on 200 test digits, 16 prior samples.
    pub fn small(data: CollapseData, epochs: usize, seed: u64) -> Self {
        CollapseConfig {
            data,
            n_train: 2000,
            n_test: 500,
            hidden: 128,
            latent_dim: 16,
            epochs,
            batch_size: 100,
            lr: 2e-3,
            k: 50,
            n_is: 200,
            surgery_samples: 2,
            prior_samples: 16,
            seed,
        }
    }

    /// The model: 784-H-Z, ReLU, Bernoulli decoder.
    pub fn vae_config(&self, data_dim: usize) -> VaeConfig {
        VaeConfig::bernoulli(data_dim, vec![self.hidden], self.latent_dim)
    }

    /// The training configuration of one variant.
    pub fn train_config(&self, variant: &Variant) -> TrainConfig {
        TrainConfig {
            kl_schedule: variant.kl_schedule,
            free_bits: variant.free_bits,
            ..TrainConfig::adam(self.epochs, self.batch_size, self.lr, self.seed)
        }
    }

    /// Training steps per epoch, ⌈n_train / B⌉ (to size a warm-up).
    pub fn steps_per_epoch(&self) -> usize {
        self.n_train.div_ceil(self.batch_size.max(1))
    }

    /// Checks every field against the digits available.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field.
    pub fn validate(&self, digits: &DigitSplit) -> Result<()> {
        for (name, v, max) in
            [("n_train", self.n_train, digits.train.len()), ("n_test", self.n_test, digits.test.len())]
        {
            if v < 2 || v > max {
                return Err(Error::invalid(
                    name,
                    v,
                    format!("must be in 2..={max} (standard errors need two points)"),
                ));
            }
        }
        if self.n_is < 2 || self.n_is > self.n_test {
            return Err(Error::invalid("n_is", self.n_is, format!("must be in 2..={}", self.n_test)));
        }
        for (name, v) in [("epochs", self.epochs), ("k", self.k), ("surgery_samples", self.surgery_samples)] {
            if v == 0 {
                return Err(Error::invalid(name, v, "must be ≥ 1"));
            }
        }
        if self.prior_samples < 2 {
            return Err(Error::invalid(
                "prior_samples",
                self.prior_samples,
                "must be ≥ 2 (a standard error needs two samples)",
            ));
        }
        self.vae_config(digits.train.images.ncols()).validate()?;
        self.train_config(&Variant::constant(1.0)).validate()
    }
}

/// One trained model, measured on the test digits (nats per example unless said otherwise).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CollapsePoint {
    /// The variant trained.
    pub variant: Variant,
    /// β at the end of training.
    pub beta: f64,
    /// R = mean KL(q(z|x) ‖ N(0, I)), closed form, with its standard error across test digits.
    pub rate: Estimate,
    /// D = mean −log p(x|z), one z per test digit, with its standard error.
    pub distortion: Estimate,
    /// Units with Var_x μ_u(x) > 0.01 (Burda et al. 2016, §5.2).
    pub active_units: usize,
    /// Mean over test digits and units of the encoder's σ_u(x).
    pub encoder_sigma: f64,
    /// Mean KL per unit (`Z`, sums to R).
    pub kl_per_unit: Vec<f64>,
    /// I(n; z) of ELBO surgery over the test digits (at most log N), with its standard error.
    pub mutual_information: Estimate,
    /// KL(q_agg ‖ p) of ELBO surgery: how far the aggregate posterior is from the prior, with its
    /// standard error.
    pub marginal_kl: Estimate,
    /// Importance-sampled log p(x) (K samples) on the first `n_is` test digits, with its standard
    /// error across those digits.
    pub is_log_likelihood: Estimate,
    /// For independent-pixel data: the mean over the same digits of exact log p*(x) − log p̂(x),
    /// an estimate of KL(p* ‖ p_model) plus the IS bias, both ≥ 0 (Gibbs; Burda et al. 2016),
    /// with its paired standard error across digits.
    pub exact_minus_is: Option<Estimate>,
    /// Decoded prior samples against the training data (grey levels for digits).
    pub samples: SampleDistances,
    /// RMS per pixel of reconstruction E[x|z = μ(x)] minus x, mean over test digits, with its
    /// standard error.
    pub reconstruction_rms: Estimate,
    /// The last epoch's training metrics.
    pub last_epoch: EpochMetrics,
    /// The first `prior_samples` decoded prior samples, `S × D` (for the image grid; not in JSON).
    #[serde(skip)]
    pub sample_images: Array2<f32>,
    /// Reconstructions of 8 test digits evenly spaced over the test set, `8 × D` (not in JSON).
    #[serde(skip)]
    pub reconstruction_images: Array2<f32>,
    /// Rate KL(q(z|x_n) ‖ p) per test digit, `n_test` (not in JSON).
    #[serde(skip)]
    pub rate_per_example: Vec<f64>,
    /// Distortion −log p(x_n|z), one z per test digit, `n_test` (not in JSON).
    #[serde(skip)]
    pub distortion_per_example: Vec<f64>,
    /// log p̂(x_n) with K = `config.k`, per IS test digit, `n_is` (not in JSON).
    #[serde(skip)]
    pub is_per_example: Vec<f64>,
    /// The trained model (for [`Collapses::is_k_sweep`]; not in JSON).
    #[serde(skip)]
    pub vae: Vae<f32>,
    /// The trained-model store's line for this model ("loaded from the store: …" or "trained …,
    /// stored: …", [`crate::engine::store::Stage`]); not serialised.
    #[serde(skip)]
    pub store: String,
}

/// The runs and the yardsticks they are read against.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Collapses {
    /// The experiment.
    pub config: CollapseConfig,
    /// D₀ = Σ_d h(x̄_d): the expected distortion of the best decoder that ignores z
    /// ([`bernoulli_entropy`] of the training pixel means).
    pub distortion_at_zero_rate: f64,
    /// log N of the test set: the most I(n; z) can be.
    pub log_n: f64,
    /// Real test digits (grey) against the training data: how far a real digit is from the mean
    /// image and from its nearest training digit.
    pub real_digits: SampleDistances,
    /// For independent pixels: the exact mean log p*(x) on the IS test digits with its standard error.
    pub exact_log_likelihood: Option<Estimate>,
    /// The mean-image model's log p₀(x) ([`mean_image_log_likelihood`]) on the IS test digits, mean
    /// with its standard error: the z-free baseline on the same binary digits as the IS estimates.
    pub mean_image_log_likelihood: Estimate,
    /// log p₀(x_n) of the mean-image model per test digit, `n_test` (not in JSON).
    #[serde(skip)]
    pub mean_image_per_example: Vec<f64>,
    /// The binary test digits, `n_test × D` (for [`Collapses::is_k_sweep`]; not in JSON).
    #[serde(skip)]
    pub test_digits: Array2<f32>,
    /// One point per variant, in order.
    pub points: Vec<CollapsePoint>,
    /// 8 test images evenly spaced over the test set (so every few classes), `8 × D` (not in JSON).
    #[serde(skip)]
    pub test_images: Array2<f32>,
}

/// The data of one experiment, prepared once.
struct Prepared {
    train: Array2<f32>,
    binarize: bool,
    reference: Array2<f32>,
    test: Array2<f32>,
    pixel_means: Array1<f32>,
}

fn prepare(digits: &DigitSplit, config: &CollapseConfig) -> Prepared {
    let train_grey = digits.train.images.select(Axis(0), &evenly_spaced(digits.train.len(), config.n_train));
    let test_grey = digits.test.images.select(Axis(0), &evenly_spaced(digits.test.len(), config.n_test));
    let pixel_means = train_grey.mean_axis(Axis(0)).expect("n_train ≥ 2");
    match config.data {
        CollapseData::Digits => {
            // One Bernoulli(grey) draw per test digit: the distribution dynamic binarisation
            // trains on, whose z-free optimum is x̄ with expected distortion D₀ = Σ h(x̄_d).
            let mut rng = seeds::LESSON_TEST_DATA.rng(config.seed);
            let mut test = Array2::zeros(test_grey.dim());
            let rows: Vec<usize> = (0..config.n_test).collect();
            binarize_bernoulli_rows(test_grey.view(), &rows, &mut test.view_mut(), &mut rng);
            Prepared { binarize: true, reference: train_grey.clone(), train: train_grey, test, pixel_means }
        }
        CollapseData::IndependentPixels => {
            // Every row is the mean image: dynamic binarisation then draws independent pixels.
            let train = pixel_means.broadcast((config.n_train, pixel_means.len())).expect("1 × D").to_owned();
            let mut rng = seeds::LESSON_TEST_DATA.rng(config.seed);
            let mut test = Array2::zeros((config.n_test, pixel_means.len()));
            let rows: Vec<usize> = (0..config.n_test).collect();
            binarize_bernoulli_rows(train.view(), &rows, &mut test.view_mut(), &mut rng);
            let mut reference = Array2::zeros(train.dim());
            let rows: Vec<usize> = (0..config.n_train).collect();
            binarize_bernoulli_rows(train.view(), &rows, &mut reference.view_mut(), &mut rng);
            Prepared { train, binarize: true, reference, test, pixel_means }
        }
    }
}

/// Trains one model per variant on the same data from the same seed and measures both collapses.
///
/// ```text
/// minimise  (1/B) Σ_b [ −log p(x_b|z_b) + β(t) KL(q(z|x_b) ‖ N(0, I)) ]        (Higgins et al. 2017, eq. 4)
///           or with free bits:  D̄ + β Σ_u max(λ, R̄_u)                         (Kingma et al. 2016, eq. 15)
/// measure   R, D                                  (eval::elbo_stats, 1 z per test digit)
///           active units, mean σ                  (eval::active_units; σ = exp(½ log σ²))
///           I(n; z) + KL(q_agg ‖ p) = R           (prior::elbo_surgery; Hoffman & Johnson 2016, eq. 3)
///           log p̂(x), K samples                   (eval::importance_sampled_log_likelihood; Burda et al. 2016, eq. 9)
///           prior samples vs x̄ and nearest digit (sample_distances); reconstruction RMS
/// ```
/// `progress(label, metrics)` is called after every epoch of every model (a `dyn` closure, so a
/// notebook cell calling this compiles no copy of the training loop).
///
/// # Shapes
/// Training `n_train × D`, test `n_test × D`; `kl_per_unit`: Z; images `S × D`.
///
/// # Errors
/// A bad configuration ([`CollapseConfig::validate`]) or variant (schedule, free bits), no
/// variants (`Empty`), `Diverged` from training.
pub fn collapse_runs(
    digits: &DigitSplit,
    config: &CollapseConfig,
    variants: &[Variant],
    progress: &mut dyn FnMut(&str, &EpochMetrics),
) -> Result<Collapses> {
    config.validate(digits)?;
    if variants.is_empty() {
        return Err(Error::empty("variants", "variant"));
    }
    for v in variants {
        config.train_config(v).validate()?;
    }
    let data = prepare(digits, config);
    let yard = yardsticks(digits, config, &data)?;
    let shown = evenly_spaced(config.n_test, 8.min(config.n_test));
    let mut points = Vec::with_capacity(variants.len());
    for variant in variants {
        let (trainer, last_epoch, stage) = train_variant(config, &data, variant, progress)?;
        let point =
            measure_variant(&trainer.vae, config, &data, yard.exact.as_deref(), variant, last_epoch, &shown)?;
        points.push(CollapsePoint { store: stage.to_string(), ..point });
    }
    Ok(Collapses {
        config: config.clone(),
        distortion_at_zero_rate: yard.distortion_at_zero_rate,
        log_n: (config.n_test as f64).ln(),
        real_digits: yard.real_digits,
        exact_log_likelihood: yard.exact.as_deref().map(Estimate::from_values).transpose()?,
        mean_image_log_likelihood: Estimate::from_values(&yard.mean_image[..config.n_is])?,
        mean_image_per_example: yard.mean_image,
        points,
        test_images: data.test.select(Axis(0), &shown),
        test_digits: data.test,
    })
}

/// What every variant is read against, computed once before training (no random draws).
struct Yardsticks {
    /// D₀ = Σ_d h(x̄_d).
    distortion_at_zero_rate: f64,
    /// Real test digits against the training data.
    real_digits: SampleDistances,
    /// For independent pixels: exact log p*(x) of each of the first `n_is` test digits.
    exact: Option<Vec<f64>>,
    /// The mean-image model's log p₀(x) per test digit.
    mean_image: Vec<f64>,
}

fn yardsticks(digits: &DigitSplit, config: &CollapseConfig, data: &Prepared) -> Result<Yardsticks> {
    let distortion_at_zero_rate = bernoulli_entropy(data.pixel_means.view())?;
    let real_grey =
        digits.test.images.select(Axis(0), &evenly_spaced(digits.test.len(), 64.min(config.n_test)));
    let real_digits = sample_distances(real_grey.view(), data.reference.view())?;
    let exact = match config.data {
        CollapseData::Digits => None,
        CollapseData::IndependentPixels => Some(
            independent_bernoulli_log_likelihood(
                data.test.slice(ndarray::s![..config.n_is, ..]),
                data.pixel_means.view(),
            )?
            .to_vec(),
        ),
    };
    let mean_image = mean_image_log_likelihood(data.test.view(), data.pixel_means.view(), config.n_train)?;
    Ok(Yardsticks { distortion_at_zero_rate, real_digits, exact, mean_image })
}

/// Trains one variant from the configuration's seed, through the trained-model store
/// ([`ModelStore::from_env`]: loaded, bit for bit, if trained before; the stored metrics are then
/// replayed through `progress`); returns the trainer, its last epoch and the store's stage.
fn train_variant(
    config: &CollapseConfig,
    data: &Prepared,
    variant: &Variant,
    progress: &mut dyn FnMut(&str, &EpochMetrics),
) -> Result<(Trainer, EpochMetrics, Stage)> {
    let set = TrainSet { x: data.train.view(), labels: None, binarize: data.binarize };
    let mut trainer = Trainer::new(config.vae_config(data.train.ncols()), config.train_config(variant))?;
    let epochs = trainer.config.epochs;
    let stage = ModelStore::from_env()
        .train_epochs(&mut trainer, &set, epochs, &mut |m| progress(&variant.label, m))?;
    let last_epoch = stage.metrics.last().expect("epochs ≥ 1").clone();
    Ok((trainer, last_epoch, stage))
}

/// Measures one trained model on the test digits. One generator, stream [`seeds::LESSON_EVALUATION`]
/// of the seed for every variant, feeds in order: the ELBO's draws, ELBO surgery, importance sampling, prior samples.
fn measure_variant(
    vae: &Vae<f32>,
    config: &CollapseConfig,
    data: &Prepared,
    exact: Option<&[f64]>,
    variant: &Variant,
    last_epoch: EpochMetrics,
    shown: &[usize],
) -> Result<CollapsePoint> {
    let mut rng = seeds::LESSON_EVALUATION.rng(config.seed);
    let stats = elbo_stats(vae, data.test.view(), None, 1, 500, &mut rng)?;
    let summary = stats.summary()?;
    let encoder_sigma = stats.log_var.mapv(|v| (0.5 * v).exp()).mean().expect("non-empty");
    let prior = vae.mixture_prior();
    let surgery = crate::lessons::prior::elbo_surgery(
        stats.mean.view(),
        stats.log_var.view(),
        prior.as_ref(),
        config.surgery_samples,
        256,
        &mut rng,
    )?;
    let is_test = data.test.slice(ndarray::s![..config.n_is, ..]);
    let is = importance_sampled_log_likelihood(vae, is_test, None, config.k, 500, &mut rng)?;
    let exact_minus_is = exact.map(|e| paired_difference(e, &is.per_example)).transpose()?;
    let sample_images = vae.sample_prior_means(config.prior_samples, None, &mut rng)?;
    let samples = sample_distances(sample_images.view(), data.reference.view())?;
    let recon = vae.reconstruct(data.test.view(), None);
    Ok(CollapsePoint {
        variant: variant.clone(),
        beta: variant.final_beta(),
        rate: summary.rate,
        distortion: summary.distortion,
        active_units: active_units(stats.mean.view(), 0.01).count,
        encoder_sigma,
        kl_per_unit: stats.kl_per_unit.clone(),
        mutual_information: surgery.mutual_information,
        marginal_kl: surgery.marginal_kl,
        is_log_likelihood: is.estimate,
        exact_minus_is,
        samples,
        reconstruction_rms: reconstruction_rms(recon.view(), data.test.view())?,
        last_epoch,
        reconstruction_images: recon.select(Axis(0), shown),
        sample_images,
        rate_per_example: stats.rate.clone(),
        distortion_per_example: stats.distortion.clone(),
        is_per_example: is.per_example.clone(),
        vae: vae.clone(),
        store: String::new(),
    })
}

/// RMS per pixel of each reconstruction against its image, averaged over the rows:
///
/// ```text
/// rms_n = √( (1/D) Σ_d (r_nd − x_nd)² ),   mean ± SE over n
/// ```
/// # Shapes
/// `recon`, `x`: `N × D`.
fn reconstruction_rms(recon: ArrayView2<f32>, x: ArrayView2<f32>) -> Result<Estimate> {
    let rms: Vec<f64> = recon
        .rows()
        .into_iter()
        .zip(x.rows())
        .map(|(r, x)| {
            (r.iter().zip(x).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum::<f64>()
                / x.len() as f64)
                .sqrt()
        })
        .collect();
    Estimate::from_values(&rms)
}

impl Collapses {
    /// Appends the points of another run of the same configuration (a notebook trains a few
    /// variants per cell).
    ///
    /// # Errors
    /// `InvalidParameter` if the configurations differ.
    pub fn extend(&mut self, other: Collapses) -> Result<()> {
        if other.config != self.config {
            return Err(Error::invalid(
                "other.config",
                format!("{:?}", other.config),
                "must equal this run's configuration",
            ));
        }
        self.points.extend(other.points);
        Ok(())
    }

    /// The importance-sampled log-likelihood of model `point` at each K of `ks`, on the same IS
    /// test digits as the table, with fresh draws for every K (stream [`seeds::EVAL_IS`]):
    ///
    /// ```text
    /// log p̂_K(x) = log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x)     (Burda et al. 2016, eq. 9)
    /// E[log p̂_K(x)] ≤ E[log p̂_2K(x)] ≤ log p(x)                              (Burda et al. 2016, Thm 1)
    /// ```
    /// Every value is a stochastic *lower* bound on log p(x) that rises with K; the rise between
    /// two K is read as the paired difference over digits.
    ///
    /// # Shapes
    /// One [`IsAtK`] per K, each with `n_is` values.
    ///
    /// # Errors
    /// `InvalidParameter` for a `point` out of range or a K of 0.
    pub fn is_k_sweep(&self, point: usize, ks: &[usize]) -> Result<Vec<IsAtK>> {
        let p = self.points.get(point).ok_or_else(|| {
            Error::invalid("point", point, format!("must be < {} (the number of models)", self.points.len()))
        })?;
        let x = self.test_digits.slice(ndarray::s![..self.config.n_is, ..]);
        let mut rng = seeds::EVAL_IS.rng(self.config.seed);
        ks.iter()
            .map(|&k| {
                let is = importance_sampled_log_likelihood(&p.vae, x, None, k, 500, &mut rng)?;
                Ok(IsAtK { k, per_example: is.per_example, estimate: is.estimate })
            })
            .collect()
    }

    /// [`Self::is_k_sweep`] of model `point`, as lines: the bound at every K (mean ± SE over the IS
    /// digits), then the rise between consecutive K, paired over the digits:
    ///
    /// ```text
    /// β = 16: IS bound at K = 1: -170.12 ± 2.01,  5: …
    ///     rise K = 1 → 5: 1.20 ± 0.05
    /// ```
    ///
    /// # Shapes
    /// One [`IsAtK`] per K of `ks`, as [`Self::is_k_sweep`], with the lines.
    ///
    /// # Errors
    /// As [`Self::is_k_sweep`].
    pub fn is_k_sweep_lines(&self, point: usize, ks: &[usize]) -> Result<(Vec<IsAtK>, String)> {
        let sweep = self.is_k_sweep(point, ks)?;
        let at = sweep
            .iter()
            .map(|a| format!("{}: {:.2} ± {:.2}", a.k, a.estimate.mean, a.estimate.stderr))
            .collect::<Vec<_>>()
            .join(",  ");
        let mut out = format!("β = {}: IS bound at K = {at}\n", self.points[point].beta);
        for w in sweep.windows(2) {
            let d = paired_difference(&w[1].per_example, &w[0].per_example)?;
            out += &format!("    rise K = {} → {}: {:.2} ± {:.2}\n", w[0].k, w[1].k, d.mean, d.stderr);
        }
        Ok((sweep, out))
    }

    /// One line per model: R, active units, σ, I(n; z), KL(q_agg ‖ p), IS log p̂(x), prior-sample
    /// distances and reconstruction RMS, each mean ± SE where there is one.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<34} {:>15} {:>3} {:>6} {:>13} {:>15} {:>17} {:>9} {:>9} {:>7}\n",
            "variant",
            "R (nats)",
            "AU",
            "mean σ",
            "I(n;z)",
            "KL(q_agg‖p)",
            "IS log p̂(x)",
            "smp→x̄",
            "smp→NN",
            "rec RMS"
        );
        for p in &self.points {
            out += &format!(
                "{:<34} {:7.2} ± {:5.2} {:>3} {:6.3} {:6.2} ± {:4.2} {:7.2} ± {:5.2} {:8.2} ± {:6.2} {:9.3} {:9.3} {:7.3}\n",
                p.variant.label,
                p.rate.mean,
                p.rate.stderr,
                p.active_units,
                p.encoder_sigma,
                p.mutual_information.mean,
                p.mutual_information.stderr,
                p.marginal_kl.mean,
                p.marginal_kl.stderr,
                p.is_log_likelihood.mean,
                p.is_log_likelihood.stderr,
                p.samples.to_mean.mean,
                p.samples.to_nearest.mean,
                p.reconstruction_rms.mean,
            );
        }
        out
    }

    fn betas(&self) -> Vec<f64> {
        self.points.iter().map(|p| p.beta).collect()
    }

    /// Against β (log axis): the rate R and its two pieces from ELBO surgery, I(n; z) ≤ log N and
    /// KL(q_agg ‖ p), each ± SE.
    pub fn rate_plot(&self) -> plotly::Plot {
        let b = self.betas();
        let col = |f: &dyn Fn(&CollapsePoint) -> f64| -> Vec<f64> { self.points.iter().map(f).collect() };
        let (lo, hi) =
            (b.iter().copied().fold(f64::INFINITY, f64::min), b.iter().copied().fold(0.0, f64::max));
        crate::plot::Figure::new("the KL term and its two pieces against β (test digits)")
            .axes("β", "nats per digit")
            .log_x("β (log scale)")
            .points_with_errors(
                "rate R = mean KL(q(z|x) ‖ p)",
                &b,
                &col(&|p| p.rate.mean),
                &col(&|p| p.rate.stderr),
            )
            .points_with_errors(
                "KL(q_agg ‖ p): aggregate vs prior",
                &b,
                &col(&|p| p.marginal_kl.mean),
                &col(&|p| p.marginal_kl.stderr),
            )
            .points_with_errors(
                "I(n; z)",
                &b,
                &col(&|p| p.mutual_information.mean),
                &col(&|p| p.mutual_information.stderr),
            )
            .dashed("log N (the most I(n; z) can be)", &[lo, hi], &[self.log_n, self.log_n])
            .plot()
    }

    /// Against β (log axis): the importance-sampled log-likelihood ± SE and the ELBO −(R + D), with
    /// −D₀ (the best a model that ignores z can do on average) and, for independent pixels, the
    /// exact mean log p*(x).
    pub fn likelihood_plot(&self) -> plotly::Plot {
        let b = self.betas();
        let (lo, hi) =
            (b.iter().copied().fold(f64::INFINITY, f64::min), b.iter().copied().fold(0.0, f64::max));
        let is: Vec<f64> = self.points.iter().map(|p| p.is_log_likelihood.mean).collect();
        let is_se: Vec<f64> = self.points.iter().map(|p| p.is_log_likelihood.stderr).collect();
        let elbo: Vec<f64> = self.points.iter().map(|p| -(p.rate.mean + p.distortion.mean)).collect();
        let d0 = -self.distortion_at_zero_rate;
        let mut fig = crate::plot::Figure::new("log-likelihood against β (test digits)")
            .axes("β", "nats per digit")
            .log_x("β (log scale)")
            .points_with_errors(&format!("IS log p̂(x), K = {}", self.config.k), &b, &is, &is_se)
            .line("ELBO = −(R + D)", &b, &elbo)
            .dashed("−D₀: best mean log p(x) without z", &[lo, hi], &[d0, d0]);
        if let Some(Estimate { mean: e, .. }) = self.exact_log_likelihood {
            fig = fig.dashed("exact log p*(x) (independent pixels)", &[lo, hi], &[e, e]);
        }
        fig.plot()
    }

    /// Against β (log axis): how far decoded prior samples are from the mean image and from the
    /// nearest training digit, and the reconstruction RMS, with the same distances for real test
    /// digits as dashed yardsticks.
    pub fn distance_plot(&self) -> plotly::Plot {
        let b = self.betas();
        let (lo, hi) =
            (b.iter().copied().fold(f64::INFINITY, f64::min), b.iter().copied().fold(0.0, f64::max));
        let col = |f: &dyn Fn(&CollapsePoint) -> f64| -> Vec<f64> { self.points.iter().map(f).collect() };
        let r = self.real_digits;
        crate::plot::Figure::new("prior samples: the mean digit, or garbage? (RMS per pixel)")
            .axes("β", "RMS distance per pixel")
            .log_x("β (log scale)")
            .points_with_errors(
                "prior sample → mean image",
                &b,
                &col(&|p| p.samples.to_mean.mean),
                &col(&|p| p.samples.to_mean.stderr),
            )
            .points_with_errors(
                "prior sample → nearest training digit",
                &b,
                &col(&|p| p.samples.to_nearest.mean),
                &col(&|p| p.samples.to_nearest.stderr),
            )
            .points_with_errors(
                "reconstruction − test digit",
                &b,
                &col(&|p| p.reconstruction_rms.mean),
                &col(&|p| p.reconstruction_rms.stderr),
            )
            .dashed("real digit → mean image", &[lo, hi], &[r.to_mean.mean, r.to_mean.mean])
            .dashed("real digit → nearest training digit", &[lo, hi], &[r.to_nearest.mean, r.to_nearest.mean])
            .plot()
    }

    /// Decoded prior samples, one row of images per model (up to `per_model` each), in the order
    /// of the points.
    pub fn sample_grid(&self, per_model: usize) -> plotly::Plot {
        let per = per_model.clamp(1, self.config.prior_samples);
        let rows: Vec<ArrayView2<f32>> =
            self.points.iter().map(|p| p.sample_images.slice(ndarray::s![..per, ..])).collect();
        let labels: Vec<&str> = self.points.iter().map(|p| p.variant.label.as_str()).collect();
        let images = ndarray::concatenate(Axis(0), &rows).expect("same D");
        crate::plot::report::image_grid(
            images.view(),
            crate::plot::report::image_shape(images.ncols()),
            per,
            &format!("prior samples (decoder means), one row per model: {}", labels.join(" | ")),
        )
    }

    /// 8 test digits (top row) and their reconstructions, one row per model.
    pub fn reconstruction_grid(&self) -> plotly::Plot {
        let mut rows: Vec<ArrayView2<f32>> = vec![self.test_images.view()];
        rows.extend(self.points.iter().map(|p| p.reconstruction_images.view()));
        let labels: Vec<&str> = self.points.iter().map(|p| p.variant.label.as_str()).collect();
        let images = ndarray::concatenate(Axis(0), &rows).expect("same D");
        crate::plot::report::image_grid(
            images.view(),
            crate::plot::report::image_shape(images.ncols()),
            self.test_images.nrows(),
            &format!("test digits, then reconstructions: {}", labels.join(" | ")),
        )
    }
}

#[cfg(test)]
pub(crate) mod tests;
