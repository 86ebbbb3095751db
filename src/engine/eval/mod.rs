//! Evaluation: ELBO / rate / distortion, importance-sampled log-likelihood, active units,
//! per-unit KL, the aggregate posterior's moments and the amortisation gap. Accumulation in `f64`
//! throughout.

use ndarray::{Array1, Array2, ArrayView2, Axis, NdFloat, s};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::prob::LN_2PI;
use crate::base::stats::Estimate;
use crate::engine::nn::{bernoulli_nll_grad_into, gaussian_nll_grad_into};
use crate::engine::vae::{Likelihood, Vae, VaeWorkspace};

/// Per-example ELBO terms and the encoder's outputs over a data set.
#[derive(Clone, Debug)]
pub struct ElboStats {
    /// ELBO_n = −(distortion_n + rate_n).
    pub elbo: Vec<f64>,
    /// rate_n = KL(q(z|x_n) ‖ p(z)): analytic for Gaussian priors; for a learned mixture prior
    /// −H(q) exactly minus log p(z) averaged over the same S draws as the distortion.
    pub rate: Vec<f64>,
    /// distortion_n = −E_q log p(x_n|z), averaged over the drawn z.
    pub distortion: Vec<f64>,
    /// μ(x_n), `N × Z`.
    pub mean: Array2<f64>,
    /// log σ²(x_n), `N × Z`.
    pub log_var: Array2<f64>,
    /// Mean over the data of each unit's KL, `Z` (sums to the mean rate); empty for a mixture
    /// prior, whose KL does not split by unit.
    pub kl_per_unit: Vec<f64>,
}

/// Data-set means of the ELBO terms with their standard errors across data points, in nats per
/// example. In JSON each term is `{"mean", "stderr", "samples"}`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElboSummary {
    /// Mean ELBO.
    pub elbo: Estimate,
    /// Mean rate (KL).
    pub rate: Estimate,
    /// Mean distortion.
    pub distortion: Estimate,
    /// Data points.
    pub n: usize,
}

impl ElboStats {
    /// Means over the data set, each with its standard error ([`Estimate::from_values`]):
    ///
    /// ```text
    /// ELBO = (1/N) Σ_n ELBO_n,   R = (1/N) Σ_n rate_n,   D = (1/N) Σ_n distortion_n
    /// ```
    ///
    /// # Errors
    /// [`Error::TooFewValues`] for fewer than 2 data points (no standard error).
    pub fn summary(&self) -> Result<ElboSummary> {
        Ok(ElboSummary {
            elbo: Estimate::from_values(&self.elbo)?,
            rate: Estimate::from_values(&self.rate)?,
            distortion: Estimate::from_values(&self.distortion)?,
            n: self.elbo.len(),
        })
    }

    /// σ̄_u, the encoder's standard deviation per unit averaged over the data
    /// ([`mean_sigma_per_unit`] of [`ElboStats::log_var`]), `Z`.
    pub fn sigma_per_unit(&self) -> Vec<f64> {
        mean_sigma_per_unit(self.log_var.view())
    }
}

/// The encoder's standard deviation per latent unit, averaged over the data:
///
/// ```text
/// σ̄_u = (1/N) Σ_n exp(½ log σ²_u(x_n))
/// ```
/// σ̄_u = 1 (with μ = 0) is the prior itself: a unit the encoder does not use.
///
/// # Shapes
/// `log_var`: `N × Z` (e.g. [`ElboStats::log_var`]); returns `Z`.
///
/// ```
/// use vaelab::engine::eval::mean_sigma_per_unit;
/// use vaelab::ndarray::array;
/// // unit 0: σ = 1 and e^{-1} ≈ 0.3679, mean 0.6839; unit 1: σ = e^{½} both times
/// let s = mean_sigma_per_unit(array![[0.0, 1.0], [-2.0, 1.0]].view());
/// assert!((s[0] - (1.0 + (-1.0f64).exp()) / 2.0).abs() < 1e-15 && (s[1] - 0.5f64.exp()).abs() < 1e-15);
/// ```
pub fn mean_sigma_per_unit(log_var: ArrayView2<f64>) -> Vec<f64> {
    let n = log_var.nrows() as f64;
    log_var.columns().into_iter().map(|c| c.mapv(|v| (0.5 * v).exp()).sum() / n).collect()
}

