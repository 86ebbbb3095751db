//! Gradient checks of the whole VAE / CVAE loss with respect to every parameter tensor (ε fixed).

use ndarray::{Array2, s};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal, Uniform};

use super::*;
use crate::base::prob;
use crate::engine::nn::gradcheck::{assert_slices_close, parameter_difference};
use crate::engine::nn::{Activation, Parameters};

const D: usize = 6;
const Z: usize = 3;
const B: usize = 4;

fn data(rng: &mut StdRng, binary: bool) -> (Array2<f64>, Array2<f64>) {
    let u = Uniform::new(0.0, 1.0).unwrap();
    let x = Array2::from_shape_simple_fn((B, D), || {
        let v: f64 = u.sample(rng);
        if binary { (v < 0.4) as u8 as f64 } else { v }
    });
    let eps = Array2::from_shape_simple_fn((B, Z), || StandardNormal.sample(rng));
    (x, eps)
}

/// Checks ∂L/∂θ from `backward` against central differences for every tensor of `vae`.
fn check_every_tensor(
    name: &str,
    vae: &Vae<f64>,
    x: &Array2<f64>,
    labels: Option<&[usize]>,
    eps: &Array2<f64>,
    obj: Objective,
) {
    let (_, grads) = vae.loss_and_grads(x.view(), labels, eps.view(), &obj);
    let mut probe = vae.params.clone();
    let mut checked = 0;
    for i in 0..vae.params.tensor_count() {
        let approx = parameter_difference(&mut probe, i, |p| {
            let model = Vae { config: vae.config.clone(), params: p.clone() };
            model.loss(x.view(), labels, eps.view(), &obj).loss
        });
        // Analytic: the chain written on `Vae::backward` (decoder, reparameterisation + KL, heads,
        // trunk). Central differences in f64 with h = 6e-6 agree to ~1e-9 relative for these
        // smooth O(1) losses; 1e-6 leaves room for curvature near ReLU kinks and still fails any
        // wrong term (those show ≥ 1e-2).
        assert_slices_close(
            &format!("{name}: d_{}", vae.params.tensor_name(i)),
            grads.tensor(i),
            &approx,
            1e-6,
        );
        checked += 1;
    }
    assert_eq!(checked, vae.params.tensor_count());
}

#[test]
fn vae_gradients_match_finite_differences_for_every_tensor_and_likelihood() {
    let mut rng = StdRng::seed_from_u64(10);
    for (likelihood, activation) in [
        (Likelihood::Bernoulli, Activation::Relu),
        (Likelihood::GaussianFixed { log_var: -0.5 }, Activation::Tanh),
        (Likelihood::GaussianLearned, Activation::Softplus),
    ] {
        let mut config = VaeConfig::bernoulli(D, vec![5, 4], Z).with_likelihood(likelihood);
        config.activation = activation;
        let vae: Vae<f64> = Vae::new(config, &mut rng).unwrap();
        let (x, eps) = data(&mut rng, likelihood == Likelihood::Bernoulli);
        check_every_tensor(&format!("{likelihood:?}"), &vae, &x, None, &eps, Objective::ELBO);
        // β ≠ 1 scales only the KL term's share of the gradient.
        check_every_tensor(
            &format!("{likelihood:?} β=0.3"),
            &vae,
            &x,
            None,
            &eps,
            Objective::new(0.3, None).unwrap(),
        );
    }
    let n_tensors =
        Vae::<f64>::new(VaeConfig::bernoulli(D, vec![5, 4], Z), &mut rng).unwrap().params.tensor_count();
    // trunk 2 layers + 2 heads + decoder 3 layers = 7 linear layers, weight and bias each.
    assert_eq!(n_tensors, 14);
}

#[test]
fn cvae_gradients_match_finite_differences_for_both_priors() {
    let mut rng = StdRng::seed_from_u64(11);
    let labels = [2, 0, 1, 2];
    for (prior, likelihood) in [
        (PriorKind::StandardNormal, Likelihood::Bernoulli),
        (PriorKind::LearnedConditional, Likelihood::GaussianLearned),
    ] {
        let mut config =
            VaeConfig::bernoulli(D, vec![5], Z).with_likelihood(likelihood).with_condition(3, prior);
        config.activation = Activation::Tanh;
        let vae: Vae<f64> = Vae::new(config, &mut rng).unwrap();
        let (x, eps) = data(&mut rng, likelihood == Likelihood::Bernoulli);
        check_every_tensor(&format!("CVAE {prior:?}"), &vae, &x, Some(&labels), &eps, Objective::ELBO);
    }
}

