//! Estimators for each line of the two derivations, with their standard errors.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, concatenate};
use rand::Rng;
use serde::Serialize;

use super::q::Q;
use crate::base::error::{Error, Result};
use crate::base::prob::{log_mean_exp, log_mean_exp_1d, log_sum_exp_1d};
use crate::base::quadrature::integrate;
use crate::base::stats::Estimate;
use crate::lessons::toy::{Encoding, LatentModel, Model};

/// N draws zₙ ~ q with the three log-densities every estimator is made of.
#[derive(Debug, Clone)]
pub struct Draws {
    /// zₙ, N × Z.
    pub z: Array2<f64>,
    /// log p(zₙ), N.
    pub log_prior: Array1<f64>,
    /// log p(x|zₙ), N.
    pub log_likelihood: Array1<f64>,
    /// log q(zₙ), N.
    pub log_q: Array1<f64>,
}

impl Draws {
    /// log wₙ = log p(x, zₙ) − log q(zₙ), the log importance weights (N).
    ///
    /// ```text
    /// w = p(x|z) p(z) / q(z|x)          (the ratio inside line 4 of derivation 1)
    /// ```
    pub fn log_w(&self) -> Array1<f64> {
        &self.log_likelihood + &self.log_prior - &self.log_q
    }
}

/// Checks N, and that q and x fit the model.
fn check_inputs<M: LatentModel + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    q: &Q,
    n: usize,
    what: &str,
) -> Result<()> {
    if n < 2 {
        return Err(Error::invalid(what, n, "need at least 2 samples for a standard error"));
    }
    model.check_x(x)?;
    q.check_for(model)
}

/// Draws N latents from q and evaluates log p(z), log p(x|z), log q(z) on them.
///
/// # Shapes
/// `x`: D; returns N-row arrays.
///
/// # Errors
/// N < 2, `x` invalid for the model, q of the wrong family or dimension.
///
/// ```
/// use vaelab::lessons::bounds::{draw, elbo, importance_log_evidence, posterior_q};
/// use vaelab::ndarray::array;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::lessons::toy::{LatentModel, Model};
/// let m = Model::from_json(r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": 1.0}"#).unwrap();
/// let x = array![0.7];
/// // With q = p(z|x) every weight is w = p(x): both estimates are log p(x), with zero spread.
/// let d = draw(&m, x.view(), &posterior_q(&m, x.view()).unwrap(), 50, &mut StdRng::seed_from_u64(1)).unwrap();
/// let log_px = m.log_marginal(x.view()).unwrap(); // log N(0.7; 0, 2)
/// let e = elbo(&d).unwrap();
/// assert!((e.mean - log_px).abs() < 1e-12 && e.stderr < 1e-12);
/// assert!((importance_log_evidence(&d).unwrap().mean - log_px).abs() < 1e-12);
/// ```
pub fn draw<M: LatentModel + ?Sized, R: Rng + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    q: &Q,
    n: usize,
    rng: &mut R,
) -> Result<Draws> {
    check_inputs(model, x, q, n, "samples")?;
    // The draws and their three log-densities, f64, all at once.
    let floats = (n as u128).saturating_mul(model.latent_dim() as u128 + 3);
    crate::base::budget::ensure_memory(&format!("{n} draws from Q"), floats.saturating_mul(8))?;
    let z = q.sample(n, rng);
    Ok(Draws {
        log_prior: model.log_prior(z.view()),
        log_likelihood: model.log_likelihood(x, z.view()),
        log_q: q.log_density(z.view()),
        z,
    })
}

/// The ELBO in the text's first form (derivation 1, lines 5–6): E_q[log w], from the draws.
///
/// ```text
/// ELBO = E_{z∼Q(z|x)} [log P(x|z) + log P(z) − log Q(z|x)] ≈ (1/N) Σₙ log wₙ
/// ```
///
/// # Errors
/// [`Error::TooFewValues`] for draws of fewer than 2 rows ([`draw`] never makes them).
pub fn elbo(draws: &Draws) -> Result<Estimate> {
    Estimate::from_values(draws.log_w().view())
}

