//! The variational families q(z|x) for one data point x.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, concatenate};
use rand::Rng;

use crate::base::error::{Error, Result};
use crate::base::prob::{
    bernoulli_log_likelihood, cholesky, diag_gaussian_log_density, full_gaussian_log_density,
    kl_diag_gaussian_std_normal, kl_full_gaussians, reparameterize,
};
use crate::lessons::toy::{Encoding, LatentModel, Posterior, Prior};

/// A distribution q(z|x) over the latent of one data point.
///
/// Latent rows follow the toy models' convention ([`crate::lessons::toy`]): real vectors for Gaussian
/// families, `[k]` for a mixture component, rows of 0.0/1.0 for binary latents.
#[derive(Debug, Clone, PartialEq)]
pub enum Q {
    /// N(mean, diag exp(log_var)).
    DiagGaussian {
        /// μ (Z).
        mean: Array1<f64>,
        /// log σ² (Z).
        log_var: Array1<f64>,
    },
    /// N(mean, L Lᵀ), L lower-triangular with positive diagonal.
    FullGaussian {
        /// μ (Z).
        mean: Array1<f64>,
        /// L (Z × Z).
        chol: Array2<f64>,
    },
    /// q(z = category i) = `exp(log_probs[i])`; category i is the latent row `encoding.encode(i)`.
    Categorical {
        /// log qᵢ (C), with Σ qᵢ = 1.
        log_probs: Array1<f64>,
        /// How category i is written as a latent row.
        encoding: Encoding,
    },
    /// Independent bits, zⱼ = 1 with probability `probs[j]` (mean field).
    Bernoulli {
        /// qⱼ (k), each in (0, 1).
        probs: Array1<f64>,
    },
}

/// A short description with the parameters to 4 decimals, e.g. `N(μ = [1.1525], σ² = [0.0303])`.
///
/// ```
/// use vaelab::lessons::bounds::Q;
/// use vaelab::ndarray::array;
/// let q = Q::diag_gaussian(array![1.0], array![0.0]).unwrap();
/// assert_eq!(q.to_string(), "N(μ = [1.0000], σ² = [1.0000])");
/// ```
impl std::fmt::Display for Q {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Q::DiagGaussian { mean, log_var } => {
                write!(f, "N(μ = {mean:.4}, σ² = {:.4})", log_var.mapv(f64::exp))
            }
            Q::FullGaussian { mean, chol } => write!(f, "N(μ = {mean:.4}, Σ = {:.4})", chol.dot(&chol.t())),
            Q::Categorical { log_probs, .. } => write!(f, "Categorical(q = {:.4})", log_probs.mapv(f64::exp)),
            Q::Bernoulli { probs } => write!(f, "Bernoulli(q = {probs:.4})"),
        }
    }
}

fn finite(name: &str, v: ArrayView1<f64>) -> Result<()> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(Error::invalid(format!("{name}[{i}]"), v[i], "must be finite")),
        None => Ok(()),
    }
}

/// The largest |log-variance| a diagonal-Gaussian q may have: e^700 ≈ 1e304, so the variance,
/// its inverse and the squares of draws stay (mostly) inside f64.
pub const MAX_ABS_LOG_VAR: f64 = 700.0;

impl Q {
    /// A diagonal Gaussian q; `mean` and `log_var` must have equal length and be finite.
    ///
    /// ```
    /// use vaelab::lessons::bounds::Q;
    /// use vaelab::ndarray::array;
    /// let q = Q::diag_gaussian(array![0.0], array![0.0]).unwrap();
    /// assert!((q.log_density(array![[0.0]].view())[0] + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
    /// assert!(Q::diag_gaussian(array![0.0], array![0.0, 1.0]).is_err());
    /// ```
    pub fn diag_gaussian(mean: Array1<f64>, log_var: Array1<f64>) -> Result<Q> {
        if mean.is_empty() {
            return Err(Error::empty("q mean", "latent dimension"));
        }
        if log_var.len() != mean.len() {
            return Err(Error::shape(
                "q log_var",
                format!("length {} (as q mean)", mean.len()),
                format!("length {}", log_var.len()),
            ));
        }
        finite("q mean", mean.view())?;
        finite("q log_var", log_var.view())?;
        if let Some((i, &v)) = log_var.iter().enumerate().find(|(_, v)| v.abs() > MAX_ABS_LOG_VAR) {
            return Err(Error::invalid(
                format!("q log_var[{i}]"),
                v,
                format!(
                    "must lie in [−{MAX_ABS_LOG_VAR}, {MAX_ABS_LOG_VAR}]: beyond it the variance or its inverse leaves f64"
                ),
            ));
        }
        Ok(Q::DiagGaussian { mean, log_var })
    }

