#![allow(clippy::needless_range_loop)] // index loops mirror the per-point, per-sample formulas
use super::*;
use crate::base::prob;
use crate::engine::vae::{Vae, VaeConfig};
use ndarray::{Array2, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Uniform};

/// A Bernoulli VAE whose decoder ignores z (last layer weight 0, logits = its bias b), so
/// log p(x|z) = log p(x) = Σ_d [x_d b_d − softplus(b_d)] exactly, and whose encoder outputs the
/// constant q = N(m, diag e^v).
pub(crate) fn decoupled(rng: &mut StdRng, m: f64, v: f64) -> Vae<f64> {
    let mut vae: Vae<f64> = Vae::new(VaeConfig::bernoulli(5, vec![4], 2), rng).unwrap();
    vae.params.decoder.layers.last_mut().unwrap().weight.fill(0.0);
    for (head, value) in [(&mut vae.params.mean_head, m), (&mut vae.params.log_var_head, v)] {
        head.weight.fill(0.0);
        head.bias.fill(value);
    }
    vae
}

pub(crate) fn exact_log_px(vae: &Vae<f64>, x: &Array2<f64>) -> Vec<f64> {
    let b = &vae.params.decoder.layers.last().unwrap().bias;
    let logits = Array2::from_shape_fn(x.dim(), |(_, d)| b[d]);
    prob::bernoulli_log_likelihood(x.view(), logits.view()).to_vec()
}

pub(crate) fn binary(rng: &mut StdRng, n: usize) -> Array2<f64> {
    let u = Uniform::new(0.0, 1.0).unwrap();
    Array2::from_shape_simple_fn((n, 5), || (u.sample(rng) < 0.5) as u8 as f64)
}

#[test]
fn is_estimate_is_exact_when_q_is_the_prior_and_the_decoder_ignores_z() {
    let mut rng = StdRng::seed_from_u64(30);
    let vae = decoupled(&mut rng, 0.0, 0.0);
    let x = binary(&mut rng, 3);
    let exact = exact_log_px(&vae, &x);
    let est = importance_sampled_log_likelihood(&vae, x.view(), None, 50, 7, &mut rng).unwrap();
    // Every weight p(x|z)p(z)/q(z|x) equals p(x): the estimate is exact, the ESS is K.
    for i in 0..3 {
        assert!((est.per_example[i] - exact[i]).abs() < 1e-12, "{} vs {}", est.per_example[i], exact[i]);
        assert!((est.ess[i] - 50.0).abs() < 1e-9);
    }
    let elbo = elbo_stats(&vae, x.view(), None, 3, 2, &mut rng).unwrap();
    // KL(q ‖ p) = 0 and the ELBO is log p(x) too.
    assert!(elbo.rate.iter().all(|&r| r.abs() < 1e-15));
    assert!((elbo.summary().unwrap().elbo.mean - exact.iter().sum::<f64>() / 3.0).abs() < 1e-12);
}

#[test]
fn is_estimate_is_consistent_for_a_proposal_that_is_not_the_posterior() {
    let mut rng = StdRng::seed_from_u64(31);
    // q = N(0.5, 0.82) per unit vs p(z|x) = p(z) = N(0, 1): weights w = p(x)·p(z)/q(z).
    let (m, s2) = (0.5, 0.82_f64);
    let vae = decoupled(&mut rng, m, s2.ln());
    let x = binary(&mut rng, 3);
    let exact = exact_log_px(&vae, &x);
    let k = 2000;
    let est = importance_sampled_log_likelihood(&vae, x.view(), None, k, 500, &mut rng).unwrap();
    // Per unit E_q[(p/q)²] = ∫ p²/q = s²/√(2s² − 1) · exp(m²/(2s² − 1)) (s² = 0.82: 1.5149, the
    // same to 1e-12 by trapezoid quadrature), so Var_q(p/q) = 1.5149² − 1 = 1.29 for Z = 2 and log p̂
    // has sd ≈ √1.29/√K = 0.025 (delta method) and bias ≈ −1.29/(2K) = −3.2e-4. Allow 4 sd.
    let per_unit = s2 / (2.0 * s2 - 1.0).sqrt() * (m * m / (2.0 * s2 - 1.0)).exp();
    let sd = ((per_unit * per_unit - 1.0) / k as f64).sqrt();
    for i in 0..3 {
        let err = est.per_example[i] - exact[i];
        assert!(err.abs() < 4.0 * sd, "point {i}: {} vs exact {} (sd {sd:.4})", est.per_example[i], exact[i]);
    }
}