/// The ELBO in the text's second form (derivation 1, line 7): E_q[log p(x|z)] − KL(q ‖ p(z)),
/// the KL in closed form ([`Q::kl_to_prior`]).
///
/// ```text
/// ELBO = E_{z∼Q(z|x)} log P(x|z) − KL(Q(z|x) ‖ P(z)) ≈ (1/N) Σₙ log p(x|zₙ) − KL
/// ```
/// Same expectation as [`elbo`]. Its variance is lower when log p(z) − log q(z) varies a lot
/// under q (q far from the prior), but not always: at q = p(z|x) the first form has zero variance.
///
/// # Errors
/// [`Error::TooFewValues`] for draws of fewer than 2 rows ([`draw`] never makes them).
pub fn elbo_analytic_kl(draws: &Draws, kl_q_prior: f64) -> Result<Estimate> {
    Estimate::from_values((&draws.log_likelihood - kl_q_prior).view())
}

/// log E_q\[w\], the importance-sampling estimate of log p(x) (derivation 1, line 4), from the draws.
///
/// ```text
/// log P(x) = log E_{z∼Q(z|x)} w ≈ log (1/N) Σₙ wₙ = log-mean-exp(log w)
/// stderr ≈ SE(ŵ) / ŵ = s_w / (√N · mean w)          (delta method)
/// ```
/// Consistent, and biased low for finite N (it is the IWAE bound with K = N).
///
/// # Errors
/// [`Error::TooFewValues`] for draws of fewer than 2 rows ([`draw`] never makes them), as for
/// [`Estimate::from_values`].
pub fn importance_log_evidence(draws: &Draws) -> Result<Estimate> {
    let log_w = draws.log_w();
    if log_w.len() < 2 {
        return Err(Error::TooFewValues { count: log_w.len() });
    }
    let mean = log_mean_exp_1d(log_w.view());
    let ratio = log_w.mapv(|l| (l - mean).exp()); // wₙ / mean w
    Ok(Estimate { mean, stderr: ratio.std(1.0) / (ratio.len() as f64).sqrt(), samples: ratio.len() })
}

/// The IWAE bound's inner value for each data point: log-mean-exp over that point's K weights.
///
/// ```text
/// L_K(x_b) = log (1/K) Σₖ w_{b,k}              (Burda et al. 2016, eq. 8, one draw of the K samples)
/// ```
/// The mean runs along `Axis(1)` (the K samples of one data point), **never** across the batch.
///
/// # Shapes
/// `log_w`: B × K (row b = the K log-weights of data point b). Returns B.
///
/// ```
/// use vaelab::lessons::bounds::iwae_per_point;
/// use vaelab::ndarray::array;
/// let v = iwae_per_point(array![[0.0, 0.0], [1.0, 1.0]].view());
/// assert_eq!(v.to_vec(), vec![0.0, 1.0]); // not log-mean-exp over all four
/// ```
pub fn iwae_per_point(log_w: ArrayView2<f64>) -> Array1<f64> {
    log_mean_exp(log_w, Axis(1))
}

/// The IWAE bound L_K of one x as a Monte-Carlo mean over `n` independent K-sample estimates: an
/// [`Estimate`] (mean of the n values of log (1/K) Σₖ wₖ, its standard error, n) with K beside
/// it. It reads as the [`Estimate`] (`e.mean`, `e.stderr`, `e.samples` through `Deref`), and its
/// JSON is flat: `{"k", "mean", "stderr", "samples"}` (the `vaelab bounds --json` keys).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct IwaeEstimate {
    /// K, the importance samples per estimate.
    pub k: usize,
    /// The mean over the n groups with its standard error.
    #[serde(flatten)]
    pub estimate: Estimate,
}

impl IwaeEstimate {
    /// The mean with its standard error, as an [`Estimate`].
    pub fn estimate(&self) -> Estimate {
        self.estimate
    }
}

impl std::ops::Deref for IwaeEstimate {
    type Target = Estimate;
    fn deref(&self) -> &Estimate {
        &self.estimate
    }
}

