//! Toy 1: the linear-Gaussian model (probabilistic PCA), where everything has a closed form.

use nalgebra::{Cholesky, DVector, Dyn};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;

use super::{
    ContinuousLatent, LatentModel, Posterior, Prior, check_x_len_finite, ensure_finite_matrix,
    ensure_finite_vector, ensure_len,
};
use crate::base::error::{Error, Result, ensure_positive};
use crate::base::prob::{cholesky, diag_gaussian_log_density, from_dmatrix, to_dmatrix};

/// z ~ N(0, I_Z), x | z ~ N(W z + b, σ² I_D) (Tipping & Bishop 1999).
///
/// ```text
/// p(z)    = N(z; 0, I_Z)
/// p(x|z)  = N(x; W z + b, σ² I_D)
/// p(x)    = N(x; b, W Wᵀ + σ² I_D)                                  (Tipping & Bishop 1999, eq. 6)
/// p(z|x)  = N(z; Σ Wᵀ (x − b) / σ², Σ),   Σ = (I_Z + Wᵀ W / σ²)⁻¹   (ibid., eq. 7, M⁻¹ written out)
///
///   W  D × Z loadings     b  D offset     σ  noise standard deviation
/// ```
///
/// log p(x) is computed in log space on the Z × Z matrix Λ = I_Z + WᵀW/σ² = L Lᵀ, never on the
/// D × D covariance (whose determinant under- or overflows for large D):
///
/// ```text
/// ln det(W Wᵀ + σ² I_D) = 2 D ln σ + 2 Σᵢ ln Lᵢᵢ                   (matrix-determinant lemma)
/// rᵀ (W Wᵀ + σ² I_D)⁻¹ r = ‖r − W m‖² / σ² + ‖m‖²,  r = x − b,  m = Λ⁻¹ Wᵀ r / σ²
/// ```
/// (the second line is the minimum over z of the joint's quadratic form, reached at the posterior
/// mean m: a sum of two non-negative terms, so no cancellation).
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::lessons::toy::{LatentModel, LinearGaussian};
/// // D = Z = 1, W = 1, σ = 1: p(x) = N(x; 0, 2), so log p(0) = −½ ln(4π).
/// let m = LinearGaussian::new(array![[1.0]], array![0.0], 1.0).unwrap();
/// let lp = m.log_marginal(array![0.0].view()).unwrap();
/// assert!((lp + 0.5 * (4.0 * std::f64::consts::PI).ln()).abs() < 1e-14);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinearGaussian {
    pub(crate) w: Array2<f64>,
    pub(crate) b: Array1<f64>,
    pub(crate) sigma: f64,
}

impl LinearGaussian {
    /// Validates and builds the model.
    ///
    /// # Errors
    /// Empty `w`, `b` of a length other than D = rows of `w`, non-finite entries, σ ≤ 0: an error
    /// naming the field and the value. Also σ whose square is not a normal f64 (σ outside about
    /// [1.5e-154, 1.3e154]), and σ so small against W that Λ = I + WᵀW/σ² overflows or is not
    /// numerically positive definite: then neither log p(x) nor p(z|x) can be computed.
    ///
    /// ```
    /// use vaelab::ndarray::array;
    /// use vaelab::lessons::toy::LinearGaussian;
    /// let e = LinearGaussian::new(array![[1.0]], array![0.0], 1e-200).unwrap_err();
    /// assert!(e.to_string().starts_with("invalid sigma = 1e-200: σ² = 0"), "{e}");
    /// ```
    pub fn new(w: Array2<f64>, b: Array1<f64>, sigma: f64) -> Result<Self> {
        if w.nrows() == 0 || w.ncols() == 0 {
            return Err(Error::shape(
                "w",
                "D ≥ 1 rows of Z ≥ 1 columns",
                format!("{} × {}", w.nrows(), w.ncols()),
            ));
        }
        ensure_finite_matrix("w", &w)?;
        ensure_len("b", &b, w.nrows(), "D = rows of w")?;
        ensure_finite_vector("b", &b)?;
        ensure_positive("sigma", sigma)?;
        let s2 = sigma * sigma;
        if !(s2.is_finite() && s2 >= f64::MIN_POSITIVE) {
            return Err(Error::invalid(
                "sigma",
                format!("{sigma:e}"),
                format!("σ² = {s2:e} is not a normal f64: σ must lie in [1.5e-154, 1.3e154]"),
            ));
        }
        let model = LinearGaussian { w, b, sigma };
        model.precision_cholesky()?;
        Ok(model)
    }

