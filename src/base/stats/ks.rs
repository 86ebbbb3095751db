//! The one-sample Kolmogorov–Smirnov test.

use std::f64::consts::PI;
use std::fmt;

use ndarray::ArrayRef1;

use crate::base::error::{Error, Result, ensure_finite};

/// Below this `t` the Kolmogorov tail is computed from the theta-function series (1.11b), above
/// it from the alternating series (1.11a); both converge in a few terms on their side
/// (Numerical Recipes, 3rd ed., §6.14.12, uses the same split).
const SERIES_SWITCH: f64 = 1.18;

/// The outcome of [`ks_test`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KsTest {
    /// Number of samples `n`.
    pub n: usize,
    /// `D_n = sup_x |F_n(x) − F(x)|`, eq. (1.10).
    pub statistic: f64,
    /// `P(D_n ≥ observed)` if the samples come from `F`, eq. (1.12).
    pub p_value: f64,
}

impl fmt::Display for KsTest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "KS: n = {}, D_n = {:.5}, √n·D_n = {:.4}, p = {:.4}",
            self.n,
            self.statistic,
            (self.n as f64).sqrt() * self.statistic,
            self.p_value
        )
    }
}

/// The one-sample Kolmogorov–Smirnov statistic of `samples` against the CDF `cdf`:
///
/// ```text
/// D_n = sup_x |F_n(x) − F(x)| = max_{1≤i≤n} max( i/n − F(x_(i)), F(x_(i)⁻) − (i−1)/n )  (1.10)
/// ```
///
/// `F_n` the empirical CDF of the `n` samples, `F` the hypothesised CDF, `x_(i)` the i-th
/// smallest sample, `F(x⁻)` the left limit of `F` at `x`. The supremum is attained at a sample,
/// at it or just left of it, where `F_n` jumps from `(i−1)/n` to `i/n`. `F(x⁻)` is evaluated at
/// the float just below `x`: exact for a step CDF (a discrete or empirical target, whose jump at
/// `x` must not be counted before `x`), and equal to `F(x)` up to rounding for a continuous one.
/// Tied samples are handled by the same formula (the last of a tie carries `F_n(x)`).
///
/// # Shapes
/// `samples`: (N,) → scalar.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::stats::ks_statistic;
/// // Against Uniform(0, 1), F(x) = x: at 0.25 and 0.75 the gaps are all 1/4.
/// let d = ks_statistic(&array![0.75, 0.25], |x| x.clamp(0.0, 1.0)).unwrap();
/// assert_eq!(d, 0.25);
/// ```
///
/// # Errors
/// [`Error::Empty`] for no samples; [`Error::NonFinite`] naming the first non-finite sample;
/// [`Error::InvalidParameter`] when `cdf` returns a value outside [0, 1] or NaN at a sample.
pub fn ks_statistic(samples: &ArrayRef1<f64>, cdf: impl Fn(f64) -> f64) -> Result<f64> {
    if samples.is_empty() {
        return Err(Error::empty("samples", "sample"));
    }
    ensure_finite("samples", samples.iter())?;
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let mut d: f64 = 0.0;
    let checked = |x: f64| {
        let f = cdf(x);
        if (0.0..=1.0).contains(&f) {
            Ok(f)
        } else {
            Err(Error::invalid("cdf", format!("F({x}) = {f}"), "a CDF must return a value in [0, 1]"))
        }
    };
    for (i, &x) in sorted.iter().enumerate() {
        let (f, f_left) = (checked(x)?, checked(float_below(x))?);
        // i is 0-based here: F_n jumps from i/n to (i+1)/n at x.
        d = d.max((i + 1) as f64 / n - f).max(f_left - i as f64 / n);
    }
    Ok(d)
}

/// The largest f64 below a finite `x` (`f64::next_down`, written out for Rust 1.85).
fn float_below(x: f64) -> f64 {
    if x == 0.0 {
        -f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() - 1)
    } else {
        f64::from_bits(x.to_bits() + 1)
    }
}

