use ndarray::{Array1, Array2, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

use super::*;
use crate::lessons::bounds::{Q, exact_elbo};
use crate::lessons::toy::Model;

/// Central-difference step ε^(1/3) ≈ 6e-6 (f64).
fn h() -> f64 {
    f64::EPSILON.cbrt()
}

fn eps(n: usize, z: usize, seed: u64) -> Array2<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, z), || rng.sample(StandardNormal))
}

fn linear() -> LinearGaussian {
    LinearGaussian::new(array![[1.0, 0.8], [0.6, 1.1], [-0.4, 0.9]], array![0.1, -0.2, 0.3], 0.5).unwrap()
}

fn binary() -> BinaryLatent {
    BinaryLatent::new(
        array![0.3, 0.5, 0.6],
        array![[2.0, -1.0, 0.5], [-1.5, 1.0, 1.0], [0.5, 0.5, -2.0]],
        array![0.0, -0.5, 0.5],
    )
    .unwrap()
}

/// |mean − exact| ≤ 4 SE (a correct estimator fails about once in 16,000 seeds).
fn within_4se(what: &str, e: Estimate, exact: f64) {
    assert!((e.mean - exact).abs() <= 4.0 * e.stderr, "{what}: {} ± {} vs exact {exact}", e.mean, e.stderr);
}

/// The closed forms E f and ∂E/∂(μ, σ) against quadrature and central differences of quadrature.
#[test]
fn closed_forms_match_quadrature_and_its_finite_differences() {
    for f in [TestFunction::Square, TestFunction::Exp { a: 1.0 }, TestFunction::Exp { a: -0.7 }] {
        for (mu, sigma) in [(0.5, 0.8), (-1.2, 0.3), (0.0, 1.5)] {
            let quad = f.expectation_by_quadrature(mu, sigma).unwrap();
            let exact = f.expectation(mu, sigma);
            assert!((quad - exact).abs() < 1e-11 * exact.abs().max(1.0), "{f:?} E: {quad} vs {exact}");
            let (d_mu, d_sigma) = f.expectation_grad(mu, sigma);
            let e = |m: f64, s: f64| f.expectation_by_quadrature(m, s).unwrap();
            let fd_mu = (e(mu + h(), sigma) - e(mu - h(), sigma)) / (2.0 * h());
            let fd_sigma = (e(mu, sigma + h()) - e(mu, sigma - h())) / (2.0 * h());
            // Quadrature to 1e-13 relative, divided by 2h ≈ 1.2e-5: FD error ≲ 1e-7.
            assert!((fd_mu - d_mu).abs() < 1e-6 * d_mu.abs().max(1.0), "{f:?} ∂μ: {fd_mu} vs {d_mu}");
            assert!(
                (fd_sigma - d_sigma).abs() < 1e-6 * d_sigma.abs().max(1.0),
                "{f:?} ∂σ: {fd_sigma} vs {d_sigma}"
            );
        }
    }
}

/// Both estimators are unbiased: 100,000 draws, every coordinate and parameter within 4 SE of the
/// closed form, for both test functions.
#[test]
fn both_estimators_are_unbiased() {
    let (mean, sigma) = (array![0.5, -0.3, 1.0], array![0.8, 0.5, 0.3]);
    let e = eps(100_000, 3, 11);
    for f in [TestFunction::Square, TestFunction::Exp { a: 0.6 }] {
        let b = sum_expectation(f, mean.view(), sigma.view()).unwrap();
        let draws = [
            score_function_draws(f, mean.view(), sigma.view(), e.view(), 0.0).unwrap(),
            score_function_draws(f, mean.view(), sigma.view(), e.view(), b).unwrap(),
            reparameterisation_draws(f, mean.view(), sigma.view(), e.view()).unwrap(),
        ];
        for (i, g) in draws.iter().enumerate() {
            for j in 0..3 {
                let (d_mu, d_sigma) = f.expectation_grad(mean[j], sigma[j]);
                within_4se(&format!("{f:?} estimator {i} ∂μ{j}"), g.mean_grad(j).unwrap(), d_mu);
                within_4se(&format!("{f:?} estimator {i} ∂σ{j}"), g.scale_grad(j).unwrap(), d_sigma);
            }
        }
    }
}

