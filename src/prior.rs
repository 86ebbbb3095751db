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
//! | the aggregate's mean and covariance | [`crate::eval::aggregate_posterior`] |
//! | a learnable mixture-of-Gaussians prior, log-density, hand-written gradients, draws | [`MixturePrior`] (trained inside a VAE: [`crate::vae::LatentPrior::Mixture`]) |
//!
//! # Shapes
//! `N` data points (posteriors), `Z` latent dimension; the encoder outputs `mean` and `log_var`
//! are `N × Z` (e.g. [`crate::eval::ElboStats::mean`] and [`crate::eval::ElboStats::log_var`]).

use ndarray::{Array1, Array2, ArrayView2, Axis, NdFloat, Zip, s};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ensure_finite};
use crate::eval::mean_se;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn check_posteriors(mean: ArrayView2<f64>, log_var: ArrayView2<f64>) -> Result<()> {
    if mean.nrows() == 0 || mean.ncols() == 0 {
        return Err(Error::empty("posterior means", "row and column"));
    }
    if mean.dim() != log_var.dim() {
        return Err(Error::shape("log_var", format!("{:?}", mean.dim()), format!("{:?}", log_var.dim())));
    }
    ensure_finite("mean", mean.iter())?;
    ensure_finite("log_var", log_var.iter())
}

/// log q(z_c | x_n) for every pair: a `C × N` matrix, one column per posterior.
///
/// ```text
/// log q(z_c|x_n) = −½ Σ_u [ ln 2π + v_nu + (z_cu − μ_nu)² e^(−v_nu) ]
/// ```
fn log_q_matrix(z: ArrayView2<f64>, mean: ArrayView2<f64>, log_var: ArrayView2<f64>) -> Array2<f64> {
    let (c, zd) = z.dim();
    let n = mean.nrows();
    let mut acc = Array2::<f64>::zeros((c, n));
    for u in 0..zd {
        let zu = z.column(u).insert_axis(Axis(1)); // C × 1
        let mu = mean.column(u).insert_axis(Axis(0)); // 1 × N
        let v = log_var.column(u).insert_axis(Axis(0)); // 1 × N
        let prec = v.mapv(|v| (-v).exp()); // 1 × N
        Zip::from(&mut acc)
            .and_broadcast(&zu)
            .and_broadcast(&mu)
            .and_broadcast(&v)
            .and_broadcast(&prec)
            .for_each(|a, &z, &m, &v, &p| {
                *a += v + (z - m) * (z - m) * p;
            });
    }
    acc.mapv_inplace(|a| -0.5 * (zd as f64 * LN_2PI + a));
    acc
}

/// log q_agg(z) of the mixture of the N posteriors, exactly, for each row of `z`.
///
/// ```text
/// log q_agg(z) = log (1/N) Σ_n N(z; μ_n, diag e^(v_n))
///              = logmeanexp_n [ −½ Σ_u ( ln 2π + v_nu + (z_u − μ_nu)² e^(−v_nu) ) ]
///
///   μ_n = `mean` row n,  v_n = log σ²_n = `log_var` row n,  u runs over the Z units
/// ```
/// (Hoffman & Johnson 2016, §2: the "average encoding distribution"). The log-mean-exp is
/// [`crate::prob::log_mean_exp`] over the N posteriors, so nothing underflows however far apart
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
/// use vaelab::prior::log_aggregate_posterior;
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
    check_posteriors(mean, log_var)?;
    if z.ncols() != mean.ncols() {
        return Err(Error::shape("z columns (Z)", mean.ncols(), z.ncols()));
    }
    ensure_finite("z", z.iter())?;
    Ok(crate::prob::log_mean_exp(log_q_matrix(z, mean, log_var).view(), Axis(1)))
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
/// use vaelab::prior::sample_aggregate_posterior;
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
    check_posteriors(mean, log_var)?;
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
    /// Î(n; z) = mean of log q(z|x_n) − log q_agg(z).
    pub mutual_information: f64,
    /// Its standard error.
    pub mutual_information_se: f64,
    /// KL̂(q_agg ‖ p) = mean of log q_agg(z) − log p(z).
    pub marginal_kl: f64,
    /// Its standard error.
    pub marginal_kl_se: f64,
    /// Î + KL̂, the Monte-Carlo estimate of the average KL.
    pub sum: f64,
    /// Its standard error.
    pub sum_se: f64,
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
        self.mutual_information <= self.log_n + 1e-12
    }

    /// (Î + KL̂ − mean KL) / SE: how many standard errors the Monte-Carlo sum is from the exact
    /// average KL. With a mixture prior `mean_kl` shares the draws' cross-entropy, so the gap is
    /// only the noise of log q(z|x_n) around −H(q_n) (zero mean): the score is then indicative.
    pub fn sum_z_score(&self) -> f64 {
        (self.sum - self.mean_kl) / self.sum_se
    }
}

