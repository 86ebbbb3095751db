//! The prior and the aggregate posterior (section 先验分布 of the text, lesson
//! `05-prior-and-aggregate-posterior.ipynb`).
//!
//! The text's claim: with P(z) = N(0, I),
//!
//! ```text
//! P(z) = Σ_x P(z, x) = Σ_x P(z|x) P(x) = E_x P(z|x)
//! ```
//! so the prior constrains the **aggregate posterior** of the data set, not each Q(z|x):
//!
//! ```text
//! q_agg(z) = (1/N) Σ_n q(z|x_n)          (a mixture of N diagonal Gaussians)
//! ```
//! The average KL term of the ELBO splits exactly into the two pieces (Hoffman & Johnson 2016,
//! "ELBO surgery", eq. 3):
//!
//! ```text
//! (1/N) Σ_n KL(q(z|x_n) ‖ p(z)) = I_q(n; z) + KL(q_agg(z) ‖ p(z))
//! ```
//! Only the second piece measures how far the aggregate is from the prior; the first is the
//! information z carries about which data point it came from, at most log N.
//!
//! | piece | function |
//! |---|---|
//! | log q_agg(z), exact, vectorised over the N posteriors | [`log_aggregate_posterior`] |
//! | draws from q_agg | [`sample_aggregate_posterior`] |
//! | the two terms of the decomposition, Monte Carlo with standard errors | [`elbo_surgery`] |
//! | one posterior as a k-σ ellipse, for plots | [`posterior_ellipse`] |
//! | the aggregate's mean and covariance | [`crate::engine::eval::aggregate_posterior`] |
//! | a learnable mixture-of-Gaussians prior, log-density, hand-written gradients, draws | [`MixturePrior`] (an engine piece, [`crate::engine::vae::MixturePrior`]; trained inside a VAE: [`crate::engine::vae::LatentPrior::Mixture`]) |
//! | the lesson's models and settings; "3 more epochs" | [`PriorExperimentConfig`] ([`PriorExperimentConfig::trainer`]), [`train_epochs`] |
//! | Step 5: the N(0, I) model's encoder outputs and its surgery | [`measure_fixed_prior`] |
//! | the condition p_data = p_θ: digits drawn from the model itself; a difference of independent estimates | [`sample_model_digits`], [`difference_of_independent`] |
//! | Step 6: N(0, I) against the learned mixture (ELBO, IS log p(x), paired differences, surgery, the learned prior's plot) | [`compare_priors`] → [`PriorComparison`] |
//! | the whole experiment, as `vaelab experiment prior` runs it | [`run_experiment`] |
//!
//! # Shapes
//! `N` data points (posteriors), `Z` latent dimension; the encoder outputs `mean` and `log_var`
//! are `N × Z` (e.g. [`crate::engine::eval::ElboStats::mean`] and [`crate::engine::eval::ElboStats::log_var`]).

use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result, ensure_finite};
use crate::base::prob::{LN_2PI, check_diag_gaussians, pairwise_diag_gaussian_log_density};
use crate::base::stats::Estimate;
pub use crate::engine::vae::MixturePrior;

mod experiment;
pub use experiment::{
    PriorComparison, PriorExperimentConfig, PriorModel, PriorRun, compare_priors, difference_of_independent,
    measure_fixed_prior, run_experiment, sample_model_digits, train_epochs,
};

/// log q_agg(z) of the mixture of the N posteriors, exactly, for each row of `z`.
///
/// ```text
/// log q_agg(z) = log (1/N) Σ_n N(z; μ_n, diag e^(v_n))
///              = logmeanexp_n [ −½ Σ_u ( ln 2π + v_nu + (z_u − μ_nu)² e^(−v_nu) ) ]
///
///   μ_n = `mean` row n,  v_n = log σ²_n = `log_var` row n,  u runs over the Z units
/// ```
/// (Hoffman & Johnson 2016, §2: the "average encoding distribution"). The log-mean-exp is
/// [`crate::base::prob::log_mean_exp`] over the N posteriors, so nothing underflows however far apart
/// they are. Work and memory are O(rows(z) · N · Z); call on chunks of `z` for large N.
///
/// # Shapes
/// `z`: `C × Z` (C query points); `mean`, `log_var`: `N × Z`. Returns `C`.
///
/// # Errors
/// Empty or non-finite posteriors, `log_var` of another shape than `mean`, or `z` with another
/// number of columns.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::lessons::prior::log_aggregate_posterior;
/// // Two identical posteriors N(0, 1): the mixture is N(0, 1), log density −½ ln 2π at 0.
/// let m = array![[0.0], [0.0]];
/// let v = array![[0.0], [0.0]];
/// let l = log_aggregate_posterior(array![[0.0]].view(), m.view(), v.view()).unwrap();
/// assert!((l[0] - (-0.918_938_533_204_672_7)).abs() < 1e-15);
/// ```
pub fn log_aggregate_posterior(
    z: ArrayView2<f64>,
    mean: ArrayView2<f64>,
    log_var: ArrayView2<f64>,
) -> Result<Array1<f64>> {
    check_diag_gaussians(mean, log_var)?;
    if z.ncols() != mean.ncols() {
        return Err(Error::shape("z columns (Z)", mean.ncols(), z.ncols()));
    }
    ensure_finite("z", z.iter())?;
    Ok(crate::base::prob::log_mean_exp(pairwise_diag_gaussian_log_density(z, mean, log_var).view(), Axis(1)))
}