pub(crate) fn check_data<F: NdFloat>(vae: &Vae<F>, x: ArrayView2<F>, labels: Option<&[usize]>) -> Result<()> {
    check_input(vae, "evaluation data", x, labels)
}

/// Validates data `x` (named `what` in errors) for `vae`: at least one row, `D` columns, finite,
/// and labels iff the model is a CVAE.
pub(crate) fn check_input<F: NdFloat>(
    vae: &Vae<F>,
    what: &str,
    x: ArrayView2<F>,
    labels: Option<&[usize]>,
) -> Result<()> {
    if x.nrows() == 0 {
        return Err(Error::empty(what, "row"));
    }
    if x.ncols() != vae.config.data_dim {
        return Err(Error::shape(format!("{what} columns"), vae.config.data_dim, x.ncols()));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            name: "x".into(),
            index: i,
            value: x.iter().nth(i).and_then(|v| v.to_f64()).unwrap_or(f64::NAN),
        });
    }
    vae.check_labels(x.nrows(), labels)
}

/// −log p(x|z) per row of the decoder output in `ws` (rows paired with the rows of `x`).
pub(crate) fn nll_rows<F: NdFloat>(vae: &Vae<F>, ws: &VaeWorkspace<F>, x: ArrayView2<F>, rows: &mut [f64]) {
    rows.fill(0.0);
    let out = ws.output();
    match vae.config.likelihood {
        Likelihood::Bernoulli => {
            bernoulli_nll_grad_into(out, x, F::one(), None, rows);
        }
        Likelihood::GaussianFixed { .. } => {
            gaussian_nll_grad_into(out, ws.fixed_obs_log_var.view(), x, F::one(), None, None, rows);
        }
        Likelihood::GaussianLearned => {
            let s = vae.params.obs_log_var.as_ref().expect("learned variance").view();
            gaussian_nll_grad_into(out, s, x, F::one(), None, None, rows);
        }
    }
}

fn f64_of<F: NdFloat>(v: F) -> f64 {
    v.to_f64().expect("float")
}

