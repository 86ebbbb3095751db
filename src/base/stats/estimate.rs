//! One type for a Monte-Carlo mean with its standard error, and one rule for computing it.
//!
//! Every mean ± SE the crate reports (ELBOs, rates, importance-sampled log-likelihoods, paired
//! differences between two models on the same data) is an [`Estimate`] built by
//! [`Estimate::from_values`] or [`paired_difference`]. Fewer than two values have no standard
//! error: both return [`Error::TooFewValues`], never a NaN.

use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};

/// A Monte-Carlo mean with its standard error. In JSON: `{"mean": …, "stderr": …, "samples": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// The sample mean.
    pub mean: f64,
    /// Its standard error, s/√n (s the sample standard deviation, n − 1 in the denominator).
    pub stderr: f64,
    /// n, the number of values averaged.
    pub samples: usize,
}

impl Estimate {
    /// Mean and standard error of `values`:
    ///
    /// ```text
    /// mean = (1/n) Σᵢ vᵢ,     stderr = s/√n,     s² = Σᵢ (vᵢ − mean)² / (n − 1)
    /// ```
    /// (ndarray's `mean()` and `std(1.0)`).
    ///
    /// # Shapes
    /// `values`: `n` (an `ArrayView1`, a slice or a `&Vec`).
    ///
    /// # Errors
    /// [`Error::TooFewValues`] for n < 2 (one value has no spread to measure).
    ///
    /// ```
    /// use vaelab::base::stats::Estimate;
    /// // mean 2, s = √((1 + 1)/1) = √2, stderr = √2/√2 = 1
    /// let e = Estimate::from_values(&[1.0, 3.0]).unwrap();
    /// assert_eq!((e.mean, e.samples), (2.0, 2));
    /// assert!((e.stderr - 1.0).abs() < 1e-15);
    /// assert!(Estimate::from_values(&[1.0]).is_err());
    /// ```
    pub fn from_values<'a>(values: impl Into<ArrayView1<'a, f64>>) -> Result<Estimate> {
        let values = values.into();
        let n = values.len();
        let Some(mean) = values.mean().filter(|_| n >= 2) else {
            return Err(Error::TooFewValues { count: n });
        };
        Ok(Estimate { mean, stderr: values.std(1.0) / (n as f64).sqrt(), samples: n })
    }
}

/// Mean and standard error of the paired differences dᵢ = aᵢ − bᵢ (two quantities measured on the
/// same n data points):
///
/// ```text
/// mean = (1/n) Σᵢ (aᵢ − bᵢ),     stderr = s_d/√n
/// ```
/// The pairing removes the spread the two share (the same hard data points), so `stderr` is
/// usually far below the unpaired √(SE_a² + SE_b²).
///
/// # Shapes
/// `a`, `b`: `n` each.
///
/// # Errors
/// [`Error::Shape`] if the lengths differ; [`Error::TooFewValues`] for n < 2.
///
/// ```
/// use vaelab::base::stats::paired_difference;
/// // d = (1, 3): mean 2, stderr 1 (as for Estimate::from_values(&[1.0, 3.0]))
/// let d = paired_difference(&[11.0, 13.0], &[10.0, 10.0]).unwrap();
/// assert_eq!((d.mean, d.samples), (2.0, 2));
/// assert!((d.stderr - 1.0).abs() < 1e-15);
/// assert!(paired_difference(&[1.0, 2.0], &[1.0]).is_err());
/// ```
pub fn paired_difference(a: &[f64], b: &[f64]) -> Result<Estimate> {
    if a.len() != b.len() {
        return Err(Error::shape("paired difference (b against a)", a.len(), b.len()));
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    Estimate::from_values(&d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_values_matches_the_formula_and_rejects_fewer_than_two() {
        // 1, 2, 3, 6: mean 3, s² = (4 + 1 + 0 + 9)/3 = 14/3, stderr = √(14/3)/2.
        let e = Estimate::from_values(&[1.0, 2.0, 3.0, 6.0]).unwrap();
        assert_eq!((e.mean, e.samples), (3.0, 4));
        assert!((e.stderr - (14.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-15, "{e:?}");
        for few in [&[][..], &[4.0][..]] {
            let err = Estimate::from_values(few).unwrap_err();
            assert!(matches!(err, Error::TooFewValues { count } if count == few.len()), "{err}");
            assert_eq!(
                err.to_string(),
                format!("a standard error needs at least 2 values, got {}", few.len())
            );
        }
    }

    #[test]
    fn paired_difference_is_the_estimate_of_the_differences() {
        let (a, b) = ([3.0, 5.0, 4.5, 1.0], [1.0, 4.0, 4.0, -2.0]);
        let d = paired_difference(&a, &b).unwrap();
        assert_eq!(d, Estimate::from_values(&[2.0, 1.0, 0.5, 3.0]).unwrap());
        assert!(matches!(paired_difference(&a, &b[..3]), Err(Error::Shape { .. })));
        assert!(matches!(paired_difference(&a[..1], &b[..1]), Err(Error::TooFewValues { count: 1 })));
    }
}
