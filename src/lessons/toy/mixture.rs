//! Toy 2: a Gaussian mixture, a model with a discrete latent.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng;
use rand_distr::StandardNormal;

use super::{
    Encoding, LatentModel, Posterior, Prior, check_x_len_finite, ensure_finite_matrix, ensure_finite_vector,
};
use crate::base::error::{Error, Result};
use crate::base::prob::{diag_gaussian_log_density, log_sum_exp_1d};

/// How far the mixture weights may be from summing to 1.
pub const WEIGHT_SUM_TOLERANCE: f64 = 1e-6;

/// z ∈ {0, …, K−1} with weights π, x | z ~ N(μ_z, diag σ_z²).
///
/// ```text
/// p(z = k)     = πₖ
/// p(x | z = k) = N(x; μₖ, diag σₖ²)
/// log p(x)     = log Σₖ πₖ N(x; μₖ, diag σₖ²)                      (log-sum-exp over k)
/// p(z = k | x) = πₖ N(x; μₖ, diag σₖ²) / p(x)                      (the responsibilities)
/// ```
/// The latent row for component k is `[k as f64]` ([`Encoding::Index`]).
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::lessons::toy::{LatentModel, Mixture};
/// // Two equal components at the same place: p(x) = N(x; 0, 1).
/// let m = Mixture::new(array![0.5, 0.5], array![[0.0], [0.0]], array![[1.0], [1.0]]).unwrap();
/// let lp = m.log_marginal(array![0.0].view()).unwrap();
/// assert!((lp + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Mixture {
    pub(crate) weights: Array1<f64>,
    pub(crate) means: Array2<f64>,
    pub(crate) sigmas: Array2<f64>,
    log_weights: Array1<f64>,
    log_vars: Array2<f64>,
}

impl Mixture {
    /// Validates and builds the mixture.
    ///
    /// # Errors
    /// K = 0, `means`/`sigmas` not K × D, non-finite values, negative weights or weights whose sum
    /// differs from 1 by more than [`WEIGHT_SUM_TOLERANCE`], σ ≤ 0: an error naming the field.
    pub fn new(weights: Array1<f64>, means: Array2<f64>, sigmas: Array2<f64>) -> Result<Self> {
        if weights.is_empty() {
            return Err(Error::empty("weights", "mixture component"));
        }
        ensure_finite_vector("weights", &weights)?;
        if let Some((k, &w)) = weights.iter().enumerate().find(|(_, w)| **w < 0.0) {
            return Err(Error::invalid(format!("weights[{k}]"), w, "must be ≥ 0"));
        }
        let total = weights.sum();
        if (total - 1.0).abs() > WEIGHT_SUM_TOLERANCE {
            return Err(Error::invalid(
                "weights",
                format!("{weights} (sum {total})"),
                "must sum to 1 (within 1e-6)",
            ));
        }
        let k = weights.len();
        if means.nrows() != k || means.ncols() == 0 {
            return Err(Error::shape(
                "means",
                format!("{k} rows (one per weight) of D ≥ 1"),
                format!("{} × {}", means.nrows(), means.ncols()),
            ));
        }
        if sigmas.dim() != means.dim() {
            return Err(Error::shape(
                "sigmas",
                format!("{:?} (as means)", means.dim()),
                format!("{:?}", sigmas.dim()),
            ));
        }
        ensure_finite_matrix("means", &means)?;
        ensure_finite_matrix("sigmas", &sigmas)?;
        if let Some(((i, j), &s)) = sigmas.indexed_iter().find(|(_, s)| **s <= 0.0) {
            return Err(Error::invalid(format!("sigmas[{i}][{j}]"), s, "must be > 0"));
        }
        let log_weights = weights.mapv(f64::ln);
        let log_vars = sigmas.mapv(|s| 2.0 * s.ln());
        Ok(Mixture { weights, means, sigmas, log_weights, log_vars })
    }