/// `n` draws from the aggregate posterior q_agg(z) = (1/N) Σ_m q(z|x_m): pick m uniformly, then
/// z = μ_m + σ_m ⊙ ε.
///
/// ```text
/// m ~ Uniform{0, …, N−1},   ε ~ N(0, I_Z),   z = μ_m + exp(½ v_m) ⊙ ε
/// ```
/// (ancestral sampling of the mixture; Hoffman & Johnson 2016, §2). Per draw, m is drawn first,
/// then the Z values of ε in order.
///
/// # Shapes
/// `mean`, `log_var`: `N × Z`. Returns `n × Z`.
///
/// # Errors
/// Empty, mis-shaped or non-finite posteriors.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::lessons::prior::sample_aggregate_posterior;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// // Two point-like posteriors at −3 and +3 (σ = e^(−20) ≈ 2e-9): every draw is within 1e-6 of ±3
/// // (that would need |ε| > 480).
/// let m = array![[-3.0], [3.0]];
/// let v = array![[-40.0], [-40.0]];
/// let z = sample_aggregate_posterior(m.view(), v.view(), 100, &mut StdRng::seed_from_u64(1)).unwrap();
/// assert!(z.iter().all(|&z| (z.abs() - 3.0).abs() < 1e-6));
/// assert!(z.iter().any(|&z| z < 0.0) && z.iter().any(|&z| z > 0.0)); // both components drawn
/// ```
pub fn sample_aggregate_posterior<R: Rng + ?Sized>(
    mean: ArrayView2<f64>,
    log_var: ArrayView2<f64>,
    n: usize,
    rng: &mut R,
) -> Result<Array2<f64>> {
    check_diag_gaussians(mean, log_var)?;
    let (rows, zd) = mean.dim();
    let mut z = Array2::<f64>::zeros((n, zd));
    for i in 0..n {
        let m = rng.random_range(0..rows);
        for u in 0..zd {
            let e: f64 = StandardNormal.sample(rng);
            z[(i, u)] = mean[(m, u)] + (0.5 * log_var[(m, u)]).exp() * e;
        }
    }
    Ok(z)
}

/// The two terms of the ELBO-surgery decomposition, each a Monte-Carlo mean with its standard
/// error across data points, and the exact average KL they must add up to. Nats.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElboSurgery {
    /// N, the number of posteriors (data points).
    pub n: usize,
    /// S, draws of z per data point.
    pub samples: usize,
    /// Î(n; z) = mean of log q(z|x_n) − log q_agg(z), with its standard error.
    pub mutual_information: Estimate,
    /// KL̂(q_agg ‖ p) = mean of log q_agg(z) − log p(z), with its standard error.
    pub marginal_kl: Estimate,
    /// Î + KL̂, the Monte-Carlo estimate of the average KL, with its standard error.
    pub sum: Estimate,
    /// KL̂ − Î, paired per data point (the same draws): which of the two terms is larger, with the
    /// standard error of the per-point differences.
    pub marginal_minus_information: Estimate,
    /// (1/N) Σ_n KL(q(z|x_n) ‖ p(z)): in closed form for p = N(0, I); for a mixture prior
    /// (no closed form) −H(q_n) exactly plus the cross-entropy −log p(z_ns) averaged over the same
    /// draws.
    pub mean_kl: f64,
    /// log N, the upper bound of I(n; z).
    pub log_n: f64,
}

impl ElboSurgery {
    /// Whether Î ≤ log N (it holds draw by draw: q_agg(z) ≥ q(z|x_n)/N, so every summand is at
    /// most log N; allows 1e-12 of rounding).
    pub fn information_within_bound(&self) -> bool {
        self.mutual_information.mean <= self.log_n + 1e-12
    }