impl std::ops::DerefMut for IwaeEstimate {
    fn deref_mut(&mut self) -> &mut Estimate {
        &mut self.estimate
    }
}

/// log wₖ = log p(x, zₖ) − log q(zₖ) for `m` fresh draws zₖ ~ q: the importance log-weights both
/// IWAE routes reduce.
///
/// # Shapes
/// `x`: D; returns `m`.
fn log_weights<M: LatentModel + ?Sized, R: Rng + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    q: &Q,
    m: usize,
    rng: &mut R,
) -> Array1<f64> {
    let z = q.sample(m, rng);
    model.log_joint(x, z.view()) - q.log_density(z.view())
}

/// L_K = E[log (1/K) Σₖ wₖ] for one x, estimated from `n` independent groups of K draws from q.
///
/// ```text
/// L_K = E_{z₁..z_K ∼ q} [ log (1/K) Σₖ p(x, zₖ) / q(zₖ) ]       (Burda et al. 2016, eq. 8)
/// ELBO = L₁ ≤ L_K ≤ L_{K+1} ≤ log p(x),  L_K → log p(x) as K → ∞   (ibid., Theorem 1)
/// ```
/// Draws are made in chunks of at most 65 536 so memory stays bounded for large n·K.
///
/// # Errors
/// K = 0, n < 2, invalid x or q.
///
/// ```
/// use vaelab::lessons::bounds::{iwae, prior_q};
/// use vaelab::ndarray::array;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::lessons::toy::{LatentModel, Model};
/// let m = Model::from_json(r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": 1.0}"#).unwrap();
/// let x = array![0.7];
/// let mut rng = StdRng::seed_from_u64(2);
/// let l1 = iwae(&m, x.view(), &prior_q(&m), 1, 2000, &mut rng).unwrap();
/// let l100 = iwae(&m, x.view(), &prior_q(&m), 100, 200, &mut rng).unwrap();
/// let log_px = m.log_marginal(x.view()).unwrap();
/// // L_1 = ELBO(prior) = log p(x) − KL(N(0, 1) ‖ N(0.35, ½)) = log p(x) − ½(2 + 0.245 − 1 − ln 2)
/// //     = log p(x) − 0.276; L_100 is within 4 SE (plus its O(1/K) bias, < 0.01 here) of log p(x).
/// assert!((log_px - 0.276 - l1.mean).abs() < 4.0 * l1.stderr);
/// assert!((log_px - l100.mean).abs() < 4.0 * l100.stderr + 0.01);
/// ```
pub fn iwae<M: LatentModel + ?Sized, R: Rng + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    q: &Q,
    k: usize,
    n: usize,
    rng: &mut R,
) -> Result<IwaeEstimate> {
    if k == 0 {
        return Err(Error::invalid("k", k, "need at least 1 importance sample"));
    }
    check_inputs(model, x, q, n, "samples")?;
    crate::base::budget::ensure_draws(
        &format!("IWAE with {n} groups of K = {k}"),
        (n as u128).saturating_mul(k as u128),
    )?;
    iwae_from(k, n, rng, |m, rng| log_weights(model, x, q, m, rng))
}

/// [`iwae`] from a source of log-weights (`m` fresh ones per call), checks done by the caller.
fn iwae_from<R: Rng + ?Sized>(
    k: usize,
    n: usize,
    rng: &mut R,
    mut log_weights: impl FnMut(usize, &mut R) -> Array1<f64>,
) -> Result<IwaeEstimate> {
    if k > IWAE_CHUNK {
        return iwae_large_k(k, n, rng, log_weights);
    }
    let per_chunk = IWAE_CHUNK / k;
    let mut values = Vec::with_capacity(n);
    let mut done = 0;
    while done < n {
        let groups = per_chunk.min(n - done);
        let log_w = log_weights(groups * k, rng);
        let log_w = log_w.into_shape_with_order((groups, k)).expect("groups·K draws"); // B × K, row = one group
        values.push(iwae_per_point(log_w.view()));
        done += groups;
    }
    let views: Vec<_> = values.iter().map(|v| v.view()).collect();
    let estimate = Estimate::from_values(concatenate(Axis(0), &views).expect("1-D").view())?;
    Ok(IwaeEstimate { k, estimate })
}

