//! Inverse transform for the empirical CDF of data.

use ndarray::ArrayRef1;

use super::{InverseCdf, Probability};
use crate::base::error::{Error, Result, ensure_finite};

/// The empirical CDF of data `x_1, …, x_n` and its generalised inverse:
///
/// ```text
/// F_n(x) = #{ i : x_i ≤ x } / n                                             (1.8)
/// F_n⁻¹(u) = x_(⌈n·u⌉)   (u > 0),     F_n⁻¹(0) = x_(1)
/// ```
///
/// `n` the number of data points, `x_(j)` the j-th smallest (order statistic). Each `u` in an
/// interval ((j−1)/n, j/n] of length 1/n maps to `x_(j)`, so sampling from `F_n` draws a data
/// point uniformly at random: the bootstrap.
///
/// # Shapes
/// Data (n,); scalar in, scalar out; samples (N,).
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::lessons::sampling::{EmpiricalCdf, InverseCdf};
/// let e = EmpiricalCdf::new(&array![3.0, 1.0, 2.0, 2.0]).unwrap();
/// assert_eq!(e.cdf(2.0), 0.75); // three of the four points are ≤ 2
/// assert_eq!(e.inverse_cdf(0.25).unwrap(), 1.0); // x_(⌈1⌉)
/// assert_eq!(e.inverse_cdf(0.26).unwrap(), 2.0); // x_(⌈1.04⌉) = x_(2)
/// assert_eq!(e.inverse_cdf(1.0).unwrap(), 3.0);
/// ```
#[derive(Clone, Debug)]
pub struct EmpiricalCdf {
    /// The data, sorted ascending, (n,).
    sorted: Vec<f64>,
}

impl EmpiricalCdf {
    /// Sorts a copy of the data.
    ///
    /// # Errors
    /// [`Error::Empty`] for no data; [`Error::NonFinite`] naming the first NaN or infinity.
    pub fn new(data: &ArrayRef1<f64>) -> Result<Self> {
        if data.is_empty() {
            return Err(Error::empty("data", "data point"));
        }
        ensure_finite("data", data.iter())?;
        let mut sorted = data.to_vec();
        sorted.sort_by(f64::total_cmp);
        Ok(EmpiricalCdf { sorted })
    }

    /// The sorted data `x_(1) ≤ … ≤ x_(n)`, (n,).
    pub fn sorted(&self) -> &[f64] {
        &self.sorted
    }

    /// The number of data points `n`.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Never true: construction needs at least one point.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// `F_n(x) = #{ i : x_i ≤ x } / n`, eq. (1.8), by binary search.
    pub fn cdf(&self, x: f64) -> f64 {
        self.sorted.partition_point(|&v| v <= x) as f64 / self.len() as f64
    }
}

impl InverseCdf for EmpiricalCdf {
    /// `x_(j)` with `j = min { j : j/n ≥ u }` (`j = 1` at `u = 0`), eq. (1.8).
    fn quantile(&self, u: Probability) -> Result<f64> {
        let (u, n) = (u.get(), self.len());
        // j = ⌈n·u⌉, then corrected for the rounding of n·u so that j/n ≥ u > (j−1)/n as the
        // floating-point quotients the definition compares.
        let mut j = ((n as f64 * u).ceil() as usize).clamp(1, n);
        while j > 1 && (j - 1) as f64 / n as f64 >= u {
            j -= 1;
        }
        while j < n && (j as f64 / n as f64) < u {
            j += 1;
        }
        Ok(self.sorted[j - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn inverse_matches_the_definition_by_linear_scan() {
        // F_n⁻¹(u) = min { x_(j) : F_n(x_(j)) ≥ u }, found by scanning: an independent route.
        let e = EmpiricalCdf::new(&array![0.3, -1.0, 2.5, 0.3, 7.0, 1.0, -4.0]).unwrap();
        for i in 0..=700 {
            let u = i as f64 / 700.0;
            let scan = e.sorted().iter().copied().find(|&x| e.cdf(x) >= u).unwrap();
            assert_eq!(e.inverse_cdf(u).unwrap(), scan, "u = {u}");
        }
        // Boundaries u = j/n where n·u rounds up: 10·0.3 = 3.0000000000000004 in f64.
        let ten = EmpiricalCdf::new(&ndarray::Array1::range(0.0, 10.0, 1.0)).unwrap();
        assert_eq!(ten.inverse_cdf(0.3).unwrap(), 2.0);
    }

    #[test]
    fn bad_data_and_bad_u_get_typed_errors() {
        assert!(matches!(EmpiricalCdf::new(&ndarray::Array1::<f64>::zeros(0)), Err(Error::Empty { .. })));
        let e = EmpiricalCdf::new(&array![1.0, f64::INFINITY]).unwrap_err();
        assert!(matches!(e, Error::NonFinite { index: 1, .. }), "{e}");
        let e = EmpiricalCdf::new(&array![1.0, 2.0]).unwrap();
        assert!(matches!(e.inverse_cdf(1.0000001), Err(Error::InvalidParameter { .. })));
    }
}