/// A biased estimator is caught by the same test: the score function without the −1 in
/// (ε² − 1)/σ is off by E[F]/σ.
#[test]
fn a_biased_score_is_rejected_by_the_same_test() {
    let (mean, sigma) = (array![0.5], array![0.8]);
    let e = eps(100_000, 1, 12);
    let g = score_function_draws(TestFunction::Square, mean.view(), sigma.view(), e.view(), 0.0).unwrap();
    // F ε²/σ = F (ε² − 1)/σ + F/σ
    let wrong = &g.d_scale.column(0) + &(e.column(0).mapv(|v| (0.5 + 0.8 * v).powi(2)) / 0.8);
    let est = Estimate::from_values(wrong.view()).unwrap();
    assert!((est.mean - 1.6).abs() > 4.0 * est.stderr, "{est:?}");
}

/// The closed-form variance of the score function (f = z², ∂/∂μ₁) against the sample variance of
/// 200,000 draws, within 4 SE, with and without baselines, and growing with Z.
#[test]
fn score_variance_closed_form_matches_sampling() {
    for (z, mu, s) in [(1, 0.5, 0.8), (4, 0.5, 0.8), (3, -1.0, 0.4)] {
        let mean = Array1::from_shape_fn(z, |j| mu + 0.1 * j as f64);
        let sigma = Array1::from_shape_fn(z, |j| s + 0.05 * j as f64);
        let e = eps(200_000, z, 13 + z as u64);
        let ef = sum_expectation(TestFunction::Square, mean.view(), sigma.view()).unwrap();
        for b in [0.0, ef, 1.7] {
            let g =
                score_function_draws(TestFunction::Square, mean.view(), sigma.view(), e.view(), b).unwrap();
            let measured = variance_estimate(g.d_mean.column(0)).unwrap();
            within_4se(
                &format!("Z = {z}, b = {b}"),
                measured,
                score_mean_variance_square(mean.view(), sigma.view(), b).unwrap(),
            );
        }
    }
    let v = |z: usize, b: bool| {
        let (m, s) = (Array1::from_elem(z, 0.5), Array1::from_elem(z, 0.8));
        let b = if b { sum_expectation(TestFunction::Square, m.view(), s.view()).unwrap() } else { 0.0 };
        score_mean_variance_square(m.view(), s.view(), b).unwrap()
    };
    assert!(v(32, false) > 100.0 * v(1, false), "b = 0: grows as Z²");
    assert!(v(32, true) > 5.0 * v(1, true) && v(32, true) < v(32, false), "b = E F: grows as Z, less");
}

/// The experiment's rows: gradients within 4 SE of 2μ, variances within 4 SE of their closed forms,
/// the N-draw variances within 4 SE of single / N.
#[test]
fn experiment_rows_agree_with_the_closed_forms() {
    let config = GradientConfig {
        dims: vec![1, 8],
        draws: 20_000,
        sample_counts: vec![1, 16],
        repeats: 2000,
        ..GradientConfig::default()
    };
    let r = run_experiment(&config, &mut StdRng::seed_from_u64(14)).unwrap();
    for row in &r.by_dimension {
        for g in [row.score_grad, row.baseline_grad, row.reparam_grad] {
            within_4se("gradient", g, row.exact_grad);
        }
        within_4se("score var", row.score_var, row.score_var_exact);
        within_4se("baseline var", row.baseline_var, row.baseline_var_exact);
        within_4se("reparam var", row.reparam_var, row.reparam_var_exact);
    }
    for row in &r.by_sample_count {
        within_4se("score N-mean var", row.score_var, row.score_var_exact);
        within_4se("reparam N-mean var", row.reparam_var, row.reparam_var_exact);
    }
    assert_eq!(dimension_table(&r.by_dimension).lines().count(), 3);
    assert_eq!(sample_count_table(&r.by_sample_count).lines().count(), 3);
}