    /// π (K).
    pub fn weights(&self) -> &Array1<f64> {
        &self.weights
    }
    /// μ (K × D).
    pub fn means(&self) -> &Array2<f64> {
        &self.means
    }
    /// σ (K × D).
    pub fn sigmas(&self) -> &Array2<f64> {
        &self.sigmas
    }
    /// K, the number of components.
    pub fn components(&self) -> usize {
        self.weights.len()
    }

    /// log p(x | z = k) for every k (K).
    fn component_log_likelihoods(&self, x: ArrayView1<f64>) -> Array1<f64> {
        // N(x; μₖ, σₖ²) = N(μₖ; x, σₖ²): the K means as rows around the one x.
        diag_gaussian_log_density(self.means.view(), x.insert_axis(Axis(0)), self.log_vars.view())
    }
}

impl LatentModel for Mixture {
    fn latent_dim(&self) -> usize {
        1
    }

    fn data_dim(&self) -> usize {
        self.means.ncols()
    }

    fn prior(&self) -> Prior {
        Prior::Categorical { weights: self.weights.clone() }
    }

    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Array2<f64>, Array2<f64>) {
        let cdf: Vec<f64> = self
            .weights
            .iter()
            .scan(0.0, |s, &w| {
                *s += w;
                Some(*s)
            })
            .collect();
        let idx: Vec<usize> = (0..n)
            .map(|_| {
                let u = rng.random::<f64>() * cdf[cdf.len() - 1];
                cdf.partition_point(|&c| c <= u).min(cdf.len() - 1)
            })
            .collect();
        let z = Array2::from_shape_fn((n, 1), |(i, _)| idx[i] as f64);
        let noise = Array2::<f64>::from_shape_simple_fn((n, self.data_dim()), || rng.sample(StandardNormal));
        let x = self.means.select(Axis(0), &idx) + noise * self.sigmas.select(Axis(0), &idx); // N × D
        (z, x)
    }

    fn log_prior(&self, z: ArrayView2<f64>) -> Array1<f64> {
        z.rows().into_iter().map(|r| self.log_weights[self.index(r)]).collect()
    }

    fn log_likelihood(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64> {
        let per_component = self.component_log_likelihoods(x); // K
        z.rows().into_iter().map(|r| per_component[self.index(r)]).collect()
    }

    fn log_marginal(&self, x: ArrayView1<f64>) -> Result<f64> {
        self.check_x(x)?;
        let log_px = log_sum_exp_1d((&self.log_weights + &self.component_log_likelihoods(x)).view());
        if !log_px.is_finite() {
            // Every component's density underflows: log p(x) is below f64's range.
            // Each xᵢ in Rust's shortest round-trip form (`1e200`, not 201 digits).
            let shown = x.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", ");
            return Err(Error::invalid(
                "x",
                format!("[{shown}]"),
                format!("log p(x) = {log_px}: too far from every component"),
            ));
        }
        Ok(log_px)
    }

    /// Bayes' rule over the components ([`Posterior::by_bayes_rule`]), normalised by its own sum.
    fn posterior(&self, x: ArrayView1<f64>) -> Result<Option<Posterior>> {
        self.check_x(x)?;
        let log_joint = &self.log_weights + &self.component_log_likelihoods(x);
        Posterior::by_bayes_rule(log_joint, Encoding::Index).map(Some)
    }

    fn check_x(&self, x: ArrayView1<f64>) -> Result<()> {
        check_x_len_finite(x, self.data_dim())
    }
}

