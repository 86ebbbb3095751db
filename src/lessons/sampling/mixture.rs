//! A one-dimensional Gaussian mixture: a target whose CDF has no closed-form inverse.

use statrs::distribution::{Continuous, ContinuousCDF, Normal};

use super::{BoxedFn, NumericInverse};
use crate::base::error::{Error, Result, ensure_finite, ensure_positive};
use crate::base::prob::check_probabilities;

/// Standard deviations beyond the outermost components that [`GaussianMixture1d::bracket`] spans:
/// the mass outside is at most Φ(−9) ≈ 1.1·10⁻¹⁹, below the smallest `u` the samplers draw.
const BRACKET_SIGMAS: f64 = 9.0;

/// A mixture of K one-dimensional normals:
///
/// ```text
/// p(x) = Σ_k w_k · N(x; μ_k, σ_k²)                                          (1.6)
/// F(x) = Σ_k w_k · Φ((x − μ_k)/σ_k)
/// ln p(x) = logsumexp_k [ ln w_k + ln N(x; μ_k, σ_k²) ]
/// ```
///
/// `w_k ≥ 0` the weights (Σ w_k = 1), `μ_k` the means, `σ_k > 0` the standard deviations, `Φ`
/// the standard normal CDF, `k = 1..K`. `F` is a sum of Φ's, and `F(x) = u` has no closed-form
/// solution: sample it with [`GaussianMixture1d::numeric_inverse`]. It also implements statrs'
/// `ContinuousCDF` and `Continuous`, so statrs' own (bisection) `inverse_cdf` gives a second,
/// independent route to the same quantiles.
///
/// # Shapes
/// Parameters (K,); scalar in, scalar out.
///
/// ```
/// use vaelab::lessons::sampling::GaussianMixture1d;
/// // Two unit normals at ±2, equal weights: symmetric about 0, so F(0) = 1/2 and the
/// // mean is 0, the variance 1 + 2² = 5.
/// let m = GaussianMixture1d::new(&[0.5, 0.5], &[-2.0, 2.0], &[1.0, 1.0]).unwrap();
/// assert!((m.cdf(0.0) - 0.5).abs() < 1e-15);
/// assert!((m.variance() - 5.0).abs() < 1e-12);
/// assert!(GaussianMixture1d::new(&[0.7, 0.7], &[0.0, 1.0], &[1.0, 1.0]).is_err()); // Σw ≠ 1
/// ```
#[derive(Clone, Debug)]
pub struct GaussianMixture1d {
    weights: Vec<f64>,
    means: Vec<f64>,
    sigmas: Vec<f64>,
    components: Vec<Normal>,
}

impl GaussianMixture1d {
    /// Validates and builds the mixture.
    ///
    /// # Errors
    /// [`Error::Shape`] when the three slices differ in length; [`Error::Empty`] when K = 0;
    /// the weights' errors of [`crate::lessons::sampling::Discrete::new`] (each `w_k` finite and ≥ 0,
    /// `|Σ w_k − 1| ≤` [`crate::base::prob::PROB_SUM_TOL`] = 10⁻⁹); [`Error::NonFinite`] for a
    /// mean; [`Error::InvalidParameter`] for `sigmas[k]` not finite and > 0.
    pub fn new(weights: &[f64], means: &[f64], sigmas: &[f64]) -> Result<Self> {
        let k = weights.len();
        if means.len() != k {
            return Err(Error::shape(
                "GaussianMixture1d means vs weights",
                format!("({k},)"),
                format!("({},)", means.len()),
            ));
        }
        if sigmas.len() != k {
            return Err(Error::shape(
                "GaussianMixture1d sigmas vs weights",
                format!("({k},)"),
                format!("({},)", sigmas.len()),
            ));
        }
        check_probabilities("weights", weights)?;
        ensure_finite("means", means)?;
        let mut components = Vec::with_capacity(k);
        for (i, (&mu, &sigma)) in means.iter().zip(sigmas).enumerate() {
            ensure_positive(&format!("sigmas[{i}]"), sigma)?;
            components.push(
                Normal::new(mu, sigma)
                    .map_err(|e| Error::invalid(format!("sigmas[{i}]"), sigma, e.to_string()))?,
            );
        }
        Ok(GaussianMixture1d {
            weights: weights.to_vec(),
            means: means.to_vec(),
            sigmas: sigmas.to_vec(),
            components,
        })
    }

    /// The weights `w_k`, (K,).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The means `μ_k`, (K,).
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    /// The standard deviations `σ_k`, (K,).
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// `F(x) = Σ_k w_k Φ((x − μ_k)/σ_k)`, eq. (1.6).
    pub fn cdf(&self, x: f64) -> f64 {
        self.weights.iter().zip(&self.components).map(|(w, c)| w * c.cdf(x)).sum()
    }

    /// `p(x) = Σ_k w_k N(x; μ_k, σ_k²)`, eq. (1.6).
    pub fn pdf(&self, x: f64) -> f64 {
        self.weights.iter().zip(&self.components).map(|(w, c)| w * c.pdf(x)).sum()
    }