/// ELBO, rate and distortion per example, with `samples` draws of z per example for the
/// distortion and the KL in closed form; processed `chunk` rows at a time.
///
/// ```text
/// ELBO(x) = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) ≈ (1/S) Σ_s log p(x|z_s) − KL,   z_s = μ + σ ⊙ ε_s
/// mixture prior:  KL ≈ −½ Σ_u (ln 2π + 1 + v_u) − (1/S) Σ_s log p_θ(z_s)      (same z_s)
/// ```
/// (the anchor's evaluation with S = 10; the mixture's rate is the estimator of
/// [`crate::engine::vae::learned_prior`], unbiased, so the ELBO stays unbiased).
///
/// # Shapes
/// `x`: `N × D`; `labels`: `N` (CVAE).
///
/// # Errors
/// Empty or mis-shaped data, non-finite values, bad labels, `samples` or `chunk` of 0;
/// [`Error::TooLarge`] for more than [`crate::base::budget::MAX_DRAWS`] draws N × S.
pub fn elbo_stats<F: NdFloat, R: Rng + ?Sized>(
    vae: &Vae<F>,
    x: ArrayView2<F>,
    labels: Option<&[usize]>,
    samples: usize,
    chunk: usize,
    rng: &mut R,
) -> Result<ElboStats>
where
    StandardNormal: Distribution<F>,
{
    check_data(vae, x, labels)?;
    if samples == 0 {
        return Err(Error::invalid("samples", 0, "must be >= 1"));
    }
    if chunk == 0 {
        return Err(Error::invalid("chunk", 0, "must be >= 1"));
    }
    crate::base::budget::ensure_draws(
        &format!("an ELBO of {} points × {samples} draws of z", x.nrows()),
        x.nrows() as u128 * samples as u128,
    )?;
    let (n, zd) = (x.nrows(), vae.config.latent_dim);
    let mut ws = vae.workspace(chunk.min(n));
    let mut stats = ElboStats {
        elbo: vec![0.0; n],
        rate: vec![0.0; n],
        distortion: vec![0.0; n],
        mean: Array2::zeros((n, zd)),
        log_var: Array2::zeros((n, zd)),
        kl_per_unit: vec![0.0; zd],
    };
    let mut rows = vec![0.0; chunk.min(n)];
    let half: F = crate::engine::nn::cast(0.5);
    let mixture = vae.mixture_prior();
    if mixture.is_some() {
        stats.kl_per_unit.clear();
    }
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let b = end - start;
        let xc = x.slice(s![start..end, ..]);
        let lc = labels.map(|l| &l[start..end]);
        vae.encode_into(xc, lc, &mut ws);
        for i in 0..b {
            for u in 0..zd {
                let (m, v) = (ws.mean[(i, u)], ws.log_var[(i, u)]);
                stats.mean[(start + i, u)] = f64_of(m);
                stats.log_var[(start + i, u)] = f64_of(v);
                let (m, v) = (f64_of(m), f64_of(v));
                if mixture.is_some() {
                    stats.rate[start + i] += -0.5 * (LN_2PI + 1.0 + v); // −H(q), unit u
                    continue;
                }
                let prior_row = || (f64_of(ws.prior_mean[(i, u)]), f64_of(ws.prior_log_var[(i, u)]));
                let (kl, ..) = vae.params.prior.unit_kl(m, v, prior_row);
                stats.rate[start + i] += kl;
                stats.kl_per_unit[u] += kl / n as f64;
            }
        }
        let (mean, log_var) =
            (ws.mean.slice(s![..b, ..]).to_owned(), ws.log_var.slice(s![..b, ..]).to_owned());
        for _ in 0..samples {
            let z = ndarray::Zip::from(&mean).and(&log_var).map_collect(|&m, &v| {
                let e: F = StandardNormal.sample(rng);
                m + (half * v).exp() * e
            });
            if let Some(p) = &mixture {
                let (log_p, _) = p.log_density_and_responsibilities(z.mapv(f64_of).view());
                for (rate, lp) in stats.rate[start..end].iter_mut().zip(&log_p) {
                    *rate -= lp / samples as f64;
                }
            }
            vae.decode_into(z.view(), lc, &mut ws);
            nll_rows(vae, &ws, xc, &mut rows[..b]);
            for (dist, row) in stats.distortion[start..end].iter_mut().zip(&rows[..b]) {
                *dist += row / samples as f64;
            }
        }
    }
    for i in 0..n {
        stats.elbo[i] = -(stats.distortion[i] + stats.rate[i]);
    }
    Ok(stats)
}

/// An importance-sampled estimate of log p(x) per data point.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IsEstimate {
    /// K, samples per data point.
    pub k: usize,
    /// log p̂(x_n) per data point.
    pub per_example: Vec<f64>,
    /// Mean of log p̂(x_n) over data points with its standard error, nats per example.
    pub estimate: Estimate,
    /// Effective sample size 1/Σ_k w̃_k² of each data point's normalised weights.
    pub ess: Vec<f64>,
}