/// Which ELBO form has the smaller variance (derivation 1, line 5 against line 7), from the same
/// draws: the difference of the per-draw variances, with its standard error.
///
/// ```text
/// aₙ = log wₙ                          (line 5's term)
/// bₙ = log p(x|zₙ) − KL(q ‖ p(z))      (line 7's term)
/// Var(a) − Var(b) ≈ (1/N) Σₙ [(aₙ − ā)² − (bₙ − b̄)²]   (an Estimate over the N per-draw differences)
/// ```
/// Positive: line 7 (closed-form KL) has the lower variance.
///
/// # Errors
/// Fewer than two draws.
pub fn variance_difference(draws: &Draws, kl_q_prior: f64) -> Result<Estimate> {
    let a = draws.log_w();
    let b = &draws.log_likelihood - kl_q_prior;
    let (a_mean, b_mean) = (a.mean().unwrap_or(0.0), b.mean().unwrap_or(0.0));
    let d = (&a - a_mean).mapv(|v| v * v) - (&b - b_mean).mapv(|v| v * v);
    Estimate::from_values(d.view())
}

/// Draws per batch of IWAE work: memory stays at 65,536 draws whatever K is.
const IWAE_CHUNK: usize = 65_536;

/// [`iwae`] for K > [`IWAE_CHUNK`]: one group at a time, its K weights in chunks, summed by a
/// running log-sum-exp, so memory does not grow with K:
///
/// ```text
/// s ← log(e^s + Σ_chunk wₖ) = max(s, c) + ln(e^{s − max} + e^{c − max}),   c = log Σ_chunk wₖ
/// L_K (one group) = s − ln K
/// ```
fn iwae_large_k<R: Rng + ?Sized>(
    k: usize,
    n: usize,
    rng: &mut R,
    mut log_weights: impl FnMut(usize, &mut R) -> Array1<f64>,
) -> Result<IwaeEstimate> {
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut s, mut left) = (f64::NEG_INFINITY, k);
        while left > 0 {
            let m = left.min(IWAE_CHUNK);
            let c = log_sum_exp_1d(log_weights(m, rng).view());
            let top = s.max(c);
            if top > f64::NEG_INFINITY {
                s = top + ((s - top).exp() + (c - top).exp()).ln();
            }
            left -= m;
        }
        values.push(s - (k as f64).ln());
    }
    Ok(IwaeEstimate { k, estimate: Estimate::from_values(&values)? })
}

/// KL(q ‖ p(z|x)): a number when computed exactly, a Monte-Carlo estimate otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum KlValue {
    /// Closed form, enumeration, or quadrature (to 1e-10).
    Exact(f64),
    /// Monte Carlo: mean with its standard error.
    Estimated(Estimate),
}

impl KlValue {
    /// The value (the estimate's mean when estimated).
    pub fn value(&self) -> f64 {
        match self {
            KlValue::Exact(v) => *v,
            KlValue::Estimated(e) => e.mean,
        }
    }
}