    /// Λ = I + WᵀW/σ² = L Lᵀ. Fails (naming σ and the largest |W|) when Λ overflows or rounding
    /// makes it not positive definite; [`LinearGaussian::new`] refuses such models, so afterwards
    /// this always succeeds.
    fn precision_cholesky(&self) -> Result<Cholesky<f64, Dyn>> {
        let precision = self.posterior_precision();
        let w_max = self.w.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        let refuse = |why: &str| {
            Err(Error::invalid(
                "sigma",
                format!("{:e}", self.sigma),
                format!("too small for loadings up to |w| = {w_max:e}: I + WᵀW/σ² {why}"),
            ))
        };
        if precision.iter().any(|v| !v.is_finite()) {
            return refuse("overflows");
        }
        match to_dmatrix(precision.view()).cholesky() {
            Some(ch) if ch.l_dirty().diagonal().iter().all(|d| d.is_finite() && *d > 0.0) => Ok(ch),
            _ => refuse("is not numerically positive definite"),
        }
    }

    /// W (D × Z).
    pub fn w(&self) -> &Array2<f64> {
        &self.w
    }
    /// b (D).
    pub fn b(&self) -> &Array1<f64> {
        &self.b
    }
    /// σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// The posterior precision Λ = I_Z + Wᵀ W / σ² (Z × Z).
    pub fn posterior_precision(&self) -> Array2<f64> {
        Array2::eye(self.w.ncols()) + self.w.t().dot(&self.w) / (self.sigma * self.sigma)
    }

    /// The ELBO of a Gaussian q = N(m, S) in closed form: the exact value the Monte-Carlo
    /// estimators estimate.
    ///
    /// ```text
    /// ELBO(q) = E_q[log p(x|z)] + E_q[log p(z)] + H[q]
    ///   E_q[log p(x|z)] = −½ D ln(2πσ²) − (‖x − b − W m‖² + tr(W S Wᵀ)) / (2σ²)
    ///   E_q[log p(z)]   = −½ Z ln 2π − ½ (‖m‖² + tr S)
    ///   H[q]            = ½ Z (1 + ln 2π) + ½ ln det S
    /// ```
    /// (each term is the expectation of a quadratic form under a Gaussian: E\[zᵀAz\] = mᵀAm + tr(AS)).
    ///
    /// # Shapes
    /// `x`: D; `mean`: Z; `cov`: Z × Z.
    ///
    /// # Errors
    /// If `x` or `mean`/`cov` have the wrong shape, or `cov` is not positive definite.
    ///
    /// ```
    /// use vaelab::ndarray::array;
    /// use vaelab::lessons::toy::{LatentModel, LinearGaussian};
    /// let m = LinearGaussian::new(array![[1.0]], array![0.0], 1.0).unwrap();
    /// let x = array![0.7];
    /// // With q the exact posterior the ELBO equals log p(x): posterior N(x/2, 1/2) here.
    /// let elbo = m.elbo_gaussian(x.view(), array![0.35].view(), array![[0.5]].view()).unwrap();
    /// assert!((elbo - m.log_marginal(x.view()).unwrap()).abs() < 1e-14);
    /// ```
    pub fn elbo_gaussian(
        &self,
        x: ArrayView1<f64>,
        mean: ArrayView1<f64>,
        cov: ArrayView2<f64>,
    ) -> Result<f64> {
        self.check_x(x)?;
        let (d, z) = self.w.dim();
        if mean.len() != z {
            return Err(Error::shape("q mean", format!("length {z} (Z)"), format!("length {}", mean.len())));
        }
        let chol = cholesky("q covariance", cov)?;
        let s2 = self.sigma * self.sigma;
        let resid = &x - &self.b - self.w.dot(&mean); // D
        let tr_wswt = (self.w.dot(&cov) * &self.w).sum(); // tr(W S Wᵀ) = Σ (W S) ⊙ W
        let ln2pi = crate::base::prob::LN_2PI;
        let e_log_lik = -0.5 * d as f64 * (ln2pi + s2.ln()) - (resid.dot(&resid) + tr_wswt) / (2.0 * s2);
        let e_log_prior = -0.5 * z as f64 * ln2pi - 0.5 * (mean.dot(&mean) + cov.diag().sum());
        let entropy = 0.5 * z as f64 * (1.0 + ln2pi) + chol.diag().iter().map(|v| v.ln()).sum::<f64>();
        Ok(e_log_lik + e_log_prior + entropy)
    }
}