/// Importance-sampled log-likelihood with the encoder as proposal (Burda et al. 2016, eq. 9):
///
/// ```text
/// log p̂(x) = log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),     z_k ~ q(z|x) i.i.d.
///          = logmeanexp_k [ log p(x|z_k) + log p(z_k) − log q(z_k|x) ]
/// ```
/// log p(z) is the model's prior: N(0, I), a CVAE's p(z|c), or the learned mixture
/// ([`crate::engine::vae::MixturePrior::log_density_and_responsibilities`]).
/// The log-mean-exp runs over the K samples of ONE data point, in `f64`. The K samples are
/// decoded `chunk_rows` at a time (f32 matrix products); each chunk keeps only its log-sum-exp
/// (max m_c, Σ e^(lw − m_c), Σ e^(2(lw − m_c))), and the chunks of a point combine exactly:
///
/// ```text
/// M = max_c m_c,   S = Σ_c e^(m_c − M) Σ_{k∈c} e^(lw_k − m_c),   log p̂ = M + log S − log K
/// ESS = 1 / Σ_k w̃_k² = S² / Σ_c e^(2(m_c − M)) Σ_{k∈c} e^(2(lw_k − m_c))
/// ```
/// so memory is O(chunk_rows · D) per thread whatever K. With [`crate::base::parallel::threads`] > 1
/// the chunks run on that many threads, each with its own buffers; ε is still drawn from `rng`
/// in one sequence (per data point, K × Z in order) before the chunks are handed out, so the
/// result does not depend on the thread count. E[p̂] = p(x), so E[log p̂] ≤ log p(x), with
/// equality as K → ∞; K = 1 is a single-sample ELBO.
///
/// # Shapes
/// `x`: `N × D`; `labels`: `N` (CVAE).
///
/// # Errors
/// Empty or mis-shaped data, non-finite values, bad labels, `k` or `chunk_rows` of 0;
/// [`Error::TooFewValues`] for fewer than 2 rows (the mean's standard error needs two);
/// [`Error::TooLarge`] for more than [`crate::base::budget::MAX_DRAWS`] draws N × K (refused
/// before any work).
pub fn importance_sampled_log_likelihood<F: NdFloat, R: Rng + ?Sized>(
    vae: &Vae<F>,
    x: ArrayView2<F>,
    labels: Option<&[usize]>,
    k: usize,
    chunk_rows: usize,
    rng: &mut R,
) -> Result<IsEstimate>
where
    StandardNormal: Distribution<F>,
{
    importance_sampled_log_likelihood_with_progress(vae, x, labels, k, chunk_rows, rng, &mut |_, _| {})
}

/// [`importance_sampled_log_likelihood`], calling `progress(done, total)` with the draws of z
/// done so far and their total N × K after every round of chunks (a long evaluation can say how
/// far it is; the estimate does not depend on it).
///
/// # Shapes
/// `x`: `N × D`; `labels`: `N` (CVAE).
///
/// # Errors
/// As [`importance_sampled_log_likelihood`].
pub fn importance_sampled_log_likelihood_with_progress<F: NdFloat, R: Rng + ?Sized>(
    vae: &Vae<F>,
    x: ArrayView2<F>,
    labels: Option<&[usize]>,
    k: usize,
    chunk_rows: usize,
    rng: &mut R,
    progress: &mut dyn FnMut(u128, u128),
) -> Result<IsEstimate>
where
    StandardNormal: Distribution<F>,
{
    check_data(vae, x, labels)?;
    if x.nrows() < 2 {
        return Err(Error::TooFewValues { count: x.nrows() });
    }
    if k == 0 {
        return Err(Error::invalid("k", 0, "must be >= 1"));
    }
    if chunk_rows == 0 {
        return Err(Error::invalid("chunk_rows", 0, "must be >= 1"));
    }
    let total = x.nrows() as u128 * k as u128;
    crate::base::budget::ensure_draws(
        &format!("an importance-sampled log-likelihood of {} points × K = {k}", x.nrows()),
        total,
    )?;
    let mut done: u128 = 0;
    let (n, zd) = (x.nrows(), vae.config.latent_dim);
    let s_per = k.min(chunk_rows);
    let threads = crate::base::parallel::threads();
    let mut slots: Vec<IsChunk<F>> = (0..threads)
        .map(|t| {
            // Slot 0's workspace also runs the encoder, in chunks of up to `chunk_rows` points.
            let cap = if t == 0 { s_per.max(n.min(chunk_rows)) } else { s_per };
            IsChunk {
                ws: vae.workspace(cap),
                eps: Array2::zeros((s_per, zd)),
                z: Array2::zeros((s_per, zd)),
                rows: vec![0.0; s_per],
                labels: vec![0; s_per],
                q_units: vec![(0.0, 0.0, 0.0); zd],
                prior_units: vec![(0.0, 0.0, 0.0); zd],
                point: 0,
                len: 0,
                sums: LseSums::EMPTY,
            }
        })
        .collect();
    // Encoder outputs for every data point, chunk by chunk.
    let mut mean = Array2::<F>::zeros((n, zd));
    let mut log_var = Array2::<F>::zeros((n, zd));
    let mut prior = None;
    {
        let ws = &mut slots[0].ws;
        for start in (0..n).step_by(ws.capacity()) {
            let end = (start + ws.capacity()).min(n);
            vae.encode_into(x.slice(s![start..end, ..]), labels.map(|l| &l[start..end]), ws);
            mean.slice_mut(s![start..end, ..]).assign(&ws.mean.slice(s![..end - start, ..]));
            log_var.slice_mut(s![start..end, ..]).assign(&ws.log_var.slice(s![..end - start, ..]));
            if vae.params.prior.heads().is_some() {
                let (pm, pv) =
                    prior.get_or_insert_with(|| (Array2::<F>::zeros((n, zd)), Array2::<F>::zeros((n, zd))));
                pm.slice_mut(s![start..end, ..]).assign(&ws.prior_mean.slice(s![..end - start, ..]));
                pv.slice_mut(s![start..end, ..]).assign(&ws.prior_log_var.slice(s![..end - start, ..]));
            }
        }
    }
    let mixture = vae.mixture_prior();
    let ctx = IsContext {
        vae,
        x,
        labels,
        mean: &mean,
        log_var: &log_var,
        prior: prior.as_ref(),
        mixture: mixture.as_ref(),
    };
    let mut totals = vec![LseSums::EMPTY; n];
    // Work items (point, first sample) in the order ε is drawn; `threads` of them at a time.
    let mut items = (0..n).flat_map(|i| (0..k).step_by(s_per).map(move |k0| (i, (k - k0).min(s_per))));
    loop {
        let mut filled = 0;
        for slot in slots.iter_mut() {
            let Some((i, len)) = items.next() else { break };
            (slot.point, slot.len) = (i, len);
            for e in slot.eps.slice_mut(s![..len, ..]).iter_mut() {
                *e = StandardNormal.sample(rng);
            }
            filled += 1;
        }
        if filled == 0 {
            break;
        }
        if filled == 1 {
            ctx.run(&mut slots[0]);
        } else {
            use rayon::prelude::*;
            slots[..filled].par_iter_mut().for_each(|slot| ctx.run(slot));
        }
        for slot in &slots[..filled] {
            totals[slot.point].merge(slot.sums);
            done += slot.len as u128;
        }
        progress(done, total);
    }
    let log_k = (k as f64).ln();
    let (mut per_example, mut ess) = (vec![0.0; n], vec![0.0; n]);
    for (i, t) in totals.iter().enumerate() {
        per_example[i] = t.max + t.sum.ln() - log_k;
        ess[i] = t.sum * t.sum / t.sum_sq;
    }
    let estimate = Estimate::from_values(&per_example)?;
    Ok(IsEstimate { k, per_example, estimate, ess })
}

