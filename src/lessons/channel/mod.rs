//! Reading 1 of the text (VAE解释1): the encoder's output reaches the decoder through a noisy
//! channel, and the KL term sets the noise. Derived in `notebooks/07-noisy-channel.ipynb`.
//!
//! The channel: the encoder sends μ(x), the channel adds noise σ(x) ⊙ ε, the decoder receives
//! z = μ(x) + σ(x) ⊙ ε. Per unit the KL term ½(μ² + σ² − 1 − log σ²) is smallest at μ = 0,
//! σ = 1: it punishes a quiet channel (small σ) and a loud signal (far μ), so it caps how much
//! the decoder can learn about x from z. Sweeping β measures the trade-off (Alemi et al. 2018,
//! "Fixing a Broken ELBO"): rate R = E KL(q(z|x) ‖ p(z)) against distortion D = −E log p(x|z),
//! with
//!
//! ```text
//! H − D ≤ I(x; z) ≤ R        (Alemi et al. 2018, eq. 3 and eq. 4 / 6)
//! ```
//!
//! where H = −E log p*(x) is the entropy of the data distribution p*. Both bounds need H, which is
//! known only for data we made ourselves: here an equal mixture of K well-separated 2-D Gaussians
//! ([`crate::engine::data::gaussians_on_circle`]), whose entropy has a closed form
//! ([`mixture_entropy_separated`]) checked against quadrature ([`mixture_entropy_quadrature`]).

use ndarray::{Array2, ArrayView2, Zip};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result, ensure_positive};
use crate::base::seeds;
use crate::base::stats::Estimate;
use crate::engine::data::gaussians_on_circle;
use crate::engine::eval::{elbo_stats, mean_sigma_per_unit};
use crate::engine::nn::Activation;
use crate::engine::store::ModelStore;
use crate::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{KlSchedule, Likelihood, Vae, VaeConfig};

/// The differential entropy of an equal mixture of K isotropic 2-D Gaussians N(μ_c, s²I₂) whose
/// components do not overlap, in nats.
///
/// ```text
/// H = −∫ p log p = log K + log(2π e s²)
/// ```
/// With disjoint supports, p = (1/K) N_c on component c's region, so
/// −E log p = log K + H(N(μ_c, s²I₂)) and a 2-D Gaussian has H = ½ log((2πe)² s⁴) (Cover & Thomas
/// 2006, Theorem 8.4.1). For K Gaussians on a circle of radius r the nearest means are
/// 2r sin(π/K) apart; the formula is exact up to terms of order exp(−(r sin(π/K)/s)²/2), which is
/// below 10⁻¹² once r sin(π/K) ≥ 7.5 s. [`mixture_entropy_quadrature`] is the independent check.
///
/// # Errors
/// `components` of 0, `sigma` not finite and > 0.
///
/// ```
/// use vaelab::lessons::channel::mixture_entropy_separated;
/// // One component with 2π e s² = 1 has zero entropy.
/// let s = (1.0 / (2.0 * std::f64::consts::PI * std::f64::consts::E)).sqrt();
/// assert!(mixture_entropy_separated(1, s).unwrap().abs() < 1e-15);
/// // 8 components: log 8 more.
/// assert!((mixture_entropy_separated(8, s).unwrap() - 8f64.ln()).abs() < 1e-15);
/// ```
pub fn mixture_entropy_separated(components: usize, sigma: f64) -> Result<f64> {
    if components == 0 {
        return Err(Error::invalid("components", components, "must be ≥ 1"));
    }
    ensure_positive("sigma", sigma)?;
    let two_pi_e = 2.0 * std::f64::consts::PI * std::f64::consts::E;
    Ok((components as f64).ln() + (two_pi_e * sigma * sigma).ln())
}