#[test]
fn is_estimate_matches_a_direct_computation_with_the_prob_blocks_and_ignores_chunking() {
    let mut rng = StdRng::seed_from_u64(32);
    let vae: Vae<f64> = Vae::new(VaeConfig::bernoulli(5, vec![4], 2), &mut rng).unwrap();
    let x = binary(&mut rng, 2);
    let k = 6;
    let a =
        importance_sampled_log_likelihood(&vae, x.view(), None, k, 4, &mut StdRng::seed_from_u64(1)).unwrap();
    let b = importance_sampled_log_likelihood(&vae, x.view(), None, k, 1000, &mut StdRng::seed_from_u64(1))
        .unwrap();
    // Chunks of 4 + 2 samples or one chunk of 6: the same draws, the same estimate.
    for i in 0..2 {
        assert!((a.per_example[i] - b.per_example[i]).abs() < 1e-12);
    }
    // Direct: for point 0, ε is the first K × Z normals of the stream.
    let mut rng = StdRng::seed_from_u64(1);
    let eps = Array2::from_shape_simple_fn((k, 2), || rand_distr::StandardNormal.sample(&mut rng));
    let (mean, log_var) = vae.encode(x.slice(ndarray::s![..1, ..]), None);
    let z = prob::reparameterize(mean.view(), log_var.view(), eps.view());
    let (logits, _) = vae.params.decoder.forward(z.view());
    let xk = x.slice(ndarray::s![..1, ..]).broadcast((k, 5)).unwrap().to_owned();
    let log_px_z = prob::bernoulli_log_likelihood(xk.view(), logits.view());
    let zeros = Array2::zeros((1, 2));
    let log_pz = prob::diag_gaussian_log_density(z.view(), zeros.view(), zeros.view());
    let log_qz = prob::diag_gaussian_log_density(z.view(), mean.view(), log_var.view());
    let direct = prob::log_mean_exp_1d((&log_px_z + &log_pz - &log_qz).view());
    assert!((a.per_example[0] - direct).abs() < 1e-12, "{} vs {direct}", a.per_example[0]);
    // A bad K is a named error.
    let e = importance_sampled_log_likelihood(&vae, x.view(), None, 0, 10, &mut rng).unwrap_err();
    assert_eq!(e.to_string(), "invalid k = 0: must be >= 1");
    // One point has no standard error: a named error, not a NaN.
    let e = importance_sampled_log_likelihood(&vae, x.slice(ndarray::s![..1, ..]), None, k, 10, &mut rng)
        .unwrap_err();
    assert_eq!(e.to_string(), "a standard error needs at least 2 values, got 1");
    let one = elbo_stats(&vae, x.slice(ndarray::s![..1, ..]), None, 1, 10, &mut rng).unwrap();
    assert!(matches!(one.summary(), Err(Error::TooFewValues { count: 1 })));
}

#[test]
fn active_units_aggregate_posterior_and_mean_sigma_by_hand() {
    // Unit 0 barely moves (population variance 0.005), unit 1 moves a lot (1.0).
    let mean = array![[0.0, 1.0], [0.0, -1.0], [0.1, 1.0], [-0.1, -1.0]];
    let au = active_units(mean.view(), 0.01);
    assert_eq!(au.count, 1);
    assert!((au.variances[0] - 0.005).abs() < 1e-15 && (au.variances[1] - 1.0).abs() < 1e-15);
    // Two components N(1, 1) and N(−1, 3): mean 0, variance (1 + 3)/2 + 1 = 3.
    let agg = aggregate_posterior(array![[1.0], [-1.0]].view(), array![[0.0], [3f64.ln()]].view()).unwrap();
    assert!(agg.mean[0].abs() < 1e-15 && (agg.covariance[(0, 0)] - 3.0).abs() < 1e-12);
    // σ = (1, 2) and (3, 2): σ̄ = (2, 2), to rounding of exp(½ ln v).
    let s = mean_sigma_per_unit(array![[0.0, 4f64.ln()], [9f64.ln(), 4f64.ln()]].view());
    assert!(s.iter().all(|v| (v - 2.0).abs() < 1e-15), "{s:?}");
}