/// KL(q ‖ p(z|x)) computed directly, not as log p(x) − ELBO (derivation 2, line 1).
///
/// ```text
/// KL(Q(z|x) ‖ P(z|x)) = E_{z∼Q(z|x)} [log Q(z|x) − log P(z|x)]
/// ```
/// Closed form for the Gaussian posterior (linear-Gaussian model); exact sums over the states for
/// the discrete posteriors, the posterior from Bayes' rule normalised by its own sum
/// ([`Posterior::by_bayes_rule`](crate::lessons::toy::Posterior::by_bayes_rule)); and for the
/// quadratic model ∫ q(z) [log q(z) − log p(z|x)] dz by adaptive quadrature (tolerance 1e-10, q a
/// 1-D Gaussian), log p(z|x) = log p(x, z) − log p(x) normalised by a uniform-grid Simpson rule
/// ([`Quadratic::log_marginal_simpson`](crate::lessons::toy::Quadratic::log_marginal_simpson),
/// 2·10⁴ intervals). None of these routes uses the model's `log_marginal`, so comparing the result
/// with log P(x) − ELBO tests derivation 2 rather than restating it.
///
/// # Errors
/// Invalid x or q.
///
/// ```
/// use vaelab::lessons::bounds::{exact_elbo, kl_q_posterior, Q};
/// use vaelab::ndarray::array;
/// use vaelab::lessons::toy::{LatentModel, Model};
/// let m = Model::from_json(r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": 1.0}"#).unwrap();
/// let x = array![0.7];
/// // p(z|x) = N(0.35, ½); q = N(0.35, 1): KL = ½ (1/½ − 1 + ln ½) = ½ (1 − ln 2).
/// let q = Q::diag_gaussian(array![0.35], array![0.0]).unwrap();
/// let kl = kl_q_posterior(&m, x.view(), &q).unwrap().value();
/// assert!((kl - 0.5 * (1.0 - 2f64.ln())).abs() < 1e-14);
/// // Derivation 2, line 4: log p(x) = KL + ELBO.
/// let elbo = exact_elbo(&m, x.view(), &q).unwrap().unwrap();
/// assert!((m.log_marginal(x.view()).unwrap() - elbo - kl).abs() < 1e-14);
/// ```
pub fn kl_q_posterior(model: &Model, x: ArrayView1<f64>, q: &Q) -> Result<KlValue> {
    model.check_x(x)?;
    q.check_for(model)?;
    match model.posterior(x)? {
        Some(post) => Ok(KlValue::Exact(q.kl_to_posterior(&post)?)),
        None => {
            let Model::Quadratic(m) = model else {
                unreachable!("only the quadratic model has no posterior")
            };
            // Relative to m = log p(x, z*) (Quadratic::log_marginal_split): log p(z|x) = Δ(z) − L.
            let (mu, scale) = gaussian_1d(q)?;
            let (_, l) = m.log_marginal_simpson_split(x, SIMPSON_INTERVALS)?;
            let value = std_normal_expectation(|t| {
                std_log_q(t, scale) - m.log_joint_over_peak_around(x, mu, scale, t)
            })?;
            Ok(KlValue::Exact(value + l))
        }
    }
}

/// Intervals of the Simpson rule that normalises the quadratic model's posterior in
/// [`kl_q_posterior`] ([`Quadratic::log_marginal_simpson_split`](crate::lessons::toy::Quadratic::log_marginal_simpson_split),
/// a window of ±22 peak widths: its error, O(h⁴), is far below 10⁻¹⁰ nats).
const SIMPSON_INTERVALS: usize = 20_000;

/// (μ, s) of a 1-D Gaussian q, or an error naming its family.
fn gaussian_1d(q: &Q) -> Result<(f64, f64)> {
    match q {
        Q::DiagGaussian { mean, log_var } if mean.len() == 1 => Ok((mean[0], (0.5 * log_var[0]).exp())),
        Q::FullGaussian { mean, chol } if mean.len() == 1 => Ok((mean[0], chol[[0, 0]])),
        _ => Err(Error::invalid("q", q.family(), "quadrature needs a 1-D Gaussian q")),
    }
}

/// log q(μ + s t) = −t²/2 − ln s − ½ ln 2π for q = N(μ, s²), in the standard units t.
///
/// # Shapes
/// `t`: N; returns N.
fn std_log_q(t: ArrayView1<f64>, scale: f64) -> Array1<f64> {
    let c = -scale.ln() - 0.5 * crate::base::prob::LN_2PI;
    t.mapv(|t| -0.5 * t * t + c)
}

