//! §1 inverse-transform sampling, checked end to end through the public API.
//!
//! Goodness of fit: every sampler draws N = 10⁵ samples with its own fixed seed (the first seed
//! written, not searched for) and must pass a KS or χ² test at α = 10⁻³. Why 10⁻³: a correct
//! sampler fails one such check with probability 10⁻³, so the ten fit checks here together fail a
//! correct crate with probability at most 1 %, whatever seeds are chosen; and at N = 10⁵ a KS test at
//! that level still detects a CDF error of about 1.95/√N ≈ 0.006 (the `*_detects_*` tests show the
//! power). The KS p-value is conservative for targets with jumps (the ECDF), see `stats::ks_test`.

use vaelab::Error;
use vaelab::base::stats::{category_counts, chi_square_test, ks_test};
use vaelab::lessons::sampling::{
    DEFAULT_X_TOL, Discrete, EmpiricalCdf, GaussianMixture1d, GaussianToTarget, InverseCdf, NumericInverse,
    STATRS_PHI_REL_ERR, StatrsInverse,
};
use vaelab::ndarray::{Array1, array};
use vaelab::rand::SeedableRng;
use vaelab::rand::rngs::StdRng;
use vaelab::statrs::distribution::{Continuous, ContinuousCDF, Exp, Normal};

const ALPHA: f64 = 1e-3;
const N: usize = 100_000;

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn mixture() -> GaussianMixture1d {
    // Three well-separated, unequal components: no closed-form F⁻¹.
    GaussianMixture1d::new(&[0.3, 0.5, 0.2], &[-3.0, 0.5, 4.0], &[0.7, 1.2, 0.4]).unwrap()
}

#[test]
fn normal_by_statrs_inverse_passes_ks() {
    let target = Normal::new(1.0, 2.0).unwrap();
    let x = StatrsInverse::new(target).sample(N, &mut rng(1)).unwrap();
    let t = ks_test(&x, |x| target.cdf(x)).unwrap();
    assert!(t.p_value > ALPHA, "{t}");
}

#[test]
fn exponential_by_statrs_inverse_passes_ks_and_is_the_hand_formula_on_the_same_draws() {
    let lambda = 1.5;
    let target = Exp::new(lambda).unwrap();
    let x = StatrsInverse::new(target).sample(N, &mut rng(2)).unwrap();
    let t = ks_test(&x, |x| target.cdf(x)).unwrap();
    assert!(t.p_value > ALPHA, "{t}");
    // Same seed, same U ~ Open01 (as documented), mapped by the hand-derived F⁻¹(u) = −ln(1−u)/λ.
    use vaelab::rand::Rng;
    let mut r = rng(2);
    for &xi in x.iter().take(1000) {
        let u: f64 = r.sample(vaelab::rand::distr::Open01);
        let by_hand = -(1.0 - u).ln() / lambda;
        // statrs uses −ln_1p(−u)/λ; the two differ by the rounding of 1 − u, ≤ ε/(1−u)/λ.
        assert!(
            (xi - by_hand).abs() <= 4.0 * f64::EPSILON * (1.0 + by_hand) / (1.0 - u),
            "{xi} vs {by_hand}"
        );
    }
}

#[test]
fn gaussian_mixture_by_numeric_inverse_passes_ks_and_matches_its_moments() {
    let m = mixture();
    let x = m.numeric_inverse().unwrap().sample(N, &mut rng(3)).unwrap();
    let t = ks_test(&x, |x| m.cdf(x)).unwrap();
    assert!(t.p_value > ALPHA, "{t}");
    // Sample mean within 4 standard errors (SE = sd/√N) of Σ w_k μ_k.
    let se = (m.variance() / N as f64).sqrt();
    let mean = x.mean().unwrap();
    assert!((mean - m.mean()).abs() < 4.0 * se, "mean {mean} vs {} (SE {se})", m.mean());
}