    /// A full-covariance Gaussian q from its covariance (factorised by Cholesky).
    pub fn full_gaussian(mean: Array1<f64>, cov: ArrayView2<f64>) -> Result<Q> {
        finite("q mean", mean.view())?;
        if cov.dim() != (mean.len(), mean.len()) {
            return Err(Error::shape(
                "q covariance",
                format!("{0} × {0}", mean.len()),
                format!("{} × {}", cov.nrows(), cov.ncols()),
            ));
        }
        let chol = cholesky("q covariance", cov)?;
        Ok(Q::FullGaussian { mean, chol })
    }

    /// A categorical q from probabilities (non-negative, summing to 1 within 1e-9).
    pub fn categorical(probs: ArrayView1<f64>, encoding: Encoding) -> Result<Q> {
        finite("q probs", probs)?;
        if let Some(i) = probs.iter().position(|&p| p < 0.0) {
            return Err(Error::invalid(format!("q probs[{i}]"), probs[i], "must be ≥ 0"));
        }
        let s = probs.sum();
        if (s - 1.0).abs() > 1e-9 {
            return Err(Error::invalid("q probs", format!("sum {s}"), "must sum to 1"));
        }
        Ok(Q::Categorical { log_probs: probs.mapv(f64::ln), encoding })
    }

    /// A mean-field Bernoulli q; each probability in (0, 1).
    pub fn bernoulli(probs: Array1<f64>) -> Result<Q> {
        if let Some(i) = probs.iter().position(|&p| !(p > 0.0 && p < 1.0)) {
            return Err(Error::invalid(format!("q probs[{i}]"), probs[i], "must be in (0, 1)"));
        }
        Ok(Q::Bernoulli { probs })
    }

    /// The exact posterior as a q (so that the gap is zero).
    pub fn from_posterior(posterior: &Posterior) -> Result<Q> {
        match posterior {
            Posterior::Gaussian { mean, cov } => Q::full_gaussian(mean.clone(), cov.view()),
            Posterior::Categorical { log_probs, encoding } => {
                Ok(Q::Categorical { log_probs: log_probs.clone(), encoding: *encoding })
            }
        }
    }

    /// q = p(z), the prior itself.
    ///
    /// ```
    /// use vaelab::lessons::bounds::Q;
    /// use vaelab::lessons::toy::Prior;
    /// let q = Q::from_prior(&Prior::StdNormal { dim: 2 });
    /// assert_eq!(q.latent_dim(), 2);
    /// ```
    pub fn from_prior(prior: &Prior) -> Q {
        match prior {
            Prior::StdNormal { dim } => {
                Q::DiagGaussian { mean: Array1::zeros(*dim), log_var: Array1::zeros(*dim) }
            }
            Prior::Categorical { weights } => {
                Q::Categorical { log_probs: weights.mapv(f64::ln), encoding: Encoding::Index }
            }
            Prior::Bernoulli { probs } => Q::Bernoulli { probs: probs.clone() },
        }
    }