/// The Monte-Carlo standard error of a mean of N importance-sampled log p̂(x_n), from a second,
/// independent estimate of M of the points (`first[j]` and `second[j]` are the two estimates of
/// the same point, M ≥ 2):
///
/// ```text
/// d_j = log p̂¹(x_j) − log p̂²(x_j),   Var(log p̂(x)) ≈ ½ · (1/(M−1)) Σ_j (d_j − d̄)²
/// SE_MC(mean over N) = √(Var(log p̂(x)) / N)
/// ```
/// The two estimates of a point are independent with the same distribution, so Var(d_j) =
/// 2 Var(log p̂(x_j)); averaging over the M points estimates the mean per-point variance, which is
/// what the N points' mean inherits (the points' draws are independent). It does not see the
/// bias E[log p̂] − log p(x) ≤ 0 (about −Var/2, Burda et al. 2016), only the scatter; unlike the
/// delta method from one set of weights, it needs no finite variance of the weights to be seen
/// in K draws.
///
/// # Shapes
/// `first`, `second`: `M`.
///
/// # Errors
/// [`Error::Shape`] for lengths that differ; [`Error::TooFewValues`] for M < 2; `n` of 0.
pub fn monte_carlo_stderr(first: &[f64], second: &[f64], n: usize) -> Result<f64> {
    if first.len() != second.len() {
        return Err(Error::shape("second estimates", first.len(), second.len()));
    }
    if n == 0 {
        return Err(Error::invalid("n", 0, "must be >= 1"));
    }
    let d: Vec<f64> = first.iter().zip(second).map(|(a, b)| a - b).collect();
    let spread = Estimate::from_values(&d)?; // stderr = sd/√M
    let var_d = spread.stderr * spread.stderr * d.len() as f64;
    Ok((0.5 * var_d / n as f64).sqrt())
}