/// The differential entropy of the [`gaussians_on_circle`] density by 2-D quadrature: the
/// trapezoid rule on a square grid of step h = s/`per_sigma` covering every mean ± 10 s.
///
/// ```text
/// p(x) = (1/K) Σ_c N(x; μ_c, s²I₂),   μ_c = r (cos 2πc/K, sin 2πc/K)
/// H = −∫ p log p dx ≈ −h² Σ_grid p log p
/// ```
/// The trapezoid rule converges faster than any power of h for smooth integrands that vanish at
/// the edges (Trefethen & Weideman 2014, SIAM Review 56(3), §5); the ±10 s box leaves out mass
/// below 10⁻²¹. log p is computed with log-sum-exp, so no component's tail underflows to log 0.
///
/// # Shapes
/// The grid is G × G with G = 2(r + 10 s)/h + 1 points (≈ 280² for r = 2, s = 0.1,
/// `per_sigma` = 5).
///
/// # Errors
/// As [`mixture_entropy_separated`]; `radius` negative or not finite; `per_sigma` of 0.
///
/// ```
/// use vaelab::lessons::channel::mixture_entropy_quadrature;
/// // One Gaussian with s = 1: H = log(2π e) = 2.8379 (Cover & Thomas 2006, Thm 8.4.1).
/// let h = mixture_entropy_quadrature(1, 0.0, 1.0, 4).unwrap();
/// assert!((h - 2.837_877_066_409_345).abs() < 1e-9);
/// ```
pub fn mixture_entropy_quadrature(
    components: usize,
    radius: f64,
    sigma: f64,
    per_sigma: usize,
) -> Result<f64> {
    mixture_entropy_separated(components, sigma)?;
    if !(radius.is_finite() && radius >= 0.0) {
        return Err(Error::invalid("radius", radius, "must be finite and ≥ 0"));
    }
    if per_sigma == 0 {
        return Err(Error::invalid("per_sigma", 0, "must be ≥ 1 (grid points per s)"));
    }
    let h = sigma / per_sigma as f64;
    let half = radius + 10.0 * sigma;
    let g = (2.0 * half / h).ceil() as usize + 1;
    let means: Vec<(f64, f64)> = (0..components)
        .map(|c| {
            let a = std::f64::consts::TAU * c as f64 / components as f64;
            (radius * a.cos(), radius * a.sin())
        })
        .collect();
    let log_norm = -(components as f64).ln() - (2.0 * std::f64::consts::PI * sigma * sigma).ln();
    let mut total = 0.0;
    let mut terms = vec![0.0; components];
    for i in 0..g {
        let x = -half + i as f64 * h;
        for j in 0..g {
            let y = -half + j as f64 * h;
            for (t, &(mx, my)) in terms.iter_mut().zip(&means) {
                *t = -((x - mx).powi(2) + (y - my).powi(2)) / (2.0 * sigma * sigma);
            }
            let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let log_p = log_norm + m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln();
            // Edge points carry half weight in each direction (trapezoid); they hold p < 1e-21.
            let w =
                if i == 0 || i == g - 1 { 0.5 } else { 1.0 } * if j == 0 || j == g - 1 { 0.5 } else { 1.0 };
            total -= w * log_p.exp() * log_p;
        }
    }
    Ok(total * h * h)
}

/// The β-sweep experiment: data, model and training, one model per β.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateDistortionConfig {
    /// The β values, one model each.
    pub betas: Vec<f64>,
    /// K, mixture components of the data ([`gaussians_on_circle`]).
    pub components: usize,
    /// r, radius of the circle of means.
    pub radius: f64,
    /// s, each component's standard deviation.
    pub sigma: f64,
    /// Training points (drawn once, shared by every β).
    pub n_train: usize,
    /// Fresh test points on which R and D are measured.
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
    /// Draws of z per test point for D.
    pub eval_samples: usize,
    /// Seeds the data ([`seeds::LESSON_DATA`], test set [`seeds::LESSON_TEST_DATA`]), every model's
    /// initialisation and training (the same `seed` for every β, so the models differ only in β) and
    /// the evaluation draws ([`seeds::LESSON_EVALUATION`], the same for every β).
    pub seed: u64,
}