/// E_q[g] for a 1-D Gaussian q = N(μ, s²) in its standard units t = (z − μ)/s, so a q of width
/// 1e-7 at μ = 1e6 is resolved as well as one at 0:
///
/// ```text
/// E_q[g] = ∫ φ(t) f(t) dt,  f(t) = g(μ + s t),  t ∈ [−40, 40]  (adaptive quadrature, tolerance 1e-10)
/// ```
///
/// # Shapes
/// `f` maps N values of t to N values.
fn std_normal_expectation(f: impl Fn(ArrayView1<f64>) -> Array1<f64>) -> Result<f64> {
    let points = [-40.0, -20.0, -10.0, -5.0, -2.0, -1.0, 0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0];
    let c = -0.5 * crate::base::prob::LN_2PI;
    let integrand = |t: ArrayView1<f64>| t.mapv(|t| (-0.5 * t * t + c).exp()) * f(t);
    Ok(integrate(integrand, &points, 1e-10, 1e-10)?.value)
}

/// KL(q ‖ p(z|x)) by Monte Carlo from fresh draws of q, using the exact log p(x):
///
/// ```text
/// KL ≈ (1/N) Σₙ [log q(zₙ) − log p(x, zₙ) + log p(x)],   zₙ ∼ q
/// ```
/// (With the same draws this would be log p(x) − ELBO by construction; with fresh draws it is an
/// independent estimate of the same number.)
pub fn kl_q_posterior_mc<M: LatentModel + ?Sized, R: Rng + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    q: &Q,
    n: usize,
    rng: &mut R,
) -> Result<Estimate> {
    let d = draw(model, x, q, n, rng)?;
    let log_px = model.log_marginal(x)?;
    Estimate::from_values((-d.log_w() + log_px).view())
}

/// The exact ELBO of q, by a route independent of log p(x) and of the Monte-Carlo estimators:
///
/// ```text
/// linear-Gaussian, Gaussian q:  the closed form of [`crate::lessons::toy::LinearGaussian::elbo_gaussian`]
/// discrete latents:             Σ_z q(z) [log p(x, z) − log q(z)] over every latent (≤ 2¹⁶ states)
/// quadratic, 1-D Gaussian q:    m + ∫ q(z) [Δ(z) − log q(z)] dz by adaptive quadrature (1e-10) in
///                               q's standard units, Δ = log p(x, z) − m relative to the posterior's
///                               peak m ([`Quadratic::log_joint_over_peak_around`](crate::lessons::toy::Quadratic::log_joint_over_peak_around))
/// ```
/// Returns `None` for a binary model with more than 16 latents.
pub fn exact_elbo(model: &Model, x: ArrayView1<f64>, q: &Q) -> Result<Option<f64>> {
    model.check_x(x)?;
    q.check_for(model)?;
    let enumerate = |states: Array2<f64>| {
        let lq = q.log_density(states.view());
        let lj = model.log_joint(x, states.view());
        lq.iter()
            .zip(&lj)
            .filter(|(lq, _)| lq.is_finite())
            .map(|(&lq, &lj)| lq.exp() * (lj - lq))
            .sum::<f64>()
    };
    Ok(match (model, q) {
        (Model::LinearGaussian(m), Q::DiagGaussian { mean, log_var }) => {
            Some(m.elbo_gaussian(x, mean.view(), Array2::from_diag(&log_var.mapv(f64::exp)).view())?)
        }
        (Model::LinearGaussian(m), Q::FullGaussian { mean, chol }) => {
            Some(m.elbo_gaussian(x, mean.view(), chol.dot(&chol.t()).view())?)
        }
        (Model::Mixture(m), _) => Some(enumerate(Encoding::Index.all_states(m.components()))),
        (Model::BinaryLatent(m), _) if m.latent_dim() <= 16 => {
            Some(enumerate(Encoding::Bits(m.latent_dim()).all_states(m.states())))
        }
        (Model::BinaryLatent(_), _) => None,
        (Model::Quadratic(m), _) => {
            // m + E_q[Δ − log q], Δ = log p(x, z) − m formed relative to the peak.
            let (mu, scale) = gaussian_1d(q)?;
            let peak = m.log_joint_peak(x)?;
            let e = std_normal_expectation(|t| {
                m.log_joint_over_peak_around(x, mu, scale, t) - std_log_q(t, scale)
            })?;
            Some(peak + e)
        }
        (Model::LinearGaussian(_), _) => unreachable!("check_for admits only Gaussian q"),
    })
}