#[test]
fn free_bits_gradient_matches_finite_differences_and_holds_units_below_lambda() {
    let mut rng = StdRng::seed_from_u64(12);
    let vae: Vae<f64> = Vae::new(VaeConfig::bernoulli(D, vec![5], Z), &mut rng).unwrap();
    let (x, eps) = data(&mut rng, true);
    let mut ws = vae.workspace(B);
    vae.forward(x.view(), None, eps.view(), &Objective::ELBO, &mut ws);
    let mut units: Vec<f64> = ws.kl_units.iter().map(|k| k / B as f64).collect();
    units.sort_by(f64::total_cmp);
    // λ halfway between the two smallest unit KLs: one unit is held, the others are not, and
    // finite differences stay away from the kink of max(λ, ·).
    let lambda = 0.5 * (units[0] + units[1]);
    let obj = Objective::new(1.0, Some(lambda)).unwrap();
    let parts = vae.forward(x.view(), None, eps.view(), &obj, &mut ws);
    assert_eq!(ws.kl_weight.iter().filter(|&&w| w == 0.0).count(), 1);
    // By definition: loss = D̄ + Σ_u max(λ, R̄_u) ≥ D̄ + R̄.
    assert!(parts.loss > parts.distortion + parts.rate);
    check_every_tensor("free bits", &vae, &x, None, &eps, obj);
}

#[test]
fn fused_model_loss_equals_the_layer_by_layer_composition() {
    let mut rng = StdRng::seed_from_u64(13);
    let vae: Vae<f64> = Vae::new(VaeConfig::bernoulli(D, vec![5], Z), &mut rng).unwrap();
    let (x, eps) = data(&mut rng, true);
    let parts = vae.loss(x.view(), None, eps.view(), &Objective::ELBO);
    // The same loss from the unfused blocks: the layers' teaching API and crate::base::prob.
    let p = &vae.params;
    let (h, _) = p.trunk.forward(x.view());
    let (mean, _) = p.mean_head.forward(h.view());
    let (log_var, _) = p.log_var_head.forward(h.view());
    let z = prob::reparameterize(mean.view(), log_var.view(), eps.view());
    let (logits, _) = p.decoder.forward(z.view());
    let distortion = -prob::bernoulli_log_likelihood(x.view(), logits.view()).mean().unwrap();
    let rate = prob::kl_diag_gaussian_std_normal(mean.view(), log_var.view()).mean().unwrap();
    assert!((parts.distortion - distortion).abs() < 1e-12, "{} vs {distortion}", parts.distortion);
    assert!((parts.rate - rate).abs() < 1e-12, "{} vs {rate}", parts.rate);
    assert!((parts.loss - (distortion + rate)).abs() < 1e-12);
}

#[test]
fn a_reused_workspace_gives_the_same_loss_and_gradients_as_a_fresh_one() {
    let mut rng = StdRng::seed_from_u64(14);
    let vae: Vae<f64> = Vae::new(VaeConfig::bernoulli(D, vec![5], Z), &mut rng).unwrap();
    let (x, eps) = data(&mut rng, true);
    let (fresh_parts, fresh_grads) = vae.loss_and_grads(x.view(), None, eps.view(), &Objective::ELBO);
    // A workspace of 10 rows, first used for a 4-row batch of other data, then for the 3-row batch.
    let mut ws = vae.workspace(10);
    let mut scratch = vae.zero_grads();
    let (y, e2) = data(&mut rng, true);
    vae.forward(y.view(), None, e2.view(), &Objective::ELBO, &mut ws);
    vae.backward(&mut ws, &mut scratch);
    let (x3, eps3) = (x.slice(s![..3, ..]), eps.slice(s![..3, ..]));
    let (want_parts, want_grads) = vae.loss_and_grads(x3, None, eps3, &Objective::ELBO);
    let parts = vae.forward(x3, None, eps3, &Objective::ELBO, &mut ws);
    let mut grads = vae.zero_grads();
    vae.backward(&mut ws, &mut grads);
    assert_eq!(parts, want_parts);
    assert_eq!(grads, want_grads);
    assert_ne!(fresh_parts, parts);
    let _ = fresh_grads;
}

#[test]
fn f32_model_agrees_with_its_f64_copy() {
    let mut rng = StdRng::seed_from_u64(15);
    let vae32: Vae<f32> = Vae::new(VaeConfig::bernoulli(D, vec![5], Z), &mut rng).unwrap();
    let vae64: Vae<f64> = vae32.cast();
    let (x, eps) = data(&mut rng, true);
    let l64 = vae64.loss(x.view(), None, eps.view(), &Objective::ELBO).loss;
    let l32 =
        vae32.loss(x.mapv(|v| v as f32).view(), None, eps.mapv(|v| v as f32).view(), &Objective::ELBO).loss;
    // f32 rounding (2^-24 ≈ 6e-8 relative per operation) over a few dozen operations per term.
    assert!((l64 - l32).abs() < 1e-5 * l64.abs(), "f64 {l64} vs f32 {l32}");
}