impl Mixture {
    #[track_caller]
    fn index(&self, row: ArrayView1<f64>) -> usize {
        assert!(row.len() == 1, "Mixture: latent row has {} entries, needs 1", row.len());
        let k = Encoding::Index.decode(row);
        assert!(
            k < self.components(),
            "Mixture: latent {k} is not one of the {} components",
            self.components()
        );
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn model() -> Mixture {
        Mixture::new(
            array![0.2, 0.5, 0.3],
            array![[-2.0, 0.0], [0.0, 1.0], [3.0, -1.0]],
            array![[0.5, 1.0], [1.0, 0.3], [0.7, 0.7]],
        )
        .unwrap()
    }

    #[test]
    fn a_posterior_where_every_log_joint_underflows_is_a_typed_error_not_nan() {
        // x = 1e200: (x − μ)²/σ² overflows to +∞ for every component, so every log-joint is −∞.
        let e = model().posterior(array![1e200, 0.0].view()).unwrap_err();
        assert!(matches!(e, Error::NotFinite { value, .. } if value == f64::NEG_INFINITY), "{e}");
        assert_eq!(
            e.to_string(),
            "max over z of log p(x, z) = -inf is not a finite number: p(z|x) is undefined (0/0): x is too far from every latent state for f64"
        );
        // log p(x) there: one short line naming x.
        let e = model().log_marginal(array![1e200, 0.0].view()).unwrap_err().to_string();
        assert_eq!(e, "invalid x = [1e200, 0.0]: log p(x) = -inf: too far from every component");
        // Directly: all −∞, a NaN, +∞; and an ordinary case still sums to one.
        for bad in [[f64::NEG_INFINITY; 3], [0.0, f64::NAN, -1.0], [0.0, f64::INFINITY, -1.0]] {
            assert!(
                Posterior::by_bayes_rule(array![bad[0], bad[1], bad[2]], Encoding::Index).is_err(),
                "{bad:?}"
            );
        }
        let Posterior::Categorical { log_probs, .. } =
            Posterior::by_bayes_rule(array![-1e300, f64::NEG_INFINITY, -1e300], Encoding::Index).unwrap()
        else {
            unreachable!()
        };
        assert!((log_probs.mapv(f64::exp).sum() - 1.0).abs() < 1e-15 && log_probs[1] == f64::NEG_INFINITY);
    }

    #[test]
    fn marginal_is_the_naive_sum_and_responsibilities_sum_to_one() {
        let m = model();
        let x = array![0.4, 0.2];
        // Naive: Σₖ πₖ Πⱼ N(xⱼ; μₖⱼ, σₖⱼ²) with densities written out (safe at this x).
        let naive: f64 = (0..3)
            .map(|k| {
                let dens: f64 = (0..2)
                    .map(|j| {
                        let (mu, s) = (m.means[[k, j]], m.sigmas[[k, j]]);
                        (-0.5 * ((x[j] - mu) / s).powi(2)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
                    })
                    .product();
                m.weights[k] * dens
            })
            .sum();
        assert!((m.log_marginal(x.view()).unwrap() - naive.ln()).abs() < 1e-13);
        let Some(Posterior::Categorical { log_probs, .. }) = m.posterior(x.view()).unwrap() else { panic!() };
        assert!((log_probs.mapv(f64::exp).sum() - 1.0).abs() < 1e-14);
    }

    /// The sampler picks component k with frequency πₖ: within 4 binomial SEs √(πₖ(1−πₖ)/N).
    #[test]
    fn sampler_frequencies_match_the_weights() {
        let m = model();
        let n = 100_000;
        let (z, _) = m.sample(n, &mut StdRng::seed_from_u64(21));
        for k in 0..3 {
            let f = z.iter().filter(|&&v| v == k as f64).count() as f64 / n as f64;
            let p = m.weights[k];
            assert!((f - p).abs() < 4.0 * (p * (1.0 - p) / n as f64).sqrt(), "k={k}: {f} vs {p}");
        }
    }

    #[test]
    fn bad_weights_are_named() {
        let e = Mixture::new(array![0.5, 0.6], array![[0.0], [1.0]], array![[1.0], [1.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("weights") && e.contains("sum 1.1"), "{e}");
        let e = Mixture::new(array![1.5, -0.5], array![[0.0], [1.0]], array![[1.0], [1.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("weights[1] = -0.5"), "{e}");
        let e = Mixture::new(array![0.5, 0.5], array![[0.0], [1.0]], array![[1.0], [0.0]])
            .unwrap_err()
            .to_string();
        assert!(e.contains("sigmas[1][0] = 0"), "{e}");
        let e = Mixture::new(array![1.0], array![[0.0, 1.0]], array![[1.0]]).unwrap_err().to_string();
        assert!(e.contains("sigmas"), "{e}");
    }
}
