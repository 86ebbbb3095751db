#![allow(clippy::needless_range_loop)] // index loops mirror the per-point, per-class formulas
use super::*;
use crate::engine::data::Digits;
use crate::engine::vae::PriorParams;
use crate::engine::vae::{Vae, VaeConfig};
use ndarray::{Array2, array};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Uniform};

const D: usize = 5;
const C: usize = 3;
const Z: usize = 2;

fn binary(rng: &mut StdRng, n: usize) -> Array2<f32> {
    let u = Uniform::new(0.0, 1.0).unwrap();
    Array2::from_shape_simple_fn((n, D), || (u.sample(rng) < 0.5) as u8 as f32)
}

/// A CVAE with a learned prior in which Q(z|x,c) = P(z|c) exactly, with class-dependent Gaussians,
/// and whose decoder ignores z. Then every importance weight P(x|z,c) P(z|c) / Q(z|x,c) equals
/// P(x|c), so the IS estimate is exact, whatever K.
///
/// The trunk (width C) maps [x, one-hot c] to h = one-hot c (x rows zero, c rows the identity); the
/// encoder heads and the prior heads then hold the same (C × Z) weights and biases, so
/// μ_q(c) = μ_p(c) and log σ²_q(c) = log σ²_p(c). The decoder's first layer has zero rows for z.
fn q_equals_prior(rng: &mut StdRng) -> Vae<f32> {
    let config = VaeConfig::bernoulli(D, vec![C], Z).with_condition(C, PriorKind::LearnedConditional);
    let mut vae: Vae<f32> = Vae::new(config, rng).unwrap();
    let trunk = &mut vae.params.trunk.layers[0];
    trunk.weight.fill(0.0);
    trunk.bias.fill(0.0);
    for c in 0..C {
        trunk.weight[(D + c, c)] = 1.0;
    }
    let means = array![[0.7f32, -0.2], [-1.1, 0.4], [0.0, 1.5]];
    let log_vars = array![[-0.4f32, 0.3], [0.2, -1.0], [0.5, 0.0]];
    let p = &mut vae.params;
    for (head, w) in [(&mut p.mean_head, &means), (&mut p.log_var_head, &log_vars)] {
        head.weight.assign(w);
        head.bias.assign(&array![0.05, -0.1]);
    }
    let PriorParams::Conditional { mean_head: pm, log_var_head: pv } = &mut p.prior else {
        panic!("a CVAE with a learned prior has prior heads")
    };
    pm.weight.assign(&means);
    pm.bias.assign(&array![0.05, -0.1]);
    pv.weight.assign(&log_vars);
    pv.bias.assign(&array![0.05, -0.1]);
    p.decoder.layers[0].weight.slice_mut(s![..Z, ..]).fill(0.0);
    vae
}

/// log P(x|c) of a decoder that ignores z: the Bernoulli log-likelihood of the logits at z = 0.
fn exact_log_px_given_c(vae: &Vae<f32>, x: &Array2<f32>, c: usize) -> Vec<f64> {
    let n = x.nrows();
    let mut ws = vae.workspace(n);
    vae.decode_into(Array2::zeros((n, Z)).view(), Some(&vec![c; n]), &mut ws);
    let logits = ws.output().mapv(f64::from);
    crate::base::prob::bernoulli_log_likelihood(x.mapv(f64::from).view(), logits.view()).to_vec()
}