impl LatentModel for LinearGaussian {
    fn latent_dim(&self) -> usize {
        self.w.ncols()
    }

    fn data_dim(&self) -> usize {
        self.w.nrows()
    }

    fn prior(&self) -> Prior {
        Prior::StdNormal { dim: self.latent_dim() }
    }

    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Array2<f64>, Array2<f64>) {
        let (d, zd) = self.w.dim();
        let z = Array2::<f64>::from_shape_simple_fn((n, zd), || rng.sample(StandardNormal));
        let noise = Array2::<f64>::from_shape_simple_fn((n, d), || rng.sample(StandardNormal));
        let x = z.dot(&self.w.t()) + &self.b + noise * self.sigma; // N × D
        (z, x)
    }

    fn log_prior(&self, z: ArrayView2<f64>) -> Array1<f64> {
        let zeros = Array2::zeros((1, self.latent_dim()));
        diag_gaussian_log_density(z, zeros.view(), zeros.view())
    }

    /// log N(x; W zₙ + b, σ² I) for each row zₙ.
    fn log_likelihood(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64> {
        // log N(x; μₙ, σ² I) = −½ [D log(2πσ²) + ‖x − μₙ‖² / σ²],  μₙ = W zₙ + b, one row at a
        // time (no N × D temporaries: this is the inner loop of every toy estimator).
        let (d, zd) = (self.data_dim(), self.latent_dim());
        let constant = d as f64 * (crate::base::prob::LN_2PI + 2.0 * self.sigma.ln());
        let inv_var = 1.0 / (self.sigma * self.sigma);
        let (w, b) = (&self.w, &self.b);
        Array1::from_iter(z.rows().into_iter().map(|zr| {
            let mut sq = 0.0;
            for j in 0..d {
                let mut mean = b[j];
                for k in 0..zd {
                    mean += w[(j, k)] * zr[k];
                }
                let r = x[j] - mean;
                sq += r * r;
            }
            -0.5 * (constant + sq * inv_var)
        }))
    }

    /// log N(x; b, WWᵀ + σ²I) in log space through the Z × Z factor of Λ (see the type's docs).
    ///
    /// # Errors
    /// `x` of the wrong length or not finite; `x` so far from the model (in units of its
    /// covariance) that log p(x) is below −f64::MAX.
    fn log_marginal(&self, x: ArrayView1<f64>) -> Result<f64> {
        self.check_x(x)?;
        let (d, z) = self.w.dim();
        let s2 = self.sigma * self.sigma;
        let ch = self.precision_cholesky()?;
        let r = &x - &self.b; // D
        let wtr = self.w.t().dot(&r) / s2; // Z: Wᵀ r / σ²
        let m = ch.solve(&DVector::from_iterator(z, wtr.iter().copied())); // Λ⁻¹ Wᵀ r / σ²
        let m = Array1::from_iter(m.iter().copied());
        let resid = &r - &self.w.dot(&m); // r − W m
        let quad = resid.dot(&resid) / s2 + m.dot(&m);
        let log_det_l: f64 = ch.l_dirty().diagonal().iter().map(|v| v.ln()).sum();
        let log_det = 2.0 * d as f64 * self.sigma.ln() + 2.0 * log_det_l;
        let lp = -0.5 * (d as f64 * crate::base::prob::LN_2PI + log_det + quad);
        if lp.is_finite() {
            Ok(lp)
        } else {
            let dist = r.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
            Err(Error::invalid(
                "x",
                format!("a point with max |x − b| = {dist:e}"),
                format!("(x − b)ᵀ(WWᵀ + σ²I)⁻¹(x − b) = {quad:e}: log p(x) is beyond the f64 range"),
            ))
        }
    }

    fn posterior(&self, x: ArrayView1<f64>) -> Result<Option<Posterior>> {
        self.check_x(x)?;
        let cov = self.precision_cholesky()?.inverse();
        let cov = from_dmatrix(&cov);
        let cov = (&cov + &cov.t()) * 0.5; // exact symmetry after inversion
        let mean = cov.dot(&self.w.t().dot(&(&x - &self.b))) / (self.sigma * self.sigma);
        if let Some(v) = mean.iter().find(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "x",
                format!("a point with max |x| = {:e}", x.iter().fold(0.0_f64, |a, v| a.max(v.abs()))),
                format!("the posterior mean Σ Wᵀ(x − b)/σ² overflows ({v}): x is too far from the model"),
            ));
        }
        Ok(Some(Posterior::Gaussian { mean, cov }))
    }

    fn check_x(&self, x: ArrayView1<f64>) -> Result<()> {
        check_x_len_finite(x, self.data_dim())
    }
}