/// Everything `vaelab bounds` prints, with exactly the keys of its JSON output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoundsReport {
    /// The exact log p(x).
    pub log_px: f64,
    /// E_q[log p(x, z) − log q(z)] from `samples` draws.
    pub elbo: Estimate,
    /// E_q[log p(x|z)] − KL(q ‖ p(z)) from the same draws.
    pub elbo_analytic_kl: Estimate,
    /// L_K from `samples` independent groups of K draws.
    pub iwae: IwaeEstimate,
    /// KL(q ‖ p(z|x)) computed directly.
    pub kl_q_posterior: KlValue,
    /// log p(x) − elbo.mean: by derivation 2, an estimate of `kl_q_posterior`.
    pub gap: f64,
}

/// Runs every estimator for one x and one q: the numbers of both derivations side by side.
///
/// # Errors
/// N < 2, K = 0, invalid x or q.
///
/// ```
/// use vaelab::lessons::bounds::{report, Q};
/// use vaelab::ndarray::array;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::lessons::toy::{LatentModel, Model};
/// let model = Model::from_json(r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": 1.0}"#).unwrap();
/// let x = array![0.7];
/// // q = the exact posterior: every bound equals log p(x) and the gap is 0.
/// let q = Q::from_posterior(&model.posterior(x.view()).unwrap().unwrap()).unwrap();
/// let r = report(&model, x.view(), &q, 100, 10, &mut StdRng::seed_from_u64(0)).unwrap();
/// assert!(r.gap.abs() < 1e-12 && r.kl_q_posterior.value().abs() < 1e-12);
/// ```
pub fn report<R: Rng + ?Sized>(
    model: &Model,
    x: ArrayView1<f64>,
    q: &Q,
    samples: usize,
    k: usize,
    rng: &mut R,
) -> Result<BoundsReport> {
    let draws = draw(model, x, q, samples, rng)?;
    let kl_prior = q.kl_to_prior(&model.prior())?;
    let r = match model {
        Model::Quadratic(m) => report_over_peak(model, m, x, q, &draws, kl_prior, k, rng)?,
        _ => {
            let log_px = model.log_marginal(x)?;
            let elbo = elbo(&draws)?;
            let elbo_analytic_kl = elbo_analytic_kl(&draws, kl_prior)?;
            let iwae = iwae(model, x, q, k, samples, rng)?;
            let kl_q_posterior = kl_q_posterior(model, x, q)?;
            BoundsReport { log_px, elbo, elbo_analytic_kl, iwae, kl_q_posterior, gap: log_px - elbo.mean }
        }
    };
    r.ensure_finite()?;
    Ok(r)
}

/// [`report`] for the quadratic model, every log-density formed relative to the posterior's peak
/// m = log p(x, z*) ([`Quadratic::log_marginal_split`](crate::lessons::toy::Quadratic::log_marginal_split)):
///
/// ```text
/// log wₙ = m + (Δ(zₙ) − log q(zₙ)),   Δ = log p(x, z) − m,   log p(x) = m + L
/// ELBO = m + mean(Δ − log q),   ELBO (line 7) = m + mean(Δ − log p(z)) − KL(q ‖ p(z)),   L_K = m + …
/// gap = L − mean(Δ − log q)     (never the difference of two numbers near m)
/// ```
/// Far from c (|x| = 1e12, m ≈ −3e24 with an ulp of 5e8 nats) the spreads, the gap and the KL keep
/// their digits; the means carry m's rounding, the best f64 holds.
/// The fewest f64 steps (ulps of the mean) per standard deviation of q for which [`report`] draws
/// from a 1-D Gaussian q: fewer, and the draws fall on a handful of representable z.
const MIN_ULPS_PER_SD: f64 = 64.0;