impl RateDistortionConfig {
    /// A sweep small enough for a notebook cell: 8 Gaussians (r = 2, s = 0.1), 2,000 training and
    /// 1,000 test points, a 2-32-2 encoder with tanh and a Gaussian decoder with learned variance,
    /// `epochs` epochs of Adam 1e-2 at B = 100.
    pub fn small(betas: Vec<f64>, epochs: usize, seed: u64) -> Self {
        RateDistortionConfig {
            betas,
            components: 8,
            radius: 2.0,
            sigma: 0.1,
            n_train: 2000,
            n_test: 1000,
            hidden: 32,
            latent_dim: 2,
            epochs,
            batch_size: 100,
            lr: 1e-2,
            eval_samples: 10,
            seed,
        }
    }

    /// The model every β trains: D = 2, one hidden layer of width H, tanh, Gaussian decoder with a
    /// learned variance per coordinate.
    pub fn vae_config(&self) -> VaeConfig {
        VaeConfig {
            data_dim: 2,
            hidden_dims: vec![self.hidden],
            latent_dim: self.latent_dim,
            activation: Activation::Tanh,
            likelihood: Likelihood::GaussianLearned,
            condition: None,
            prior: crate::engine::vae::LatentPrior::StandardNormal,
        }
    }

    /// The training configuration for one β.
    pub fn train_config(&self, beta: f64) -> TrainConfig {
        TrainConfig {
            kl_schedule: KlSchedule::Constant { beta },
            ..TrainConfig::adam(self.epochs, self.batch_size, self.lr, self.seed)
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// `InvalidParameter` or `Empty` naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.betas.is_empty() {
            return Err(Error::empty("betas", "β"));
        }
        for (i, &b) in self.betas.iter().enumerate() {
            if !(b.is_finite() && b >= 0.0) {
                return Err(Error::invalid(format!("betas[{i}]"), b, "must be finite and ≥ 0"));
            }
        }
        mixture_entropy_separated(self.components, self.sigma)?;
        if !(self.radius.is_finite() && self.radius >= 0.0) {
            return Err(Error::invalid("radius", self.radius, "must be finite and ≥ 0"));
        }
        for (name, v) in [("n_train", self.n_train), ("n_test", self.n_test)] {
            if v < 2 {
                return Err(Error::invalid(name, v, "must be ≥ 2 (a standard error needs two points)"));
            }
        }
        for (name, v) in [("epochs", self.epochs), ("eval_samples", self.eval_samples)] {
            if v == 0 {
                return Err(Error::invalid(name, v, "must be ≥ 1"));
            }
        }
        self.vae_config().validate()?;
        self.train_config(1.0).validate()
    }
}

/// One β of the sweep, measured on the test set (nats per example).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RatePoint {
    /// β.
    pub beta: f64,
    /// R = mean over test points of KL(q(z|x) ‖ N(0, I)), with its standard error.
    pub rate: Estimate,
    /// D = mean over test points of −log p(x|z), z ~ q(z|x), with its standard error.
    pub distortion: Estimate,
    /// R + D − H = −ELBO − H ≥ 0 (the slack of H − D ≤ R), with its standard error.
    pub slack: Estimate,
    /// The channel noise: mean over test points of σ_u(x) = exp(½ log σ²_u(x)), per unit u (`Z`).
    pub encoder_sigma: Vec<f64>,
    /// Mean over test points of each unit's KL (`Z`; sums to R).
    pub kl_per_unit: Vec<f64>,
    /// The last epoch's training metrics.
    pub last_epoch: EpochMetrics,
    /// The trained-model store's line for this model ("loaded from the store: …" or "trained …,
    /// stored: …", [`crate::engine::store::Stage`]); not serialised.
    #[serde(skip)]
    pub store: String,
}

/// The sweep's result: the data's entropy and one [`RatePoint`] per β.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateDistortion {
    /// The experiment.
    pub config: RateDistortionConfig,
    /// H, the data's differential entropy ([`mixture_entropy_separated`]).
    pub entropy: f64,
    /// One point per β, in the order of `config.betas`.
    pub points: Vec<RatePoint>,
}