impl ContinuousLatent for LinearGaussian {
    /// ```text
    /// ∂/∂z [log p(z) + log p(x|z)] = −z + Wᵀ (x − W z − b) / σ²
    /// ```
    fn d_log_joint_dz(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array2<f64> {
        let resid = -(z.dot(&self.w.t()) + &self.b) + x; // N × D: x − Wz − b
        resid.dot(&self.w) / (self.sigma * self.sigma) - z
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::prob::{full_gaussian_log_density, log_mean_exp_1d};
    use ndarray::array;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    pub(crate) fn model() -> LinearGaussian {
        LinearGaussian::new(array![[1.0, 0.5], [-0.3, 1.2], [0.8, -0.7]], array![0.2, -0.1, 0.5], 0.6)
            .unwrap()
    }

    /// Bayes' rule, checked pointwise: log p(z|x) = log p(x, z) − log p(x) at several z.
    #[test]
    fn posterior_times_marginal_is_the_joint() {
        let m = model();
        let x = array![0.9, -1.1, 0.4];
        let Some(Posterior::Gaussian { mean, cov }) = m.posterior(x.view()).unwrap() else {
            panic!("Gaussian")
        };
        let chol = cholesky("cov", cov.view()).unwrap();
        let z = array![[0.0, 0.0], [1.0, -0.5], [-2.0, 0.3]];
        let lhs = full_gaussian_log_density(z.view(), mean.view(), chol.view());
        let rhs = m.log_joint(x.view(), z.view()) - m.log_marginal(x.view()).unwrap();
        for i in 0..3 {
            assert!((lhs[i] - rhs[i]).abs() < 1e-12, "z row {i}: {} vs {}", lhs[i], rhs[i]);
        }
    }

    /// log p(x) = log E_{p(z)} p(x|z): Monte Carlo over N = 200 000 prior draws. The SE of
    /// log-mean-exp is estimated by the delta method, SE(ŵ)/ŵ; 4 SE allowed.
    #[test]
    fn marginal_matches_monte_carlo_over_the_prior() {
        let m = model();
        let x = array![0.9, -1.1, 0.4];
        let mut rng = StdRng::seed_from_u64(7);
        let (z, _) = m.sample(200_000, &mut rng);
        let log_lik = m.log_likelihood(x.view(), z.view());
        let mc = log_mean_exp_1d(log_lik.view());
        let w = log_lik.mapv(|l| (l - mc).exp()); // w / mean(w)
        let se = w.std(1.0) / (w.len() as f64).sqrt();
        let exact = m.log_marginal(x.view()).unwrap();
        assert!((mc - exact).abs() < 4.0 * se, "exact {exact}, MC {mc} ± {se}");
    }

    /// Central differences (h = ε^(1/3)) of log p(x, z) against the analytic ∂/∂z; rel. error < 1e-7.
    #[test]
    fn d_log_joint_dz_matches_finite_differences() {
        let m = model();
        let x = array![0.9, -1.1, 0.4];
        let z = array![[0.3, -0.8], [1.5, 0.2]];
        let g = m.d_log_joint_dz(x.view(), z.view());
        let h = f64::EPSILON.cbrt();
        for idx in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[idx] += h;
            zm[idx] -= h;
            let fd = (m.log_joint(x.view(), zp.view()) - m.log_joint(x.view(), zm.view()))[idx.0] / (2.0 * h);
            // ∂ log p(x,z)/∂z = −z + Wᵀ(x − Wz − b)/σ²
            assert!((g[idx] - fd).abs() < 1e-7 * fd.abs().max(1.0), "{idx:?}: {} vs {fd}", g[idx]);
        }
    }

    /// The closed-form ELBO of a Gaussian q against E_q[log p(x,z) − log q(z)] by Monte Carlo
    /// (N = 100 000, 4 SE).
    #[test]
    fn closed_form_elbo_matches_monte_carlo() {
        let m = model();
        let x = array![0.9, -1.1, 0.4];
        let (mean, cov) = (array![0.2, -0.4], array![[0.3, 0.05], [0.05, 0.2]]);
        let chol = cholesky("cov", cov.view()).unwrap();
        let mut rng = StdRng::seed_from_u64(8);
        let eps = Array2::<f64>::from_shape_simple_fn((100_000, 2), || rng.sample(StandardNormal));
        let z = eps.dot(&chol.t()) + &mean;
        let log_w =
            m.log_joint(x.view(), z.view()) - full_gaussian_log_density(z.view(), mean.view(), chol.view());
        let (mc, se) = (log_w.mean().unwrap(), log_w.std(1.0) / (log_w.len() as f64).sqrt());
        let closed = m.elbo_gaussian(x.view(), mean.view(), cov.view()).unwrap();
        assert!((mc - closed).abs() < 4.0 * se, "closed {closed}, MC {mc} ± {se}");
    }

    /// log N(x; b, C) by a dense D × D Cholesky of C = WWᵀ + σ²I in log space: an independent route.
    fn dense_log_marginal(m: &LinearGaussian, x: ArrayView1<f64>) -> f64 {
        let d = m.data_dim();
        let cov = m.w.dot(&m.w.t()) + Array2::<f64>::eye(d) * (m.sigma * m.sigma);
        let ch = to_dmatrix(cov.view()).cholesky().unwrap();
        let r = DVector::from_iterator(d, (&x - &m.b).iter().copied());
        let u = ch.l().solve_lower_triangular(&r).unwrap();
        let log_det: f64 = 2.0 * ch.l().diagonal().iter().map(|v| v.ln()).sum::<f64>();
        -0.5 * (d as f64 * crate::base::prob::LN_2PI + log_det + u.dot(&u))
    }

    /// The Woodbury route agrees with statrs' dense MultivariateNormal (the implementation before
    /// the log-space rewrite) and with a dense log-space Cholesky, to 1e-12 relative, on the
    /// shipped model (notebooks 02, 03) and the test model.
    #[test]
    fn log_space_marginal_agrees_with_dense_routes_on_well_conditioned_models() {
        use statrs::distribution::{Continuous, MultivariateNormal};
        let text = std::fs::read_to_string("data/models/linear_gaussian.json").unwrap();
        let super::super::Model::LinearGaussian(shipped) = super::super::Model::from_json(&text).unwrap()
        else {
            panic!("linear_gaussian")
        };
        for m in [shipped, model()] {
            for x in [array![1.2, 0.4, -0.5], array![0.9, -1.1, 0.4], array![-3.0, 2.5, 7.0]] {
                let cov = m.w.dot(&m.w.t()) + Array2::<f64>::eye(3) * (m.sigma * m.sigma);
                let mvn = MultivariateNormal::new(m.b.to_vec(), cov.iter().copied().collect()).unwrap();
                let statrs = mvn.ln_pdf(&DVector::from_vec(x.to_vec()));
                let ours = m.log_marginal(x.view()).unwrap();
                let dense = dense_log_marginal(&m, x.view());
                for reference in [statrs, dense] {
                    assert!((ours - reference).abs() <= 1e-12 * reference.abs(), "{ours} vs {reference}");
                }
            }
        }
    }

    /// D = 400 and 3000, W = 0.1 · 1 (Z = 1), σ = 0.5: before, the "exact" log p(x) was −inf
    /// (D = 400) and NaN (D = 3000). Closed form by Sherman–Morrison with C = σ²I + w²11ᵀ:
    /// ln det C = 2D ln σ + ln(1 + D w²/σ²),  rᵀC⁻¹r = (‖r‖² − w²(1ᵀr)² / (σ² + D w²)) / σ².
    #[test]
    fn high_dimensional_marginal_is_finite_and_matches_the_closed_form() {
        let (w, sigma) = (0.1, 0.5);
        for d in [400, 3000] {
            let m = LinearGaussian::new(Array2::from_elem((d, 1), w), Array1::zeros(d), sigma).unwrap();
            let x = Array1::from_shape_fn(d, |j| 0.3 + 0.01 * (j % 7) as f64);
            let (s2, w2) = (sigma * sigma, w * w);
            let (rr, sum) = (x.dot(&x), x.sum());
            let log_det = 2.0 * d as f64 * sigma.ln() + (1.0 + d as f64 * w2 / s2).ln();
            let quad = (rr - w2 * sum * sum / (s2 + d as f64 * w2)) / s2;
            let exact = -0.5 * (d as f64 * crate::base::prob::LN_2PI + log_det + quad);
            let ours = m.log_marginal(x.view()).unwrap();
            assert!((ours - exact).abs() <= 1e-12 * exact.abs(), "D = {d}: {ours} vs {exact}");
        }
    }

    /// σ = 1e-200 used to build and then panic in `posterior` ("I + WᵀW/σ² is positive
    /// definite"); now such models, and loadings that overflow Λ, are refused on construction.
    #[test]
    fn models_whose_precision_cannot_be_factorised_are_refused_on_construction() {
        let e = LinearGaussian::new(array![[1.0]], array![0.0], 1e-200).unwrap_err().to_string();
        assert!(e.starts_with("invalid sigma = 1e-200"), "{e}");
        let e = LinearGaussian::new(array![[1e200]], array![0.0], 1.0).unwrap_err().to_string();
        assert!(e.contains("overflows") && e.contains("1e200"), "{e}");
        let e = LinearGaussian::new(array![[1e10, 1e10]], array![0.0], 1e-3).unwrap_err().to_string();
        assert!(e.contains("not numerically positive definite"), "{e}");
        let e = super::super::Model::from_json(
            r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": 1e-200}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("invalid sigma = 1e-200"), "{e}");
        // The smallest accepted σ still gives finite answers near the model.
        let m = LinearGaussian::new(array![[1.0]], array![0.0], 1e-150).unwrap();
        assert!(m.log_marginal(array![0.5].view()).unwrap().is_finite());
        assert!(m.posterior(array![0.5].view()).unwrap().is_some());
    }

    /// A point so far away that log p(x) is below −f64::MAX is a named error, not −inf.
    #[test]
    fn a_point_beyond_the_f64_range_is_a_named_error() {
        let m = LinearGaussian::new(array![[1.0], [0.0]], array![0.0, 0.0], 1e-150).unwrap();
        let e = m.log_marginal(array![0.0, 1e10].view()).unwrap_err().to_string();
        assert!(e.starts_with("invalid x = a point with max |x − b| = 1e10"), "{e}");
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = LinearGaussian::new(array![[1.0]], array![0.0, 1.0], 1.0).unwrap_err().to_string();
        assert!(e.contains("b") && e.contains("length 2"), "{e}");
        let e = LinearGaussian::new(array![[1.0, f64::INFINITY]], array![0.0], 1.0).unwrap_err().to_string();
        assert!(e.contains("w[0][1] = inf"), "{e}");
        let e = LinearGaussian::new(array![[1.0]], array![0.0], 0.0).unwrap_err().to_string();
        assert!(e.contains("sigma = 0"), "{e}");
        let e = model().log_marginal(array![1.0, 2.0].view()).unwrap_err().to_string();
        assert!(e.contains("x") && e.contains("length 3"), "{e}");
    }
}
