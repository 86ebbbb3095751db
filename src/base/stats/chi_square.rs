//! Pearson's χ² goodness-of-fit test for category counts.

use std::fmt;

use ndarray::ArrayRef1;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::base::error::{Error, Result};
use crate::base::prob::check_probabilities;

/// Smallest expected count `n·p_k` for which [`chi_square_test`] trusts the χ² approximation
/// (the usual rule of thumb, Cochran 1954).
pub const MIN_EXPECTED_COUNT: f64 = 5.0;

/// The outcome of [`chi_square_test`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ChiSquareTest {
    /// `X² = Σ_k (O_k − E_k)²/E_k`, eq. (1.13).
    pub statistic: f64,
    /// Degrees of freedom, `C − 1`.
    pub dof: usize,
    /// `P(χ²_{C−1} > X²)`.
    pub p_value: f64,
}

impl fmt::Display for ChiSquareTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "χ²: X² = {:.3} on {} degrees of freedom, p = {:.4}",
            self.statistic, self.dof, self.p_value
        )
    }
}

/// Pearson's χ² goodness-of-fit test of observed counts against category probabilities:
///
/// ```text
/// X² = Σ_{k=0}^{C−1} (O_k − E_k)² / E_k,    E_k = n·p_k,   n = Σ_k O_k         (1.13)
/// p = P(χ²_{C−1} > X²)
/// ```
///
/// `O_k` the observed count of category `k`, `p_k` its probability under the hypothesis, `E_k`
/// its expected count, `C` the number of categories; under the hypothesis `X²` is approximately
/// χ² with `C − 1` degrees of freedom (Pearson 1900) when every `E_k ≥ 5`. The p-value is
/// statrs' `ChiSquared(C − 1).sf(X²)`.
///
/// # Shapes
/// `observed`, `probs`: (C,) → scalars.
///
/// ```
/// use vaelab::base::stats::chi_square_test;
/// // 60 throws of a fair die, each face 10 times but faces 1 and 2 swapped 5 throws:
/// // X² = (5² + 5²)/10 = 5 on 5 degrees of freedom.
/// let t = chi_square_test(&[15, 5, 10, 10, 10, 10], &[1.0 / 6.0; 6]).unwrap();
/// assert!((t.statistic - 5.0).abs() < 1e-12);
/// assert_eq!(t.dof, 5);
/// ```
///
/// # Errors
/// [`Error::Shape`] when `observed` and `probs` differ in length; the probability errors of
/// [`crate::lessons::sampling::Discrete::new`]; [`Error::InvalidParameter`] for fewer than 2 categories or
/// an expected count `E_k < 5` (named `expected[k]`); [`Error::Empty`] when all counts are 0.
pub fn chi_square_test(observed: &[u64], probs: &[f64]) -> Result<ChiSquareTest> {
    if observed.len() != probs.len() {
        return Err(Error::shape(
            "chi_square_test observed vs probs",
            format!("({},)", probs.len()),
            format!("({},)", observed.len()),
        ));
    }
    check_probabilities("probs", probs)?;
    let c = probs.len();
    if c < 2 {
        return Err(Error::invalid("probs.len()", c, "a χ² test needs at least 2 categories (C − 1 ≥ 1)"));
    }
    let n: u64 = observed.iter().sum();
    if n == 0 {
        return Err(Error::empty("observed counts", "observation"));
    }
    let n = n as f64;
    let mut statistic = 0.0;
    for (k, (&o, &p)) in observed.iter().zip(probs).enumerate() {
        let e = n * p;
        if e < MIN_EXPECTED_COUNT {
            return Err(Error::invalid(
                format!("expected[{k}]"),
                e,
                format!(
                    "every expected count n·p_k must be ≥ {MIN_EXPECTED_COUNT} for the χ² approximation: merge categories or observe more"
                ),
            ));
        }
        statistic += (o as f64 - e).powi(2) / e;
    }
    let dof = c - 1;
    let chi2 = ChiSquared::new(dof as f64).map_err(|e| Error::invalid("dof", dof, e.to_string()))?;
    Ok(ChiSquareTest { statistic, dof, p_value: chi2.sf(statistic) })
}

/// Counts how often each category `0..C` occurs: `O_k = #{ i : indices_i = k }`.
///
/// # Shapes
/// `indices`: (N,) → (C,).
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::stats::category_counts;
/// assert_eq!(category_counts(&array![2usize, 0, 2, 2], 3).unwrap(), vec![1, 0, 3]);
/// ```
///
/// # Errors
/// [`Error::InvalidParameter`] for `c = 0` or an index `≥ c` (named `indices[i]`).
pub fn category_counts(indices: &ArrayRef1<usize>, c: usize) -> Result<Vec<u64>> {
    if c == 0 {
        return Err(Error::invalid("c", c, "the number of categories must be ≥ 1"));
    }
    let mut counts = vec![0u64; c];
    for (i, &k) in indices.iter().enumerate() {
        if k >= c {
            return Err(Error::invalid(format!("indices[{i}]"), k, format!("must be < C = {c}")));
        }
        counts[k] += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p_value_matches_the_closed_form_for_two_degrees_of_freedom() {
        // χ²₂ is Exponential(1/2): P(χ²₂ > x) = exp(−x/2), an independent closed form.
        let t = chi_square_test(&[30, 50, 20], &[0.25, 0.5, 0.25]).unwrap();
        // E = (25, 50, 25): X² = 25/25 + 0 + 25/25 = 2.
        assert!((t.statistic - 2.0).abs() < 1e-12);
        assert!((t.p_value - (-1.0f64).exp()).abs() < 1e-12, "{}", t.p_value);
        // One degree of freedom: P(χ²₁ > x) = erfc(√(x/2)), with libm's erfc (error < 1 ulp) as
        // the reference; statrs' χ² goes through its incomplete gamma function instead.
        let chi1 = ChiSquared::new(1.0).unwrap();
        for x in [0.01, 0.5, 2.0, 3.841459, 10.0, 30.0] {
            let reference = libm::erfc((x / 2.0f64).sqrt());
            assert!((chi1.sf(x) - reference).abs() <= 1e-12 * reference, "x = {x}");
        }
        // 3.841459 is the 5 % critical value of every χ² table (3.8414588 to 8 digits); the
        // rounding moves p by at most the density 0.03 × 1.2e-6 < 1e-7.
        assert!((chi1.sf(3.841459) - 0.05).abs() < 1e-7);
    }

    #[test]
    fn each_bad_input_gets_its_typed_error() {
        let half = [0.5, 0.5];
        assert!(matches!(chi_square_test(&[10, 10, 10], &half), Err(Error::Shape { .. })));
        assert!(matches!(chi_square_test(&[10], &[1.0]), Err(Error::InvalidParameter { .. })));
        assert!(matches!(chi_square_test(&[], &[]), Err(Error::Empty { .. })));
        let e = chi_square_test(&[10, 10], &[0.6, 0.6]).unwrap_err();
        assert!(e.to_string().contains("sum of probs"), "{e}");
        let e = chi_square_test(&[18, 2], &[0.9, 0.1]).unwrap_err();
        assert!(e.to_string().starts_with("invalid expected[1] = 2"), "{e}");
        assert!(matches!(chi_square_test(&[0, 0], &half), Err(Error::Empty { .. })));
        let e = category_counts(&ndarray::array![0usize, 3], 3).unwrap_err();
        assert!(e.to_string().contains("indices[1] = 3"), "{e}");
        assert!(category_counts(&ndarray::array![0usize], 0).is_err());
    }
}
