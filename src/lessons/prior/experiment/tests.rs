use super::*;
use crate::engine::data::{prototype_images, prototype_masks};

/// A tiny configuration (784-8-2, K = 3) and its two models, trained 2 epochs on 200 prototype
/// images, with 40 binarised test images.
fn tiny() -> (PriorExperimentConfig, Trainer, Trainer, Array2<f32>) {
    let config = PriorExperimentConfig {
        hidden: 8,
        components: 3,
        epochs: 2,
        seed: 3,
        n_test: 40,
        elbo_samples: 3,
        k: 5,
        is_chunk_rows: 7,
        surgery_samples: 2,
        chunk: 30,
        aggregate_draws: 50,
        ..PriorExperimentConfig::lesson()
    };
    let masks = prototype_masks(10, 784, 0.13, &mut StdRng::seed_from_u64(1));
    let train = prototype_images(masks.view(), 200, 0.9, 0.05);
    let test = binarize_fixed(train.slice(ndarray::s![..config.n_test, ..]));
    let mut fixed = config.trainer(LatentPrior::StandardNormal).unwrap();
    train_epochs(&mut fixed, train.view(), config.epochs, &mut |_| {}).unwrap();
    let mut learned = config.trainer(config.learned_prior()).unwrap();
    train_epochs(&mut learned, train.view(), config.epochs, &mut |_| {}).unwrap();
    (config, fixed, learned, test)
}

