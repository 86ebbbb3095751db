//! Inverse transform for any `statrs` continuous distribution.

use statrs::distribution::ContinuousCDF;

use super::{InverseCdf, Probability};
use crate::base::error::{Error, Result};

/// A `statrs` continuous distribution sampled by inverse transform, x = F⁻¹(u), with statrs'
/// own `inverse_cdf` (closed form for e.g. `Normal`, `Exp`; statrs' own root finder for e.g.
/// `Gamma`).
///
/// ```text
/// x = F_D⁻¹(u),   u ∈ [0, 1]
/// ```
///
/// `F_D` the CDF of the wrapped distribution `D`. Derived in notebook 01.
///
/// # Shapes
/// Scalar in, scalar out; [`InverseCdf::sample`] returns (N,).
///
/// ```
/// use vaelab::lessons::sampling::{InverseCdf, StatrsInverse};
/// use vaelab::statrs::distribution::Exp;
/// // Exponential with rate λ = 2: F⁻¹(u) = −ln(1 − u)/λ, so F⁻¹(1 − e⁻¹) = 1/2.
/// let exp = StatrsInverse::new(Exp::new(2.0).unwrap());
/// let x = exp.inverse_cdf(1.0 - (-1.0f64).exp()).unwrap();
/// assert!((x - 0.5).abs() < 1e-15);
/// assert!(exp.inverse_cdf(1.5).is_err()); // u outside [0, 1]: a typed error, not a panic
/// ```
#[derive(Clone, Debug)]
pub struct StatrsInverse<D> {
    dist: D,
}

impl<D: ContinuousCDF<f64, f64>> StatrsInverse<D> {
    /// Wraps a statrs distribution (already validated by its own `new`).
    pub fn new(dist: D) -> Self {
        StatrsInverse { dist }
    }

    /// The wrapped distribution, e.g. for its `cdf` in a goodness-of-fit test.
    pub fn dist(&self) -> &D {
        &self.dist
    }
}

impl<D: ContinuousCDF<f64, f64>> InverseCdf for StatrsInverse<D> {
    /// statrs' `inverse_cdf(u)`; at `u = 0` / `u = 1` the ends of the support (`∓∞` for a
    /// Normal).
    fn quantile(&self, u: Probability) -> Result<f64> {
        let x = self.dist.inverse_cdf(u.get());
        if x.is_nan() {
            return Err(Error::invalid("u", u.get(), "statrs' inverse_cdf returned NaN at this u"));
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::{Exp, Normal};

    #[test]
    fn normal_quantiles_match_the_standard_table_and_the_ends_are_infinite() {
        // Φ⁻¹(0.975) = 1.959963984540054 (the two-sided 5 % point of every normal table).
        let n = StatrsInverse::new(Normal::new(0.0, 1.0).unwrap());
        assert!((n.inverse_cdf(0.975).unwrap() - 1.959963984540054).abs() < 1e-12);
        assert_eq!(n.inverse_cdf(0.0).unwrap(), f64::NEG_INFINITY);
        assert_eq!(n.inverse_cdf(1.0).unwrap(), f64::INFINITY);
    }

    #[test]
    fn bad_u_is_a_typed_error_not_a_panic() {
        // statrs' Normal::inverse_cdf panics outside [0, 1]; the wrapper must stop u first.
        let n = StatrsInverse::new(Normal::new(0.0, 1.0).unwrap());
        let e = StatrsInverse::new(Exp::new(1.0).unwrap());
        for bad in [-0.1, 1.1, f64::NAN] {
            assert!(matches!(n.inverse_cdf(bad), Err(Error::InvalidParameter { .. })), "{bad}");
            assert!(matches!(e.inverse_cdf(bad), Err(Error::InvalidParameter { .. })), "{bad}");
        }
        let u = ndarray::array![0.5, 2.0];
        let err = n.inverse_cdf_array(&u).unwrap_err().to_string();
        assert!(err.contains("u[1] = 2"), "{err}");
    }
}