/// The tail of the Kolmogorov distribution, the limit law of `√n·D_n`:
///
/// ```text
/// Q_KS(t) = P(K > t) = 2 Σ_{k≥1} (−1)^{k−1} exp(−2k²t²)                       (1.11a)
///         = 1 − (√(2π)/t) Σ_{k≥1} exp(−(2k−1)²π²/(8t²))                      (1.11b)
/// ```
///
/// `K` a Kolmogorov random variable, `t ≥ 0`. The two series are equal (Jacobi's theta
/// transformation); (1.11a) is used for `t ≥ 1.18`, (1.11b) below. `Q_KS(t) = 1` for `t ≤ 0`.
/// Kolmogorov (1933); Numerical Recipes, 3rd ed., §6.14.12.
///
/// ```
/// use vaelab::base::stats::kolmogorov_sf;
/// // The 5 % critical value of the Kolmogorov distribution is 1.358 (the one-term
/// // approximation √(−½ ln(α/2)) at α = 0.05 gives 1.35810).
/// assert!((kolmogorov_sf(1.35810).unwrap() - 0.05).abs() < 1e-5);
/// ```
///
/// # Errors
/// [`Error::InvalidParameter`] for a NaN `t`.
pub fn kolmogorov_sf(t: f64) -> Result<f64> {
    if t.is_nan() {
        return Err(Error::invalid("t", t, "must be a number"));
    }
    Ok(if t <= 0.0 {
        1.0
    } else if t < SERIES_SWITCH {
        (1.0 - kolmogorov_cdf_theta(t)).clamp(0.0, 1.0)
    } else {
        kolmogorov_sf_alternating(t).clamp(0.0, 1.0)
    })
}

/// (1.11a), for `t > 0`; terms are summed until one is below ε times the sum.
fn kolmogorov_sf_alternating(t: f64) -> f64 {
    let mut sum = 0.0;
    let mut sign = 1.0;
    for k in 1..=100 {
        let term = (-2.0 * (k * k) as f64 * t * t).exp();
        sum += sign * term;
        sign = -sign;
        if term <= f64::EPSILON * sum.abs() {
            break;
        }
    }
    2.0 * sum
}

/// `P(K ≤ t)` by the theta series inside (1.11b), for `t > 0`.
fn kolmogorov_cdf_theta(t: f64) -> f64 {
    let mut sum = 0.0;
    for k in 1..=100 {
        let m = (2 * k - 1) as f64;
        let term = (-m * m * PI * PI / (8.0 * t * t)).exp();
        sum += term;
        if term <= f64::EPSILON * sum {
            break;
        }
    }
    (2.0 * PI).sqrt() / t * sum
}

/// The p-value of a KS statistic `d` from `n` samples, with Stephens' correction:
///
/// ```text
/// p ≈ Q_KS( (√n + 0.12 + 0.11/√n) · d )                                      (1.12)
/// ```
///
/// `Q_KS` of (1.11a), `n` the sample size, `d = D_n`. Without the correction, `Q_KS(√n·d)` is
/// the `n → ∞` limit; the correction makes (1.12) accurate to about 0.001 in `p` already for
/// `n ≥ 5` at the usual levels. Stephens, M. A. (1970), "Use of the Kolmogorov–Smirnov,
/// Cramér–von Mises and related statistics without extensive tables", JRSS B 32, 115–122;
/// Numerical Recipes, 3rd ed., §14.3.3.
///
/// ```
/// use vaelab::base::stats::{kolmogorov_sf, ks_p_value};
/// // For n = 100, √n + 0.12 + 0.11/√n = 10.131.
/// let p = ks_p_value(0.1, 100).unwrap();
/// assert!((p - kolmogorov_sf(1.0131).unwrap()).abs() < 1e-15);
/// ```
///
/// # Errors
/// [`Error::InvalidParameter`] for `n = 0` or a `d` outside [0, 1] (or NaN).
pub fn ks_p_value(d: f64, n: usize) -> Result<f64> {
    if n == 0 {
        return Err(Error::invalid("n", n, "the sample size must be ≥ 1"));
    }
    if !(0.0..=1.0).contains(&d) {
        return Err(Error::invalid("d", d, "a KS statistic lies in [0, 1]"));
    }
    let root_n = (n as f64).sqrt();
    kolmogorov_sf((root_n + 0.12 + 0.11 / root_n) * d)
}

