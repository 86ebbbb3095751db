use super::*;
use crate::engine::nn::gradcheck::{assert_slices_close, central_difference, parameter_difference};
use crate::lessons::bounds::{Family, Q, exact_elbo, fit_gaussian};
use crate::lessons::toy::Model;
use ndarray::array;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The shipped model of lessons 02–03 (`data/models/linear_gaussian.json`).
fn model() -> LinearGaussian {
    lesson_model()
}

#[test]
fn the_model_is_the_shipped_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/models/linear_gaussian.json");
    let Model::LinearGaussian(shipped) = Model::load(path).unwrap() else { panic!("linear_gaussian") };
    assert_eq!(shipped, model());
}

/// The closed-form ELBO against the Cholesky route of `elbo_gaussian`, and its gradient against
/// central differences (relative error < 1e-7 at h = ε^(1/3)).
#[test]
fn exact_elbo_and_gradient_agree_with_independent_routes() {
    let m = model();
    let x = array![0.9, -1.1, 0.4];
    for (mean, log_var) in [(array![0.2, -0.4], array![-1.0, 0.3]), (array![-1.5, 2.0], array![0.5, -2.0])] {
        let (value, d_mean, d_log_var) = elbo_diag_exact(&m, x.view(), mean.view(), log_var.view());
        let cov = Array2::from_diag(&log_var.mapv(f64::exp));
        let reference = m.elbo_gaussian(x.view(), mean.view(), cov.view()).unwrap();
        assert!((value - reference).abs() < 1e-12, "{value} vs {reference}");
        let fd_mean =
            central_difference(&mean, |mp| elbo_diag_exact(&m, x.view(), mp.view(), log_var.view()).0);
        let fd_lv =
            central_difference(&log_var, |lp| elbo_diag_exact(&m, x.view(), mean.view(), lp.view()).0);
        assert_slices_close("d_mean", d_mean.as_slice().unwrap(), fd_mean.as_slice().unwrap(), 1e-7);
        assert_slices_close("d_log_var", d_log_var.as_slice().unwrap(), fd_lv.as_slice().unwrap(), 1e-7);
    }
}

/// q* by Bishop's closed form against the crate's stochastic fitter (diagonal family, accuracy
/// 1e-3 nats as stated in `fit_gaussian`'s docs); the full family closes the gap (< 1e-3).
#[test]
fn best_diagonal_q_matches_the_fitter_and_the_full_family_closes_the_gap() {
    let m = model();
    let linear = Model::LinearGaussian(m.clone());
    let mut rng = StdRng::seed_from_u64(5);
    let x = array![1.2, 0.4, -0.5];
    let (mean, log_var) = best_diagonal_q(&m, x.view()).unwrap();
    let best = Q::diag_gaussian(mean.clone(), log_var.clone()).unwrap();
    let best_elbo = exact_elbo(&linear, x.view(), &best).unwrap().unwrap();
    let init = Q::diag_gaussian(array![0.0, 0.0], array![0.0, 0.0]).unwrap();
    let fitted = fit_gaussian(&m, x.view(), &init, &FitConfig::default(), &mut rng).unwrap();
    let fitted_elbo = exact_elbo(&linear, x.view(), &fitted.q).unwrap().unwrap();
    assert!(
        best_elbo >= fitted_elbo - 1e-12 && best_elbo - fitted_elbo < 1e-3,
        "{best_elbo} vs {fitted_elbo}"
    );
    // The exact gradient vanishes at q*.
    let (_, dm, dv) = elbo_diag_exact(&m, x.view(), mean.view(), log_var.view());
    assert!(dm.iter().chain(dv.iter()).all(|g| g.abs() < 1e-12), "{dm} {dv}");
    let full = FitConfig { family: Family::Full, ..FitConfig::default() };
    let fitted_full = fit_gaussian(&m, x.view(), &init, &full, &mut rng).unwrap();
    let log_px = m.log_marginal(x.view()).unwrap();
    let gap_full = log_px - exact_elbo(&linear, x.view(), &fitted_full.q).unwrap().unwrap();
    assert!((0.0..1e-3).contains(&gap_full), "full-covariance gap {gap_full}");
}