#[test]
fn conditional_is_is_exact_when_q_is_the_class_prior_and_the_decoder_ignores_z() {
    let mut rng = StdRng::seed_from_u64(100);
    let vae = q_equals_prior(&mut rng);
    // The class Gaussians really differ, so a wrong log P(z|c) (e.g. N(0, I)) would not cancel.
    assert_ne!(vae.prior_params(0).unwrap().0, vae.prior_params(1).unwrap().0);
    let x = binary(&mut rng, 4);
    let labels = [2, 0, 1, 2];
    let prior = [0.2, 0.5, 0.3];
    let mut eval_rng = ChaCha8Rng::seed_from_u64(1);
    let est = conditional_log_likelihood(&vae, x.view(), &labels, &prior, 7, &mut eval_rng).unwrap();
    let exact: Vec<Vec<f64>> = (0..C).map(|c| exact_log_px_given_c(&vae, &x, c)).collect();
    // Every weight equals P(x|c): the only error is f32 rounding of z in log P(z|c) − log Q(z|x,c),
    // which are the same f32 numbers evaluated by the same f64 formula, and of the decoder logits.
    for i in 0..4 {
        for c in 0..C {
            let err = (est.per_class[(i, c)] - exact[c][i]).abs();
            assert!(err < 1e-5, "point {i} class {c}: {} vs exact {}", est.per_class[(i, c)], exact[c][i]);
        }
        // log P(x) = log Σ_c P(c) P(x|c) and Bayes' rule, by hand.
        let px: f64 = (0..C).map(|c| prior[c] * exact[c][i].exp()).sum();
        assert!((est.marginal[i] - px.ln()).abs() < 1e-5, "marginal {} vs {}", est.marginal[i], px.ln());
        let post = prior[labels[i]] * exact[labels[i]][i].exp() / px;
        assert!((est.log_posterior[i] - post.ln()).abs() < 1e-5);
        assert!((est.conditional[i] - exact[labels[i]][i]).abs() < 1e-5);
    }
    // The posteriors over classes sum to 1 for every point.
    for i in 0..4 {
        let total: f64 =
            (0..C).map(|c| (prior[c].ln() + est.per_class[(i, c)] - est.marginal[i]).exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
    }
    // The ELBO is exact too: KL(Q ‖ P(z|c)) = 0 for every point.
    let stats = elbo_stats(&vae, x.view(), Some(&labels), 3, 2, &mut eval_rng).unwrap();
    for i in 0..4 {
        assert!(stats.rate[i].abs() < 1e-6, "KL {}", stats.rate[i]);
        assert!((stats.elbo[i] - exact[labels[i]][i]).abs() < 1e-5);
    }
}

#[test]
fn marginal_equals_the_direct_estimate_when_the_cvae_ignores_c() {
    // A random VAE, and a CVAE with the same weights for x and z and zero weights for c: the same
    // model. With P(c) = (1, 0, 0) the route log Σ_c P(c) P̂(x|c) is class 0's estimate alone, and
    // class 0's call draws first from the same seeded stream as the VAE's direct estimate.
    let mut rng = StdRng::seed_from_u64(101);
    let vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(D, vec![4], Z), &mut rng).unwrap();
    let config = VaeConfig::bernoulli(D, vec![4], Z).with_condition(C, PriorKind::StandardNormal);
    let mut cvae: Vae<f32> = Vae::new(config, &mut rng).unwrap();
    cvae.params.mean_head = vae.params.mean_head.clone();
    cvae.params.log_var_head = vae.params.log_var_head.clone();
    cvae.params.decoder.layers[1] = vae.params.decoder.layers[1].clone();
    for (cv, v, rows) in [
        (&mut cvae.params.trunk.layers[0], &vae.params.trunk.layers[0], D),
        (&mut cvae.params.decoder.layers[0], &vae.params.decoder.layers[0], Z),
    ] {
        cv.weight.fill(0.0);
        cv.weight.slice_mut(s![..rows, ..]).assign(&v.weight);
        cv.bias.assign(&v.bias);
    }
    let x = binary(&mut rng, 3);
    let k = 40;
    let direct =
        importance_sampled_log_likelihood(&vae, x.view(), None, k, 256, &mut ChaCha8Rng::seed_from_u64(5))
            .unwrap();
    let route = conditional_log_likelihood(
        &cvae,
        x.view(),
        &[1, 2, 0],
        &[1.0, 0.0, 0.0],
        k,
        &mut ChaCha8Rng::seed_from_u64(5),
    )
    .unwrap();
    for i in 0..3 {
        // Same draws, same f32 networks up to summation order: agree to f32 rounding.
        assert!(
            (route.marginal[i] - direct.per_example[i]).abs() < 1e-4,
            "{} vs {}",
            route.marginal[i],
            direct.per_example[i]
        );
        // The label carries nothing: log P(x|c) estimates the same log P(x) for every class; each
        // class's estimate uses its own K draws, so they agree only up to IS noise (checked loosely:
        // a K = 40 estimate of a 5-pixel model is within a nat).
        for c in 1..C {
            assert!((route.per_class[(i, c)] - route.per_class[(i, 0)]).abs() < 1.0);
        }
    }
}