#[test]
fn numeric_inverse_without_a_pdf_passes_ks() {
    // The Illinois path (no Newton steps) on the same mixture.
    let m = mixture();
    let (lo, hi) = m.bracket();
    let inv = NumericInverse::new(|x| m.cdf(x), lo, hi).unwrap();
    let x = inv.sample(N, &mut rng(4)).unwrap();
    let t = ks_test(&x, |x| m.cdf(x)).unwrap();
    assert!(t.p_value > ALPHA, "{t}");
}

/// The numerical inverse of `cdf` on [lo, hi], with and without `pdf`, against the closed form
/// `analytic` on u = 0.001, 0.002, …, 0.999. Allowed error: the stated x_tol/2, plus the error of
/// the CDF closure itself moved into x, |F̃ − F|/p(x) with |F̃ − F| ≤ rel·min(F, 1 − F) + ε, plus
/// a few ε for the closed form.
fn check_against_analytic(
    name: &str,
    cdf: impl Fn(f64) -> f64 + Copy,
    pdf: impl Fn(f64) -> f64 + Copy,
    analytic: impl Fn(f64) -> f64,
    (lo, hi): (f64, f64),
    rel: f64,
) {
    let plain = NumericInverse::new(cdf, lo, hi).unwrap();
    let newton = NumericInverse::new(cdf, lo, hi).unwrap().with_pdf(pdf).unwrap();
    for k in 1..1000 {
        let u = k as f64 / 1000.0;
        let exact = analytic(u);
        let tol = 0.5 * DEFAULT_X_TOL
            + (rel * u.min(1.0 - u) + f64::EPSILON) / pdf(exact)
            + 4.0 * f64::EPSILON * (1.0 + exact.abs());
        for (path, inv) in [("Illinois", plain.inverse_cdf(u)), ("Newton", newton.inverse_cdf(u))] {
            let x = inv.unwrap();
            assert!((x - exact).abs() <= tol, "{name}, {path}, u = {u}: {x} vs {exact} (tol {tol:e})");
        }
    }
}

#[test]
fn numeric_inverse_agrees_with_statrs_analytic_inverses() {
    // Normal: statrs' Φ has relative error ≤ STATRS_PHI_REL_ERR; its inverse is erfc⁻¹ in closed form.
    let normal = Normal::new(1.0, 2.0).unwrap();
    let (cdf, pdf, inv) = (|x| normal.cdf(x), |x| normal.pdf(x), |u| normal.inverse_cdf(u));
    check_against_analytic("Normal(1, 2)", cdf, pdf, inv, (-30.0, 32.0), STATRS_PHI_REL_ERR);
    // Exponential: F = 1 − e^{−λx} is off by at most ε after rounding; F⁻¹(u) = −ln(1 − u)/λ.
    let exp = Exp::new(0.7).unwrap();
    let (cdf, pdf, inv) = (|x| exp.cdf(x), |x| exp.pdf(x), |u| exp.inverse_cdf(u));
    check_against_analytic("Exp(0.7)", cdf, pdf, inv, (0.0, 80.0), 0.0);
}

#[test]
fn decoder_output_passes_ks_against_its_target() {
    // x = F⁻¹(Φ(z)), z ~ N(0, 1): into the mixture (numerical inverse) and into an Exponential.
    let m = mixture();
    let g = GaussianToTarget::new(m.numeric_inverse().unwrap());
    let (z, x) = g.sample(N, &mut rng(5)).unwrap();
    assert_eq!((z.len(), x.len()), (N, N));
    let t = ks_test(&x, |x| m.cdf(x)).unwrap();
    assert!(t.p_value > ALPHA, "mixture: {t}");
    // The latents themselves are standard normal.
    let phi = Normal::new(0.0, 1.0).unwrap();
    let t = ks_test(&z, |z| phi.cdf(z)).unwrap();
    assert!(t.p_value > ALPHA, "latents: {t}");

    let exp = Exp::new(0.5).unwrap();
    let (_, x) = GaussianToTarget::new(StatrsInverse::new(exp)).sample(N, &mut rng(6)).unwrap();
    let t = ks_test(&x, |x| exp.cdf(x)).unwrap();
    assert!(t.p_value > ALPHA, "exponential: {t}");
}

