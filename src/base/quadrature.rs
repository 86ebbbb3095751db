//! Adaptive Gauss–Kronrod quadrature (7-point Gauss, 15-point Kronrod), vectorised over the nodes.

use ndarray::{Array1, ArrayView1};

use crate::base::error::{Error, Result};

/// Kronrod abscissae on [−1, 1] (the non-negative half; QUADPACK `qk15`).
const XGK: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
/// Kronrod weights for [`XGK`].
const WGK: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_2,
    0.140_653_259_715_525_9,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_727_8,
];
/// Gauss weights for the nodes XGK[1], XGK[3], XGK[5], XGK[7].
const WG: [f64; 4] =
    [0.129_484_966_168_869_7, 0.279_705_391_489_276_7, 0.381_830_050_505_118_9, 0.417_959_183_673_469_4];

/// Most panels the adaptive loop may create before giving up.
pub const MAX_PANELS: usize = 10_000;

/// An integral with its error estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quadrature {
    /// The value of ∫ f.
    pub value: f64,
    /// The sum over panels of |K15 − G7|, a conservative bound on |value − ∫ f| for smooth f.
    pub error: f64,
    /// Number of integrand evaluations (15 per panel).
    pub evaluations: usize,
}

/// ∫ f(t) dt over `[breakpoints[0], breakpoints[last]]` by globally adaptive Gauss–Kronrod 7–15.
///
/// ```text
/// ∫ₐᵇ f(t) dt ≈ K₁₅ = h Σᵢ wᵢᴷ f(c + h xᵢ),    c = (a + b)/2,  h = (b − a)/2
/// error ≈ |K₁₅ − G₇|   (G₇ the Gauss rule on every second Kronrod node)
/// ```
/// The panel with the largest error is bisected until Σ error ≤ max(abs_tol, rel_tol·|value|)
/// (Piessens et al. 1983, QUADPACK `qag` with the plain |K − G| estimate). Breakpoints split the
/// range where the integrand has features (peaks) that a first coarse look could miss.
///
/// `f` receives the 15 nodes of a panel at once and returns the 15 values (vectorised).
///
/// # Errors
/// [`Error::InvalidParameter`] if fewer than two breakpoints are given, they are not finite and
/// strictly increasing, or the tolerances are not positive; [`Error::NonFinite`] if `f` returns a
/// NaN or an infinity; [`Error::NoConvergence`] if [`MAX_PANELS`] panels do not reach the tolerance.
///
/// ```
/// use vaelab::base::quadrature::integrate;
/// // ∫₀^π sin t dt = 2
/// let q = integrate(|t| t.mapv(f64::sin), &[0.0, std::f64::consts::PI], 1e-12, 0.0).unwrap();
/// assert!((q.value - 2.0).abs() < 1e-12);
/// ```
pub fn integrate(
    f: impl Fn(ArrayView1<f64>) -> Array1<f64>,
    breakpoints: &[f64],
    rel_tol: f64,
    abs_tol: f64,
) -> Result<Quadrature> {
    if breakpoints.len() < 2 {
        return Err(Error::invalid("breakpoints", format!("{breakpoints:?}"), "need at least [a, b]"));
    }
    if breakpoints.iter().any(|t| !t.is_finite()) || breakpoints.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid(
            "breakpoints",
            format!("{breakpoints:?}"),
            "must be finite and strictly increasing",
        ));
    }
    if !(rel_tol >= 0.0 && abs_tol >= 0.0 && rel_tol + abs_tol > 0.0) {
        return Err(Error::invalid(
            "tolerance",
            format!("rel {rel_tol}, abs {abs_tol}"),
            "must be ≥ 0, not both 0",
        ));
    }
    let mut panels: Vec<(f64, f64, f64, f64)> = Vec::new(); // (a, b, value, error)
    for w in breakpoints.windows(2) {
        let (v, e) = kronrod(&f, w[0], w[1])?;
        panels.push((w[0], w[1], v, e));
    }
    loop {
        let value: f64 = panels.iter().map(|p| p.2).sum();
        let error: f64 = panels.iter().map(|p| p.3).sum();
        if error <= abs_tol.max(rel_tol * value.abs()) {
            return Ok(Quadrature { value, error, evaluations: 15 * panels.len() });
        }
        if panels.len() >= MAX_PANELS {
            return Err(Error::NoConvergence {
                what: "adaptive Gauss–Kronrod quadrature".into(),
                detail: format!(
                    "{} panels, error estimate {error:e} > tolerance (rel {rel_tol:e}, abs {abs_tol:e}), value {value:e}",
                    panels.len()
                ),
            });
        }
        let worst =
            (0..panels.len()).max_by(|&i, &j| panels[i].3.total_cmp(&panels[j].3)).expect("non-empty");
        let (a, b, _, _) = panels.swap_remove(worst);
        let mid = 0.5 * (a + b);
        let (v1, e1) = kronrod(&f, a, mid)?;
        let (v2, e2) = kronrod(&f, mid, b)?;
        panels.push((a, mid, v1, e1));
        panels.push((mid, b, v2, e2));
    }
}

