//! Inverse transform for a discrete distribution: binary search over the cumulative sums.

use ndarray::Array1;
use rand::Rng;

use super::{InverseCdf, Probability, draw_uniform};
use crate::base::error::{Error, Result, ensure_finite};
use crate::base::prob::check_probabilities;

/// A discrete distribution on values `x_0 < x_1 < … < x_{C−1}` with probabilities `p_k`, sampled
/// by the generalised inverse (1.3), which for a step CDF is a search over cumulative sums:
///
/// ```text
/// F(x) = Σ_{k : x_k ≤ x} p_k,     c_k = p_0 + … + p_k                      (1.7)
/// F⁻¹(u) = x_k  with  k = min { k : c_k ≥ u }   (u > 0)
/// ```
///
/// `C` the number of categories, `p_k ≥ 0` with `Σ p_k = 1` (within [`crate::base::prob::PROB_SUM_TOL`]), `c_k`
/// the cumulative sums. `u ∈ (c_{k−1}, c_k]`, an interval of length `p_k`, maps to `x_k`, so
/// `P(X = x_k) = p_k`. The probabilities are divided by their sum once (a change of at most
/// 10⁻⁹) and `c_{C−1}` is set to exactly 1. At `u = 0` the first value with `p_k > 0`.
///
/// # Shapes
/// Parameters (C,); scalar in, scalar out; samples (N,).
///
/// ```
/// use vaelab::lessons::sampling::{Discrete, InverseCdf};
/// // Cumulative sums 0.2, 0.7, 1.0: u = 0.2 → x_0, u = 0.21 → x_1, u = 0.9 → x_2.
/// let d = Discrete::new(&[-1.0, 0.0, 5.0], &[0.2, 0.5, 0.3]).unwrap();
/// assert_eq!(d.inverse_cdf(0.2).unwrap(), -1.0);
/// assert_eq!(d.inverse_cdf(0.21).unwrap(), 0.0);
/// assert_eq!(d.inverse_cdf(0.9).unwrap(), 5.0);
/// assert!(Discrete::categorical(&[0.5, 0.6]).is_err()); // sums to 1.1
/// ```
#[derive(Clone, Debug)]
pub struct Discrete {
    values: Vec<f64>,
    probs: Vec<f64>,
    /// `c_k`, (C,), non-decreasing, last exactly 1.
    cumulative: Vec<f64>,
}

impl Discrete {
    /// Validates and builds the distribution.
    ///
    /// # Errors
    /// [`Error::Shape`] when `values` and `probs` differ in length; [`Error::Empty`] when C = 0;
    /// [`Error::NonFinite`] for a NaN or infinite value or probability;
    /// [`Error::InvalidParameter`] for a `p_k < 0`, a sum off 1 by more than [`crate::base::prob::PROB_SUM_TOL`], or
    /// values that are not strictly increasing.
    pub fn new(values: &[f64], probs: &[f64]) -> Result<Self> {
        if values.len() != probs.len() {
            return Err(Error::shape(
                "Discrete values vs probs",
                format!("({},)", probs.len()),
                format!("({},)", values.len()),
            ));
        }
        let sum = check_probabilities("probs", probs)?;
        ensure_finite("values", values)?;
        if let Some(k) = (1..values.len()).find(|&k| values[k] <= values[k - 1]) {
            return Err(Error::invalid(
                format!("values[{k}]"),
                values[k],
                format!("values must be strictly increasing (values[{}] = {})", k - 1, values[k - 1]),
            ));
        }
        let probs: Vec<f64> = probs.iter().map(|p| p / sum).collect();
        let mut cumulative: Vec<f64> = probs
            .iter()
            .scan(0.0, |c, p| {
                *c += p;
                Some(*c)
            })
            .collect();
        *cumulative.last_mut().expect("checked non-empty") = 1.0;
        Ok(Discrete { values: values.to_vec(), probs, cumulative })
    }

    /// Categories `0, 1, …, C−1` with probabilities `probs`: [`Discrete::new`] with `x_k = k`.
    ///
    /// # Errors
    /// As [`Discrete::new`].
    pub fn categorical(probs: &[f64]) -> Result<Self> {
        let values: Vec<f64> = (0..probs.len()).map(|k| k as f64).collect();
        Self::new(&values, probs)
    }