    /// The family's name, as the CLI and error messages say it.
    pub fn family(&self) -> &'static str {
        match self {
            Q::DiagGaussian { .. } => "diagonal Gaussian",
            Q::FullGaussian { .. } => "full-covariance Gaussian",
            Q::Categorical { .. } => "categorical",
            Q::Bernoulli { .. } => "mean-field Bernoulli",
        }
    }

    /// Z, the width of a latent row.
    pub fn latent_dim(&self) -> usize {
        match self {
            Q::DiagGaussian { mean, .. } | Q::FullGaussian { mean, .. } => mean.len(),
            Q::Categorical { encoding, .. } => encoding.width(),
            Q::Bernoulli { probs } => probs.len(),
        }
    }

    /// Checks that this q can stand in for the posterior of `model` (same kind of latent, same Z).
    pub fn check_for<M: LatentModel + ?Sized>(&self, model: &M) -> Result<()> {
        let ok_kind = matches!(
            (self, model.prior()),
            (Q::DiagGaussian { .. } | Q::FullGaussian { .. }, Prior::StdNormal { .. })
                | (Q::Categorical { encoding: Encoding::Index, .. }, Prior::Categorical { .. })
                | (
                    Q::Categorical { encoding: Encoding::Bits(_), .. } | Q::Bernoulli { .. },
                    Prior::Bernoulli { .. }
                )
        );
        if !ok_kind {
            return Err(Error::invalid("q", self.family(), "does not match the model's latent"));
        }
        if self.latent_dim() != model.latent_dim() {
            return Err(Error::shape(
                "q",
                format!("latent dimension {} (the model's Z)", model.latent_dim()),
                format!("{}", self.latent_dim()),
            ));
        }
        if let (Q::Categorical { log_probs, .. }, Prior::Categorical { weights }) = (self, model.prior())
            && log_probs.len() != weights.len()
        {
            return Err(Error::shape(
                "q",
                format!("{} categories", weights.len()),
                format!("{}", log_probs.len()),
            ));
        }
        Ok(())
    }

    /// Draws N latents from q: N × Z. Gaussian families are reparameterised; see
    /// [`Q::sample_with_eps`] for the ε.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        match self {
            Q::DiagGaussian { .. } | Q::FullGaussian { .. } => self.sample_with_eps(n, rng).0,
            Q::Categorical { log_probs, encoding } => {
                let cdf: Vec<f64> = log_probs
                    .iter()
                    .scan(0.0, |s, &lp| {
                        *s += lp.exp();
                        Some(*s)
                    })
                    .collect();
                let total = cdf[cdf.len() - 1];
                let mut z = Array2::zeros((n, encoding.width()));
                for row in z.rows_mut() {
                    let u = rng.random::<f64>() * total;
                    encoding.encode(cdf.partition_point(|&c| c <= u).min(cdf.len() - 1), row);
                }
                z
            }
            Q::Bernoulli { probs } => Array2::from_shape_fn((n, probs.len()), |(_, j)| {
                f64::from(u8::from(rng.random::<f64>() < probs[j]))
            }),
        }
    }

    /// Reparameterised draw z = μ + L ε (ε ~ N(0, I)) for the Gaussian families: returns (z, ε).
    ///
    /// ```text
    /// diagonal: z = μ + exp(½ log σ²) ⊙ ε        full: z = μ + L ε
    /// ```
    ///
    /// **Panics** for the discrete families (they have no reparameterisation).
    #[track_caller]
    pub fn sample_with_eps<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Array2<f64>, Array2<f64>) {
        let dim = self.latent_dim();
        let eps = Array2::<f64>::from_shape_simple_fn((n, dim), || rng.sample(rand_distr::StandardNormal));
        (self.reparameterize(eps.view()), eps)
    }

    /// z for given ε (N × Z) in the Gaussian families. **Panics** for discrete families.
    #[track_caller]
    pub fn reparameterize(&self, eps: ArrayView2<f64>) -> Array2<f64> {
        match self {
            Q::DiagGaussian { mean, log_var } => {
                reparameterize(mean.view().insert_axis(Axis(0)), log_var.view().insert_axis(Axis(0)), eps)
            }
            Q::FullGaussian { mean, chol } => eps.dot(&chol.t()) + mean, // N × Z: rows μ + L εₙ
            _ => panic!("Q::reparameterize: the {} family has no reparameterisation", self.family()),
        }
    }

    /// log q(z) for each row of `z` (N).
    pub fn log_density(&self, z: ArrayView2<f64>) -> Array1<f64> {
        match self {
            Q::DiagGaussian { mean, log_var } => diag_gaussian_log_density(
                z,
                mean.view().insert_axis(Axis(0)),
                log_var.view().insert_axis(Axis(0)),
            ),
            Q::FullGaussian { mean, chol } => full_gaussian_log_density(z, mean.view(), chol.view()),
            Q::Categorical { log_probs, encoding } => {
                z.rows().into_iter().map(|r| log_probs[encoding.decode(r)]).collect()
            }
            Q::Bernoulli { probs } => {
                let logits = probs.mapv(|p| p.ln() - (-p).ln_1p());
                bernoulli_log_likelihood(z, logits.broadcast(z.dim()).expect("z is N × k"))
            }
        }
    }

    /// KL(q ‖ p(z)) in closed form (or exact enumeration), the second term of the ELBO's second
    /// form.
    ///
    /// ```text
    /// Gaussian vs N(0, I): ½ [tr Σ_q + ‖μ_q‖² − Z − ln det Σ_q]
    /// categorical:         Σᵢ qᵢ (ln qᵢ − ln pᵢ)
    /// Bernoulli:           Σⱼ [qⱼ ln(qⱼ/ρⱼ) + (1 − qⱼ) ln((1 − qⱼ)/(1 − ρⱼ))]
    /// ```
    ///
    /// # Errors
    /// If the q and the prior are not of matching kinds and sizes.
    ///
    /// ```
    /// use vaelab::lessons::bounds::Q;
    /// use vaelab::ndarray::array;
    /// use vaelab::lessons::toy::Prior;
    /// let q = Q::diag_gaussian(array![1.0], array![0.0]).unwrap();
    /// assert!((q.kl_to_prior(&Prior::StdNormal { dim: 1 }).unwrap() - 0.5).abs() < 1e-15);
    /// ```
    pub fn kl_to_prior(&self, prior: &Prior) -> Result<f64> {
        let mismatch =
            || Error::invalid("q", self.family(), format!("has no closed-form KL to the prior {prior:?}"));
        match (self, prior) {
            (Q::DiagGaussian { mean, log_var }, Prior::StdNormal { dim }) if mean.len() == *dim => {
                Ok(kl_diag_gaussian_std_normal(
                    mean.view().insert_axis(Axis(0)),
                    log_var.view().insert_axis(Axis(0)),
                )[0])
            }
            (Q::FullGaussian { mean, chol }, Prior::StdNormal { dim }) if mean.len() == *dim => {
                Ok(kl_full_gaussians(
                    mean.view(),
                    chol.view(),
                    Array1::zeros(*dim).view(),
                    Array2::eye(*dim).view(),
                ))
            }
            (Q::Categorical { log_probs, encoding: Encoding::Index }, Prior::Categorical { weights })
                if log_probs.len() == weights.len() =>
            {
                Ok(categorical_kl(log_probs.view(), weights.mapv(f64::ln).view()))
            }
            (Q::Categorical { log_probs, encoding: Encoding::Bits(k) }, Prior::Bernoulli { probs })
                if *k == probs.len() && log_probs.len() == 1 << k =>
            {
                Ok(categorical_kl(log_probs.view(), bernoulli_log_probs_all_states(probs.view()).view()))
            }
            (Q::Bernoulli { probs: q }, Prior::Bernoulli { probs: p }) if q.len() == p.len() => Ok(q
                .iter()
                .zip(p)
                .map(|(&q, &p)| q * (q / p).ln() + (1.0 - q) * ((1.0 - q) / (1.0 - p)).ln())
                .sum()),
            _ => Err(mismatch()),
        }
    }

    /// KL(q ‖ p(z|x)) for an exact posterior, in closed form (Gaussians) or by enumeration.
    ///
    /// ```text
    /// Gaussian:    KL(N(μ_q, Σ_q) ‖ N(μ, Σ))   (see [`kl_full_gaussians`])
    /// enumerable:  Σ_z q(z) [ln q(z) − ln p(z|x)]
    /// ```
    pub fn kl_to_posterior(&self, posterior: &Posterior) -> Result<f64> {
        let mismatch = || Error::invalid("q", self.family(), "does not match the posterior's latent");
        match (self, posterior) {
            (Q::DiagGaussian { mean, log_var }, Posterior::Gaussian { mean: m, cov })
                if mean.len() == m.len() =>
            {
                let chol_q = Array2::from_diag(&log_var.mapv(|v| (0.5 * v).exp()));
                Ok(kl_full_gaussians(
                    mean.view(),
                    chol_q.view(),
                    m.view(),
                    cholesky("posterior covariance", cov.view())?.view(),
                ))
            }
            (Q::FullGaussian { mean, chol }, Posterior::Gaussian { mean: m, cov })
                if mean.len() == m.len() =>
            {
                Ok(kl_full_gaussians(
                    mean.view(),
                    chol.view(),
                    m.view(),
                    cholesky("posterior covariance", cov.view())?.view(),
                ))
            }
            (
                Q::Categorical { log_probs, encoding },
                Posterior::Categorical { log_probs: lp, encoding: e },
            ) if encoding == e && log_probs.len() == lp.len() => {
                Ok(categorical_kl(log_probs.view(), lp.view()))
            }
            (
                Q::Bernoulli { probs },
                Posterior::Categorical { log_probs: lp, encoding: Encoding::Bits(k) },
            ) if probs.len() == *k && lp.len() == 1 << k => {
                Ok(categorical_kl(bernoulli_log_probs_all_states(probs.view()).view(), lp.view()))
            }
            _ => Err(mismatch()),
        }
    }
}