    /// `ln p(x)` by log-sum-exp over the components, eq. (1.6): finite far in the tails where
    /// `p(x)` itself underflows to 0.
    ///
    /// ```
    /// use vaelab::lessons::sampling::GaussianMixture1d;
    /// let m = GaussianMixture1d::new(&[1.0], &[0.0], &[1.0]).unwrap();
    /// // One standard normal: ln p(40) = −40²/2 − ln √(2π), though p(40) = 0 in f64.
    /// let exact = -800.0 - 0.5 * (2.0 * std::f64::consts::PI).ln();
    /// assert!((m.ln_pdf(40.0) - exact).abs() < 1e-12);
    /// assert_eq!(m.pdf(40.0), 0.0);
    /// ```
    pub fn ln_pdf(&self, x: f64) -> f64 {
        let terms: Vec<f64> = self
            .weights
            .iter()
            .zip(&self.components)
            .filter(|(w, _)| **w > 0.0)
            .map(|(w, c)| w.ln() + c.ln_pdf(x))
            .collect();
        let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            return max;
        }
        max + terms.iter().map(|t| (t - max).exp()).sum::<f64>().ln()
    }

    /// An upper bound on the density, the sum of the components' peaks:
    ///
    /// ```text
    /// sup_x p(x) ≤ Σ_k w_k / (σ_k √(2π))        (equality for one component, at x = μ)
    /// ```
    /// With it a quantile x̂ within `x_tol/2` of the exact F⁻¹(u) has
    /// `|F(x̂) − u| ≤ sup p · x_tol/2` (mean-value theorem): notebook 01 checks its inverses so.
    ///
    /// ```
    /// use vaelab::lessons::sampling::GaussianMixture1d;
    /// // N(0, 1): the bound is the peak 1/√(2π) = 0.3989…
    /// let m = GaussianMixture1d::new(&[1.0], &[0.0], &[1.0]).unwrap();
    /// assert!((m.density_bound() - m.pdf(0.0)).abs() < 1e-15);
    /// ```
    pub fn density_bound(&self) -> f64 {
        let root_two_pi = (2.0 * std::f64::consts::PI).sqrt();
        self.weights.iter().zip(&self.sigmas).map(|(w, s)| w / (s * root_two_pi)).sum()
    }

    /// `E[X] = Σ_k w_k μ_k`.
    pub fn mean(&self) -> f64 {
        self.weights.iter().zip(&self.means).map(|(w, mu)| w * mu).sum()
    }

    /// `Var[X] = Σ_k w_k (σ_k² + μ_k²) − E[X]²`.
    pub fn variance(&self) -> f64 {
        let second: f64 = (0..self.weights.len())
            .map(|k| self.weights[k] * (self.sigmas[k].powi(2) + self.means[k].powi(2)))
            .sum();
        second - self.mean().powi(2)
    }

    /// A bracket holding all but Φ(−9) ≈ 10⁻¹⁹ of the mass:
    /// `[min_k (μ_k − 9σ_k), max_k (μ_k + 9σ_k)]`.
    pub fn bracket(&self) -> (f64, f64) {
        let ends = |sign: f64| {
            self.means.iter().zip(&self.sigmas).map(move |(mu, s)| mu + sign * BRACKET_SIGMAS * s)
        };
        (ends(-1.0).fold(f64::INFINITY, f64::min), ends(1.0).fold(f64::NEG_INFINITY, f64::max))
    }

    /// The numerical inverse of this mixture's CDF on [`GaussianMixture1d::bracket`], with the
    /// pdf for Newton steps and tolerance [`crate::lessons::sampling::DEFAULT_X_TOL`] in `x`. The closures
    /// are boxed ([`BoxedFn`]) so that the type can be written down, e.g. to keep it in a notebook
    /// variable.
    ///
    /// ```
    /// use vaelab::lessons::sampling::{GaussianMixture1d, InverseCdf};
    /// let m = GaussianMixture1d::new(&[0.5, 0.5], &[-2.0, 2.0], &[1.0, 1.0]).unwrap();
    /// let inv = m.numeric_inverse().unwrap();
    /// assert!(inv.inverse_cdf(0.5).unwrap().abs() <= 1e-10); // the median of a symmetric mixture
    /// ```
    ///
    /// # Errors
    /// None for a valid mixture; the `Result` carries [`NumericInverse::new`]'s checks.
    pub fn numeric_inverse(&self) -> Result<NumericInverse<BoxedFn, BoxedFn>> {
        let (lo, hi) = self.bracket();
        let (for_cdf, for_pdf) = (self.clone(), self.clone());
        let cdf: BoxedFn = Box::new(move |x| for_cdf.cdf(x));
        let pdf: BoxedFn = Box::new(move |x| for_pdf.pdf(x));
        NumericInverse::new(cdf, lo, hi)?.with_pdf(pdf)
    }
}