    /// The values `x_k`, (C,).
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The probabilities `p_k` (after division by their sum), (C,).
    pub fn probs(&self) -> &[f64] {
        &self.probs
    }

    /// `F(x) = Σ_{x_k ≤ x} p_k`, eq. (1.7).
    pub fn cdf(&self, x: f64) -> f64 {
        let k = self.values.partition_point(|&v| v <= x);
        if k == 0 { 0.0 } else { self.cumulative[k - 1] }
    }

    /// The category `k = min { k : c_k ≥ u, c_k > 0 }` of eq. (1.7), by binary search.
    pub fn index_of(&self, u: Probability) -> usize {
        let u = u.get();
        // `c_k > 0` skips leading zero-probability categories at u = 0.
        self.cumulative.partition_point(|&c| c < u || c == 0.0).min(self.values.len() - 1)
    }

    /// `n` category indices drawn by inverse transform, eq. (1.7) with (1.4).
    ///
    /// # Shapes
    /// Returns (N,) with N = `n`, entries in `0..C`.
    ///
    /// # Errors
    /// [`Error::Empty`] when `n = 0`.
    pub fn sample_indices<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Result<Array1<usize>> {
        Ok(draw_uniform(n, rng)?.mapv(|u| self.index_of(Probability(u))))
    }
}

impl InverseCdf for Discrete {
    /// `x_k` with `k` = [`Discrete::index_of`]`(u)`.
    fn quantile(&self, u: Probability) -> Result<f64> {
        Ok(self.values[self.index_of(u)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_u_in_a_cumulative_interval_maps_to_its_category() {
        // (c_{k-1}, c_k] ↦ k, checked against a linear scan (an independent route). Dyadic
        // probabilities, so every cumulative sum is exact and the boundaries u = c_k are tested.
        let p = [0.125, 0.0, 0.25, 0.375, 0.25];
        let d = Discrete::categorical(&p).unwrap();
        for i in 1..=1024 {
            let u = i as f64 / 1024.0;
            let mut c = 0.0;
            let scan = p
                .iter()
                .position(|pk| {
                    c += pk;
                    c >= u
                })
                .unwrap();
            assert_eq!(d.index_of(Probability(u)), scan, "u = {u}");
        }
        // Zero-probability categories are never returned, u = 0 included.
        let z = Discrete::categorical(&[0.0, 0.0, 1.0]).unwrap();
        assert_eq!(z.index_of(Probability(0.0)), 2);
    }

    #[test]
    fn cdf_is_the_step_function() {
        let d = Discrete::new(&[-1.0, 0.0, 5.0], &[0.2, 0.5, 0.3]).unwrap();
        assert_eq!(d.cdf(-1.5), 0.0);
        assert_eq!(d.cdf(-1.0), 0.2);
        assert!((d.cdf(4.9) - 0.7).abs() < 1e-15);
        assert_eq!(d.cdf(5.0), 1.0);
    }

    #[test]
    fn each_bad_input_gets_its_typed_error() {
        let e = Discrete::categorical(&[]).unwrap_err();
        assert!(matches!(e, Error::Empty { .. }), "{e}");
        let e = Discrete::categorical(&[0.5, -0.1, 0.6]).unwrap_err();
        assert_eq!(e.to_string(), "invalid probs[1] = -0.1: a probability must be ≥ 0");
        let e = Discrete::categorical(&[0.5, 0.6]).unwrap_err();
        assert!(e.to_string().starts_with("invalid sum of probs = 1.1"), "{e}");
        let e = Discrete::categorical(&[0.5, f64::NAN]).unwrap_err();
        assert!(matches!(e, Error::NonFinite { index: 1, .. }), "{e}");
        let e = Discrete::new(&[0.0, 1.0], &[1.0]).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{e}");
        let e = Discrete::new(&[0.0, 0.0], &[0.5, 0.5]).unwrap_err();
        assert!(e.to_string().contains("strictly increasing"), "{e}");
        let d = Discrete::categorical(&[0.5, 0.5]).unwrap();
        assert!(matches!(d.inverse_cdf(-0.5), Err(Error::InvalidParameter { .. })));
        assert!(matches!(d.inverse_cdf(f64::NAN), Err(Error::InvalidParameter { .. })));
        // Within the stated tolerance is accepted.
        assert!(Discrete::categorical(&[0.5, 0.5 + 0.5e-9]).is_ok());
    }
}
