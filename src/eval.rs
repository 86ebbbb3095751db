//! Evaluation: ELBO / rate / distortion, importance-sampled log-likelihood, active units,
//! per-unit KL, the aggregate posterior's moments and the amortisation gap. Accumulation in `f64`
//! throughout.

use ndarray::{Array1, Array2, ArrayView2, Axis, NdFloat, s};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nn::{LOG_2PI, bernoulli_nll_grad_into, gaussian_nll_grad_into, kl_diag_elem, kl_std_normal_elem};
use crate::vae::{Likelihood, Vae, VaeWorkspace};

/// Mean over data points and the standard error of that mean, sd/√n (sample sd, n − 1).
///
/// With fewer than two values the standard error is undefined and returned as NaN (kept from the
/// first version; see the note on issue 4 — it should become an error).
pub fn mean_se(values: &[f64]) -> (f64, f64) {
    if values.len() < 2 {
        return (values.iter().sum::<f64>() / values.len() as f64, f64::NAN);
    }
    let est = crate::bounds::Estimate::from_values(ndarray::ArrayView1::from(values));
    (est.mean, est.stderr)
}

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

/// Data-set means of the ELBO terms, in nats per example.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ElboSummary {
    /// Mean ELBO.
    pub elbo: f64,
    /// Its standard error across data points.
    pub elbo_se: f64,
    /// Mean rate (KL).
    pub rate: f64,
    /// Mean distortion.
    pub distortion: f64,
    /// Data points.
    pub n: usize,
}

impl ElboStats {
    /// Means over the data set.
    pub fn summary(&self) -> ElboSummary {
        let (elbo, elbo_se) = mean_se(&self.elbo);
        let n = self.elbo.len() as f64;
        ElboSummary {
            elbo,
            elbo_se,
            rate: self.rate.iter().sum::<f64>() / n,
            distortion: self.distortion.iter().sum::<f64>() / n,
            n: self.elbo.len(),
        }
    }
}