impl RateDistortionConfig {
    /// The best distortion any model reaches at rate 0: with z ignored, the decoder's best single
    /// Gaussian for the data, whose covariance is (r²/2 + s²) I, costs
    /// D₀ = log(2πe (r²/2 + s²)) nats (entropy of a 2-D Gaussian, (d/2) log(2πe σ²) with d = 2).
    pub fn distortion_at_zero_rate(&self) -> f64 {
        let variance = self.radius * self.radius / 2.0 + self.sigma * self.sigma;
        (2.0 * std::f64::consts::PI * std::f64::consts::E * variance).ln()
    }
}

impl RateDistortion {
    /// Rate against distortion, one point (± SE of D) per β, with the line D = H − R below which no
    /// model can go and the level D₀ of [`RateDistortionConfig::distortion_at_zero_rate`].
    pub fn rate_distortion_plot(&self) -> plotly::Plot {
        let r: Vec<f64> = self.points.iter().map(|p| p.rate.mean).collect();
        let d: Vec<f64> = self.points.iter().map(|p| p.distortion.mean).collect();
        let d_se: Vec<f64> = self.points.iter().map(|p| p.distortion.stderr).collect();
        let r_max = 1.1 * r.iter().copied().fold(0.0, f64::max);
        let h = self.entropy;
        let d0 = self.config.distortion_at_zero_rate();
        crate::plot::Figure::new("rate vs distortion, one model per β (test set)")
            .axes("rate R (nats)", "distortion D (nats)")
            .points_with_errors("trained models (small β at the right, large β at R = 0)", &r, &d, &d_se)
            .dashed("D = H − R  (below: impossible, H − D ≤ I ≤ R)", &[0.0, r_max], &[h, h - r_max])
            .dashed("D at R = 0: one Gaussian for all x", &[0.0, r_max], &[d0, d0])
            .plot()
    }

    /// The channel noise (mean encoder σ per unit) and the rate per unit against β, log β axis.
    pub fn channel_noise_plots(&self) -> (plotly::Plot, plotly::Plot) {
        let betas: Vec<f64> = self.points.iter().map(|p| p.beta).collect();
        let mut sigma = crate::plot::Figure::new("channel noise: mean encoder σ per latent unit")
            .axes("β", "mean σ_u(x)")
            .log_x("β (log scale)");
        let mut kl = crate::plot::Figure::new("rate per latent unit")
            .axes("β", "mean KL_u (nats)")
            .log_x("β (log scale)");
        for u in 0..self.config.latent_dim {
            let s: Vec<f64> = self.points.iter().map(|p| p.encoder_sigma[u]).collect();
            let k: Vec<f64> = self.points.iter().map(|p| p.kl_per_unit[u]).collect();
            sigma = sigma.line(&format!("unit {u}"), &betas, &s);
            kl = kl.line(&format!("unit {u}"), &betas, &k);
        }
        let (lo, hi) =
            (betas.iter().copied().fold(f64::INFINITY, f64::min), betas.iter().copied().fold(0.0, f64::max));
        (sigma.dashed("σ = 1 (the prior: no signal)", &[lo, hi], &[1.0, 1.0]).plot(), kl.plot())
    }

    /// One line per β: R ± SE, D ± SE, H − D, the slack R + D − H ± SE and σ per unit.
    pub fn table(&self) -> String {
        let mut out =
            String::from("    β      R (nats)          D (nats)        H − D    R + D − H     σ per unit\n");
        for p in &self.points {
            let sigma: Vec<f64> = p.encoder_sigma.iter().map(|v| (v * 1000.0).round() / 1000.0).collect();
            out += &format!(
                "{:5.2}  {:6.3} ± {:.3}   {:7.3} ± {:.3}   {:7.3}   {:6.3} ± {:.3}   {:?}\n",
                p.beta,
                p.rate.mean,
                p.rate.stderr,
                p.distortion.mean,
                p.distortion.stderr,
                self.entropy - p.distortion.mean,
                p.slack.mean,
                p.slack.stderr,
                sigma
            );
        }
        out
    }
}