/// Σᵢ qᵢ (ln qᵢ − ln pᵢ), with 0 · ln 0 = 0.
fn categorical_kl(log_q: ArrayView1<f64>, log_p: ArrayView1<f64>) -> f64 {
    log_q.iter().zip(log_p).filter(|(lq, _)| lq.is_finite()).map(|(&lq, &lp)| lq.exp() * (lq - lp)).sum()
}

/// ln Πⱼ ρⱼ^{zⱼ} (1 − ρⱼ)^{1−zⱼ} for all 2ᵏ states z, indexed as [`Encoding::Bits`] (bit j = (i >> j) & 1).
///
/// Built by doubling: after bit j the first half has zⱼ = 0, the second zⱼ = 1.
pub(crate) fn bernoulli_log_probs_all_states(probs: ArrayView1<f64>) -> Array1<f64> {
    let mut lp = Array1::zeros(1);
    for &p in probs {
        let (off, on) = (&lp + (-p).ln_1p(), &lp + p.ln());
        lp = concatenate(Axis(0), &[off.view(), on.view()]).expect("1-D");
    }
    lp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::toy::BinaryLatent;
    use ndarray::array;

    #[test]
    fn all_state_log_probs_match_log_density_of_each_state() {
        let probs = array![0.2, 0.7, 0.55];
        let all = bernoulli_log_probs_all_states(probs.view());
        let states = Encoding::Bits(3).all_states(8);
        let q = Q::bernoulli(probs).unwrap();
        let direct = q.log_density(states.view());
        assert!((&all - &direct).iter().all(|d| d.abs() < 1e-15), "{all} vs {direct}");
        assert!((all.mapv(f64::exp).sum() - 1.0).abs() < 1e-15);
    }

    /// The Bernoulli KL to the prior, closed form per bit, equals the enumerated Σ_z q ln(q/p).
    #[test]
    fn bernoulli_kl_closed_form_matches_enumeration() {
        let m = BinaryLatent::new(array![0.3, 0.6, 0.1], Array2::zeros((1, 3)), array![0.0]).unwrap();
        let q = Q::bernoulli(array![0.5, 0.2, 0.35]).unwrap();
        let closed = q.kl_to_prior(&m.prior()).unwrap();
        let states = Encoding::Bits(3).all_states(8);
        let lq = q.log_density(states.view());
        let enumerated = (lq.mapv(f64::exp) * (&lq - &m.log_prior(states.view()))).sum();
        assert!((closed - enumerated).abs() < 1e-14, "{closed} vs {enumerated}");
    }

    #[test]
    fn mismatched_q_is_an_error_naming_q() {
        let m = BinaryLatent::new(array![0.3, 0.6], Array2::zeros((1, 2)), array![0.0]).unwrap();
        let e = Q::diag_gaussian(array![0.0, 0.0], array![0.0, 0.0]).unwrap().check_for(&m).unwrap_err();
        assert!(e.to_string().contains("q = diagonal Gaussian"), "{e}");
        let e = Q::bernoulli(array![0.5]).unwrap().check_for(&m).unwrap_err();
        assert!(e.to_string().contains("latent dimension 2"), "{e}");
    }
}
