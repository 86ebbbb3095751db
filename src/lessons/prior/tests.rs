#![allow(clippy::needless_range_loop)] // index loops mirror the per-point, per-sample formulas
use super::*;
use ndarray::{Array2, array};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::engine::vae::mixture_prior::tests::normal_pdf;

/// N posteriors in 1-D with spread means and different widths (overlapping: 0 < I < log N).
fn overlapping_1d(n: usize) -> (Array2<f64>, Array2<f64>) {
    let mean = Array2::from_shape_fn((n, 1), |(i, _)| -2.0 + 4.0 * i as f64 / (n - 1) as f64);
    let log_var = Array2::from_shape_fn((n, 1), |(i, _)| (0.1 + 0.5 * (i % 5) as f64 / 4.0).ln());
    (mean, log_var)
}

#[test]
fn identical_posteriors_carry_no_information_and_the_aggregate_kl_is_the_common_kl() {
    // q(z|x_n) = N((0.8, −0.5), diag(0.3, 2)) for all n: q_agg = q, so I = 0 draw by draw and
    // KL(q_agg ‖ p) = KL(q ‖ p) = ½ Σ_u (μ² + σ² − 1 − ln σ²).
    let n = 40;
    let mean = Array2::from_shape_fn((n, 2), |(_, u)| [0.8, -0.5][u]);
    let log_var = Array2::from_shape_fn((n, 2), |(_, u)| [0.3f64.ln(), 2f64.ln()][u]);
    let exact = 0.5 * (0.64 + 0.3 - 1.0 - 0.3f64.ln()) + 0.5 * (0.25 + 2.0 - 1.0 - 2f64.ln());
    let s = elbo_surgery(mean.view(), log_var.view(), None, 25, 97, &mut StdRng::seed_from_u64(50)).unwrap();
    assert!(s.mutual_information.mean.abs() < 1e-12, "I = {}", s.mutual_information.mean);
    assert!((s.mean_kl - exact).abs() < 1e-12);
    // Monte Carlo over 1000 draws: within 4 standard errors of the closed form.
    let err = s.marginal_kl.mean - exact;
    assert!(
        err.abs() < 4.0 * s.marginal_kl.stderr,
        "KL_agg {} vs {exact} (se {})",
        s.marginal_kl.mean,
        s.marginal_kl.stderr
    );
    assert!(s.information_within_bound());
}

#[test]
fn far_apart_posteriors_reach_the_bound_log_n() {
    // Means 100 apart, unit variances: every other component is below e^(−4000) at a draw, so
    // log q_agg(z) = log q(z|x_n) − log N and I = log N exactly; then KL_agg = mean KL − log N.
    let n = 6;
    let mean = Array2::from_shape_fn((n, 2), |(i, u)| if u == 0 { 100.0 * i as f64 - 250.0 } else { 1.0 });
    let log_var = Array2::zeros((n, 2));
    let s = elbo_surgery(mean.view(), log_var.view(), None, 50, 64, &mut StdRng::seed_from_u64(51)).unwrap();
    assert!((s.mutual_information.mean - (n as f64).ln()).abs() < 1e-12, "I = {}", s.mutual_information.mean);
    assert!(s.information_within_bound());
    let expected = s.mean_kl - (n as f64).ln();
    assert!(
        (s.marginal_kl.mean - expected).abs() < 4.0 * s.marginal_kl.stderr,
        "KL_agg {} vs {expected} (se {})",
        s.marginal_kl.mean,
        s.marginal_kl.stderr
    );
}

