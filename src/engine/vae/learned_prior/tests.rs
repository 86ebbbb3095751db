//! The one-sample KL of a mixture prior against independent routes (closed form, quadrature),
//! and every N(0, I) consumer against the same model with a one-component N(0, I) "mixture".

use ndarray::{Array1, Array2, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::*;
use crate::base::stats::{Estimate, paired_difference};
use crate::engine::eval::{elbo_stats, importance_sampled_log_likelihood};
use crate::engine::vae::{PriorParams, VaeConfig};

/// `n` one-sample estimates KL̂ for the posterior N(μ, diag e^v), one fresh ε per estimate.
fn kl_estimates(prior: &MixturePrior, mean: &[f64], log_var: &[f64], n: usize, seed: u64) -> Vec<f64> {
    let zd = mean.len();
    let mut rng = StdRng::seed_from_u64(seed);
    let log_var_rows = Array2::from_shape_fn((n, zd), |(_, u)| log_var[u]);
    let z = Array2::from_shape_fn((n, zd), |(_, u)| {
        let e: f64 = StandardNormal.sample(&mut rng);
        mean[u] + (0.5 * log_var[u]).exp() * e
    });
    let mut kl = vec![0.0; n];
    mixture_kl_rows(prior, log_var_rows.view(), z.view(), &mut kl);
    kl
}

fn standard_normal_as_mixture(zd: usize) -> MixturePrior {
    MixturePrior::new(Array1::zeros(1), Array2::zeros((1, zd)), Array2::zeros((1, zd))).unwrap()
}

#[test]
fn one_standard_normal_component_gives_the_analytic_kl_in_expectation() {
    let (mean, log_var) = ([0.7, -1.2], [0.5f64.ln(), 2f64.ln()]);
    let prior = standard_normal_as_mixture(2);
    let n = 20_000;
    let kl = kl_estimates(&prior, &mean, &log_var, n, 40);
    // Draw by draw, with p = N(0, I): KL̂ = −½ Σ (ln 2π + 1 + v) + ½ Σ (ln 2π + z²) = ½ Σ (z² − 1 − v).
    let mut rng = StdRng::seed_from_u64(40);
    for &k in kl.iter().take(50) {
        let z: Vec<f64> = (0..2)
            .map(|u| {
                let e: f64 = StandardNormal.sample(&mut rng);
                mean[u] + (0.5 * log_var[u]).exp() * e
            })
            .collect();
        let by_hand: f64 = (0..2).map(|u| 0.5 * (z[u] * z[u] - 1.0 - log_var[u])).sum();
        assert!((k - by_hand).abs() < 1e-12, "{k} vs {by_hand}");
    }
    // Closed form ½ Σ (μ² + σ² − 1 − log σ²); the mean of 20 000 estimates within 4 SE of it.
    let exact: f64 = (0..2).map(|u| 0.5 * (mean[u] * mean[u] + log_var[u].exp() - 1.0 - log_var[u])).sum();
    let Estimate { mean: m, stderr: se, .. } = Estimate::from_values(&kl).unwrap();
    assert!((m - exact).abs() < 4.0 * se, "mean KL̂ {m} ± {se} vs closed form {exact}");
}

#[test]
fn two_component_kl_matches_quadrature() {
    // 1-D: q = N(0.4, 0.8), p = softmax(0.3, −0.5) over N(−1.5, 0.4), N(2, 1.5).
    let prior =
        MixturePrior::new(array![0.3, -0.5], array![[-1.5], [2.0]], array![[0.4f64.ln()], [1.5f64.ln()]])
            .unwrap();
    let (m, v) = (0.4, 0.8f64.ln());
    let log_q = |z: f64| -0.5 * (LN_2PI + v + (z - m) * (z - m) / v.exp());
    // KL = ∫ q(z) (log q(z) − log p(z)) dz over [−12, 12]: q's sd is 0.89, so the cut tails hold
    // < e^(−90) of its mass.
    let integrand = |t: ndarray::ArrayView1<f64>| {
        let zs = t.to_owned().insert_axis(ndarray::Axis(1));
        let (log_p, _) = prior.log_density_and_responsibilities(zs.view());
        Array1::from_shape_fn(t.len(), |i| log_q(t[i]).exp() * (log_q(t[i]) - log_p[i]))
    };
    let q =
        crate::base::quadrature::integrate(integrand, &[-12.0, -1.5, 0.4, 2.0, 12.0], 1e-12, 1e-14).unwrap();
    let kl = kl_estimates(&prior, &[m], &[v], 20_000, 41);
    let Estimate { mean, stderr: se, .. } = Estimate::from_values(&kl).unwrap();
    assert!(q.error < 1e-3 * se);
    // 4 standard errors of the Monte-Carlo mean (α ≈ 6e-5).
    assert!((mean - q.value).abs() < 4.0 * se, "mean KL̂ {mean} ± {se} vs quadrature {}", q.value);
}

#[test]
fn mixture_draws_have_the_mixture_moments() {
    // π = softmax(0, ln 3) = (¼, ¾); components N(−2, 0.25), N(1, 1).
    let prior =
        MixturePrior::new(array![0.0, 3f64.ln()], array![[-2.0], [1.0]], array![[0.25f64.ln()], [0.0]])
            .unwrap();
    let z = prior.sample(40_000, &mut StdRng::seed_from_u64(42));
    let mean_exact = 0.25 * -2.0 + 0.75 * 1.0;
    let second = 0.25 * (0.25 + 4.0) + 0.75 * (1.0 + 1.0);
    let var_exact: f64 = second - mean_exact * mean_exact;
    let col = z.column(0).to_vec();
    let Estimate { mean, stderr: se, .. } = Estimate::from_values(&col).unwrap();
    // 4 SE of the sample mean.
    assert!((mean - mean_exact).abs() < 4.0 * se, "{mean} ± {se} vs {mean_exact}");
    // The sample variance, 4 SE, SE² ≈ (m₄ − s⁴)/n from the sample's fourth central moment.
    let n = col.len() as f64;
    let var = z.column(0).var(1.0);
    let m4 = col.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n;
    let se_var = ((m4 - var * var) / n).sqrt();
    assert!((var - var_exact).abs() < 4.0 * se_var, "{var} ± {se_var} vs {var_exact}");
}

/// A small model with a one-component N(0, I) "mixture" and the same model with the N(0, I) prior.
pub(crate) fn twin_models() -> (Vae<f64>, Vae<f64>, Array2<f64>) {
    let mut rng = StdRng::seed_from_u64(43);
    let config = VaeConfig::bernoulli(6, vec![5], 2).with_prior(LatentPrior::Mixture { components: 1 });
    let mut mixture: Vae<f64> = Vae::new(config.clone(), &mut rng).unwrap();
    mixture.params.prior = PriorParams::Mixture(standard_normal_as_mixture(2));
    let mut standard = mixture.clone();
    standard.config.prior = LatentPrior::StandardNormal;
    standard.params.prior = PriorParams::StandardNormal;
    let x = Array2::from_shape_fn((300, 6), |(i, j)| ((i * 7 + j * 3) % 5 < 2) as u8 as f64);
    (mixture, standard, x)
}

#[test]
fn evaluation_with_a_standard_normal_mixture_agrees_with_the_closed_form_path() {
    let (mixture, standard, x) = twin_models();
    // ELBO statistics: the same ε draws (the mixture path draws nothing extra), so the
    // distortions are identical; the rate is −H(q) − mean log N(z; 0, I), unbiased for the
    // analytic KL: their difference, averaged over 300 points × 20 draws, within 4 SE.
    let a = elbo_stats(&mixture, x.view(), None, 20, 64, &mut StdRng::seed_from_u64(1)).unwrap();
    let b = elbo_stats(&standard, x.view(), None, 20, 64, &mut StdRng::seed_from_u64(1)).unwrap();
    assert_eq!(a.distortion, b.distortion);
    assert!(a.kl_per_unit.is_empty() && b.kl_per_unit.len() == 2);
    let Estimate { mean: d, stderr: se, .. } = paired_difference(&a.rate, &b.rate).unwrap();
    assert!(d.abs() < 4.0 * se, "rate difference {d} ± {se}");
    // Importance sampling: log p(z) of the one-component mixture is log N(z; 0, I) up to rounding.
    let a = importance_sampled_log_likelihood(&mixture, x.view(), None, 8, 8, &mut StdRng::seed_from_u64(2))
        .unwrap();
    let b = importance_sampled_log_likelihood(&standard, x.view(), None, 8, 8, &mut StdRng::seed_from_u64(2))
        .unwrap();
    for (p, q) in a.per_example.iter().zip(&b.per_example) {
        assert!((p - q).abs() < 1e-10, "{p} vs {q}");
    }
}

#[test]
fn unsupported_combinations_are_errors() {
    let mixture = VaeConfig::bernoulli(6, vec![5], 2).with_prior(LatentPrior::Mixture { components: 4 });
    let mut tc = crate::engine::train::TrainConfig::anchor(1, 0);
    tc.free_bits = Some(0.5);
    let e = crate::engine::train::Trainer::new(mixture.clone(), tc).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid free_bits = 0.5: not supported with a learned mixture prior (K = 4): its KL does not split by latent unit"
    );
    let zero = VaeConfig::bernoulli(6, vec![5], 2).with_prior(LatentPrior::Mixture { components: 0 });
    assert!(zero.validate().is_err());
    let cvae = mixture.clone().with_condition(3, crate::engine::vae::PriorKind::StandardNormal);
    assert!(cvae.validate().unwrap_err().to_string().contains("unconditional"));
    // The default N(0, I) config still serialises without surprises and old JSON (no `prior`)
    // reads as N(0, I).
    let old = r#"{"data_dim":6,"hidden_dims":[5],"latent_dim":2,"likelihood":{"kind":"bernoulli"}}"#;
    let c: VaeConfig = serde_json::from_str(old).unwrap();
    assert_eq!(c.prior, LatentPrior::StandardNormal);
}

#[test]
fn prior_samples_come_from_the_mixture() {
    // One component at (5, −3) with σ = e^(−20): every draw is that point to within 1e-6, so the
    // decoded samples equal the decoder mean there (N(0, I) draws would scatter around 0).
    let (mut mixture, _, _) = twin_models();
    mixture.params.prior = PriorParams::Mixture(
        MixturePrior::new(array![0.0], array![[5.0, -3.0]], array![[-40.0, -40.0]]).unwrap(),
    );
    let samples = mixture.sample_prior_means(4, None, &mut StdRng::seed_from_u64(5)).unwrap();
    let at_point = mixture.decode_mean(array![[5.0, -3.0]].view(), None);
    for row in samples.rows() {
        for (a, b) in row.iter().zip(at_point.row(0)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }
}
