//! §1 Inverse-transform sampling: X = F⁻¹(U) with U ~ Uniform(0, 1).
//!
//! Derived in `notebooks/01-inverse-transform-sampling.ipynb` (section 逆变换采样 of the text).
//!
//! ## The claim and the text's proof
//!
//! Let `X` be a random variable with cumulative distribution function (CDF)
//!
//! ```text
//! F(x) = P(X ≤ x) = ∫_{−∞}^{x} p(t) dt                                   (1.1)
//! ```
//!
//! Suppose a strictly increasing map `T: [0, 1] → ℝ` turns a uniform `U` into `X`, `T(U) = X`.
//! Then, step by step (the text's proof):
//!
//! ```text
//! F(x) = P(X ≤ x)                 definition (1.1)
//!      = P(T(U) ≤ x)              X = T(U)
//!      = P(U ≤ T⁻¹(x))            T is strictly increasing, so T(U) ≤ x ⇔ U ≤ T⁻¹(x)
//!      = T⁻¹(x)                   P(U ≤ u) = u for u ∈ [0, 1]                (1.2)
//! ```
//!
//! so `T⁻¹ = F` and `T = F⁻¹`: drawing `u` uniformly and returning `F⁻¹(u)` samples `X`.
//!
//! Symbols: `x` a value of `X`; `p` its density; `U` a uniform random number on [0, 1] and `u` one
//! draw of it; `T` the map from `u` to `x`; `F⁻¹` the inverse of `F`.
//!
//! When `F` has flat parts (no mass on an interval) or jumps (a discrete distribution), `F⁻¹` is
//! the *generalised inverse*
//!
//! ```text
//! F⁻¹(u) = inf { x : F(x) ≥ u },   u ∈ (0, 1]                            (1.3)
//! ```
//!
//! and the proof goes through unchanged, because `F⁻¹(u) ≤ x ⇔ u ≤ F(x)` still holds. At `u = 0`
//! (1.3) is `−∞` for every distribution; every implementation here returns instead the left end
//! of the support, `inf { x : F(x) > 0 }` (which may be `−∞`), and at `u = 1` (1.3) is the right
//! end (which may be `+∞`) — in exact arithmetic. The numerical inverse works inside a bracket
//! [lo, hi] and returns its ends when the support is wider; and it sees only the CDF as computed
//! in f64, which rounds to exactly 1 before the end of an unbounded support (the logistic CDF
//! does from x ≈ 36.7), so at `u = 1` it returns the first x where the computed F reaches 1: the
//! right end of the support when F reaches 1 there, else that rounding point, not `hi`.
//! Samplers never meet `u = 0` or `u = 1`, see below.
//!
//! ## What is here
//!
//! One trait, [`InverseCdf`], with [`InverseCdf::sample`] drawing `U` and mapping it, and one
//! implementation per kind of target:
//!
//! | target | type | how `F⁻¹(u)` is found |
//! |---|---|---|
//! | a `statrs` continuous distribution | [`StatrsInverse`] | statrs' own `inverse_cdf` |
//! | any CDF given as a closure | [`NumericInverse`] | safeguarded root finding on a bracket, tolerance in `x` |
//! | a 1-D Gaussian mixture (no closed-form `F⁻¹`) | [`GaussianMixture1d`] → [`NumericInverse`] | as above, with the pdf for Newton steps |
//! | a discrete distribution | [`Discrete`] | binary search over cumulative sums |
//! | the empirical CDF of data | [`EmpiricalCdf`] | the order statistic `x_(⌈n·u⌉)` |
//!
//! and the bridge the text makes to VAEs, [`GaussianToTarget`]: `x = F⁻¹(Φ(z))` maps a standard
//! normal latent `z` to the target, a one-dimensional "decoder" built by hand.
//!
//! ## Where `u` comes from
//!
//! Samplers draw `U` with [`rand::distr::Open01`]: the 2⁵² points `(k + ½)·2⁻⁵²`, never 0 and never
//! 1, so `F⁻¹(U)` is finite even when the support is the whole real line. Every public inverse
//! that takes `u` from the caller checks it first: `u` outside [0, 1], or NaN, is an
//! [`Error::InvalidParameter`], never a NaN or a panic.

mod decoder;
mod discrete;
mod empirical;
mod mixture;
mod numeric;
mod slider;
mod statrs_inverse;

pub use crate::base::prob::PROB_SUM_TOL;
pub use decoder::{GaussianToTarget, STATRS_PHI_REL_ERR};
pub use discrete::Discrete;
pub use empirical::EmpiricalCdf;
pub use mixture::GaussianMixture1d;
pub use numeric::{
    BoxedFn, DEFAULT_X_TOL, Inversion, MASS_TOL, MAX_ITER, MONOTONE_SLACK, NumericInverse, PROBE_POINTS,
};
pub use slider::{QuantileFrame, QuantileFrames, quantile_frames, quantile_slider};
pub use statrs_inverse::StatrsInverse;