#[allow(clippy::too_many_arguments)]
fn report_over_peak<R: Rng + ?Sized>(
    model: &Model,
    m: &crate::lessons::toy::Quadratic,
    x: ArrayView1<f64>,
    q: &Q,
    draws: &Draws,
    kl_prior: f64,
    k: usize,
    rng: &mut R,
) -> Result<BoundsReport> {
    let (mu, scale) = gaussian_1d(q)?;
    if scale < MIN_ULPS_PER_SD * f64::EPSILON * mu.abs() {
        return Err(Error::invalid(
            "q",
            format!("N(μ = {mu:e}, σ = {scale:e})"),
            format!(
                "its standard deviation is below {MIN_ULPS_PER_SD} ulps of its mean: draws of z cannot be told apart in f64 (the posterior is too narrow for its distance from 0)"
            ),
        ));
    }
    let (peak, l) = m.log_marginal_split(x)?;
    let delta = m.log_joint_over_peak_around(x, 0.0, 1.0, draws.z.column(0));
    let shift = |e: Estimate| Estimate { mean: peak + e.mean, ..e };
    let rel_elbo = Estimate::from_values((&delta - &draws.log_q).view())?;
    let elbo_analytic_kl = shift(Estimate::from_values((&delta - &draws.log_prior - kl_prior).view())?);
    if k == 0 {
        return Err(Error::invalid("k", k, "need at least 1 importance sample"));
    }
    crate::base::budget::ensure_draws(
        &format!("IWAE with {} groups of K = {k}", draws.z.nrows()),
        (draws.z.nrows() as u128).saturating_mul(k as u128),
    )?;
    let mut iwae = iwae_from(k, draws.z.nrows(), rng, |n, rng| {
        let z = q.sample(n, rng);
        m.log_joint_over_peak_around(x, 0.0, 1.0, z.column(0)) - q.log_density(z.view())
    })?;
    iwae.estimate = shift(iwae.estimate);
    Ok(BoundsReport {
        log_px: peak + l,
        elbo: shift(rel_elbo),
        elbo_analytic_kl,
        iwae,
        kl_q_posterior: kl_q_posterior(model, x, q)?,
        gap: l - rel_elbo.mean,
    })
}

impl BoundsReport {
    /// Checks every number of the report, naming the first that is NaN or infinite by its JSON
    /// key (`elbo.mean`, `iwae.stderr`, ...).
    ///
    /// # Errors
    /// [`Error::NotFinite`] naming the quantity.
    pub fn ensure_finite(&self) -> Result<()> {
        let mut values = vec![
            ("log_px", self.log_px),
            ("elbo.mean", self.elbo.mean),
            ("elbo.stderr", self.elbo.stderr),
            ("elbo_analytic_kl.mean", self.elbo_analytic_kl.mean),
            ("elbo_analytic_kl.stderr", self.elbo_analytic_kl.stderr),
            ("iwae.mean", self.iwae.mean),
            ("iwae.stderr", self.iwae.stderr),
        ];
        match self.kl_q_posterior {
            KlValue::Exact(v) => values.push(("kl_q_posterior", v)),
            KlValue::Estimated(e) => {
                values.extend([("kl_q_posterior.mean", e.mean), ("kl_q_posterior.stderr", e.stderr)])
            }
        }
        values.push(("gap", self.gap));
        match values.into_iter().find(|(_, v)| !v.is_finite()) {
            None => Ok(()),
            Some((quantity, value)) => Err(Error::NotFinite {
                quantity: quantity.into(),
                value,
                hint: "x, q or the model's parameters are too large for f64 arithmetic".into(),
            }),
        }
    }
}

/// The exact posterior of a model at x as a q, or an error naming the model kind.
pub fn posterior_q(model: &Model, x: ArrayView1<f64>) -> Result<Q> {
    match model.posterior(x)? {
        Some(p) => Q::from_posterior(&p),
        None => Err(Error::invalid(
            "q",
            "posterior",
            format!(
                "the {} model's posterior has no closed form (use --q fit, prior or --q-mean/--q-log-var)",
                model.kind()
            ),
        )),
    }
}

/// The prior of a model as a q.
pub fn prior_q(model: &Model) -> Q {
    Q::from_prior(&model.prior())
}