#[test]
fn absurd_draw_counts_are_refused_before_any_work_and_progress_reaches_the_total() {
    let mut rng = StdRng::seed_from_u64(33);
    let vae = decoupled(&mut rng, 0.0, 0.0);
    let x = binary(&mut rng, 3);
    // 3 × 10¹² draws would run for days: refused at once, naming N and K.
    let start = std::time::Instant::now();
    let e = importance_sampled_log_likelihood(&vae, x.view(), None, 1_000_000_000_000, 10, &mut rng)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("an importance-sampled log-likelihood of 3 points × K = 1000000000000 needs 3000000000000 random draws"),
        "{e}"
    );
    let e = importance_sampled_log_likelihood(&vae, x.view(), None, usize::MAX, 10, &mut rng).unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e}");
    let e = elbo_stats(&vae, x.view(), None, usize::MAX, 10, &mut rng).unwrap_err().to_string();
    assert!(e.starts_with("an ELBO of 3 points × 18446744073709551615 draws of z needs"), "{e}");
    assert!(start.elapsed().as_secs_f64() < 1.0, "refusals took {:?}", start.elapsed());
    // Progress: non-decreasing, ends at N × K, and the estimate is the same as without it.
    let mut seen = Vec::new();
    let a = importance_sampled_log_likelihood_with_progress(
        &vae,
        x.view(),
        None,
        7,
        3,
        &mut StdRng::seed_from_u64(4),
        &mut |done, total| seen.push((done, total)),
    )
    .unwrap();
    let b =
        importance_sampled_log_likelihood(&vae, x.view(), None, 7, 3, &mut StdRng::seed_from_u64(4)).unwrap();
    assert_eq!(a.per_example, b.per_example);
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0) && seen.iter().all(|&(_, t)| t == 21), "{seen:?}");
    assert_eq!(seen.last(), Some(&(21, 21)));
}

#[test]
fn the_monte_carlo_error_from_a_second_set_of_draws_matches_the_known_scatter() {
    // By hand: d = (0.3, −0.1, −0.2), d̄ = 0, Σ d² = 0.14, Var(d) = 0.07, per-point 0.035, N = 7.
    let se = monte_carlo_stderr(&[1.3, 0.9, 0.8], &[1.0, 1.0, 1.0], 7).unwrap();
    assert!((se - (0.035f64 / 7.0).sqrt()).abs() < 1e-15, "{se}");
    assert!(matches!(monte_carlo_stderr(&[1.0], &[1.0], 7), Err(Error::TooFewValues { count: 1 })));
    assert!(
        monte_carlo_stderr(&[1.0, 2.0], &[1.0], 7).is_err()
            && monte_carlo_stderr(&[1.0; 2], &[1.0; 2], 0).is_err()
    );
    // q = N(0.5, 0.82) per unit against p(z|x) = p(z) = N(0, 1) (as above): log p̂ has sd
    // √(1.5149² − 1)/√K per point (delta method), for every x. Two estimates of M = 400 points:
    // the per-point sd recovered from the pairs, √N · SE_MC, within 4 of its relative SE 1/√(2M).
    let mut rng = StdRng::seed_from_u64(34);
    let (m, s2) = (0.5, 0.82_f64);
    let vae = decoupled(&mut rng, m, s2.ln());
    let x = binary(&mut rng, 400);
    let k = 400;
    let per_unit = s2 / (2.0 * s2 - 1.0).sqrt() * (m * m / (2.0 * s2 - 1.0)).exp();
    let sd = ((per_unit * per_unit - 1.0) / k as f64).sqrt();
    for seed in [1, 2, 3] {
        let mut rng = StdRng::seed_from_u64(seed);
        let a = importance_sampled_log_likelihood(&vae, x.view(), None, k, 500, &mut rng).unwrap();
        let b = importance_sampled_log_likelihood(&vae, x.view(), None, k, 500, &mut rng).unwrap();
        let n = 10_000;
        let recovered = monte_carlo_stderr(&a.per_example, &b.per_example, n).unwrap() * (n as f64).sqrt();
        let rel = 1.0 / (2.0 * 400.0f64).sqrt();
        assert!((recovered / sd - 1.0).abs() < 4.0 * rel, "seed {seed}: {recovered} vs {sd} (4 × {rel:.3})");
    }
}