    /// (Î + KL̂ − mean KL) / SE: how many standard errors the Monte-Carlo sum is from the exact
    /// average KL. With a mixture prior `mean_kl` shares the draws' cross-entropy, so the gap is
    /// only the noise of log q(z|x_n) around −H(q_n) (zero mean): the score is then indicative.
    pub fn sum_z_score(&self) -> f64 {
        (self.sum.mean - self.mean_kl) / self.sum.stderr
    }
}

/// ELBO surgery (Hoffman & Johnson 2016, eq. 3): the average KL to the prior is the mutual
/// information between the data index and z plus the KL of the aggregate to the prior. The prior
/// is N(0, I) (`prior = None`) or a learned [`MixturePrior`] (e.g. [`crate::engine::vae::Vae::mixture_prior`]).
///
/// ```text
/// (1/N) Σ_n KL(q(z|x_n) ‖ p(z)) = I_q(n; z) + KL(q_agg(z) ‖ p(z))
///
/// q(n, z)  = q(z|x_n) / N            the joint of a uniform data index n and its code z
/// q_agg(z) = (1/N) Σ_m q(z|x_m)      its z-marginal, the aggregate posterior
/// I_q(n; z) = E_q(n,z) [ log q(z|x_n) − log q_agg(z) ]      0 ≤ I ≤ log N
/// KL(q_agg ‖ p) = E_q(n,z) [ log q_agg(z) − log p(z) ],     p(z) = N(0, I) or Σ_k π_k N(m_k, e^(s_k))
/// ```
/// Estimated by Monte Carlo: for each n, S draws z_ns ~ q(z|x_n); log q_agg(z_ns) is computed
/// exactly by [`log_aggregate_posterior`] over all N posteriors, `chunk` draws at a time
/// (memory O(chunk · N)). Per data point the S summands are averaged, and each estimate is the
/// mean over n with standard error sd/√N ([`Estimate::from_values`]). Both estimators are unbiased;
/// their sum is, draw by draw, log q(z|x_n) − log p(z), the Monte-Carlo estimate of the average
/// KL, which is also given in closed form (`mean_kl`; see there for a mixture prior). Draw order: n = 0..N, then s = 0..S, then
/// the Z values of ε.
///
/// # Shapes
/// `mean`, `log_var`: `N × Z`; the prior's means `K × Z`.
///
/// # Errors
/// Empty, mis-shaped or non-finite posteriors; fewer than 2 posteriors ([`Error::TooFewValues`]:
/// the standard errors need two); a prior of another Z; `samples` or `chunk` of 0.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::lessons::prior::elbo_surgery;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// // Two unit-variance posteriors 2000 apart: z tells the index for certain, I = log 2.
/// let m = array![[-1000.0], [1000.0]];
/// let v = array![[0.0], [0.0]];
/// let s = elbo_surgery(m.view(), v.view(), None, 10, 64, &mut StdRng::seed_from_u64(1)).unwrap();
/// assert!((s.mutual_information.mean - 2f64.ln()).abs() < 1e-12);
/// // Each KL to N(0, 1) is ½ μ² = 500 000 exactly.
/// assert_eq!(s.mean_kl, 500_000.0);
/// ```
pub fn elbo_surgery<R: Rng + ?Sized>(
    mean: ArrayView2<f64>,
    log_var: ArrayView2<f64>,
    prior: Option<&MixturePrior>,
    samples: usize,
    chunk: usize,
    rng: &mut R,
) -> Result<ElboSurgery> {
    check_diag_gaussians(mean, log_var)?;
    if let Some(p) = prior
        && p.means.ncols() != mean.ncols()
    {
        return Err(Error::shape("prior latent dimension (Z)", mean.ncols(), p.means.ncols()));
    }
    if samples == 0 {
        return Err(Error::invalid("samples", 0, "must be >= 1"));
    }
    if chunk == 0 {
        return Err(Error::invalid("chunk", 0, "must be >= 1"));
    }
    if mean.nrows() < 2 {
        return Err(Error::TooFewValues { count: mean.nrows() });
    }
    let (n, zd) = mean.dim();
    let total = n * samples;
    // All draws, row r = n·S + s belongs to posterior n = r / S.
    let mut z = Array2::<f64>::zeros((total, zd));
    for r in 0..total {
        let i = r / samples;
        for u in 0..zd {
            let e: f64 = StandardNormal.sample(rng);
            z[(r, u)] = mean[(i, u)] + (0.5 * log_var[(i, u)]).exp() * e;
        }
    }
    let mut info = vec![0.0; n]; // per data point: mean over s of log q(z|x_n) − log q_agg(z)
    let mut marg = vec![0.0; n]; // per data point: mean over s of log q_agg(z) − log p(z)
    let mut cross = vec![0.0; n]; // per data point: mean over s of −log p(z)
    let inv_s = 1.0 / samples as f64;
    for start in (0..total).step_by(chunk) {
        let end = (start + chunk).min(total);
        let zc = z.slice(s![start..end, ..]);
        let log_q = pairwise_diag_gaussian_log_density(zc, mean, log_var); // chunk × N
        let log_agg = crate::base::prob::log_mean_exp(log_q.view(), Axis(1)); // chunk
        let log_p: Array1<f64> = match prior {
            Some(p) => p.log_density_and_responsibilities(zc).0,
            None => zc.rows().into_iter().map(|z| -0.5 * (zd as f64 * LN_2PI + z.dot(&z))).collect(),
        };
        for (c, r) in (start..end).enumerate() {
            let i = r / samples;
            info[i] += (log_q[(c, i)] - log_agg[c]) * inv_s;
            marg[i] += (log_agg[c] - log_p[c]) * inv_s;
            cross[i] -= log_p[c] * inv_s;
        }
    }
    let both: Vec<f64> = info.iter().zip(&marg).map(|(a, b)| a + b).collect();
    let excess: Vec<f64> = marg.iter().zip(&info).map(|(a, b)| a - b).collect();
    let kl: Array1<f64> = match prior {
        // KL = −H(q) + E_q[−log p]: the entropy exactly, the cross-entropy from the same draws.
        Some(_) => (0..n)
            .map(|i| -0.5 * log_var.row(i).iter().map(|v| LN_2PI + 1.0 + v).sum::<f64>() + cross[i])
            .collect(),
        None => crate::base::prob::kl_diag_gaussian_std_normal(mean, log_var),
    };
    Ok(ElboSurgery {
        n,
        samples,
        mutual_information: Estimate::from_values(&info)?,
        marginal_kl: Estimate::from_values(&marg)?,
        sum: Estimate::from_values(&both)?,
        marginal_minus_information: Estimate::from_values(&excess)?,
        mean_kl: kl.sum() / n as f64,
        log_n: (n as f64).ln(),
    })
}