/// The approximation gap of the diagonal family three ways: log p(x) − ELBO(q*) (Cholesky log p(x),
/// closed-form ELBO), the Gaussian KL formula, ½(Σ ln Λⱼⱼ − ln det Λ); the same at every x.
/// The amortisation parts against ELBO(q*) − ELBO(q) by `elbo_gaussian`.
#[test]
fn gaps_agree_across_routes() {
    let m = model();
    let mut rng = StdRng::seed_from_u64(6);
    let encoder = Encoder::new(3, &[4], 2, &mut rng).unwrap();
    let (_, x) = m.sample(20, &mut rng);
    let g = gaps(&m, &encoder, x.view()).unwrap();
    let formula = diagonal_approximation_gap(&m).unwrap();
    assert!(formula > 0.01, "the posterior is correlated: {formula}");
    for p in &g.points {
        assert!((p.approximation - formula).abs() < 1e-10, "{} vs {formula}", p.approximation);
        assert!((p.kl_best - formula).abs() < 1e-10, "{} vs {formula}", p.kl_best);
        assert!((p.mean_part + p.variance_part - p.amortisation).abs() < 1e-10, "{p:?}");
        assert!(p.mean_part >= 0.0 && p.variance_part >= 0.0 && p.amortisation > 0.0);
        // The identity, from independent routes: KL formula + closed-form parts = log p(x) − ELBO(q).
        let total = p.log_px - p.encoder_elbo;
        assert!((p.kl_best + p.mean_part + p.variance_part - total).abs() < 1e-10, "{p:?}");
    }
    assert!((g.total.mean - g.approximation.mean - g.amortisation.mean).abs() < 1e-10);
    let cheap = mean_amortisation_gap(&m, &encoder, x.view()).unwrap();
    assert!((cheap - g.amortisation.mean).abs() < 1e-10);
}

/// The reparameterised gradient of J is unbiased for the exact one: the mean of 400 estimates
/// within 4 SE of the exact gradient, element by element.
#[test]
fn reparameterised_gradient_is_unbiased() {
    let m = model();
    let mut rng = StdRng::seed_from_u64(7);
    let encoder = Encoder::new(3, &[3], 2, &mut rng).unwrap();
    let (_, x) = m.sample(8, &mut rng);
    let mut exact = encoder.net.zeros_like();
    let j = loss_and_grads(&m, &encoder, x.view(), Gradient::Exact, &mut exact, &mut rng);
    let reps = 400;
    let count = exact.scalar_count();
    let mut draws = Array2::<f64>::zeros((reps, count));
    let mut objective = Vec::new();
    for r in 0..reps {
        let mut g = encoder.net.zeros_like();
        objective.push(loss_and_grads(
            &m,
            &encoder,
            x.view(),
            Gradient::Reparameterised { samples: 2 },
            &mut g,
            &mut rng,
        ));
        let flat: Vec<f64> = (0..g.tensor_count()).flat_map(|t| g.tensor(t).to_vec()).collect();
        draws.row_mut(r).assign(&Array1::from(flat));
    }
    let exact_flat: Vec<f64> = (0..exact.tensor_count()).flat_map(|t| exact.tensor(t).to_vec()).collect();
    for (k, e) in exact_flat.iter().enumerate() {
        let est = Estimate::from_values(draws.column(k)).unwrap();
        assert!((est.mean - e).abs() <= 4.0 * est.stderr + 1e-12, "element {k}: {est:?} vs {e}");
    }
    let est = Estimate::from_values(&objective).unwrap();
    assert!((est.mean - j).abs() <= 4.0 * est.stderr, "{est:?} vs {j}");
}

/// ∂(−J)/∂φ through the MLP against central differences of −J, every tensor.
#[test]
fn encoder_gradient_matches_finite_differences() {
    let m = model();
    let mut rng = StdRng::seed_from_u64(8);
    let mut encoder = Encoder::new(3, &[4], 2, &mut rng).unwrap();
    let (_, x) = m.sample(5, &mut rng);
    let mut grads = encoder.net.zeros_like();
    loss_and_grads(&m, &encoder, x.view(), Gradient::Exact, &mut grads, &mut rng);
    for t in 0..encoder.net.tensor_count() {
        let fd = parameter_difference(&mut encoder.net, t, |net| {
            let e = Encoder { net: net.clone(), latent_dim: 2 };
            -loss_and_grads(
                &m,
                &e,
                x.view(),
                Gradient::Exact,
                &mut net.zeros_like(),
                &mut StdRng::seed_from_u64(0),
            )
        });
        assert_slices_close(&encoder.net.tensor_name(t), grads.tensor(t), &fd, 1e-6);
    }
}

