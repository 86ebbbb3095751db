use super::*;
use crate::base::prob::reparameterize;
use ndarray::Array2;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

/// Statistical comparisons below allow 3 standard errors (one-sided normal tail 1.3e-3 per check);
/// the seeds are fixed.
const Z: f64 = 3.0;

#[test]
fn separated_entropy_agrees_with_quadrature() {
    // Two independent routes to H of 8 Gaussians (r = 2, s = 0.1): nearest means 2·2·sin(π/8) =
    // 1.53 = 15.3 s apart, so the closed form is exact to ~exp(−7.65²/2) ≈ 2e-13; the trapezoid
    // rule at h = s/4 has aliasing error ~exp(−2π²·4²) (Trefethen & Weideman 2014, §5).
    let closed = mixture_entropy_separated(8, 0.1).unwrap();
    let quad = mixture_entropy_quadrature(8, 2.0, 0.1, 4).unwrap();
    assert!((closed - quad).abs() < 1e-9, "closed form {closed:.12}, quadrature {quad:.12}");
    // By hand: 2π e · 0.01 = 0.17079468, log 8 + log 0.17079468 = 2.07944154 − 1.76729312.
    assert!((closed - 0.312_148_42).abs() < 1e-8);
}

#[test]
fn overlapping_components_are_not_separated() {
    // With radius 0 all 8 components coincide: p is one Gaussian, H = log(2π e s²) — log 8 less
    // than the separated formula, which does not apply there.
    let quad = mixture_entropy_quadrature(8, 0.0, 0.5, 4).unwrap();
    let one = mixture_entropy_separated(1, 0.5).unwrap();
    assert!((quad - one).abs() < 1e-9, "quadrature {quad:.12}, one Gaussian {one:.12}");
}

#[test]
fn entropy_agrees_with_monte_carlo() {
    // A third route: H = −E log p(x) over draws from the data generator. 20,000 draws; the
    // tolerance is Z standard errors of the mean of −log p(x).
    let (k, r, s) = (8, 2.0, 0.1);
    let toy = gaussians_on_circle(20_000, k, r, s, &mut ChaCha8Rng::seed_from_u64(11)).unwrap();
    let neg_log_p: Vec<f64> = toy
        .points
        .rows()
        .into_iter()
        .map(|p| {
            let terms: Vec<f64> = (0..k)
                .map(|c| {
                    let a = std::f64::consts::TAU * c as f64 / k as f64;
                    let d2 = (p[0] - r * a.cos()).powi(2) + (p[1] - r * a.sin()).powi(2);
                    -d2 / (2.0 * s * s) - (2.0 * std::f64::consts::PI * s * s).ln() - (k as f64).ln()
                })
                .collect();
            let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            -(m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln())
        })
        .collect();
    let crate::base::stats::Estimate { mean: h, stderr: se, .. } =
        crate::base::stats::Estimate::from_values(&neg_log_p).unwrap();
    let exact = mixture_entropy_separated(k, s).unwrap();
    assert!((h - exact).abs() < Z * se, "Monte Carlo {h:.5} ± {se:.5}, closed form {exact:.5}");
}

fn sweep() -> RateDistortion {
    // 3 β values, 20 epochs: about 0.3 s in release.
    rate_distortion(&RateDistortionConfig::small(vec![0.3, 1.0, 3.0], 20, 5), &mut |_, _| {}).unwrap()
}

#[test]
fn the_sweep_obeys_the_bounds_and_rate_falls_with_beta() {
    let rd = sweep();
    assert_eq!(rd.points.len(), 3);
    for p in &rd.points {
        // KL ≥ 0 per test point, so its mean too (exactly, not statistically).
        let (rate, slack) = (p.rate.mean, p.slack.mean);
        assert!(rate >= 0.0, "β {}: rate {rate}", p.beta);
        // Per-unit KL sums to the rate (two accumulations of the same terms).
        let sum: f64 = p.kl_per_unit.iter().sum();
        assert!((sum - rate).abs() < 1e-9 * (1.0 + rate), "β {}: Σ units {sum}, rate {rate}", p.beta);
        // H − D ≤ R, i.e. slack = R + D − H ≥ 0, within Z standard errors.
        assert!(slack > -Z * p.slack.stderr, "β {}: R + D − H = {slack} ± {}", p.beta, p.slack.stderr);
        assert!((slack - (rate + p.distortion.mean - rd.entropy)).abs() < 1e-9);
        assert_eq!((p.rate.samples, p.slack.samples), (rd.config.n_test, rd.config.n_test));
        assert_eq!(p.encoder_sigma.len(), 2);
        assert!(p.encoder_sigma.iter().all(|s| s.is_finite() && *s > 0.0));
    }
    for w in rd.points.windows(2) {
        // Rate decreases as β grows: the difference exceeds Z combined standard errors (the
        // points share the test set, so treating the SEs as independent is conservative when the
        // per-point rates are positively correlated).
        let diff = w[0].rate.mean - w[1].rate.mean;
        let se = (w[0].rate.stderr.powi(2) + w[1].rate.stderr.powi(2)).sqrt();
        assert!(
            diff > Z * se,
            "β {} → {}: rate {} → {} (SE {se})",
            w[0].beta,
            w[1].beta,
            w[0].rate.mean,
            w[1].rate.mean
        );
    }
}