#[test]
fn both_terms_agree_with_quadrature_and_add_up_to_the_average_kl() {
    // Independent route: 1-D integrals on a grid (trapezoid, h = 1e-3 on [−8, 8]; the tails beyond
    // are below e^(−60)), with q_agg summed directly in probability space:
    //   I      = (1/N) Σ_n ∫ q_n(z) log(q_n(z)/q_agg(z)) dz
    //   KL_agg = ∫ q_agg(z) log(q_agg(z)/p(z)) dz
    let n = 50;
    let (mean, log_var) = overlapping_1d(n);
    let (lo, h, steps) = (-8.0, 1e-3, 16_000);
    let (mut info, mut marg) = (0.0, 0.0);
    for j in 0..=steps {
        let z = lo + h * j as f64;
        let w = if j == 0 || j == steps { 0.5 * h } else { h };
        let q: Vec<f64> = (0..n).map(|i| normal_pdf(z, mean[(i, 0)], log_var[(i, 0)].exp())).collect();
        let agg = q.iter().sum::<f64>() / n as f64;
        for qi in &q {
            if *qi > 0.0 {
                info += w * qi * (qi / agg).ln() / n as f64;
            }
        }
        marg += w * agg * (agg / normal_pdf(z, 0.0, 1.0)).ln();
    }
    let s = elbo_surgery(mean.view(), log_var.view(), None, 40, 500, &mut StdRng::seed_from_u64(52)).unwrap();
    assert!(info > 0.1 && info < (n as f64).ln() - 0.1, "a case strictly inside the bounds: I = {info}");
    // Each estimate within 4 of its standard errors (the SE across data points, which includes the
    // between-point spread and so overstates the error of enumerating n: a conservative test).
    assert!(
        (s.mutual_information.mean - info).abs() < 4.0 * s.mutual_information.stderr,
        "I {} vs quadrature {info} (se {})",
        s.mutual_information.mean,
        s.mutual_information.stderr
    );
    assert!(
        (s.marginal_kl.mean - marg).abs() < 4.0 * s.marginal_kl.stderr,
        "KL_agg {} vs quadrature {marg} (se {})",
        s.marginal_kl.mean,
        s.marginal_kl.stderr
    );
    // The identity: quadrature I + KL_agg against the closed-form mean KL (exact up to the grid).
    assert!((info + marg - s.mean_kl).abs() < 1e-6, "{} + {} vs {}", info, marg, s.mean_kl);
    assert!(s.sum_z_score().abs() < 4.0, "z = {}", s.sum_z_score());
    assert!(s.information_within_bound());
}

#[test]
fn chunking_does_not_change_the_estimate() {
    let mut rng = StdRng::seed_from_u64(53);
    let mean = Array2::from_shape_simple_fn((30, 3), || StandardNormal.sample(&mut rng));
    let log_var = Array2::from_shape_simple_fn((30, 3), || -1.0 + 0.5 * rng.random::<f64>());
    let a = elbo_surgery(mean.view(), log_var.view(), None, 3, 1, &mut StdRng::seed_from_u64(9)).unwrap();
    let b = elbo_surgery(mean.view(), log_var.view(), None, 3, 7, &mut StdRng::seed_from_u64(9)).unwrap();
    let c =
        elbo_surgery(mean.view(), log_var.view(), None, 3, 10_000, &mut StdRng::seed_from_u64(9)).unwrap();
    for s in [b, c] {
        assert!((s.mutual_information.mean - a.mutual_information.mean).abs() < 1e-12);
        assert!((s.marginal_kl.mean - a.marginal_kl.mean).abs() < 1e-12);
    }
    assert!(a.information_within_bound() && a.mutual_information.mean > 0.0);
}

#[test]
fn log_aggregate_posterior_matches_a_direct_sum_of_densities() {
    // Two 2-D components; the direct route sums the two densities built from prob's block.
    let mean = array![[0.5, -1.0], [-0.3, 0.7]];
    let log_var = array![[0.2, -0.4], [-1.0, 0.3]];
    let z = array![[0.0, 0.0], [1.0, -2.0], [-0.5, 0.9]];
    let got = log_aggregate_posterior(z.view(), mean.view(), log_var.view()).unwrap();
    for c in 0..3 {
        let zc = z.slice(s![c..c + 1, ..]);
        let d: f64 = (0..2)
            .map(|i| {
                let lp = crate::base::prob::diag_gaussian_log_density(
                    zc,
                    mean.slice(s![i..i + 1, ..]),
                    log_var.slice(s![i..i + 1, ..]),
                );
                lp[0].exp()
            })
            .sum::<f64>();
        assert!((got[c] - (d / 2.0).ln()).abs() < 1e-13, "{} vs {}", got[c], (d / 2.0).ln());
    }
}