#[test]
fn decoder_is_monotone_so_it_keeps_the_order_of_latents() {
    // F⁻¹ and Φ are non-decreasing, so g is: sorted z map to sorted x.
    let g = GaussianToTarget::new(mixture().numeric_inverse().unwrap());
    let z = Array1::linspace(-6.0, 6.0, 2001);
    let x = g.decode_array(&z).unwrap();
    assert!(x.windows(2).into_iter().all(|w| w[0] <= w[1]));
}

#[test]
fn sampling_the_ecdf_of_data_passes_ks_and_chi_square_against_the_data() {
    // 40 data points from a Normal; sampling F_n picks each with probability 1/40.
    let data = StatrsInverse::new(Normal::new(0.0, 1.0).unwrap()).sample(40, &mut rng(7)).unwrap();
    let ecdf = EmpiricalCdf::new(&data).unwrap();
    let x = ecdf.sample(N, &mut rng(8)).unwrap();
    let t = ks_test(&x, |x| ecdf.cdf(x)).unwrap(); // conservative: F_n has jumps
    assert!(t.p_value > ALPHA, "{t}");
    // χ² over the 40 data points (distinct almost surely), E_k = N/40 = 2500 each.
    let sorted = ecdf.sorted();
    let idx: Array1<usize> = x.iter().map(|v| sorted.partition_point(|s| s < v)).collect();
    assert!(x.iter().zip(&idx).all(|(v, &i)| sorted[i] == *v));
    let counts = category_counts(&idx, sorted.len()).unwrap();
    let t = chi_square_test(&counts, &vec![1.0 / 40.0; 40]).unwrap();
    assert!(t.p_value > ALPHA, "{t}");
}

#[test]
fn discrete_by_cumulative_search_passes_chi_square() {
    let p = [0.1, 0.2, 0.3, 0.15, 0.25];
    let d = Discrete::categorical(&p).unwrap();
    let counts = category_counts(&d.sample_indices(N, &mut rng(9)).unwrap(), p.len()).unwrap();
    let t = chi_square_test(&counts, &p).unwrap();
    assert!(t.p_value > ALPHA, "{t}");
    // The values path (InverseCdf::sample) draws the same categories from the same seed.
    let valued = Discrete::new(&[-2.0, -0.5, 0.0, 1.0, 7.5], &p).unwrap();
    let x = valued.sample(N, &mut rng(9)).unwrap();
    let idx = d.sample_indices(N, &mut rng(9)).unwrap();
    assert!(x.iter().zip(&idx).all(|(&x, &k)| x == valued.values()[k]));
}

#[test]
fn ks_and_chi_square_detect_a_wrong_target() {
    // Power at N = 10⁵: N(0, 1) samples tested against N(0.05, 1). D ≈ 0.05·φ(0) = 0.02, three times
    // the α = 10⁻³ critical value 1.95/√N = 0.0062.
    let x = StatrsInverse::new(Normal::new(0.0, 1.0).unwrap()).sample(N, &mut rng(10)).unwrap();
    let shifted = Normal::new(0.05, 1.0).unwrap();
    let t = ks_test(&x, |x| shifted.cdf(x)).unwrap();
    assert!(t.p_value < ALPHA, "{t}");
    // Categories drawn with p, tested against q (two probabilities moved by 0.01): the expected
    // X² ≈ N·Σ(p − q)²/q ≈ 144, against the α = 10⁻³ critical value 18.5 on 4 degrees of freedom.
    let p = [0.1, 0.2, 0.3, 0.15, 0.25];
    let q = [0.11, 0.19, 0.3, 0.15, 0.25];
    let d = Discrete::categorical(&p).unwrap();
    let counts = category_counts(&d.sample_indices(N, &mut rng(11)).unwrap(), 5).unwrap();
    let t = chi_square_test(&counts, &q).unwrap();
    assert!(t.p_value < ALPHA, "{t}");
}