#[test]
fn the_sweep_is_deterministic_given_its_seed() {
    let c = RateDistortionConfig::small(vec![1.0], 2, 9);
    let a = rate_distortion(&c, &mut |_, _| {}).unwrap();
    let mut b = rate_distortion(&c, &mut |_, _| {}).unwrap();
    // Wall-clock time may differ, and the store's line (the second call may load what the first
    // stored: then both are the same bits, seconds included).
    b.points[0].last_epoch.seconds = a.points[0].last_epoch.seconds;
    b.points[0].store.clone_from(&a.points[0].store);
    assert_eq!(a, b);
    let other = rate_distortion(&RateDistortionConfig::small(vec![1.0], 2, 10), &mut |_, _| {}).unwrap();
    assert_ne!(a.points[0].rate, other.points[0].rate);
}

#[test]
fn progress_is_called_once_per_epoch_per_beta() {
    let mut calls = Vec::new();
    rate_distortion(&RateDistortionConfig::small(vec![0.5, 2.0], 3, 1), &mut |b, m| calls.push((b, m.epoch)))
        .unwrap();
    assert_eq!(calls, vec![(0.5, 1), (0.5, 2), (0.5, 3), (2.0, 1), (2.0, 2), (2.0, 3)]);
}

#[test]
fn bad_configurations_are_named() {
    let msg = |c: RateDistortionConfig| rate_distortion(&c, &mut |_, _| {}).unwrap_err().to_string();
    let base = RateDistortionConfig::small(vec![1.0], 1, 0);
    assert_eq!(
        msg(RateDistortionConfig { betas: vec![], ..base.clone() }),
        "betas is empty: at least one β is needed"
    );
    assert_eq!(
        msg(RateDistortionConfig { betas: vec![1.0, -1.0], ..base.clone() }),
        "invalid betas[1] = -1: must be finite and ≥ 0"
    );
    assert_eq!(
        msg(RateDistortionConfig { sigma: 0.0, ..base.clone() }),
        "invalid sigma = 0: must be finite and > 0"
    );
    assert_eq!(
        msg(RateDistortionConfig { n_test: 1, ..base.clone() }),
        "invalid n_test = 1: must be ≥ 2 (a standard error needs two points)"
    );
    assert_eq!(msg(RateDistortionConfig { epochs: 0, ..base }), "invalid epochs = 0: must be ≥ 1");
    assert_eq!(
        mixture_entropy_quadrature(8, 1.0, 0.1, 0).unwrap_err().to_string(),
        "invalid per_sigma = 0: must be ≥ 1 (grid points per s)"
    );
}

fn tiny_vae() -> Vae<f64> {
    Vae::new(VaeConfig::bernoulli(5, vec![4], 3), &mut StdRng::seed_from_u64(3)).unwrap()
}

#[test]
fn the_channel_adds_t_sigma_eps_to_the_mean() {
    // Independent route: encode, then prob::reparameterize with the log-variance shifted by
    // 2 log t (σ·t = exp(½(log σ² + 2 log t))), then decode.
    let vae = tiny_vae();
    let mut rng = StdRng::seed_from_u64(4);
    let x = Array2::from_shape_simple_fn((6, 5), || {
        if rand::Rng::random::<f64>(&mut rng) < 0.5 { 1.0 } else { 0.0 }
    });
    let eps = Array2::from_shape_simple_fn((6, 3), || StandardNormal.sample(&mut rng));
    let (mean, log_var) = vae.encode(x.view(), None);
    for t in [0.5, 1.0, 3.0] {
        let z = reparameterize(mean.view(), log_var.mapv(|v| v + 2.0 * f64::ln(t)).view(), eps.view());
        let expected = vae.decode_mean(z.view(), None);
        let got = decode_through_channel_any(&vae, x.view(), t, eps.view()).unwrap();
        let diff = (&got - &expected).mapv(f64::abs).fold(0.0, |a: f64, &b| a.max(b));
        assert!(diff < 1e-12, "t = {t}: max diff {diff:e}");
    }
    assert_eq!(
        decode_through_channel_any(&vae, x.view(), -1.0, eps.view()).unwrap_err().to_string(),
        "invalid t = -1: must be finite and ≥ 0 (noise scale)"
    );
}