use ndarray::{Array1, ArrayRef1};
use rand::Rng;
use rand::distr::Open01;

use crate::base::error::{Error, Result};

/// A number checked to lie in [0, 1]: the argument of every quantile function here.
///
/// Made only by [`Probability::new`] (or inside the crate from a draw of `Open01`), so an
/// [`InverseCdf::quantile`] never sees a `u` outside [0, 1] or a NaN.
///
/// ```
/// use vaelab::lessons::sampling::Probability;
/// assert_eq!(Probability::new(0.25).unwrap().get(), 0.25);
/// assert!(Probability::new(1.5).is_err());
/// assert!(Probability::new(f64::NAN).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Probability(f64);

impl Probability {
    /// Checks `0 ≤ u ≤ 1` (NaN fails); the error names `u` and its value.
    pub fn new(u: f64) -> Result<Self> {
        Self::named("u", u)
    }

    /// As [`Probability::new`], with the caller's name for the value in the error.
    pub(crate) fn named(name: &str, u: f64) -> Result<Self> {
        crate::base::error::ensure_probability(name, u)?;
        Ok(Probability(u))
    }

    /// The number itself.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A distribution on the real line that can be sampled by inverse transform, X = F⁻¹(U).
///
/// Implementors write [`InverseCdf::quantile`], the generalised inverse (1.3) for a checked
/// `u`; the trait adds the checked scalar and array versions and the sampler.
pub trait InverseCdf {
    /// The generalised inverse of the CDF at a checked `u`:
    ///
    /// ```text
    /// F⁻¹(u) = inf { x : F(x) ≥ u }                                          (1.3)
    /// ```
    ///
    /// `F` the target's CDF, `u ∈ [0, 1]`. At `u = 0` and `u = 1` the ends of the support.
    ///
    /// # Errors
    /// Only where the inverse itself can fail: a numerical inverse whose CDF closure returns a
    /// non-finite value during the search, or a statrs inverse that returns NaN.
    fn quantile(&self, u: Probability) -> Result<f64>;

    /// `F⁻¹(u)` for a `u` from the caller: checks `u ∈ [0, 1]` first.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming `u` when it is outside [0, 1] or NaN; otherwise as
    /// [`InverseCdf::quantile`].
    fn inverse_cdf(&self, u: f64) -> Result<f64> {
        self.quantile(Probability::new(u)?)
    }

    /// `F⁻¹` applied to each element: the map u → x, e.g. to plot it.
    ///
    /// # Shapes
    /// `u`: (N,) → (N,).
    ///
    /// # Errors
    /// As [`InverseCdf::inverse_cdf`], naming the first bad element (`u[i]`).
    fn inverse_cdf_array(&self, u: &ArrayRef1<f64>) -> Result<Array1<f64>> {
        u.iter()
            .enumerate()
            .map(|(i, &u)| self.quantile(Probability::named(&format!("u[{i}]"), u)?))
            .collect()
    }

    /// Draws `n` samples by inverse transform:
    ///
    /// ```text
    /// x_i = F⁻¹(u_i),   u_i ~ Uniform(0, 1) i.i.d.,   i = 1..N                (1.4)
    /// ```
    ///
    /// `u_i` come from [`rand::distr::Open01`] (never exactly 0 or 1), so every `x_i` is finite.
    ///
    /// # Shapes
    /// Returns (N,) with N = `n`.
    ///
    /// # Errors
    /// [`Error::Empty`] when `n = 0`; otherwise as [`InverseCdf::quantile`].
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Result<Array1<f64>>
    where
        Self: Sized,
    {
        let u = draw_uniform(n, rng)?; // (N,)
        u.iter().map(|&u| self.quantile(Probability(u))).collect()
    }
}

/// `n` draws of `U ~ Uniform(0, 1)` from the open interval (`Open01`), shape (N,).
pub(crate) fn draw_uniform<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Result<Array1<f64>> {
    use ndarray_rand::RandomExt;
    if n == 0 {
        return Err(Error::empty("sample size n", "sample"));
    }
    Ok(Array1::random_using(n, Open01, rng))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_rejects_outside_unit_interval_and_nan() {
        for bad in [-1e-300, -0.5, 1.0 + f64::EPSILON, 2.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = Probability::new(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidParameter { ref name, .. } if name == "u"), "{bad}: {e}");
        }
        for good in [0.0, 1e-300, 0.5, 1.0] {
            assert_eq!(Probability::new(good).unwrap().get(), good);
        }
    }

    #[test]
    fn uniform_draws_are_strictly_inside_and_zero_draws_is_an_error() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let u = draw_uniform(10_000, &mut rng).unwrap();
        assert!(u.iter().all(|&u| u > 0.0 && u < 1.0));
        assert!(matches!(draw_uniform(0, &mut rng), Err(Error::Empty { .. })));
    }
}