/// ELBO surgery (Hoffman & Johnson 2016, eq. 3): the average KL to the prior is the mutual
/// information between the data index and z plus the KL of the aggregate to the prior. The prior
/// is N(0, I) (`prior = None`) or a learned [`MixturePrior`] (e.g. [`crate::vae::Vae::mixture_prior`]).
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
/// mean over n with standard error sd/√N ([`crate::eval::mean_se`]). Both estimators are unbiased;
/// their sum is, draw by draw, log q(z|x_n) − log p(z), the Monte-Carlo estimate of the average
/// KL, which is also given in closed form (`mean_kl`; see there for a mixture prior). Draw order: n = 0..N, then s = 0..S, then
/// the Z values of ε.
///
/// # Shapes
/// `mean`, `log_var`: `N × Z`; the prior's means `K × Z`.
///
/// # Errors
/// Empty, mis-shaped or non-finite posteriors; a prior of another Z; `samples` or `chunk` of 0.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::prior::elbo_surgery;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// // Two unit-variance posteriors 2000 apart: z tells the index for certain, I = log 2.
/// let m = array![[-1000.0], [1000.0]];
/// let v = array![[0.0], [0.0]];
/// let s = elbo_surgery(m.view(), v.view(), None, 10, 64, &mut StdRng::seed_from_u64(1)).unwrap();
/// assert!((s.mutual_information - 2f64.ln()).abs() < 1e-12);
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
    check_posteriors(mean, log_var)?;
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
        let log_q = log_q_matrix(zc, mean, log_var); // chunk × N
        let log_agg = crate::prob::log_mean_exp(log_q.view(), Axis(1)); // chunk
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
    let kl: Array1<f64> = match prior {
        // KL = −H(q) + E_q[−log p]: the entropy exactly, the cross-entropy from the same draws.
        Some(_) => (0..n)
            .map(|i| -0.5 * log_var.row(i).iter().map(|v| LN_2PI + 1.0 + v).sum::<f64>() + cross[i])
            .collect(),
        None => crate::prob::kl_diag_gaussian_std_normal(mean, log_var),
    };
    let (mutual_information, mutual_information_se) = mean_se(&info);
    let (marginal_kl, marginal_kl_se) = mean_se(&marg);
    let (sum, sum_se) = mean_se(&both);
    Ok(ElboSurgery {
        n,
        samples,
        mutual_information,
        mutual_information_se,
        marginal_kl,
        marginal_kl_se,
        sum,
        sum_se,
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
/// use vaelab::prior::posterior_ellipse;
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
    crate::error::ensure_positive("k", k)?;
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

/// A learnable mixture-of-Gaussians prior p_θ(z) = Σ_k π_k N(z; m_k, diag e^(s_k)) (the text: "P(z)
/// may be chosen freely, even with learnable parameters"), with the gradients of its log-density
/// written by hand. A [`crate::vae::Vae`] with [`crate::vae::LatentPrior::Mixture`] keeps one in
/// [`crate::vae::VaeParams::prior`] and trains it with the rest of the model (in the VAE's float
/// type `F`; the maths below runs in `f64`, see [`MixturePrior::cast`]).
///
/// Parameters: `logits` α (K), π = softmax(α); `means` m (K × Z); `log_vars` s = log σ² (K × Z).
#[derive(Clone, Debug, PartialEq)]
pub struct MixturePrior<F = f64> {
    /// α, the unnormalised log-weights, `K`.
    pub logits: Array1<F>,
    /// m_k, `K × Z`.
    pub means: Array2<F>,
    /// s_k = log σ²_k, `K × Z`.
    pub log_vars: Array2<F>,
}

impl<F: NdFloat> MixturePrior<F> {
    /// K, the number of components.
    pub fn components(&self) -> usize {
        self.logits.len()
    }

    /// The same parameters in another float type (an `f32` prior evaluated in `f64`).
    pub fn cast<G: NdFloat>(&self) -> MixturePrior<G> {
        let c = |v: &F| -> G { crate::nn::cast(v.to_f64().expect("float")) };
        MixturePrior { logits: self.logits.map(c), means: self.means.map(c), log_vars: self.log_vars.map(c) }
    }

    /// A zeroed copy (a gradient struct, an optimiser moment).
    pub fn zeros_like(&self) -> Self {
        MixturePrior {
            logits: Array1::zeros(self.logits.len()),
            means: Array2::zeros(self.means.dim()),
            log_vars: Array2::zeros(self.log_vars.dim()),
        }
    }

    /// The initial prior of a VAE: equal weights (α = 0), unit variances (s = 0) and means drawn
    /// from N(0, I), K × Z values in row order (so the K components start spread over the region
    /// the N(0, I) prior covers, and not all equal, which would keep them equal under training).
    ///
    /// ```text
    /// α_k = 0,   m_ku ~ N(0, 1),   s_ku = 0
    /// ```
    ///
    /// # Errors
    /// `InvalidParameter` for K = 0 or Z = 0.
    pub fn init<R: Rng + ?Sized>(components: usize, latent_dim: usize, rng: &mut R) -> Result<Self> {
        if components == 0 {
            return Err(Error::invalid("components", 0, "a mixture prior needs K >= 1"));
        }
        if latent_dim == 0 {
            return Err(Error::invalid("latent_dim", 0, "must be >= 1"));
        }
        let means = Array2::from_shape_simple_fn((components, latent_dim), || {
            crate::nn::cast::<F>(StandardNormal.sample(rng))
        });
        Ok(MixturePrior {
            logits: Array1::zeros(components),
            means,
            log_vars: Array2::zeros((components, latent_dim)),
        })
    }
}

/// ∂L/∂θ of L = Σ_b log p_θ(z_b), shaped as the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MixturePriorGrads {
    /// ∂L/∂α, `K`.
    pub d_logits: Array1<f64>,
    /// ∂L/∂m, `K × Z`.
    pub d_means: Array2<f64>,
    /// ∂L/∂s, `K × Z`.
    pub d_log_vars: Array2<f64>,
}

/// The three tensors `logits`, `means`, `log_vars`, in that order (what Adam and checkpoints walk
/// when the prior is part of a [`crate::vae::VaeParams`]).
impl<F: NdFloat> crate::nn::Parameters<F> for MixturePrior<F> {
    fn tensor_count(&self) -> usize {
        3
    }
    fn tensor_name(&self, i: usize) -> String {
        ["logits", "means", "log_vars"][i].to_string()
    }
    fn tensor_shape(&self, i: usize) -> Vec<usize> {
        match i {
            0 => vec![self.logits.len()],
            1 => self.means.shape().to_vec(),
            _ => self.log_vars.shape().to_vec(),
        }
    }
    fn tensor(&self, i: usize) -> &[F] {
        match i {
            0 => self.logits.as_slice(),
            1 => self.means.as_slice(),
            _ => self.log_vars.as_slice(),
        }
        .expect("standard-layout parameters")
    }
    fn tensor_mut(&mut self, i: usize) -> &mut [F] {
        match i {
            0 => self.logits.as_slice_mut(),
            1 => self.means.as_slice_mut(),
            _ => self.log_vars.as_slice_mut(),
        }
        .expect("standard-layout parameters")
    }
    fn zeros_like(&self) -> Self {
        MixturePrior::zeros_like(self)
    }
}

impl MixturePrior<f64> {
    /// A mixture from its parameters.
    ///
    /// # Errors
    /// No components, shapes that differ, non-finite values.
    pub fn new(logits: Array1<f64>, means: Array2<f64>, log_vars: Array2<f64>) -> Result<Self> {
        check_posteriors(means.view(), log_vars.view())?;
        if logits.len() != means.nrows() {
            return Err(Error::shape("logits (K)", means.nrows(), logits.len()));
        }
        ensure_finite("logits", logits.iter())?;
        // Standard (row-major) layout, so each tensor is one slice in its shape's order.
        let standard = |a: Array2<f64>| a.as_standard_layout().into_owned();
        Ok(MixturePrior { logits, means: standard(means), log_vars: standard(log_vars) })
    }

    /// π = softmax(α), the mixture weights, `K`.
    pub fn weights(&self) -> Array1<f64> {
        let log_norm = crate::prob::log_sum_exp_1d(self.logits.view());
        self.logits.mapv(|a| (a - log_norm).exp())
    }

    /// `n` draws z ~ p_θ by ancestral sampling.
    ///
    /// ```text
    /// k ~ Categorical(π),   ε ~ N(0, I_Z),   z = m_k + exp(½ s_k) ⊙ ε
    /// ```
    /// k is the first index with u < π_0 + … + π_k for u ~ Uniform[0, 1) (the last index if
    /// rounding leaves u above the total). Per draw: u first, then the Z values of ε.
    ///
    /// # Shapes
    /// Returns `n × Z`.
    ///
    /// ```
    /// use vaelab::ndarray::array;
    /// use vaelab::prior::MixturePrior;
    /// use vaelab::rand::{SeedableRng, rngs::StdRng};
    /// // Weights (e^−40, ≈1): every draw comes from the second component, N(5, e^−40) ≈ the point 5.
    /// let p = MixturePrior::new(array![-40.0, 0.0], array![[-5.0], [5.0]], array![[-40.0], [-40.0]]).unwrap();
    /// let z = p.sample(50, &mut StdRng::seed_from_u64(3));
    /// assert!(z.iter().all(|&z| (z - 5.0).abs() < 1e-6));
    /// ```
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let pi = self.weights();
        let (k_count, zd) = self.means.dim();
        let mut z = Array2::<f64>::zeros((n, zd));
        for i in 0..n {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut k = k_count - 1;
            for (j, &w) in pi.iter().enumerate() {
                acc += w;
                if u < acc {
                    k = j;
                    break;
                }
            }
            for d in 0..zd {
                let e: f64 = StandardNormal.sample(rng);
                z[(i, d)] = self.means[(k, d)] + (0.5 * self.log_vars[(k, d)]).exp() * e;
            }
        }
        z
    }

    /// log p_θ on the grid x × y of a 2-D latent, for contour plots
    /// ([`crate::plot::Figure::density_contours`]): entry `[i, j]` is log p_θ((x_j, y_i)).
    ///
    /// # Shapes
    /// `x`: nx, `y`: ny → `ny × nx`.
    ///
    /// # Errors
    /// `Shape` unless Z = 2; `Empty` for an empty axis; `NonFinite` grid values.
    ///
    /// ```
    /// use vaelab::ndarray::array;
    /// use vaelab::prior::MixturePrior;
    /// let p = MixturePrior::new(array![0.0], array![[0.0, 0.0]], array![[0.0, 0.0]]).unwrap();
    /// let g = p.log_density_grid(&[0.0, 1.0], &[0.0]).unwrap();
    /// assert!((g[[0, 1]] - (-1.837_877_066_409_345_5 - 0.5)).abs() < 1e-14); // log N((1, 0); 0, I)
    /// ```
    pub fn log_density_grid(&self, x: &[f64], y: &[f64]) -> Result<Array2<f64>> {
        if self.means.ncols() != 2 {
            return Err(Error::shape(
                "mixture prior latent dimension (Z) for a 2-D grid",
                2,
                self.means.ncols(),
            ));
        }
        if x.is_empty() || y.is_empty() {
            return Err(Error::empty("grid axis", "value"));
        }
        ensure_finite("x", x.iter())?;
        ensure_finite("y", y.iter())?;
        let points = Array2::from_shape_fn((x.len() * y.len(), 2), |(r, c)| {
            if c == 0 { x[r % x.len()] } else { y[r / x.len()] }
        });
        let (log_p, _) = self.log_density_and_responsibilities(points.view());
        Ok(log_p.into_shape_with_order((y.len(), x.len())).expect("ny · nx values"))
    }

    /// log p_θ(z) per row and the responsibilities r_bk.
    ///
    /// ```text
    /// log p_θ(z) = logsumexp_k [ log π_k + log N(z; m_k, diag e^(s_k)) ],   log π = α − logsumexp(α)
    /// r_bk = exp( log π_k + log N(z_b; m_k, e^(s_k)) − log p_θ(z_b) )
    /// ```
    /// (a Gaussian mixture; Bishop 2006, eqs. 9.7 and 9.13 for the responsibilities).
    ///
    /// # Shapes
    /// `z`: `B × Z` → (`B`, `B × K`).
    ///
    /// **Panics** if `z` does not have Z columns.
    ///
    /// ```
    /// use vaelab::ndarray::array;
    /// use vaelab::prior::MixturePrior;
    /// // Two equal components N(0, I) in Z = 2: p(0) = 1/(2π), each responsibility ½.
    /// let p = MixturePrior::new(array![0.0, 0.0], array![[0.0, 0.0], [0.0, 0.0]], array![[0.0, 0.0], [0.0, 0.0]]).unwrap();
    /// let (lp, r) = p.log_density_and_responsibilities(array![[0.0, 0.0]].view());
    /// assert!((lp[0] + 1.837_877_066_409_345_5).abs() < 1e-14);
    /// assert!((r[[0, 0]] - 0.5).abs() < 1e-15);
    /// ```
    #[track_caller]
    pub fn log_density_and_responsibilities(&self, z: ArrayView2<f64>) -> (Array1<f64>, Array2<f64>) {
        assert_eq!(
            z.ncols(),
            self.means.ncols(),
            "MixturePrior::log_density: z {:?} vs means {:?}",
            z.shape(),
            self.means.shape()
        );
        let log_norm = crate::prob::log_sum_exp_1d(self.logits.view());
        let mut joint = log_q_matrix(z, self.means.view(), self.log_vars.view()); // B × K
        for (k, &a) in self.logits.iter().enumerate() {
            joint.column_mut(k).mapv_inplace(|v| v + a - log_norm);
        }
        let log_p = crate::prob::log_sum_exp(joint.view(), Axis(1)); // B
        let resp = &joint - &log_p.view().insert_axis(Axis(1)); // B × K − B × 1
        (log_p, resp.mapv(f64::exp))
    }

    /// Backward of L = Σ_b log p_θ(z_b): ∂L/∂z and ∂L/∂θ.
    ///
    /// ```text
    /// ∂L/∂α_k    = Σ_b (r_bk − π_k)
    /// ∂L/∂m_ku   = Σ_b r_bk (z_bu − m_ku) e^(−s_ku)
    /// ∂L/∂s_ku   = Σ_b r_bk · ½ [ (z_bu − m_ku)² e^(−s_ku) − 1 ]
    /// ∂L/∂z_bu   = −Σ_k r_bk (z_bu − m_ku) e^(−s_ku)
    /// ```
    /// (each is the single-Gaussian derivative weighted by the responsibility, because
    /// ∂ log Σ_k e^(a_k) / ∂a_k = r_k). Checked against central differences in the tests.
    ///
    /// # Shapes
    /// `z`: `B × Z` → (`B × Z`, grads shaped as the parameters).
    #[track_caller]
    pub fn log_density_backward(&self, z: ArrayView2<f64>) -> (Array2<f64>, MixturePriorGrads) {
        let (_, r) = self.log_density_and_responsibilities(z);
        let (b, zd) = z.dim();
        let k = self.logits.len();
        let log_norm = crate::prob::log_sum_exp_1d(self.logits.view());
        let pi = self.logits.mapv(|a| (a - log_norm).exp());
        let mut d_z = Array2::<f64>::zeros((b, zd));
        let mut g = MixturePriorGrads {
            d_logits: r.sum_axis(Axis(0)) - &(&pi * b as f64),
            d_means: Array2::zeros((k, zd)),
            d_log_vars: Array2::zeros((k, zd)),
        };
        for i in 0..b {
            for c in 0..k {
                for u in 0..zd {
                    let prec = (-self.log_vars[(c, u)]).exp();
                    let diff = z[(i, u)] - self.means[(c, u)];
                    g.d_means[(c, u)] += r[(i, c)] * diff * prec;
                    g.d_log_vars[(c, u)] += r[(i, c)] * 0.5 * (diff * diff * prec - 1.0);
                    d_z[(i, u)] -= r[(i, c)] * diff * prec;
                }
            }
        }
        (d_z, g)
    }
}

#[cfg(test)]
mod tests;