/// One Gauss–Kronrod panel: (K15, |K15 − G7|).
fn kronrod(f: &impl Fn(ArrayView1<f64>) -> Array1<f64>, a: f64, b: f64) -> Result<(f64, f64)> {
    let (c, h) = (0.5 * (a + b), 0.5 * (b - a));
    // Nodes: c − h x₀..x₆, c, c + h x₆..x₀ (15 in all).
    let mut nodes = Array1::zeros(15);
    for i in 0..7 {
        nodes[i] = c - h * XGK[i];
        nodes[14 - i] = c + h * XGK[i];
    }
    nodes[7] = c;
    let fx = f(nodes.view());
    assert!(fx.len() == 15, "quadrature integrand returned {} values for 15 nodes", fx.len());
    if let Some(i) = fx.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            name: format!("integrand at t = {}", nodes[i]),
            index: i,
            value: fx[i],
        });
    }
    let mut k = WGK[7] * fx[7];
    let mut g = WG[3] * fx[7];
    for i in 0..7 {
        let pair = fx[i] + fx[14 - i];
        k += WGK[i] * pair;
        if i % 2 == 1 {
            g += WG[i / 2] * pair;
        }
    }
    Ok((h * k, (h * (k - g)).abs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::{ContinuousCDF, Normal};

    #[test]
    fn integrates_known_functions_to_the_requested_accuracy() {
        // ∫ N(t; 0.3, 0.05²) dt over [−1, 2] = Φ((2−0.3)/0.05) − Φ((−1−0.3)/0.05), from statrs.
        let n = Normal::new(0.3, 0.05).unwrap();
        let exact = n.cdf(2.0) - n.cdf(-1.0);
        let pdf = |t: ArrayView1<f64>| {
            t.mapv(|t| {
                (-0.5 * ((t - 0.3) / 0.05_f64).powi(2)).exp() / (0.05 * (2.0 * std::f64::consts::PI).sqrt())
            })
        };
        let q = integrate(pdf, &[-1.0, 2.0], 1e-10, 0.0).unwrap();
        assert!((q.value - exact).abs() <= 1e-10 * exact, "{} vs {exact}", q.value);
        assert!(q.error <= 1e-10 * q.value.abs());
        // A polynomial of degree ≤ 22 is integrated exactly by one K15 panel: ∫₀¹ t²⁰ = 1/21.
        let q = integrate(|t| t.mapv(|t| t.powi(20)), &[0.0, 1.0], 1e-14, 0.0).unwrap();
        assert!((q.value - 1.0 / 21.0).abs() < 1e-15);
    }

    #[test]
    fn bad_brackets_and_non_finite_integrands_are_errors() {
        assert!(integrate(|t| t.to_owned(), &[1.0], 1e-8, 0.0).is_err());
        let e = integrate(|t| t.to_owned(), &[1.0, 0.0], 1e-8, 0.0).unwrap_err();
        assert!(e.to_string().contains("breakpoints"), "{e}");
        let e = integrate(|t| t.mapv(|t| 1.0 / t), &[-1.0, 1.0], 1e-8, 0.0);
        // The midpoint node t = 0 gives 1/0 = inf: reported, not integrated.
        assert!(matches!(e, Err(Error::NonFinite { .. })), "{e:?}");
    }
}