/// A log-sum-exp kept as (max m, Σ e^(v − m), Σ e^(2(v − m))), mergeable in any grouping.
#[derive(Clone, Copy, Debug)]
struct LseSums {
    max: f64,
    sum: f64,
    sum_sq: f64,
}

impl LseSums {
    const EMPTY: LseSums = LseSums { max: f64::NEG_INFINITY, sum: 0.0, sum_sq: 0.0 };

    fn of(values: &[f64]) -> LseSums {
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut sum, mut sum_sq) = (0.0, 0.0);
        for &v in values {
            let e = (v - max).exp();
            sum += e;
            sum_sq += e * e;
        }
        LseSums { max, sum, sum_sq }
    }

    fn merge(&mut self, o: LseSums) {
        if o.max == f64::NEG_INFINITY {
            return;
        }
        let max = self.max.max(o.max);
        let (a, b) = ((self.max - max).exp(), (o.max - max).exp());
        *self =
            LseSums { max, sum: self.sum * a + o.sum * b, sum_sq: self.sum_sq * a * a + o.sum_sq * b * b };
    }
}

/// One chunk of importance samples of one point, with its own buffers.
struct IsChunk<F> {
    ws: VaeWorkspace<F>,
    eps: Array2<F>,
    z: Array2<F>,
    rows: Vec<f64>,
    labels: Vec<usize>,
    /// Per latent unit, (μ, log σ², e^(−log σ²)) of q(z|x) at the chunk's point (`Z`).
    q_units: Vec<(f64, f64, f64)>,
    /// The same of a conditional prior p(z|c), when the model has one (`Z`, else unused).
    prior_units: Vec<(f64, f64, f64)>,
    point: usize,
    len: usize,
    sums: LseSums,
}

/// What every chunk reads.
struct IsContext<'a, F> {
    vae: &'a Vae<F>,
    x: ArrayView2<'a, F>,
    labels: Option<&'a [usize]>,
    mean: &'a Array2<F>,
    log_var: &'a Array2<F>,
    prior: Option<&'a (Array2<F>, Array2<F>)>,
    /// The learned mixture p(z), if the model has one (replaces the N(0, I) term).
    mixture: Option<&'a crate::engine::vae::MixturePrior>,
}

impl<F: NdFloat> IsContext<'_, F> {
    /// log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x) for the chunk's samples, reduced to
    /// their log-sum-exp.
    fn run(&self, c: &mut IsChunk<F>) {
        let (i, sn, zd) = (c.point, c.len, self.mean.ncols());
        let half: F = crate::engine::nn::cast(0.5);
        for u in 0..zd {
            let (m, sd) = (self.mean[(i, u)], (half * self.log_var[(i, u)]).exp());
            for r in 0..sn {
                c.z[(r, u)] = m + sd * c.eps[(r, u)];
            }
        }
        let lc = self.labels.map(|l| {
            c.labels[..sn].fill(l[i]);
            &c.labels[..sn]
        });
        self.vae.decode_into(c.z.slice(s![..sn, ..]), lc, &mut c.ws);
        let xb = self.x.slice(s![i..i + 1, ..]);
        let xb = xb.broadcast((sn, self.x.ncols())).expect("one row broadcasts");
        nll_rows(self.vae, &c.ws, xb, &mut c.rows[..sn]);
        let log_p_mixture = self
            .mixture
            .map(|p| p.log_density_and_responsibilities(c.z.slice(s![..sn, ..]).mapv(f64_of).view()).0);
        // Per latent unit, (μ, log σ², e^(−log σ²)) of q(z|x) and of a conditional prior: the
        // same for every sample of the chunk, so computed once (the same values, so the same bits).
        let unit = |mean: &Array2<F>, log_var: &Array2<F>, u: usize| {
            let (m, v) = (f64_of(mean[(i, u)]), f64_of(log_var[(i, u)]));
            (m, v, (-v).exp())
        };
        for u in 0..zd {
            c.q_units[u] = unit(self.mean, self.log_var, u);
            if let Some((pm, pv)) = self.prior {
                c.prior_units[u] = unit(pm, pv, u);
            }
        }
        for r in 0..sn {
            let (mut log_p, mut log_q) = (0.0, 0.0);
            for u in 0..zd {
                let zu = f64_of(c.z[(r, u)]);
                let (m, v, inv_var) = c.q_units[u];
                log_q += -0.5 * (LN_2PI + v + (zu - m).powi(2) * inv_var);
                log_p += match self.prior {
                    Some(_) => {
                        let (m, v, inv_var) = c.prior_units[u];
                        -0.5 * (LN_2PI + v + (zu - m).powi(2) * inv_var)
                    }
                    None => -0.5 * (LN_2PI + zu * zu),
                };
            }
            if let Some(lp) = &log_p_mixture {
                log_p = lp[r]; // the N(0, I) sum above is replaced by the mixture's log density
            }
            c.rows[r] = -c.rows[r] + log_p - log_q;
        }
        c.sums = LseSums::of(&c.rows[..sn]);
    }
}