/// The line floor against a scan of 7,200 directions through the centroid (the Λ-distance of each
/// μₙ to the line computed directly).
#[test]
fn line_floor_matches_a_scan_of_directions() {
    let m = model();
    let mut rng = StdRng::seed_from_u64(9);
    let (_, x) = m.sample(50, &mut rng);
    let floor = line_floor(&m, x.view()).unwrap();
    let lambda = m.posterior_precision();
    let mus: Vec<Array1<f64>> = x.rows().into_iter().map(|r| best_diagonal_q(&m, r).unwrap().0).collect();
    let centre = mus.iter().fold(Array1::<f64>::zeros(2), |a, mu| a + mu) / mus.len() as f64;
    let mut best = f64::INFINITY;
    for k in 0..7200 {
        let th = std::f64::consts::PI * k as f64 / 7200.0;
        let a = array![th.cos(), th.sin()];
        let ala = a.dot(&lambda.dot(&a));
        let mut total = 0.0;
        for mu in &mus {
            let d = mu - &centre;
            let t = a.dot(&lambda.dot(&d)) / ala;
            let r = &d - &(&a * t);
            total += 0.5 * r.dot(&lambda.dot(&r));
        }
        best = best.min(total / mus.len() as f64);
    }
    assert!(floor <= best + 1e-12 && best - floor < 1e-6 * floor.max(1.0), "floor {floor}, scan {best}");
    assert!(floor > 0.0);
}

/// Training: a linear encoder reaches the best q (gap < 1e-3, the per-point fitter's accuracy); a
/// one-unit bottleneck stays above the line floor; J rises.
#[test]
fn linear_encoder_closes_the_gap_and_a_bottleneck_cannot() {
    let m = model();
    let (train, eval) = toy_data(&m, 128, 64, 0);
    let specs = [EncoderSpec { hidden: vec![], steps: 2000 }, EncoderSpec { hidden: vec![1], steps: 2000 }];
    let rows = sweep(&m, train.view(), eval.view(), &specs, 0.01, 0).unwrap();
    assert!(rows[0].amortisation.mean < 1e-3, "{}", sweep_table(&rows));
    let floor = line_floor(&m, eval.view()).unwrap();
    assert!(rows[1].amortisation.mean >= floor && floor > 1e-2, "floor {floor}\n{}", sweep_table(&rows));
    let mut enc = Encoder::new(3, &[], 2, &mut ENCODER_INIT.rng(0)).unwrap();
    let trace = train_encoder(
        &m,
        &mut enc,
        train.view(),
        &EncoderTraining { steps: 50, ..EncoderTraining::default() },
        &mut EPSILON.rng(0),
        |_, _| {},
    )
    .unwrap();
    assert!(trace[49] > trace[0]);
}

#[test]
fn bad_arguments_are_named_errors() {
    let m = model();
    let mut rng = StdRng::seed_from_u64(10);
    assert!(Encoder::new(3, &[4, 0], 2, &mut rng).unwrap_err().to_string().contains("hidden[1]"));
    let mut enc = Encoder::new(3, &[], 2, &mut rng).unwrap();
    let x = Array2::zeros((4, 2));
    assert!(gaps(&m, &enc, x.view()).is_err());
    let x = Array2::zeros((1, 3));
    assert!(matches!(gaps(&m, &enc, x.view()), Err(Error::TooFewValues { count: 1 })));
    let zero = EncoderTraining { steps: 0, ..EncoderTraining::default() };
    assert!(train_encoder(&m, &mut enc, x.view(), &zero, &mut rng, |_, _| {}).is_err());
    let mut config = DigitConfig::small();
    config.n_points = 1;
    let split = DigitSplit {
        train: crate::engine::data::Digits {
            images: Array2::zeros((3, 4)),
            labels: vec![0; 3],
            image_shape: [2, 2],
        },
        test: crate::engine::data::Digits {
            images: Array2::zeros((3, 4)),
            labels: vec![0; 3],
            image_shape: [2, 2],
        },
    };
    assert!(digit_gaps(&config, &split).unwrap_err().to_string().contains("n_points"));
}

#[test]
fn the_digits_measured_are_spread_over_the_classes() {
    // A test set stored class by class, as the shipped one is: two digits per class. The first
    // five would all be classes 0–2; evenly spaced, they are one of every other class.
    let images = |n: usize| Array2::from_shape_fn((n, 4), |(i, j)| ((i + j) % 2) as f32);
    let split = DigitSplit {
        train: crate::engine::data::Digits { images: images(8), labels: vec![0; 8], image_shape: [2, 2] },
        test: crate::engine::data::Digits {
            images: images(20),
            labels: (0..10u8).flat_map(|c| [c, c]).collect(),
            image_shape: [2, 2],
        },
    };
    let config = DigitConfig {
        hidden: vec![3],
        latent_dim: 1,
        n_train: 8,
        epochs: 1,
        n_points: 5,
        fit_steps: 2,
        elbo_samples: 4,
        is_samples: 4,
        seed: 0,
    };
    // (Unit tests' stages go to the build's own test store, never build/models.)
    let d = digit_gaps(&config, &split).unwrap();
    assert_eq!(d.labels, [0, 2, 4, 6, 8]);
    assert_eq!(d.log_px.len(), 5);
}