#[test]
fn one_call_without_the_fixed_surgery_equals_step_5_then_step_6_bit_for_bit() {
    let (config, fixed, learned, test) = tiny();
    // The CLI: one call.
    let mut rng = StdRng::seed_from_u64(5);
    let one = compare_priors(&config, &fixed.vae, None, &learned.vae, test.view(), &mut rng).unwrap();
    let after_one: u64 = rng.random();
    // The notebook: Step 5, then Step 6 with its surgery.
    let mut rng = StdRng::seed_from_u64(5);
    let (stats, surgery) = measure_fixed_prior(&config, &fixed.vae, test.view(), &mut rng).unwrap();
    let two =
        compare_priors(&config, &fixed.vae, Some(&surgery), &learned.vae, test.view(), &mut rng).unwrap();
    let after_two: u64 = rng.random();

    assert_eq!(serde_json::to_string(&one).unwrap(), serde_json::to_string(&two).unwrap());
    assert_eq!(one.models[0].surgery, surgery);
    for i in 0..2 {
        assert_eq!(one.stats[i].elbo, two.stats[i].elbo);
        assert_eq!(one.stats[i].mean, two.stats[i].mean);
        assert_eq!(one.is[i].per_example, two.is[i].per_example);
    }
    assert_eq!(one.learned_draws, two.learned_draws);
    assert_eq!(one.mixture, two.mixture);
    assert_eq!(after_one, after_two, "both leave the generator in the same state");
    // Step 5's encoder outputs are the comparison's (the encoder does not depend on S).
    assert_eq!(stats.mean, one.stats[0].mean);
    // The serialised numbers are finite, the difference is paired, and the names are the notebook's.
    assert_eq!(one.models[0].name, "N(0, I)");
    assert_eq!(one.models[1].name, "mixture K = 3");
    assert_eq!(one.elbo_difference, paired_difference(&one.stats[1].elbo, &one.stats[0].elbo).unwrap());
    assert_eq!(one.elbo_difference.samples, config.n_test);
    assert_eq!(one.learned_draws.dim(), (config.aggregate_draws, 2));
    assert!((one.mixture_weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    assert!(one.learned_prior_plot().is_ok());
}

#[test]
fn wrong_models_and_sizes_are_errors() {
    let (config, fixed, learned, test) = tiny();
    let rng = &mut StdRng::seed_from_u64(5);
    // A mixture model passed as the fixed one.
    let err = compare_priors(&config, &learned.vae, None, &learned.vae, test.view(), rng).unwrap_err();
    assert!(err.to_string().contains("fixed model's prior"), "{err}");
    assert!(measure_fixed_prior(&config, &learned.vae, test.view(), rng).is_err());
    // An N(0, I) model passed as the learned one.
    let err = compare_priors(&config, &fixed.vae, None, &fixed.vae, test.view(), rng).unwrap_err();
    assert!(err.to_string().contains("learned model's prior"), "{err}");
    // K mismatch: the configuration says 4 components, the model has 3.
    let four = PriorExperimentConfig { components: 4, ..config.clone() };
    let err = compare_priors(&four, &fixed.vae, None, &learned.vae, test.view(), rng).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    // A fixed surgery of another N.
    let (_, surgery) =
        measure_fixed_prior(&config, &fixed.vae, test.slice(ndarray::s![..10, ..]), rng).unwrap();
    let err =
        compare_priors(&config, &fixed.vae, Some(&surgery), &learned.vae, test.view(), rng).unwrap_err();
    assert!(err.to_string().contains("fixed_surgery"), "{err}");
    // Bad sizes name the field.
    for (bad, name) in [
        (PriorExperimentConfig { components: 0, ..config.clone() }, "components"),
        (PriorExperimentConfig { n_test: 1, ..config.clone() }, "n_test"),
        (PriorExperimentConfig { k: 0, ..config.clone() }, "k"),
    ] {
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
}

#[test]
fn the_lesson_configuration_is_the_notebooks() {
    let c = PriorExperimentConfig::lesson();
    assert_eq!((c.hidden, c.latent_dim, c.components, c.epochs, c.seed, c.n_test), (64, 2, 10, 12, 5, 2000));
    assert_eq!(
        (c.elbo_samples, c.k, c.is_chunk_rows, c.surgery_samples, c.chunk, c.aggregate_draws),
        (10, 20, 20, 4, 1000, 2000)
    );
    assert_eq!(c.vae_config(LatentPrior::StandardNormal), VaeConfig::bernoulli(784, vec![64], 2));
    assert_eq!(c.train_config(), TrainConfig::anchor(12, 5));
    c.validate().unwrap();
}

#[test]
fn test_digits_are_evenly_spaced_and_binarised() {
    use crate::engine::data::Digits;
    let images = Array2::from_shape_fn((10, 784), |(i, j)| if j == 0 { i as f32 / 10.0 } else { 0.0 });
    let digits = Digits { images, labels: vec![0; 10], image_shape: [28, 28] };
    let split = DigitSplit { train: digits.clone(), test: digits };
    let config = PriorExperimentConfig { n_test: 4, ..PriorExperimentConfig::lesson() };
    // Rows 0, 2, 5, 7: grey 0.0, 0.2, 0.5, 0.7 → 0, 0, 0, 1 (x > 0.5).
    let x = config.test_digits(&split).unwrap();
    assert_eq!(x.column(0).to_vec(), vec![0.0, 0.0, 0.0, 1.0]);
    let all = PriorExperimentConfig::lesson().test_digits(&split).unwrap();
    assert_eq!(all, binarize_fixed(split.test.images.view()), "n_test ≥ N takes every row in order");
}

#[test]
fn model_digits_have_the_decoders_pixel_probabilities() {
    // A decoder whose last layer ignores z (weights 0) and has bias b_d: p(x_d = 1 | z) = σ(b_d)
    // for every z, so each pixel of a draw is Bernoulli(σ(b_d)). Check the fraction of ones per
    // pixel against σ(b_d) within 4 binomial standard errors (n = 4000 draws).
    let mut rng = StdRng::seed_from_u64(12);
    let mut vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(6, vec![4], 2), &mut rng).unwrap();
    let last = vae.params.decoder.layers.last_mut().unwrap();
    last.weight.fill(0.0);
    let b = [-3.0f32, -1.0, 0.0, 0.5, 2.0, 4.0];
    last.bias.assign(&ndarray::Array1::from(b.to_vec()));
    let n = 4000;
    let x = sample_model_digits(&vae, n, &mut rng).unwrap();
    assert!(x.iter().all(|&v| v == 0.0 || v == 1.0));
    for (d, &bd) in b.iter().enumerate() {
        let p = 1.0 / (1.0 + (-f64::from(bd)).exp());
        let frac = x.column(d).iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let se = (p * (1.0 - p) / n as f64).sqrt();
        assert!((frac - p).abs() < 4.0 * se, "pixel {d}: {frac} vs σ(b) = {p} (se {se})");
    }
    // Pixels are drawn as Bernoulli: a Gaussian decoder is refused.
    let gaussian =
        VaeConfig::bernoulli(6, vec![4], 2).with_likelihood(crate::engine::vae::Likelihood::GaussianLearned);
    let vae: Vae<f32> = Vae::new(gaussian, &mut rng).unwrap();
    assert!(sample_model_digits(&vae, 3, &mut rng).is_err());
}