#[test]
fn aggregate_draws_have_the_mixture_moments() {
    // Moments from eval::aggregate_posterior (law of total variance) against 40 000 draws:
    // mean within 4 SE (σ_u/√n), variance within 4 SE (√((m₄ − σ⁴)/n) from the sample).
    let mean = array![[1.0, -2.0], [-1.5, 0.5], [0.3, 2.0], [2.0, 0.0], [-0.5, -0.5]];
    let log_var = array![[-1.0, 0.0], [0.5, -2.0], [-0.2, -0.2], [0.0, 0.4], [-3.0, 0.1]];
    let agg = crate::engine::eval::aggregate_posterior(mean.view(), log_var.view()).unwrap();
    let n = 40_000;
    let z =
        sample_aggregate_posterior(mean.view(), log_var.view(), n, &mut StdRng::seed_from_u64(54)).unwrap();
    for u in 0..2 {
        let col = z.column(u);
        let m = col.mean().unwrap();
        let var = col.mapv(|v| (v - m).powi(2)).mean().unwrap();
        let m4 = col.mapv(|v| (v - m).powi(4)).mean().unwrap();
        let se_m = (agg.covariance[(u, u)] / n as f64).sqrt();
        let se_v = ((m4 - var * var) / n as f64).sqrt();
        assert!((m - agg.mean[u]).abs() < 4.0 * se_m, "unit {u}: mean {m} vs {}", agg.mean[u]);
        assert!(
            (var - agg.covariance[(u, u)]).abs() < 4.0 * se_v,
            "unit {u}: var {var} vs {}",
            agg.covariance[(u, u)]
        );
    }
}

#[test]
fn ellipse_points_lie_on_the_level_set() {
    let (x, y) = posterior_ellipse([0.5, -1.0], [-1.0, 0.7], 2.0, 50).unwrap();
    assert_eq!(x.len(), 50);
    for (a, b) in x.iter().zip(&y) {
        let r2 = (a - 0.5).powi(2) / (-1.0f64).exp() + (b + 1.0).powi(2) / 0.7f64.exp();
        assert!((r2 - 4.0).abs() < 1e-12, "{r2}");
    }
    assert!((x[0] - x[49]).abs() < 1e-12 && (y[0] - y[49]).abs() < 1e-12, "closed curve");
}

#[test]
fn bad_input_is_an_error_naming_the_field_and_value() {
    let m = array![[0.0, 1.0]];
    let v = array![[0.0, f64::NAN]];
    let mut rng = StdRng::seed_from_u64(55);
    let e = elbo_surgery(m.view(), v.view(), None, 1, 1, &mut rng).unwrap_err();
    assert_eq!(e.to_string(), "non-finite value in log_var at index 1: NaN");
    let e = elbo_surgery(m.view(), m.view(), None, 0, 1, &mut rng).unwrap_err();
    assert_eq!(e.to_string(), "invalid samples = 0: must be >= 1");
    let e = elbo_surgery(m.view(), m.view(), None, 1, 0, &mut rng).unwrap_err();
    assert_eq!(e.to_string(), "invalid chunk = 0: must be >= 1");
    let e = elbo_surgery(m.view(), m.view(), None, 1, 1, &mut rng).unwrap_err();
    assert_eq!(e.to_string(), "a standard error needs at least 2 values, got 1");
    let e = elbo_surgery(m.view(), array![[0.0]].view(), None, 1, 1, &mut rng).unwrap_err();
    assert!(e.to_string().contains("log_var"), "{e}");
    let e = log_aggregate_posterior(array![[0.0]].view(), m.view(), m.view()).unwrap_err();
    assert!(e.to_string().contains("z columns"), "{e}");
    let empty = Array2::<f64>::zeros((0, 2));
    assert!(sample_aggregate_posterior(empty.view(), empty.view(), 3, &mut rng).is_err());
    let e = posterior_ellipse([0.0, 0.0], [0.0, 0.0], -1.0, 10).unwrap_err();
    assert!(e.to_string().contains("k = -1"), "{e}");
}

#[test]
fn elbo_surgery_with_a_one_component_standard_normal_mixture_matches_the_closed_form_path() {
    let (mixture, standard, x) = crate::engine::vae::learned_prior::tests::twin_models();
    // ELBO surgery against the learned prior: the same draws, the same log p up to rounding.
    let (m, v) = standard.encode(x.view(), None);
    let prior = mixture.mixture_prior().unwrap();
    let s_mix =
        elbo_surgery(m.view(), v.view(), Some(&prior), 4, 100, &mut StdRng::seed_from_u64(3)).unwrap();
    let s_std = elbo_surgery(m.view(), v.view(), None, 4, 100, &mut StdRng::seed_from_u64(3)).unwrap();
    assert!((s_mix.marginal_kl.mean - s_std.marginal_kl.mean).abs() < 1e-10);
    assert_eq!(s_mix.mutual_information.mean, s_std.mutual_information.mean);
    // mean_kl: estimated with the mixture, closed form without; 4 SE of the sum's spread.
    assert!((s_mix.mean_kl - s_std.mean_kl).abs() < 4.0 * s_std.sum.stderr);
}