#[test]
fn labels_and_priors_are_validated_with_named_errors() {
    let mut rng = StdRng::seed_from_u64(102);
    let vae = q_equals_prior(&mut rng);
    let x = binary(&mut rng, 2);
    let prior = [0.2, 0.5, 0.3];
    let mut r = ChaCha8Rng::seed_from_u64(0);
    let err = |labels: &[usize], prior: &[f64], r: &mut ChaCha8Rng| {
        conditional_log_likelihood(&vae, x.view(), labels, prior, 3, r).unwrap_err().to_string()
    };
    assert_eq!(err(&[0, 3], &prior, &mut r), "invalid labels[1] = 3: must be < classes = 3");
    assert!(err(&[0], &prior, &mut r).contains("labels"), "wrong length");
    assert!(err(&[0, 1], &[0.5, 0.5], &mut r).contains("class_prior"));
    assert!(err(&[0, 1], &[0.5, 0.6, -0.1], &mut r).contains("class_prior[2]"));
    assert!(err(&[0, 1], &[0.5, 0.6, 0.1], &mut r).contains("must sum to 1"));
    let plain: Vae<f32> = Vae::new(VaeConfig::bernoulli(D, vec![4], Z), &mut rng).unwrap();
    let e = conditional_log_likelihood(&plain, x.view(), &[0, 1], &prior, 3, &mut r).unwrap_err();
    assert!(e.to_string().contains("needs a CVAE"), "{e}");
    assert!(class_samples(&plain, Array2::zeros((2, Z)).view()).is_err());
    assert!(class_samples(&vae, Array2::zeros((2, Z + 1)).view()).unwrap_err().to_string().contains("eps"));
    assert_eq!(vae.prior_params(3).unwrap_err().to_string(), "invalid label = 3: must be < classes = 3");
    assert!(learned_prior(&plain).is_err());
}

#[test]
fn class_samples_decode_each_class_gaussian_at_the_shared_eps() {
    let mut rng = StdRng::seed_from_u64(103);
    let vae = q_equals_prior(&mut rng);
    let eps = array![[0.3f32, -1.0], [1.2, 0.5]];
    let grid = class_samples(&vae, eps.view()).unwrap();
    assert_eq!(grid.dim(), (C * 2, D));
    let p = &vae.params;
    let (pm, pv) = p.prior.heads().unwrap();
    for c in 0..C {
        // z = μ_c + exp(½ v_c) ⊙ ε_j, with μ_c, v_c read off the heads' weights by hand.
        let z = Array2::from_shape_fn((2, Z), |(j, u)| {
            let (m, v) = (pm.weight[(c, u)] + pm.bias[u], pv.weight[(c, u)] + pv.bias[u]);
            m + (0.5 * v).exp() * eps[(j, u)]
        });
        let want = vae.decode_mean(z.view(), Some(&[c, c]));
        for j in 0..2 {
            for d in 0..D {
                assert!((grid[(c * 2 + j, d)] - want[(j, d)]).abs() < 1e-6);
            }
        }
    }
    // With P(z|c) = N(0, I) the same ε is the same z in every row.
    let fixed: Vae<f32> =
        Vae::new(VaeConfig::bernoulli(D, vec![4], Z).with_condition(C, PriorKind::StandardNormal), &mut rng)
            .unwrap();
    let grid = class_samples(&fixed, eps.view()).unwrap();
    let want = fixed.decode_mean(eps.view(), Some(&[1, 1]));
    assert_eq!(grid.slice(s![2..4, ..]), want);
    // A decoder that ignores c (zero weights for the one-hot inputs): every column is constant
    // down the rows, so the change by class is exactly 0 and the change by noise is not.
    let mut blind = fixed.clone();
    blind.params.decoder.layers[0].weight.slice_mut(s![Z.., ..]).fill(0.0);
    let (by_class, by_noise) = grid_changes(&blind, eps.view()).unwrap();
    assert_eq!(by_class, 0.0);
    assert!(by_noise > 0.0);
    let learned = learned_prior(&vae).unwrap();
    assert_eq!(learned.len(), C);
    assert!((learned[1].0[0] - (-1.1 + 0.05)).abs() < 1e-6);
    assert!((learned[1].1[1] - (0.5f64 * (-1.0 - 0.1)).exp()).abs() < 1e-6);
}