/// The k-σ ellipse of a 2-D diagonal Gaussian, as `points` (x, y) pairs on a closed curve.
///
/// ```text
/// (x, y) = (μ₁ + k σ₁ cos t, μ₂ + k σ₂ sin t),   t = 2π j / (points − 1),  j = 0 … points − 1
///
/// σ_u = exp(½ log σ²_u); the curve is the level set (x−μ₁)²/σ₁² + (y−μ₂)²/σ₂² = k²
/// ```
/// For k = 2 it holds 1 − e^(−2) ≈ 86.5 % of the mass (χ² with 2 degrees of freedom).
///
/// # Shapes
/// `mean`, `log_var`: `Z = 2`. Returns two vectors of length `points`.
///
/// # Errors
/// Non-finite inputs, `k` not > 0, fewer than 3 points.
///
/// ```
/// use vaelab::lessons::prior::posterior_ellipse;
/// // N((1, 2), diag(4, 1)), 1σ: the first point is (1 + 2, 2).
/// let (x, y) = posterior_ellipse([1.0, 2.0], [4f64.ln(), 0.0], 1.0, 5).unwrap();
/// assert!((x[0] - 3.0).abs() < 1e-12 && (y[0] - 2.0).abs() < 1e-12);
/// assert!((y[1] - 3.0).abs() < 1e-12); // t = π/2: (1, 2 + 1)
/// ```
pub fn posterior_ellipse(
    mean: [f64; 2],
    log_var: [f64; 2],
    k: f64,
    points: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    ensure_finite("mean", mean.iter())?;
    ensure_finite("log_var", log_var.iter())?;
    crate::base::error::ensure_positive("k", k)?;
    if points < 3 {
        return Err(Error::invalid("points", points, "must be >= 3"));
    }
    let sd = [(0.5 * log_var[0]).exp(), (0.5 * log_var[1]).exp()];
    let step = std::f64::consts::TAU / (points - 1) as f64;
    let (mut x, mut y) = (Vec::with_capacity(points), Vec::with_capacity(points));
    for j in 0..points {
        let t = step * j as f64;
        x.push(mean[0] + k * sd[0] * t.cos());
        y.push(mean[1] + k * sd[1] * t.sin());
    }
    Ok((x, y))
}

#[cfg(test)]
mod tests;