/// The one-sample KS test: [`ks_statistic`] (1.10) and its [`ks_p_value`] (1.12).
///
/// For a continuous `F` the p-value is as stated; for an `F` with jumps (a discrete or
/// empirical CDF) `D_n` can only be smaller, so the p-value is conservative (too large) and a
/// test at level α rejects a correct sampler with probability at most α.
///
/// # Shapes
/// `samples`: (N,) → scalars.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::stats::{ks_p_value, ks_test};
/// let t = ks_test(&array![0.1, 0.4, 0.6, 0.9], |x| x.clamp(0.0, 1.0)).unwrap();
/// assert!((t.statistic - 0.15).abs() < 1e-15); // at 0.4: F = 0.4, F_n jumps from 0.25 to 0.5
/// assert_eq!(t.p_value, ks_p_value(t.statistic, 4).unwrap());
/// ```
///
/// # Errors
/// As [`ks_statistic`].
pub fn ks_test(samples: &ArrayRef1<f64>, cdf: impl Fn(f64) -> f64) -> Result<KsTest> {
    let statistic = ks_statistic(samples, cdf)?;
    let n = samples.len();
    Ok(KsTest { n, statistic, p_value: ks_p_value(statistic, n)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array1;
    use rand::{Rng, SeedableRng};

    #[test]
    fn statistic_matches_a_brute_force_supremum() {
        // Independent route: F_n and its left limits counted directly (O(n²)) at every sample;
        // the supremum of |F_n − F| over x is attained there.
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let x: Array1<f64> = (0..60).map(|_| rng.random::<f64>().powi(2)).collect();
        let f = |x: f64| x.clamp(0.0, 1.0);
        let n = x.len() as f64;
        let mut brute: f64 = 0.0;
        for &xi in &x {
            let at = x.iter().filter(|&&v| v <= xi).count() as f64 / n;
            let left = x.iter().filter(|&&v| v < xi).count() as f64 / n;
            brute = brute.max((at - f(xi)).abs()).max((left - f(xi)).abs());
        }
        assert!((ks_statistic(&x, f).unwrap() - brute).abs() < 1e-15);
        // One sample at 1/2 against Uniform(0, 1): F_n jumps 0 → 1 where F = 1/2.
        assert_eq!(ks_statistic(&ndarray::array![0.5], f).unwrap(), 0.5);
    }

    #[test]
    fn a_step_target_matched_exactly_has_zero_statistic() {
        // Samples 0, 0, 1, 1 against P(0) = P(1) = 1/2: F_n = F everywhere, so D_n = 0. Using
        // F(x) instead of F(x⁻) on the left would count the jump early and report 1/2.
        let step = |x: f64| {
            if x < 0.0 {
                0.0
            } else if x < 1.0 {
                0.5
            } else {
                1.0
            }
        };
        assert_eq!(ks_statistic(&ndarray::array![1.0, 0.0, 1.0, 0.0], step).unwrap(), 0.0);
        // Three of the four at 0: F_n(0) = 3/4 against F(0) = 1/2.
        assert_eq!(ks_statistic(&ndarray::array![1.0, 0.0, 0.0, 0.0], step).unwrap(), 0.25);
        // float_below(x) < x with no float strictly between (their midpoint rounds to one of them).
        for x in [-2.5, -1e-300, 0.0, 1e-300, 1.0, 3.0e10] {
            let below = float_below(x);
            let mid = below / 2.0 + x / 2.0;
            assert!(below < x && (mid == below || mid == x), "{x}");
        }
    }

    #[test]
    fn the_two_series_agree_where_both_converge() {
        // (1.11a) and (1.11b) are two independent formulas for the same function.
        for i in 0..=40 {
            let t = 0.6 + i as f64 * 0.05;
            let a = kolmogorov_sf_alternating(t);
            let b = 1.0 - kolmogorov_cdf_theta(t);
            assert!((a - b).abs() < 1e-14, "t = {t}: {a} vs {b}");
        }
    }

    #[test]
    fn tail_matches_the_tabulated_critical_values() {
        // (i) c(α) = √(−½ ln(α/2)) solves 2·exp(−2t²) = α, the first term of (1.11a); the rest of
        // the alternating series is bounded by its first omitted term 2·exp(−8t²).
        for alpha in [0.2, 0.1, 0.05, 0.01, 0.001] {
            let t = (-0.5 * (alpha / 2.0f64).ln()).sqrt();
            let bound = 2.0 * (-8.0 * t * t).exp();
            assert!((kolmogorov_sf(t).unwrap() - alpha).abs() <= bound + 1e-16, "α = {alpha}");
        }
        // (ii) The 3-decimal table values 1.358 (α = 0.05) and 1.628 (α = 0.01) of the Kolmogorov
        // distribution (e.g. Numerical Recipes §14.3.3, any KS table's asymptotic row): rounding t
        // by ±5e-4 moves Q by at most |Q′(t)|·5e-4 ≤ 8t·exp(−2t²)·5e-4 < 1.4e-4 and 3.3e-5.
        assert!((kolmogorov_sf(1.358).unwrap() - 0.05).abs() < 1.4e-4);
        assert!((kolmogorov_sf(1.628).unwrap() - 0.01).abs() < 3.3e-5);
        assert_eq!(kolmogorov_sf(0.0).unwrap(), 1.0);
        assert_eq!(kolmogorov_sf(40.0).unwrap(), 0.0);
        assert!(kolmogorov_sf(f64::NAN).is_err());
    }

    #[test]
    fn stephens_p_value_is_calibrated_at_n_10_and_the_uncorrected_one_is_not() {
        // Monte Carlo, M = 40 000 KS statistics of n = 10 uniforms against F(x) = x. The rate of
        // p < 0.05 estimates P(reject) with SE = √(0.05·0.95/M) = 0.0011; allow 4 SE (0.0044).
        // Stephens' formula is off by about 0.001 in p here, inside that allowance.
        let (m, n, alpha) = (40_000, 10, 0.05);
        let se = (alpha * (1.0 - alpha) / m as f64).sqrt();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2024);
        let (mut corrected, mut uncorrected) = (0, 0);
        for _ in 0..m {
            let x: Array1<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
            let d = ks_statistic(&x, |x| x).unwrap();
            corrected += (ks_p_value(d, n).unwrap() < alpha) as usize;
            uncorrected += (kolmogorov_sf((n as f64).sqrt() * d).unwrap() < alpha) as usize;
        }
        let (rate, rate_uncorrected) = (corrected as f64 / m as f64, uncorrected as f64 / m as f64);
        assert!((rate - alpha).abs() < 4.0 * se, "rejection rate {rate}, SE {se}");
        // The check has power: the n → ∞ formula rejects too rarely at n = 10.
        assert!(rate_uncorrected < alpha - 4.0 * se, "uncorrected rate {rate_uncorrected}");
    }

    #[test]
    fn bad_inputs_get_typed_errors() {
        let f = |x: f64| x.clamp(0.0, 1.0);
        assert!(matches!(ks_statistic(&Array1::<f64>::zeros(0), f), Err(Error::Empty { .. })));
        assert!(matches!(
            ks_statistic(&ndarray::array![0.1, f64::NAN], f),
            Err(Error::NonFinite { index: 1, .. })
        ));
        let e = ks_statistic(&ndarray::array![0.5], |x| 2.0 * x + 0.5).unwrap_err();
        assert!(e.to_string().contains("F(0.5) = 1.5"), "{e}");
        assert!(ks_statistic(&ndarray::array![0.5], |_| f64::NAN).is_err());
        assert!(matches!(ks_p_value(0.1, 0), Err(Error::InvalidParameter { .. })));
        assert!(matches!(ks_p_value(1.5, 10), Err(Error::InvalidParameter { .. })));
        assert!(matches!(ks_p_value(f64::NAN, 10), Err(Error::InvalidParameter { .. })));
    }
}
