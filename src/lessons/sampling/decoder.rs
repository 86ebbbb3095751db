//! The bridge to VAEs: a one-dimensional decoder x = F⁻¹(Φ(z)) built by hand.

use ndarray::{Array1, ArrayRef1};
use rand::Rng;
use rand_distr::StandardNormal;

use super::{InverseCdf, Probability};
use crate::base::error::{Error, Result};

/// A hand-built one-dimensional "decoder": it maps a standard-normal latent `z` to the target by
///
/// ```text
/// x = g(z) = F⁻¹(Φ(z)),    Φ(z) = ½·erfc(−z/√2)                             (1.9)
/// ```
///
/// `z ~ N(0, 1)` the latent, `Φ` the standard normal CDF, `F⁻¹` the target's (generalised)
/// inverse CDF, `erfc` the complementary error function. Why it works: for `z ~ N(0, 1)`,
/// `P(Φ(z) ≤ u) = P(z ≤ Φ⁻¹(u)) = Φ(Φ⁻¹(u)) = u`, the steps of (1.2) with `T = Φ⁻¹`, so
/// `Φ(z) ~ Uniform(0, 1)` and then (1.4) applies.
/// This is the text's point about VAEs: a generative model is a map from simple noise to data;
/// here the map is written down from `F`, a VAE's decoder learns it, in many dimensions.
///
/// Extreme latents: `Φ(z)` computed as `½·erfc(−z/√2)` keeps full relative precision in the left
/// tail, but rounds to exactly 1 for `z ≳ 8.3` (f64 has no number between 1 − 2⁻⁵³ and 1) and
/// underflows to exactly 0 for `z ≲ −38.5`. There `F⁻¹(Φ(z))` would be the end of the support
/// (`±∞` for a Normal), so [`GaussianToTarget::decode`] returns an error instead of clamping. A
/// standard-normal `z` lands there with probability ≈ 5·10⁻¹⁷ per draw.
///
/// # Shapes
/// Scalar in, scalar out; arrays (N,) → (N,).
///
/// ```
/// use vaelab::lessons::sampling::{GaussianToTarget, StatrsInverse};
/// use vaelab::statrs::distribution::Exp;
/// // Exponential with rate 1: F⁻¹(u) = −ln(1 − u), and Φ(0) = ½, so g(0) = ln 2.
/// let g = GaussianToTarget::new(StatrsInverse::new(Exp::new(1.0).unwrap()));
/// assert!((g.decode(0.0).unwrap() - 2f64.ln()).abs() < 1e-15);
/// assert!(g.decode(9.0).is_err()); // Φ(9) rounds to 1: refused, not clamped
/// ```
#[derive(Clone, Debug)]
pub struct GaussianToTarget<T> {
    target: T,
}

/// Relative error of statrs 0.19's standard normal CDF `Φ(z) = ½·erfc(−z/√2)` in its left tail,
/// `|Φ̃(z) − Φ(z)| ≤ 1.2·10⁻¹⁰ · Φ(z)` for `−37 ≤ z ≤ 0` (and by symmetry `≤ 1.2·10⁻¹⁰·(1 − Φ(z))`
/// for `z ≥ 0`): measured against `libm::erfc` (a port of FreeBSD's, error < 1 ulp) by a test in
/// this module; the worst case, 1.03·10⁻¹⁰, is near `z = −0.7`. Statrs' `Normal::cdf` is the same
/// function. Tolerances of checks that go through `Φ` are derived from it; for sampling it is far
/// below anything a test can see (a KS test with N = 10⁵ resolves about 10⁻²).
pub const STATRS_PHI_REL_ERR: f64 = 1.2e-10;

/// `Φ(z) = ½·erfc(−z/√2)`, eq. (1.9).
fn std_normal_cdf(z: f64) -> f64 {
    0.5 * statrs::function::erf::erfc(-z / std::f64::consts::SQRT_2)
}

impl<T: InverseCdf> GaussianToTarget<T> {
    /// The decoder for `target`.
    pub fn new(target: T) -> Self {
        GaussianToTarget { target }
    }

    /// The target distribution.
    pub fn target(&self) -> &T {
        &self.target
    }

    /// `x = F⁻¹(Φ(z))`, eq. (1.9).
    ///
    /// # Errors
    /// [`Error::NonFinite`] for a NaN or infinite `z`; [`Error::InvalidParameter`] naming `z` when
    /// `Φ(z)` is exactly 0 or 1 in f64 (see the type's docs); otherwise as the target's
    /// [`InverseCdf::quantile`].
    pub fn decode(&self, z: f64) -> Result<f64> {
        if !z.is_finite() {
            return Err(Error::NonFinite { name: "z".into(), index: 0, value: z });
        }
        let u = std_normal_cdf(z);
        if u <= 0.0 || u >= 1.0 {
            return Err(Error::invalid(
                "z",
                z,
                format!(
                    "Φ(z) = {u} exactly in f64, so F⁻¹(Φ(z)) would be the end of the support; the decoder needs 0 < Φ(z) < 1 (about −38.5 < z < 8.3)"
                ),
            ));
        }
        self.target.quantile(Probability(u))
    }