#[test]
#[should_panic(expected = "decode_through_channel: eps has shape (6, 2), the encoder's mean (6, 3)")]
fn a_misshapen_eps_is_a_programmer_error() {
    let vae = tiny_vae();
    let _ = decode_through_channel_any(&vae, Array2::zeros((6, 5)).view(), 1.0, Array2::zeros((6, 2)).view());
}

#[test]
fn channel_noise_matches_the_evaluation_module() {
    // Independent route for the KL: eval::elbo_stats accumulates the same per-unit KL in its own
    // loop; σ̄ from its log-variances. Both at f32 inputs widened to f64, so they agree to f64
    // rounding (1e-12 relative).
    let vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(5, vec![4], 3), &mut StdRng::seed_from_u64(8)).unwrap();
    let x = Array2::from_shape_fn((7, 5), |(i, j)| ((i * 5 + j) % 3) as f32 / 2.0);
    let noise = channel_noise(&vae, x.view()).unwrap();
    let stats = elbo_stats(&vae, x.view(), None, 1, 7, &mut StdRng::seed_from_u64(0)).unwrap();
    for u in 0..3 {
        let sigma = stats.log_var.column(u).mapv(|v| (0.5 * v).exp()).mean().unwrap();
        assert!((noise.sigma[u] - sigma).abs() < 1e-12 * sigma, "unit {u}: σ {} vs {sigma}", noise.sigma[u]);
        let kl = stats.kl_per_unit[u];
        assert!((noise.kl[u] - kl).abs() < 1e-12 * (1.0 + kl), "unit {u}: KL {} vs {kl}", noise.kl[u]);
    }
    assert_eq!(
        channel_noise(&vae, Array2::zeros((2, 4)).view()).unwrap_err().to_string(),
        "shape mismatch in x columns: expected 5, got 4"
    );
    // The channel reading needs a per-unit KL: a learned mixture prior is refused.
    let mixture = VaeConfig::bernoulli(6, vec![5], 2)
        .with_prior(crate::engine::vae::LatentPrior::Mixture { components: 4 });
    let vae: Vae<f32> = Vae::new(mixture, &mut StdRng::seed_from_u64(0)).unwrap();
    assert!(channel_noise(&vae, Array2::zeros((2, 6)).view()).is_err());
}

#[test]
fn rank_correlation_agrees_with_the_no_ties_formula_and_averages_ties() {
    // Independent route without ties: ρ_s = 1 − 6 Σ d² / (n (n² − 1)) on a shuffled sample.
    let mut rng = StdRng::seed_from_u64(31);
    let n = 40;
    let a: Vec<f64> = (0..n).map(|_| StandardNormal.sample(&mut rng)).collect();
    let b: Vec<f64> = a
        .iter()
        .map(|&x| {
            let e: f64 = StandardNormal.sample(&mut rng);
            x + 0.8 * e
        })
        .collect();
    let rank_of = |v: &[f64], i: usize| v.iter().filter(|&&w| w < v[i]).count() as f64 + 1.0;
    let d2: f64 = (0..n).map(|i| (rank_of(&a, i) - rank_of(&b, i)).powi(2)).sum();
    let formula = 1.0 - 6.0 * d2 / (n as f64 * ((n * n) as f64 - 1.0));
    let rho = rank_correlation(&a, &b).unwrap();
    assert!((rho - formula).abs() < 1e-12, "ρ_s {rho} vs formula {formula}");
    // A monotone transform changes nothing: ρ_s(a, exp a) = 1, ρ_s(a, −a³) = −1.
    let e: Vec<f64> = a.iter().map(|x| x.exp()).collect();
    let c: Vec<f64> = a.iter().map(|x| -x.powi(3)).collect();
    assert!((rank_correlation(&a, &e).unwrap() - 1.0).abs() < 1e-12);
    assert!((rank_correlation(&a, &c).unwrap() + 1.0).abs() < 1e-12);
    // Ties: a = (1, 2, 2, 3) has ranks (1, 2.5, 2.5, 4); against b = (1, 2, 3, 4), ranks (1, 2, 3, 4).
    // Centred: (−1.5, 0, 0, 1.5) and (−1.5, −0.5, 0.5, 1.5): Σ xy = 4.5, Σ x² = 4.5, Σ y² = 5,
    // ρ_s = 4.5 / √22.5.
    let tied = rank_correlation(&[1.0, 2.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]).unwrap();
    assert!((tied - 4.5 / 22.5f64.sqrt()).abs() < 1e-12);
    assert!(rank_correlation(&[1.0, 1.0], &[1.0, 2.0]).is_err());
    assert!(rank_correlation(&[1.0], &[1.0]).is_err());
    assert!(rank_correlation(&[1.0, 2.0], &[1.0]).is_err());
}