/// The closed-form ELBO gradient of the linear-Gaussian toy against central differences of the
/// crate's exact ELBO (`exact_elbo`, LinearGaussian::elbo_gaussian); the value equal to it.
#[test]
fn exact_elbo_gradient_matches_finite_differences() {
    let lg = linear();
    let model = Model::LinearGaussian(lg.clone());
    let x = array![1.2, 0.4, -0.5];
    let (mean, log_var) = (array![0.3, 0.2], array![-1.0, -1.5]);
    let (value, d_mean, d_log_var) =
        exact_elbo_grad_diag(&lg, x.view(), mean.view(), log_var.view()).unwrap();
    let elbo = |m: &Array1<f64>, lv: &Array1<f64>| {
        exact_elbo(&model, x.view(), &Q::diag_gaussian(m.clone(), lv.clone()).unwrap()).unwrap().unwrap()
    };
    assert!((value - elbo(&mean, &log_var)).abs() < 1e-12);
    for j in 0..2 {
        let (mut p, mut m) = (mean.clone(), mean.clone());
        p[j] += h();
        m[j] -= h();
        let fd = (elbo(&p, &log_var) - elbo(&m, &log_var)) / (2.0 * h());
        assert!((fd - d_mean[j]).abs() < 1e-7 * d_mean[j].abs().max(1.0), "∂μ{j}: {fd} vs {}", d_mean[j]);
        let (mut p, mut m) = (log_var.clone(), log_var.clone());
        p[j] += h();
        m[j] -= h();
        let fd = (elbo(&mean, &p) - elbo(&mean, &m)) / (2.0 * h());
        assert!(
            (fd - d_log_var[j]).abs() < 1e-7 * d_log_var[j].abs().max(1.0),
            "∂logσ²{j}: {fd} vs {}",
            d_log_var[j]
        );
    }
}

/// Score-function (with and without a baseline) and reparameterisation estimates of the ELBO
/// gradient: within 4 SE of the closed form, 100,000 draws; the reparameterisation's variance is
/// the smaller.
#[test]
fn elbo_gradient_estimators_are_unbiased() {
    let lg = linear();
    let x = array![1.2, 0.4, -0.5];
    let (mean, log_var) = (array![0.3, 0.2], array![-1.0, -1.5]);
    let (value, d_mean, d_log_var) =
        exact_elbo_grad_diag(&lg, x.view(), mean.view(), log_var.view()).unwrap();
    let e = eps(100_000, 2, 15);
    let draws = [
        score_elbo_draws(&lg, x.view(), mean.view(), log_var.view(), e.view(), 0.0).unwrap(),
        score_elbo_draws(&lg, x.view(), mean.view(), log_var.view(), e.view(), value).unwrap(),
        reparameterisation_elbo_draws(&lg, x.view(), mean.view(), log_var.view(), e.view()).unwrap(),
    ];
    for (i, g) in draws.iter().enumerate() {
        for j in 0..2 {
            within_4se(&format!("estimator {i} ∂μ{j}"), g.mean_grad(j).unwrap(), d_mean[j]);
            within_4se(&format!("estimator {i} ∂logσ²{j}"), g.scale_grad(j).unwrap(), d_log_var[j]);
        }
    }
    let var = |g: &GradDraws| variance_estimate(g.d_mean.column(0)).unwrap().mean;
    assert!(var(&draws[2]) < var(&draws[1]) && var(&draws[1]) < var(&draws[0]));
}