    /// [`GaussianToTarget::decode`] on each element.
    ///
    /// # Shapes
    /// `z`: (N,) → (N,).
    ///
    /// # Errors
    /// As [`GaussianToTarget::decode`], for the first bad element (its index in the message).
    pub fn decode_array(&self, z: &ArrayRef1<f64>) -> Result<Array1<f64>> {
        z.iter()
            .enumerate()
            .map(|(i, &z)| match self.decode(z) {
                Err(Error::NonFinite { name, value, .. }) => Err(Error::NonFinite { name, index: i, value }),
                Err(Error::InvalidParameter { value, reason, .. }) => {
                    Err(Error::InvalidParameter { name: format!("z[{i}]"), value, reason })
                }
                other => other,
            })
            .collect()
    }

    /// Draws `n` latents `z_i ~ N(0, 1)` and decodes them: the generative model
    /// `x_i = g(z_i)`, eq. (1.9). Returns `(z, x)` so the map can be plotted.
    ///
    /// # Shapes
    /// Returns ((N,), (N,)) with N = `n`.
    ///
    /// # Errors
    /// [`Error::Empty`] when `n = 0`; otherwise as [`GaussianToTarget::decode_array`].
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Result<(Array1<f64>, Array1<f64>)> {
        use ndarray_rand::RandomExt;
        if n == 0 {
            return Err(Error::empty("sample size n", "sample"));
        }
        let z = Array1::random_using(n, StandardNormal, rng); // (N,)
        let x = self.decode_array(&z)?; // (N,)
        Ok((z, x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::sampling::StatrsInverse;
    use statrs::distribution::{ContinuousCDF, Normal};

    #[test]
    fn statrs_phi_is_within_its_stated_relative_error() {
        // The assumption behind STATRS_PHI_REL_ERR, checked against libm's erfc on z ∈ [−37, 0].
        let mut worst: f64 = 0.0;
        for i in 0..=37_000 {
            let z = -37.0 + i as f64 * 1e-3;
            let reference = 0.5 * libm::erfc(-z / std::f64::consts::SQRT_2);
            worst = worst.max((std_normal_cdf(z) - reference).abs() / reference);
        }
        assert!(worst <= STATRS_PHI_REL_ERR, "worst relative error {worst:e}");
    }

    #[test]
    fn decoding_into_a_normal_is_the_affine_map() {
        // Target N(μ, σ²): F⁻¹(Φ(z)) = μ + σ·z exactly, an independent closed form. The computed
        // u = Φ̃(z) is off by du ≤ REL·min(u, 1 − u) (statrs' Φ) + ε/2·u (rounding of u; near 1 this
        // is the spacing of f64 below 1), which moves z by du/φ(z); statrs' erfc⁻¹ adds a few ε.
        let (mu, sigma) = (1.5, 2.0);
        let g = GaussianToTarget::new(StatrsInverse::new(Normal::new(mu, sigma).unwrap()));
        for z in [-30.0, -8.0, -2.0, -1.0, -0.3, 0.0, 0.7, 1.0, 3.0, 6.0, 8.0] {
            let u = std_normal_cdf(z);
            let density = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let du = STATRS_PHI_REL_ERR * u.min(1.0 - u) + 0.5 * f64::EPSILON * u;
            let tol = sigma * (du / density + 4.0 * f64::EPSILON * (1.0 + z.abs()));
            let x = g.decode(z).unwrap();
            assert!(
                (x - (mu + sigma * z)).abs() <= tol,
                "z = {z}: {x}, error {:e} > {tol:e}",
                x - mu - sigma * z
            );
        }
    }

    #[test]
    fn the_stated_range_of_z_is_where_phi_is_strictly_inside() {
        // Statrs' Φ (an independent implementation of the same erfc formula) agrees on the edges.
        let phi = Normal::new(0.0, 1.0).unwrap();
        for z in [8.2, 8.3, -38.4, -38.6] {
            assert_eq!(std_normal_cdf(z), phi.cdf(z), "z = {z}");
        }
        assert!(std_normal_cdf(8.2) < 1.0 && std_normal_cdf(8.3) == 1.0);
        assert!(std_normal_cdf(-38.4) > 0.0 && std_normal_cdf(-38.6) == 0.0);
        let g = GaussianToTarget::new(StatrsInverse::new(Normal::new(0.0, 1.0).unwrap()));
        for bad in [8.3, 40.0, -38.6] {
            let e = g.decode(bad).unwrap_err();
            assert!(matches!(e, Error::InvalidParameter { ref name, .. } if name == "z"), "{bad}: {e}");
        }
        assert!(matches!(g.decode(f64::NAN), Err(Error::NonFinite { .. })));
        let e = g.decode_array(&ndarray::array![0.0, 1.0, 9.0]).unwrap_err();
        assert!(e.to_string().starts_with("invalid z[2] = 9"), "{e}");
    }
}