/// Trains one model per β and measures rate, distortion and the channel noise on fresh test data.
///
/// ```text
/// minimise  E_x [ −E_q log p(x|z) + β KL(q(z|x) ‖ N(0, I)) ] = D + β R   (Higgins et al. 2017, eq. 4)
/// H − D ≤ I(x; z) ≤ R                                                (Alemi et al. 2018, eqs. 3, 4)
/// ```
/// x ∈ ℝ² from [`gaussians_on_circle`]; H its entropy; R, D test-set means with standard errors;
/// I(x; z) the mutual information of the encoder's joint p*(x) q(z|x). The lower bound holds for
/// any decoder (H − D = I − E KL(q(x|z) ‖ p(x|z))), the upper for any prior, so
/// R + D − H ≥ 0 always: it is −ELBO minus its best value −H.
///
/// `progress(β, metrics)` is called after every epoch of every model (a `dyn` closure, so a
/// notebook cell calling this compiles no copy of the training loop).
///
/// # Shapes
/// Training data N × 2 (N = `n_train`), test data N × 2 (N = `n_test`); `encoder_sigma`,
/// `kl_per_unit`: Z.
///
/// # Errors
/// A bad configuration ([`RateDistortionConfig::validate`]); `Diverged` from training.
pub fn rate_distortion(
    config: &RateDistortionConfig,
    progress: &mut dyn FnMut(f64, &EpochMetrics),
) -> Result<RateDistortion> {
    config.validate()?;
    let entropy = mixture_entropy_separated(config.components, config.sigma)?;
    let draw = |n: usize, seed: u64| -> Result<Array2<f32>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let toy = gaussians_on_circle(n, config.components, config.radius, config.sigma, &mut rng)?;
        Ok(toy.points.mapv(|v| v as f32))
    };
    let train = draw(config.n_train, seeds::LESSON_DATA.seed(config.seed))?;
    let test = draw(config.n_test, seeds::LESSON_TEST_DATA.seed(config.seed))?;
    let set = TrainSet { x: train.view(), labels: None, binarize: false };
    let mut points = Vec::with_capacity(config.betas.len());
    for &beta in &config.betas {
        let mut trainer = Trainer::new(config.vae_config(), config.train_config(beta))?;
        let epochs = trainer.config.epochs;
        let stage =
            ModelStore::from_env().train_epochs(&mut trainer, &set, epochs, &mut |m| progress(beta, m))?;
        let history = &stage.metrics;
        let mut rng = seeds::LESSON_EVALUATION.rng(config.seed);
        let vae = trainer.vae.cast::<f64>();
        let last_epoch = history.last().expect("epochs ≥ 1").clone();
        let point =
            measure(&vae, test.mapv(f64::from).view(), last_epoch, entropy, config.eval_samples, &mut rng)?;
        points.push(RatePoint { store: stage.to_string(), ..point });
    }
    Ok(RateDistortion { config: config.clone(), entropy, points })
}

fn measure(
    vae: &Vae<f64>,
    x: ArrayView2<f64>,
    last_epoch: EpochMetrics,
    entropy: f64,
    samples: usize,
    rng: &mut ChaCha8Rng,
) -> Result<RatePoint> {
    let stats = elbo_stats(vae, x, None, samples, 1000, rng)?;
    let summary = stats.summary()?;
    let slack_rows: Vec<f64> = stats.elbo.iter().map(|e| -e - entropy).collect();
    Ok(RatePoint {
        beta: last_epoch.beta,
        rate: summary.rate,
        distortion: summary.distortion,
        slack: Estimate::from_values(&slack_rows)?,
        encoder_sigma: stats.sigma_per_unit(),
        kl_per_unit: stats.kl_per_unit,
        last_epoch,
        store: String::new(),
    })
}

/// The channel's noise on each latent unit, averaged over a data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelNoise {
    /// Mean over the data of σ_u(x) = exp(½ log σ²_u(x)), per unit (`Z`).
    pub sigma: Vec<f64>,
    /// Mean over the data of KL(N(μ_u, σ_u²) ‖ N(0, 1)), per unit (`Z`; sums to the rate R).
    pub kl: Vec<f64>,
}