impl statrs::statistics::Min<f64> for GaussianMixture1d {
    fn min(&self) -> f64 {
        f64::NEG_INFINITY
    }
}

impl statrs::statistics::Max<f64> for GaussianMixture1d {
    fn max(&self) -> f64 {
        f64::INFINITY
    }
}

impl ContinuousCDF<f64, f64> for GaussianMixture1d {
    /// [`GaussianMixture1d::cdf`]; `inverse_cdf` is statrs' default bisection.
    fn cdf(&self, x: f64) -> f64 {
        GaussianMixture1d::cdf(self, x)
    }
}

impl Continuous<f64, f64> for GaussianMixture1d {
    fn pdf(&self, x: f64) -> f64 {
        GaussianMixture1d::pdf(self, x)
    }

    fn ln_pdf(&self, x: f64) -> f64 {
        GaussianMixture1d::ln_pdf(self, x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> GaussianMixture1d {
        GaussianMixture1d::new(&[0.3, 0.5, 0.2], &[-3.0, 0.5, 4.0], &[0.7, 1.2, 0.4]).unwrap()
    }

    #[test]
    fn pdf_integrates_to_the_cdf_and_ln_pdf_is_its_log() {
        // Independent route: composite Simpson on [−15, x] with 20 000 intervals; the error bound
        // h⁴·max|p⁗|·(x+15)/180 is below 1e-10 for these widths (σ ≥ 0.4).
        let m = three();
        for x in [-4.0, -1.0, 0.5, 3.0, 6.0] {
            let (a, n) = (-15.0, 20_000);
            let h = (x - a) / n as f64;
            let mut s = m.pdf(a) + m.pdf(x);
            for i in 1..n {
                s += m.pdf(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
            }
            let integral = s * h / 3.0;
            assert!((integral - m.cdf(x)).abs() < 1e-10, "x = {x}: {integral} vs {}", m.cdf(x));
            assert!((m.ln_pdf(x) - m.pdf(x).ln()).abs() < 1e-12);
        }
    }

    #[test]
    fn numeric_inverse_agrees_with_statrs_default_bisection() {
        // Two routes to F⁻¹ for the same F: ours (table + Newton, |error| ≤ x_tol/2) and statrs'
        // trait default (bisection until the bracket is 1e-14 relative wide). Both solve the same
        // rounded F, whose rounding (a few ε) moves a root by about ε/p(x).
        let m = three();
        let ours = m.numeric_inverse().unwrap();
        for k in 1..200 {
            let u = k as f64 / 200.0;
            let a = crate::lessons::sampling::InverseCdf::inverse_cdf(&ours, u).unwrap();
            let b = ContinuousCDF::inverse_cdf(&m, u);
            let tol = 0.5 * crate::lessons::sampling::DEFAULT_X_TOL
                + 1e-14 * b.abs()
                + 4.0 * f64::EPSILON / m.pdf(b);
            assert!((a - b).abs() <= tol, "u = {u}: {a} vs {b} (tol {tol:e})");
        }
    }

    #[test]
    fn density_bound_is_above_the_density_everywhere() {
        // Independent route: the density itself on a grid of step 10⁻³ over the bracket; its
        // largest value is below the bound, and close to it here (the components barely overlap).
        let m = three();
        let (lo, hi) = m.bracket();
        let n = ((hi - lo) / 1e-3) as usize;
        let max = (0..=n).map(|i| m.pdf(lo + i as f64 * 1e-3)).fold(0.0, f64::max);
        assert!(max <= m.density_bound(), "{max} > {}", m.density_bound());
        // 0.2/(0.4√(2π)) = 0.1995 is the tallest single peak; the others add at most 0.34.
        assert!(max > 0.19 && m.density_bound() < 0.54, "{max}, {}", m.density_bound());
    }

    #[test]
    fn bad_parameters_get_typed_errors() {
        let bad = |w: &[f64], mu: &[f64], s: &[f64]| GaussianMixture1d::new(w, mu, s).unwrap_err();
        assert!(matches!(bad(&[0.5, 0.5], &[0.0], &[1.0, 1.0]), Error::Shape { .. }));
        assert!(matches!(bad(&[0.5, 0.5], &[0.0, 1.0], &[1.0]), Error::Shape { .. }));
        assert!(matches!(bad(&[], &[], &[]), Error::Empty { .. }));
        assert!(bad(&[1.2, -0.2], &[0.0, 1.0], &[1.0, 1.0]).to_string().contains("weights[1] = -0.2"));
        assert!(bad(&[0.5, 0.4], &[0.0, 1.0], &[1.0, 1.0]).to_string().contains("sum"));
        assert!(bad(&[0.5, 0.5], &[0.0, f64::NAN], &[1.0, 1.0]).to_string().contains("means at index 1"));
        assert!(bad(&[0.5, 0.5], &[0.0, 1.0], &[1.0, 0.0]).to_string().contains("sigmas[1] = 0"));
    }
}
