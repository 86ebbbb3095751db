use super::*;
use crate::engine::nn::Activation;
use crate::engine::vae::Likelihood;
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

#[test]
fn variance_of_batch_mean_matches_enumeration() {
    // Every subset of size B of 6 values, enumerated: the exact variance of the subset mean.
    let y = [0.3, -1.2, 2.5, 0.0, 4.1, -0.7];
    let n = y.len();
    let (mean, var) = population_moments(&y);
    for b in 1..=n {
        let (mut count, mut sum_sq) = (0.0, 0.0);
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != b {
                continue;
            }
            let m = (0..n).filter(|i| mask & (1 << i) != 0).map(|i| y[i]).sum::<f64>() / b as f64;
            count += 1.0;
            sum_sq += (m - mean) * (m - mean);
        }
        let exact = sum_sq / count;
        let closed = variance_of_batch_mean(var, n, b).unwrap();
        assert!((exact - closed).abs() <= 1e-14 * var, "B = {b}: {exact} vs {closed}");
    }
    assert!(variance_of_batch_mean(1.0, 5, 0).is_err());
    assert!(variance_of_batch_mean(1.0, 5, 6).is_err());
    assert!(variance_of_batch_mean(-1.0, 5, 2).is_err());
}

#[test]
fn sampled_variance_agrees_with_closed_form() {
    // 200 skewed values; T = 4000 random batches per B. Each sampled variance is a mean of T
    // squared deviations, so within 4 SE of its expectation (the closed form) except with
    // probability ≈ 6e-5 per B (normal approximation of the mean of 4000 draws).
    let mut rng = StdRng::seed_from_u64(11);
    let values: Vec<f64> = (0..200).map(|_| rng.random::<f64>().powi(3) * 50.0).collect();
    let noise = scalar_batch_noise(&values, &powers_of_two_and_full(200), 4000, &mut rng).unwrap();
    for p in &noise {
        if p.batch_size == 200 {
            assert_eq!(p.closed_form, 0.0);
            assert!(p.sampled.unwrap().mean.abs() < 1e-20);
            continue;
        }
        assert!(
            p.z_score().unwrap().abs() < 4.0,
            "B = {}: {:?} vs {}",
            p.batch_size,
            p.sampled,
            p.closed_form
        );
    }
    // Fewer than two repeats: nothing sampled, and no z-score.
    let unsampled = scalar_batch_noise(&values, &[10], 0, &mut rng).unwrap();
    assert_eq!((unsampled[0].sampled, unsampled[0].z_score()), (None, None));
}

fn tiny_vae() -> Vae<f64> {
    let config = VaeConfig {
        data_dim: 6,
        hidden_dims: vec![5],
        latent_dim: 2,
        activation: Activation::Tanh,
        likelihood: Likelihood::Bernoulli,
        condition: None,
        prior: crate::engine::vae::LatentPrior::StandardNormal,
    };
    Vae::new(config, &mut StdRng::seed_from_u64(3)).unwrap()
}

fn tiny_data(n: usize, seed: u64) -> (Array2<f64>, Array2<f64>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Array2::from_shape_simple_fn((n, 6), || if rng.random::<f64>() < 0.4 { 1.0 } else { 0.0 });
    let eps = Array2::from_shape_simple_fn((n, 2), || StandardNormal.sample(&mut rng));
    (x, eps)
}

fn flat(g: &VaeParams<f64>, r: std::ops::Range<usize>) -> Vec<f64> {
    let mut v = Vec::new();
    flatten_into(g, r, &mut v);
    v
}