/// The encoder's σ and KL per latent unit, averaged over the rows of `x` (no sampling: both are
/// functions of μ(x) and log σ²(x)).
///
/// ```text
/// σ̄_u = (1/N) Σ_n exp(½ v_u(x_n)),   KL̄_u = (1/N) Σ_n ½(μ_u(x_n)² + e^{v_u(x_n)} − 1 − v_u(x_n))
/// ```
/// v = log σ²; the KL is Kingma & Welling (2014), Appendix B, one unit at a time.
///
/// Not generic (f32, the trainer's precision), so a notebook cell calling it compiles nothing new.
///
/// # Shapes
/// `x`: N × D. Returns Z values per field.
///
/// # Errors
/// `x` empty, with D ≠ `data_dim`, or with a non-finite value.
///
/// ```
/// use vaelab::lessons::channel::channel_noise;
/// use vaelab::ndarray::Array2;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::engine::vae::{Vae, VaeConfig};
/// let mut vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(4, vec![3], 2), &mut StdRng::seed_from_u64(0)).unwrap();
/// // Zero heads: μ = 0 and log σ² = 0 for every x, so the channel is the prior: σ = 1, KL = 0.
/// for head in [&mut vae.params.mean_head, &mut vae.params.log_var_head] {
///     head.weight.fill(0.0);
///     head.bias.fill(0.0);
/// }
/// let noise = channel_noise(&vae, Array2::ones((3, 4)).view()).unwrap();
/// assert_eq!(noise.sigma, vec![1.0, 1.0]);
/// assert_eq!(noise.kl, vec![0.0, 0.0]);
/// ```
pub fn channel_noise(vae: &Vae<f32>, x: ArrayView2<f32>) -> Result<ChannelNoise> {
    crate::engine::eval::check_input(vae, "x", x, None)?;
    vae.require_per_unit_kl("the channel noise per unit")?;
    let (mean, log_var) = vae.encode(x, None);
    let (mean, log_var) = (mean.mapv(f64::from), log_var.mapv(f64::from));
    let n = x.nrows() as f64;
    let mut kl = vec![0.0; vae.config.latent_dim];
    for (m_row, v_row) in mean.rows().into_iter().zip(log_var.rows()) {
        for (u, k) in kl.iter_mut().enumerate() {
            *k += crate::engine::nn::kl_std_normal_elem(m_row[u], v_row[u]).0 / n;
        }
    }
    Ok(ChannelNoise { sigma: mean_sigma_per_unit(log_var.view()), kl })
}

impl ChannelNoise {
    /// Spearman's rank correlation between the units' mean σ and their KL
    /// ([`rank_correlation`]): −1 when the unit with the smaller noise always carries more nats.
    ///
    /// # Errors
    /// Fewer than 2 units, or all units with the same σ (or the same KL).
    pub fn sigma_kl_rank_correlation(&self) -> Result<f64> {
        rank_correlation(&self.sigma, &self.kl)
    }
}