/// The binary toy: the enumerated ELBO equals `exact_elbo`; its gradient matches central
/// differences of `exact_elbo`; the score function (b = 0 and b = ELBO) is within 4 SE of it.
#[test]
fn binary_gradient_by_enumeration_and_by_the_score_function() {
    let m = binary();
    let model = Model::BinaryLatent(m.clone());
    let x = array![1.0, 0.0, 1.0];
    let logits = array![0.4, -0.8, 1.2];
    let (value, grad) = bernoulli_elbo_enumerated(&m, x.view(), logits.view()).unwrap();
    let elbo = |t: &Array1<f64>| {
        exact_elbo(&model, x.view(), &Q::bernoulli(t.mapv(sigmoid)).unwrap()).unwrap().unwrap()
    };
    assert!((value - elbo(&logits)).abs() < 1e-12, "{value} vs {}", elbo(&logits));
    for j in 0..3 {
        let (mut p, mut q) = (logits.clone(), logits.clone());
        p[j] += h();
        q[j] -= h();
        let fd = (elbo(&p) - elbo(&q)) / (2.0 * h());
        assert!((fd - grad[j]).abs() < 1e-8, "∂θ{j}: {fd} vs {}", grad[j]);
    }
    let mut rng = StdRng::seed_from_u64(16);
    for b in [0.0, value] {
        let g = score_bernoulli_draws(&m, x.view(), logits.view(), 100_000, b, &mut rng).unwrap();
        for j in 0..3 {
            within_4se(&format!("b = {b}, θ{j}"), Estimate::from_values(g.column(j)).unwrap(), grad[j]);
        }
    }
    // At fixed u the draw does not move with θ: the pathwise derivative is 0.
    let u = Array2::from_shape_simple_fn((1000, 3), || rng.random::<f64>());
    let (mut up, mut down) = (logits.clone(), logits.clone());
    up[0] += 1e-9;
    down[0] -= 1e-9;
    let moved = (bernoulli_from_uniform(up.view(), u.view()) - bernoulli_from_uniform(down.view(), u.view()))
        .mapv(f64::abs)
        .sum();
    assert_eq!(moved, 0.0);
}

#[test]
fn bad_inputs_are_named_errors() {
    let e = eps(4, 2, 17);
    let f = TestFunction::Square;
    assert!(
        score_function_draws(f, array![0.0, 1.0].view(), array![1.0, 0.0].view(), e.view(), 0.0).is_err()
    );
    assert!(score_function_draws(f, array![0.0].view(), array![1.0].view(), e.view(), 0.0).is_err());
    assert!(
        reparameterisation_draws(f, array![0.0, f64::NAN].view(), array![1.0, 1.0].view(), e.view()).is_err()
    );
    assert!(
        score_function_draws(f, array![0.0, 1.0].view(), array![1.0, 1.0].view(), e.view(), f64::NAN)
            .is_err()
    );
    assert!(f.expectation_by_quadrature(0.0, -1.0).is_err());
    let m = binary();
    assert!(bernoulli_elbo_enumerated(&m, array![1.0, 0.0, 1.0].view(), array![0.0, 0.0].view()).is_err());
    assert!(
        bernoulli_elbo_enumerated(&m, array![1.0, 0.5, 1.0].view(), array![0.0, 0.0, 0.0].view()).is_err()
    );
    let g = reparameterisation_draws(f, array![0.0, 1.0].view(), array![1.0, 1.0].view(), e.view()).unwrap();
    assert!(g.mean_grad(2).is_err());
    let bad = |c: GradientConfig| c.validate().is_err();
    assert!(bad(GradientConfig { dims: vec![], ..GradientConfig::default() }));
    assert!(bad(GradientConfig { dims: vec![0], ..GradientConfig::default() }));
    assert!(bad(GradientConfig { sigma: 0.0, ..GradientConfig::default() }));
    assert!(bad(GradientConfig { draws: 1, ..GradientConfig::default() }));
    assert!(bad(GradientConfig { draws: 100_000_000, ..GradientConfig::default() }));
    assert!(GradientConfig::default().validate().is_ok());
}