#[test]
fn user_errors_are_named() {
    let mut rng = StdRng::seed_from_u64(16);
    let e = Vae::<f64>::new(VaeConfig::bernoulli(0, vec![5], 2), &mut rng).unwrap_err();
    assert_eq!(e.to_string(), "invalid data_dim = 0: must be >= 1");
    let cvae = Vae::<f64>::new(
        VaeConfig::bernoulli(4, vec![5], 2).with_condition(3, PriorKind::StandardNormal),
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        cvae.check_labels(2, Some(&[0, 3])).unwrap_err().to_string(),
        "invalid labels[1] = 3: must be < classes = 3"
    );
    assert!(cvae.check_labels(2, None).is_err());
}

#[test]
fn mixture_prior_gradients_match_finite_differences_for_encoder_decoder_and_prior() {
    let mut rng = StdRng::seed_from_u64(14);
    for likelihood in [Likelihood::Bernoulli, Likelihood::GaussianLearned] {
        let mut config = VaeConfig::bernoulli(D, vec![5, 4], Z)
            .with_likelihood(likelihood)
            .with_prior(LatentPrior::Mixture { components: 3 });
        config.activation = Activation::Tanh;
        let mut vae: Vae<f64> = Vae::new(config, &mut rng).unwrap();
        // Unequal weights and widths, so no derivative vanishes by symmetry.
        let PriorParams::Mixture(prior) = &mut vae.params.prior else { panic!("a mixture prior") };
        prior.logits.assign(&ndarray::array![0.4, -0.3, 0.1]);
        prior.log_vars.mapv_inplace(|_| Uniform::new(-0.7, 0.5).unwrap().sample(&mut rng));
        let (x, eps) = data(&mut rng, likelihood == Likelihood::Bernoulli);
        // The one-sample KL̂ = −H(q) − log p_θ(z) is a deterministic function of θ for fixed ε, so
        // the whole loss is, and its gradient (decoder, z path into the encoder, entropy, prior)
        // must match central differences like the analytic-KL models above.
        check_every_tensor(&format!("mixture {likelihood:?}"), &vae, &x, None, &eps, Objective::ELBO);
        check_every_tensor(
            &format!("mixture {likelihood:?} β=0.3"),
            &vae,
            &x,
            None,
            &eps,
            Objective::new(0.3, None).unwrap(),
        );
        // trunk 2 + heads 2 + decoder 3 linears (×2 tensors), obs_log_var?, then logits, means, log_vars.
        let extra = (likelihood == Likelihood::GaussianLearned) as usize;
        assert_eq!(vae.params.tensor_count(), 14 + extra + 3);
        assert_eq!(vae.params.tensor_name(14 + extra + 1), "prior.means");
    }
}

/// `VaeConfig::parameter_count` (the memory check's count) equals the parameters a built model
/// holds, for every prior and likelihood.
#[test]
fn parameter_count_matches_the_built_model() {
    let mut rng = StdRng::seed_from_u64(5);
    let plain = VaeConfig::bernoulli(12, vec![7, 5], 3);
    let configs = [
        plain.clone(),
        plain.clone().with_prior(LatentPrior::Mixture { components: 4 }),
        plain.clone().with_condition(3, PriorKind::LearnedConditional),
        plain.clone().with_condition(3, PriorKind::StandardNormal),
        VaeConfig { likelihood: Likelihood::GaussianLearned, ..plain.clone() },
    ];
    for config in configs {
        let vae = Vae::<f32>::new(config.clone(), &mut rng).unwrap();
        let held: usize = (0..vae.params.tensor_count()).map(|i| vae.params.tensor(i).len()).sum();
        assert_eq!(config.parameter_count(), held as u128, "{config:?}");
    }
    // A width the machine cannot hold is refused by validation, in one line.
    let huge = VaeConfig::bernoulli(784, vec![100_000_000], 20);
    let err = huge.validate().unwrap_err().to_string();
    assert!(err.starts_with("a VAE with D = 784, H = [100000000], Z = 20 needs at least "), "{err}");
    let overflow = VaeConfig::bernoulli(784, vec![usize::MAX], usize::MAX);
    assert!(matches!(overflow.validate(), Err(crate::Error::TooLarge { .. })));
}