/// Spearman's rank correlation ρ_s of two equally long samples: the Pearson correlation of their
/// ranks (Spearman 1904; ties get the mean of the ranks they span).
///
/// ```text
/// ρ_s = Σ_i (r_i − r̄)(s_i − s̄) / √( Σ_i (r_i − r̄)² · Σ_i (s_i − s̄)² ),   r_i = rank of a_i, s_i = rank of b_i
/// ```
/// Without ties this equals 1 − 6 Σ_i (r_i − s_i)² / (n (n² − 1)). It is +1 when b increases with
/// a, −1 when it decreases, whatever the spacing of the values.
///
/// # Errors
/// Lengths differ; fewer than 2 values; a non-finite value; either sample constant (no ranking).
///
/// ```
/// use vaelab::lessons::channel::rank_correlation;
/// // b falls whenever a rises (spacing irrelevant): ρ_s = −1.
/// assert_eq!(rank_correlation(&[0.1, 0.5, 0.9], &[30.0, 2.0, 1.0]).unwrap(), -1.0);
/// // One swapped pair of 4: Σd² = 2, ρ_s = 1 − 6·2/(4·15) = 0.8.
/// assert!((rank_correlation(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]).unwrap() - 0.8).abs() < 1e-12);
/// ```
pub fn rank_correlation(a: &[f64], b: &[f64]) -> Result<f64> {
    if a.len() != b.len() {
        return Err(Error::shape("rank_correlation: length of b", a.len(), b.len()));
    }
    if a.len() < 2 {
        return Err(Error::TooFewValues { count: a.len() });
    }
    crate::base::error::ensure_finite("a", a)?;
    crate::base::error::ensure_finite("b", b)?;
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let mid = (n + 1.0) / 2.0; // the mean rank, ties or not
    let (mut c, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        c += (x - mid) * (y - mid);
        va += (x - mid) * (x - mid);
        vb += (y - mid) * (y - mid);
    }
    if va == 0.0 || vb == 0.0 {
        return Err(Error::invalid(
            "rank_correlation",
            "a constant sample",
            "needs at least two distinct values in each",
        ));
    }
    Ok(c / (va * vb).sqrt())
}

/// Ranks 1..=n, ties sharing the mean of the ranks they span.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && v[order[end]] == v[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end + 1) as f64 / 2.0; // ranks start+1 ..= end
        for &i in &order[start..end] {
            r[i] = mean_rank;
        }
        start = end;
    }
    r
}

/// The decoder's mean for z sent through the channel with its noise scaled by t.
///
/// ```text
/// z = μ(x) + t · σ(x) ⊙ ε,   output = decoder mean at z
/// ```
/// t = 0 is the noiseless reconstruction, t = 1 the channel the model was trained with
/// (Kingma & Welling 2014, eq. 10), t > 1 more noise than the KL term allowed for.
///
/// Not generic (f32, the trainer's precision), so a notebook cell calling it compiles nothing new;
/// the tests check the same code at f64.
///
/// # Shapes
/// `x`: B × D; `eps`: B × Z. Returns B × D.
///
/// **Panics** if `eps` is not B × Z (a programmer error), naming both shapes.
///
/// # Errors
/// `t` negative or not finite.
///
/// ```
/// use vaelab::lessons::channel::decode_through_channel;
/// use vaelab::ndarray::Array2;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::engine::vae::{Vae, VaeConfig};
/// let vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(4, vec![3], 2), &mut StdRng::seed_from_u64(0)).unwrap();
/// let x = Array2::from_elem((1, 4), 1.0);
/// // With t = 0 the noise is ignored: the output is the reconstruction.
/// let out = decode_through_channel(&vae, x.view(), 0.0, Array2::from_elem((1, 2), 5.0).view()).unwrap();
/// assert_eq!(out, vae.reconstruct(x.view(), None));
/// ```
#[track_caller]
pub fn decode_through_channel(
    vae: &Vae<f32>,
    x: ArrayView2<f32>,
    t: f64,
    eps: ArrayView2<f32>,
) -> Result<Array2<f32>> {
    decode_through_channel_any(vae, x, t, eps)
}

#[track_caller]
fn decode_through_channel_any<F: ndarray::NdFloat>(
    vae: &Vae<F>,
    x: ArrayView2<F>,
    t: f64,
    eps: ArrayView2<F>,
) -> Result<Array2<F>> {
    if !(t.is_finite() && t >= 0.0) {
        return Err(Error::invalid("t", t, "must be finite and ≥ 0 (noise scale)"));
    }
    let (mean, log_var) = vae.encode(x, None);
    assert!(
        eps.dim() == mean.dim(),
        "decode_through_channel: eps has shape {:?}, the encoder's mean {:?}",
        eps.dim(),
        mean.dim()
    );
    let t: F = crate::engine::nn::cast(t);
    let half: F = crate::engine::nn::cast(0.5);
    let z = Zip::from(&mean).and(&log_var).and(eps).map_collect(|&m, &v, &e| m + t * (half * v).exp() * e);
    Ok(vae.decode_mean(z.view(), None))
}

#[cfg(test)]
mod tests;