fn check_data<F: NdFloat>(vae: &Vae<F>, x: ArrayView2<F>, labels: Option<&[usize]>) -> Result<()> {
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
fn nll_rows<F: NdFloat>(vae: &Vae<F>, ws: &VaeWorkspace<F>, x: ArrayView2<F>, rows: &mut [f64]) {
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
/// [`crate::vae::learned_prior`], unbiased, so the ELBO stays unbiased).
///
/// # Shapes
/// `x`: `N × D`; `labels`: `N` (CVAE).
///
/// # Errors
/// Empty or mis-shaped data, non-finite values, bad labels, `samples` or `chunk` of 0.
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
    let half: F = crate::nn::cast(0.5);
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
        let learned = !ws.prior_mean.is_empty();
        for i in 0..b {
            for u in 0..zd {
                let (m, v) = (ws.mean[(i, u)], ws.log_var[(i, u)]);
                stats.mean[(start + i, u)] = f64_of(m);
                stats.log_var[(start + i, u)] = f64_of(v);
                let (m, v) = (f64_of(m), f64_of(v));
                if mixture.is_some() {
                    stats.rate[start + i] += -0.5 * (LOG_2PI + 1.0 + v); // −H(q), unit u
                    continue;
                }
                let kl = if learned {
                    kl_diag_elem(m, v, f64_of(ws.prior_mean[(i, u)]), f64_of(ws.prior_log_var[(i, u)])).0
                } else {
                    kl_std_normal_elem(m, v).0
                };
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
    /// Mean over data points, nats per example.
    pub mean: f64,
    /// Its standard error across data points.
    pub se: f64,
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
/// ([`crate::prior::MixturePrior::log_density_and_responsibilities`]).
/// The log-mean-exp runs over the K samples of ONE data point ([`crate::prob::log_mean_exp_1d`]),
/// in `f64`. The K samples are decoded `chunk_rows` at a time, so memory is O(chunk_rows · D)
/// whatever K. E[p̂] = p(x), so E[log p̂] ≤ log p(x), with equality as K → ∞; K = 1 is a
/// single-sample ELBO. Per data point, ε is drawn K × Z in order.
///
/// # Shapes
/// `x`: `N × D`; `labels`: `N` (CVAE).
///
/// # Errors
/// Empty or mis-shaped data, non-finite values, bad labels, `k` or `chunk_rows` of 0.
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
    check_data(vae, x, labels)?;
    if k == 0 {
        return Err(Error::invalid("k", 0, "must be >= 1"));
    }
    if chunk_rows == 0 {
        return Err(Error::invalid("chunk_rows", 0, "must be >= 1"));
    }
    let (n, zd) = (x.nrows(), vae.config.latent_dim);
    let s_per = k.min(chunk_rows);
    let mut ws = vae.workspace(s_per.max(1).max(n.min(chunk_rows)));
    // Encoder outputs for every data point, chunk by chunk.
    let mut mean = Array2::<F>::zeros((n, zd));
    let mut log_var = Array2::<F>::zeros((n, zd));
    let mut prior = None;
    for start in (0..n).step_by(ws.capacity()) {
        let end = (start + ws.capacity()).min(n);
        vae.encode_into(x.slice(s![start..end, ..]), labels.map(|l| &l[start..end]), &mut ws);
        mean.slice_mut(s![start..end, ..]).assign(&ws.mean.slice(s![..end - start, ..]));
        log_var.slice_mut(s![start..end, ..]).assign(&ws.log_var.slice(s![..end - start, ..]));
        if !ws.prior_mean.is_empty() {
            let (pm, pv) =
                prior.get_or_insert_with(|| (Array2::<F>::zeros((n, zd)), Array2::<F>::zeros((n, zd))));
            pm.slice_mut(s![start..end, ..]).assign(&ws.prior_mean.slice(s![..end - start, ..]));
            pv.slice_mut(s![start..end, ..]).assign(&ws.prior_log_var.slice(s![..end - start, ..]));
        }
    }
    let half: F = crate::nn::cast(0.5);
    let mut z = Array2::<F>::zeros((s_per, zd));
    let mut lw = Array1::<f64>::zeros(k);
    let mut rows = vec![0.0; s_per];
    let mut label_rows = vec![0usize; s_per];
    let mut est = IsEstimate { k, per_example: vec![0.0; n], mean: 0.0, se: 0.0, ess: vec![0.0; n] };
    let mixture = vae.mixture_prior();
    for i in 0..n {
        let x_i = x.slice(s![i..i + 1, ..]);
        for k0 in (0..k).step_by(s_per) {
            let sn = s_per.min(k - k0);
            for r in 0..sn {
                for u in 0..zd {
                    let e: F = StandardNormal.sample(rng);
                    z[(r, u)] = mean[(i, u)] + (half * log_var[(i, u)]).exp() * e;
                }
            }
            let lc = labels.map(|l| {
                label_rows[..sn].fill(l[i]);
                &label_rows[..sn]
            });
            vae.decode_into(z.slice(s![..sn, ..]), lc, &mut ws);
            let xb = x_i.broadcast((sn, x.ncols())).expect("one row broadcasts");
            nll_rows(vae, &ws, xb, &mut rows[..sn]);
            let log_p_mixture = mixture
                .as_ref()
                .map(|p| p.log_density_and_responsibilities(z.slice(s![..sn, ..]).mapv(f64_of).view()).0);
            for r in 0..sn {
                let (mut log_p, mut log_q) = (0.0, 0.0);
                for u in 0..zd {
                    let zu = f64_of(z[(r, u)]);
                    let (m, v) = (f64_of(mean[(i, u)]), f64_of(log_var[(i, u)]));
                    log_q += -0.5 * (LOG_2PI + v + (zu - m).powi(2) * (-v).exp());
                    log_p += match &prior {
                        Some((pm, pv)) => {
                            let (m, v) = (f64_of(pm[(i, u)]), f64_of(pv[(i, u)]));
                            -0.5 * (LOG_2PI + v + (zu - m).powi(2) * (-v).exp())
                        }
                        None => -0.5 * (LOG_2PI + zu * zu),
                    };
                }
                if let Some(lp) = &log_p_mixture {
                    log_p = lp[r]; // the N(0, I) sum above is replaced by the mixture's log density
                }
                lw[k0 + r] = -rows[r] + log_p - log_q;
            }
        }
        let l = crate::prob::log_mean_exp_1d(lw.view());
        est.per_example[i] = l;
        // Normalised weights w̃_k = exp(lw_k − log Σ exp lw) = exp(lw_k − l − log K).
        let log_k = (k as f64).ln();
        est.ess[i] = 1.0 / lw.iter().map(|&w| (2.0 * (w - l - log_k)).exp()).sum::<f64>();
    }
    (est.mean, est.se) = mean_se(&est.per_example);
    Ok(est)
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

mod amortisation;
pub use amortisation::{AmortisationGap, AmortisationPoint, DecoderModel, amortisation_gap};

#[cfg(test)]
mod tests;