/// Units whose posterior mean moves with the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveUnits {
    /// Number of units with variance > threshold.
    pub count: usize,
    /// Var_x(E_q\[z_u\]) per unit (population variance over the data).
    pub variances: Vec<f64>,
    /// The threshold (0.01 in Burda et al.).
    pub threshold: f64,
}

/// Active units (Burda et al. 2016, §5.2): unit u is active if A_u = Var_x(E_{q(z|x)}\[z_u\]) > δ.
///
/// ```text
/// A_u = (1/N) Σ_n (μ_u(x_n) − μ̄_u)²,   μ̄_u = (1/N) Σ_n μ_u(x_n),   δ = 0.01
/// ```
/// (population variance, as the anchor).
///
/// # Shapes
/// `mean`: `N × Z` (the encoder means, e.g. [`ElboStats::mean`]).
pub fn active_units(mean: ArrayView2<f64>, threshold: f64) -> ActiveUnits {
    let variances = mean.var_axis(Axis(0), 0.0).to_vec();
    ActiveUnits { count: variances.iter().filter(|&&v| v > threshold).count(), variances, threshold }
}

/// Mean and covariance of the aggregate posterior q(z) = (1/N) Σ_n q(z|x_n).
#[derive(Clone, Debug, PartialEq)]
pub struct AggregatePosterior {
    /// E_q(z)\[z\], `Z`.
    pub mean: Array1<f64>,
    /// Cov_q(z)\[z\], `Z × Z`.
    pub covariance: Array2<f64>,
}

/// Moments of the mixture q(z) = (1/N) Σ_n N(μ_n, diag σ_n²) (law of total variance):
///
/// ```text
/// E[z]   = (1/N) Σ_n μ_n
/// Cov[z] = (1/N) Σ_n diag σ_n²  +  (1/N) Σ_n (μ_n − E[z])(μ_n − E[z])ᵀ
/// ```
/// For a well-fitted VAE with prior N(0, I) these approach 0 and I (lesson 05).
///
/// # Shapes
/// `mean`, `log_var`: `N × Z`.
///
/// # Errors
/// `Empty` for no rows, `Shape` if the two differ.
pub fn aggregate_posterior(mean: ArrayView2<f64>, log_var: ArrayView2<f64>) -> Result<AggregatePosterior> {
    if mean.nrows() == 0 {
        return Err(Error::empty("encoder means", "row"));
    }
    if mean.dim() != log_var.dim() {
        return Err(Error::shape("log_var", format!("{:?}", mean.dim()), format!("{:?}", log_var.dim())));
    }
    let n = mean.nrows() as f64;
    let mu = mean.mean_axis(Axis(0)).expect("non-empty");
    let centred = &mean - &mu; // N × Z − Z
    let mut covariance = centred.t().dot(&centred) / n;
    let within = log_var.mapv(f64::exp).mean_axis(Axis(0)).expect("non-empty");
    for (u, w) in within.iter().enumerate() {
        covariance[(u, u)] += w;
    }
    Ok(AggregatePosterior { mean: mu, covariance })
}

#[cfg(test)]
pub(crate) mod tests;