/// The per-example route (B = 1 passes, Welford) against the batch route: the full-data gradient
/// of one N-row pass must have the norm accumulated, and random batches' gradients must scatter
/// around it as the closed form says.
#[test]
fn gradient_noise_matches_random_batches() {
    let vae = tiny_vae();
    let n = 24;
    let (x, eps) = tiny_data(n, 5);
    let pop = gradient_population(&vae, x.view(), eps.view()).unwrap();
    let (enc, dec) = encoder_decoder_tensors(&vae);
    let recon_only = Objective { beta: 0.0, free_bits: None };
    let grads = |rows: &[usize], obj: &Objective| {
        let (xb, eb) = (x.select(ndarray::Axis(0), rows), eps.select(ndarray::Axis(0), rows));
        vae.loss_and_grads(xb.view(), None, eb.view(), obj).1
    };
    let all: Vec<usize> = (0..n).collect();
    let (full_r, full_t) = (grads(&all, &recon_only), grads(&all, &Objective::ELBO));
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let kl_of = |t: &VaeParams<f64>, r: &VaeParams<f64>| -> Vec<f64> {
        flat(t, enc.clone()).iter().zip(flat(r, enc.clone())).map(|(a, b)| a - b).collect()
    };
    assert!((norm(&flat(&full_r, enc.clone())) - pop.recon_encoder.mean_norm).abs() < 1e-12);
    assert!((norm(&flat(&full_r, dec.clone())) - pop.recon_decoder.mean_norm).abs() < 1e-12);
    assert!((norm(&kl_of(&full_t, &full_r)) - pop.kl_encoder.mean_norm).abs() < 1e-12);
    // The KL term does not reach the decoder: β changes no decoder gradient.
    assert_eq!(flat(&full_t, dec.clone()), flat(&full_r, dec.clone()));

    // T = 3000 random batches per B: mean of ‖ḡ_B − ḡ‖² within 4 SE of the closed form.
    let mut rng = StdRng::seed_from_u64(9);
    let full = [flat(&full_r, enc.clone()), flat(&full_r, dec.clone()), kl_of(&full_t, &full_r)];
    let spreads = [pop.recon_encoder, pop.recon_decoder, pop.kl_encoder];
    for b in [1, 3, 8, 23] {
        let mut sq = [Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..3000 {
            let rows = sample_indices(&mut rng, n, b).into_vec();
            let (gr, gt) = (grads(&rows, &recon_only), grads(&rows, &Objective::ELBO));
            let batch = [flat(&gr, enc.clone()), flat(&gr, dec.clone()), kl_of(&gt, &gr)];
            for k in 0..3 {
                sq[k].push(batch[k].iter().zip(&full[k]).map(|(a, c)| (a - c) * (a - c)).sum::<f64>());
            }
        }
        for k in 0..3 {
            let crate::base::stats::Estimate { mean: sampled, stderr: se, .. } =
                crate::base::stats::Estimate::from_values(&sq[k]).unwrap();
            let closed = variance_of_batch_mean(spreads[k].population_variance, n, b).unwrap();
            assert!((sampled - closed).abs() < 4.0 * se, "term {k}, B = {b}: {sampled} ± {se} vs {closed}");
        }
    }
}

/// The KL-only gradient by linearity in β, against central differences of the batch-mean rate
/// (f64, step 1e-5 ≈ ε^(1/3)), on every encoder scalar.
#[test]
fn kl_gradient_by_linearity_matches_finite_differences() {
    let vae = tiny_vae();
    let (x, eps) = tiny_data(7, 13);
    let recon_only = Objective { beta: 0.0, free_bits: None };
    let gr = vae.loss_and_grads(x.view(), None, eps.view(), &recon_only).1;
    let gt = vae.loss_and_grads(x.view(), None, eps.view(), &Objective::ELBO).1;
    let (enc, _) = encoder_decoder_tensors(&vae);
    let h = 1e-5;
    let mut exact = Vec::new();
    let mut approx = Vec::new();
    for t in enc {
        for j in 0..vae.params.tensor(t).len() {
            exact.push(gt.tensor(t)[j] - gr.tensor(t)[j]);
            let rate_at = |delta: f64| {
                let mut v = vae.clone();
                v.params.tensor_mut(t)[j] += delta;
                v.loss(x.view(), None, eps.view(), &Objective::ELBO).rate
            };
            approx.push((rate_at(h) - rate_at(-h)) / (2.0 * h));
        }
    }
    // Central differences: truncation O(h²) ≈ 1e-10 and rounding O(ε/h) ≈ 1e-11 on O(1) values.
    crate::engine::nn::gradcheck::assert_slices_close("∇_encoder R̄", &exact, &approx, 1e-7);
}

#[test]
fn uniform_scheme_trains_exactly_as_per_example_when_b_divides_n() {
    // β_i = (1/M)(N/B) = M · (1/M), which is 1 or 1 − 2⁻⁵³; both round to 1.0 in the f32 KL
    // weight, and the f64 loss differs only in its last bit, so the f32 parameters are identical.
    let mut rng = StdRng::seed_from_u64(2);
    let x = Array2::from_shape_simple_fn((48, 6), || rng.random::<f32>());
    let vae_config = VaeConfig::bernoulli(6, vec![5], 2);
    let train = |w: KlBatchWeights| {
        let mut cfg = TrainConfig::anchor(3, 4);
        cfg.batch_size = 8;
        cfg.kl_batch_weights = w;
        let mut t = Trainer::new(vae_config.clone(), cfg).unwrap();
        t.fit(&TrainSet { x: x.view(), labels: None, binarize: true }, None, |_| {}).unwrap();
        t.vae.params
    };
    let (per_example, uniform, blundell) =
        (train(KlBatchWeights::PerExample), train(KlBatchWeights::Uniform), train(KlBatchWeights::Blundell));
    assert_eq!(per_example, uniform);
    assert_ne!(per_example, blundell, "Blundell's weights change the training");
}

#[test]
fn training_config_without_the_field_reads_as_per_example() {
    let mut cfg = serde_json::to_value(TrainConfig::anchor(1, 0)).unwrap();
    cfg.as_object_mut().unwrap().remove("kl_batch_weights");
    let back: TrainConfig = serde_json::from_value(cfg).unwrap();
    assert_eq!(back.kl_batch_weights, KlBatchWeights::PerExample);
    let blundell = serde_json::to_value(KlBatchWeights::Blundell).unwrap();
    assert_eq!(blundell, "blundell");
}

#[test]
fn measure_noise_on_a_tiny_model() {
    let vae = Vae::<f32>::new(VaeConfig::bernoulli(6, vec![5], 2), &mut StdRng::seed_from_u64(1)).unwrap();
    let mut rng = StdRng::seed_from_u64(8);
    let x = Array2::from_shape_simple_fn((20, 6), || if rng.random::<f32>() < 0.5 { 1.0 } else { 0.0 });
    let report = measure_noise(&vae, x.view(), 50, 0).unwrap();
    assert_eq!(report.batch_sizes, vec![1, 2, 4, 8, 16, 20]);
    // B = 1: the closed form is the population variance itself.
    assert!((report.recon[0].closed_form - report.recon_sd * report.recon_sd).abs() < 1e-12);
    assert_eq!(report.kl.last().unwrap().closed_form, 0.0);
    assert_eq!(report.kl_encoder_grad.last().unwrap().mean_sq_deviation, 0.0);
    assert!(measure_noise(&vae, x.view(), 1, 0).is_err());
    assert!(measure_noise(&vae, Array2::zeros((3, 5)).view(), 0, 0).is_err());
}

#[test]
fn paired_test_elbo_is_the_difference_of_the_means_with_the_paired_se() {
    // Independent route: the paired mean equals the difference of the two summaries' means, and
    // the SE is that of the differences (2, 0, 1, 1: mean 1, s² = 2/3, SE = √(2/3)/2).
    let run = |elbo: Vec<f64>| {
        let summary = |v: &[f64]| Estimate::from_values(v).unwrap();
        KlWeightRun {
            weights: KlBatchWeights::PerExample,
            batch_size: 2,
            batches_per_epoch: 2,
            first_beta: 1.0,
            test: ElboSummary {
                elbo: summary(&elbo),
                rate: summary(&elbo),
                distortion: summary(&elbo),
                n: elbo.len(),
            },
            history: Vec::new(),
            test_elbo: elbo,
            store: String::new(),
        }
    };
    let (a, b) = (run(vec![-10.0, -12.0, -9.0, -11.0]), run(vec![-12.0, -12.0, -10.0, -12.0]));
    let d = paired_test_elbo(&a, &b).unwrap();
    assert!((d.mean - (a.test.elbo.mean - b.test.elbo.mean)).abs() < 1e-12, "{d:?}");
    assert!((d.stderr - (2.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-12, "{d:?}");
    assert_eq!(paired_test_elbo(&a, &a).unwrap().mean, 0.0);
    let short = run(vec![-1.0, -2.0]);
    assert!(matches!(paired_test_elbo(&a, &short), Err(Error::Shape { .. })));
}