#[test]
fn data_subsets_keep_every_class_and_the_class_prior_is_the_frequencies() {
    // A class-ordered split like the shipped one: 20 training digits (2 per class), 10 test.
    let digits = |per_class: usize| Digits {
        images: Array2::from_shape_fn((10 * per_class, 784), |(i, _)| (i % 2) as f32),
        labels: (0..10).flat_map(|c| std::iter::repeat_n(c as u8, per_class)).collect(),
        image_shape: [28, 28],
    };
    let split = DigitSplit { train: digits(2), test: digits(1) };
    let config = CvaeConfig { n_train: 10, n_test: 10, ..CvaeConfig::small(1, 0) };
    let data = CvaeData::from_split(&split, &config).unwrap();
    assert_eq!(data.train_labels, (0..10).collect::<Vec<_>>());
    assert_eq!(data.test_labels, (0..10).collect::<Vec<_>>());
    assert!(data.class_prior.iter().all(|&p| (p - 0.1).abs() < 1e-15));
    let too_many = CvaeConfig { n_test: 11, ..config.clone() };
    assert!(CvaeData::from_split(&split, &too_many).unwrap_err().to_string().contains("test digits"));
    assert!(CvaeConfig { k: 0, ..config }.validate().unwrap_err().to_string().contains("k = 0"));
}

#[test]
fn the_staged_evaluation_is_evaluate_bit_for_bit() {
    // A small class-ordered split (3 training and 2 test digits per class, random binary pixels)
    // and untrained models: the numbers need not be good, only identical.
    let mut rng = StdRng::seed_from_u64(11);
    let u = Uniform::new(0.0, 1.0).unwrap();
    let mut digits = |per_class: usize| Digits {
        images: Array2::from_shape_simple_fn((10 * per_class, 784), || {
            (u.sample(&mut rng) < 0.3) as u8 as f32
        }),
        labels: (0..10).flat_map(|c| std::iter::repeat_n(c as u8, per_class)).collect(),
        image_shape: [28, 28],
    };
    let split = DigitSplit { train: digits(3), test: digits(2) };
    let config = CvaeConfig {
        n_train: 30,
        n_test: 20,
        hidden: 8,
        latent_dim: 2,
        k: 3,
        eval_samples: 2,
        ..CvaeConfig::small(1, 0)
    };
    let data = CvaeData::from_split(&split, &config).unwrap();
    for kind in [ModelKind::Unconditional, ModelKind::FixedPrior, ModelKind::LearnedPrior] {
        let vae = trainer(&config, kind).unwrap().vae;
        let whole = evaluate(&config, kind, &vae, &data).unwrap();
        let mut staged = Evaluation::start(&config, kind, &vae, &data).unwrap();
        staged.classes(&data, 4).unwrap();
        let classes = if kind.conditional() { 4 } else { 0 };
        assert_eq!(staged.classes_done(), classes);
        staged.classes(&data, 2).unwrap(); // nothing to redo
        assert_eq!(staged.classes_done(), classes);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let staged = staged.finish(&data).unwrap();
        assert_eq!(staged, whole, "{kind:?}");
        assert_eq!(bits(&staged.log_px_per_example), bits(&whole.log_px_per_example));
        assert_eq!(bits(&staged.log_px_given_c_per_example), bits(&whole.log_px_given_c_per_example));
    }
    // Other data than the evaluation started with: a typed error.
    let vae = trainer(&config, ModelKind::FixedPrior).unwrap().vae;
    let mut staged = Evaluation::start(&config, ModelKind::FixedPrior, &vae, &data).unwrap();
    let fewer = CvaeData::from_split(&split, &CvaeConfig { n_test: 10, ..config.clone() }).unwrap();
    assert!(staged.classes(&fewer, 10).is_err());
}