/// Every bad input the issue lists gets a typed error, never a panic or a NaN.
#[test]
fn every_bad_input_gets_a_typed_error() {
    let invalid = |r: vaelab::Result<f64>| matches!(r, Err(Error::InvalidParameter { .. }));
    // u outside [0, 1], or NaN, to every public inverse.
    let normal = StatrsInverse::new(Normal::new(0.0, 1.0).unwrap());
    let numeric = mixture().numeric_inverse().unwrap();
    let discrete = Discrete::categorical(&[0.5, 0.5]).unwrap();
    let ecdf = EmpiricalCdf::new(&array![1.0, 2.0]).unwrap();
    for u in [-0.01, 1.01, f64::NAN, f64::INFINITY] {
        assert!(invalid(normal.inverse_cdf(u)), "statrs, u = {u}");
        assert!(invalid(numeric.inverse_cdf(u)), "numeric, u = {u}");
        assert!(invalid(discrete.inverse_cdf(u)), "discrete, u = {u}");
        assert!(invalid(ecdf.inverse_cdf(u)), "ecdf, u = {u}");
    }
    // A CDF closure that is not monotone, or does not reach 0 at lo or 1 at hi.
    assert!(NumericInverse::new(|x: f64| x.sin().abs().min(1.0), 0.0, 3.0).is_err());
    let phi = Normal::new(0.0, 1.0).unwrap();
    assert!(matches!(NumericInverse::new(|x| phi.cdf(x), -2.0, 10.0), Err(Error::InvalidParameter { .. })));
    assert!(matches!(NumericInverse::new(|x| phi.cdf(x), -10.0, 2.0), Err(Error::InvalidParameter { .. })));
    // Probabilities that are negative or do not sum to 1; mixtures likewise.
    assert!(matches!(Discrete::categorical(&[0.6, -0.1, 0.5]), Err(Error::InvalidParameter { .. })));
    assert!(matches!(Discrete::categorical(&[0.3, 0.3]), Err(Error::InvalidParameter { .. })));
    assert!(matches!(
        GaussianMixture1d::new(&[0.3, 0.3], &[0.0, 1.0], &[1.0, 1.0]),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(GaussianMixture1d::new(&[1.0], &[0.0], &[-1.0]), Err(Error::InvalidParameter { .. })));
    // Empty data, empty probabilities, zero samples.
    assert!(matches!(EmpiricalCdf::new(&Array1::<f64>::zeros(0)), Err(Error::Empty { .. })));
    assert!(matches!(Discrete::categorical(&[]), Err(Error::Empty { .. })));
    assert!(matches!(normal.sample(0, &mut rng(12)), Err(Error::Empty { .. })));
    assert!(matches!(ks_test(&Array1::<f64>::zeros(0), |x| phi.cdf(x)), Err(Error::Empty { .. })));
    // Latents whose Φ(z) is exactly 0 or 1 in f64.
    let g = GaussianToTarget::new(normal);
    assert!(invalid(g.decode(9.0)) && invalid(g.decode(-40.0)));
    assert!(matches!(g.decode(f64::NAN), Err(Error::NonFinite { .. })));
    // χ² with an expected count below 5.
    assert!(matches!(chi_square_test(&[99, 1], &[0.99, 0.01]), Err(Error::InvalidParameter { .. })));
}

#[test]
fn error_messages_name_the_field_and_the_value() {
    let e = Discrete::categorical(&[0.6, -0.1, 0.5]).unwrap_err();
    assert_eq!(e.to_string(), "invalid probs[1] = -0.1: a probability must be ≥ 0");
    let e = StatrsInverse::new(Exp::new(1.0).unwrap()).inverse_cdf(1.5).unwrap_err();
    assert_eq!(e.to_string(), "invalid u = 1.5: must be a probability in [0, 1]");
    let phi = Normal::new(0.0, 1.0).unwrap();
    let e = NumericInverse::new(|x| phi.cdf(x), -2.0, 10.0).err().unwrap().to_string();
    assert!(e.starts_with("invalid cdf = F(lo = -2) = 0.0227"), "{e}");
}
