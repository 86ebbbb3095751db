//! The exercises of lesson 10, the conditional VAE (see `notebooks/10-cvae.ipynb` and
//! `notebooks/solutions/10-cvae.ipynb`).
//!
//! - 10.1 log P(x) = log Σ_c P(c) P(x|c) from ten per-class values, by hand (a number);
//! - 10.2 the KL of one unit of Q(z|x, c) to the learned prior N(μ_c, e^{v_c}), as code (a function);
//! - 10.3 the mean KL to the learned prior of the lesson's CVAE on the test digits (a measurement).

use ndarray::{Array1, Array2, ArrayView2};

use super::{Outcome, Verdict, exercise};
use crate::base::prob::{kl_diag_gaussians, log_sum_exp_1d};
use crate::engine::vae::{PriorKind, Vae};

/// Exercise 10.1: log P(x|c) for c = 0 … 9 of one test digit (nats), as a CVAE's importance
/// sampler would report them.
pub const LOG_P_X_GIVEN_C: [f64; 10] =
    [-151.3, -140.2, -146.8, -139.5, -148.0, -150.9, -144.1, -141.7, -139.9, -152.6];
/// P(c) of exercise 10.1: the lesson's class frequencies, 0.1 each.
pub const CLASS_PRIOR: [f64; 10] = [0.1; 10];

/// Exercise 10.1: log P(x) = log Σ_c P(c) P(x|c) for the digit of [`LOG_P_X_GIVEN_C`] with
/// P(c) = [`CLASS_PRIOR`], to 2 decimals (the table's).
///
/// ```text
/// log P(x) = log Σ_c P(c) P(x|c) = logsumexp_c [log P(c) + log P(x|c)]        (Step 1)
/// ```
/// The checker's value is the crate's [`log_sum_exp_1d`].
pub fn marginal_by_hand(answer: f64) -> Verdict {
    let terms = Array1::from_shape_fn(10, |c| CLASS_PRIOR[c].ln() + LOG_P_X_GIVEN_C[c]);
    let expected = log_sum_exp_1d(terms.view());
    exercise(
        "10.1",
        "average the probabilities, not their logs: log Σ_c P(c) e^{log P(x|c)}; pull out the largest \
         term, e^{−139.5}, so the rest are e^{−0.4}, e^{−0.7}, …, and keep the P(c) = 0.1 (−log 10)",
    )
    .number("log P(x) of the digit (nats)", answer, expected, 5e-3)
}

/// The cases of exercise 10.2: (μ_q, log σ_q², μ_c, v_c) of one unit.
pub const KL_PRIOR_CASES: [(f64, f64, f64, f64); 6] = [
    (0.0, 0.0, 0.0, 0.0),
    (0.5, -1.0, 0.0, 0.0),
    (0.5, -1.0, 0.5, -1.0),
    (1.2, -2.0, -0.4, 0.6),
    (-2.0, 0.3, 1.5, -0.8),
    (0.0, 1.0, 0.0, -1.0),
];

/// Exercise 10.2: the KL of one unit of the encoder's Gaussian to the learned prior of its class,
/// `kl(mu_q, log_var_q, mu_c, v_c)`:
///
/// ```text
/// KL(N(μ_q, σ_q²) ‖ N(μ_c, e^{v_c})) = ½ [ v_c − log σ_q² + (σ_q² + (μ_q − μ_c)²) / e^{v_c} − 1 ]
/// ```
/// (the Gaussian KL, e.g. Bishop 2006, exercise 2.13). Checked on [`KL_PRIOR_CASES`] against the
/// crate's [`kl_diag_gaussians`], to 10⁻⁹.
///
/// # Shapes
/// `kl`: four scalars to a scalar.
pub fn kl_to_learned_prior(kl: impl Fn(f64, f64, f64, f64) -> f64) -> Verdict {
    exercise(
        "10.2",
        "KL(Q ‖ P) takes the expectation under Q: ½[log(σ_c²/σ_q²) + (σ_q² + (μ_q − μ_c)²)/σ_c² − 1], \
         with σ_c² = e^{v_c}; with μ_c = 0, v_c = 0 it must reduce to lesson 07's formula",
    )
    .function(
        "KL(N(μ_q, σ_q²) ‖ N(μ_c, e^{v_c}))",
        |&(mq, lq, mc, vc): &(f64, f64, f64, f64)| kl(mq, lq, mc, vc),
        |&(mq, lq, mc, vc): &(f64, f64, f64, f64)| {
            let one = |v: f64| Array2::from_elem((1, 1), v);
            kl_diag_gaussians(one(mq).view(), one(lq).view(), one(mc).view(), one(vc).view())[0]
        },
        &KL_PRIOR_CASES,
        |&(mq, lq, mc, vc)| format!("μ_q = {mq}, log σ_q² = {lq}, μ_c = {mc}, v_c = {vc}"),
        1e-9,
    )
}

/// Exercise 10.3: the mean over the digits `x` (classes `labels`) of KL(Q(z|x, c) ‖ P(z|c)) for a
/// CVAE with a learned prior, in nats, to 2 decimals (the lesson prints 10.87 for its model on
/// the 300 test digits). The checker encodes `x` with the labels, reads each class's prior
/// (μ_c, v_c) from [`Vae::prior_params`], and averages [`kl_diag_gaussians`] over the digits:
///
/// ```text
/// KL̄ = (1/N) Σ_n Σ_u KL(N(μ_u(x_n, c_n), σ_u²(x_n, c_n)) ‖ N(μ_{c_n,u}, e^{v_{c_n,u}}))
/// ```
/// The evidence also prints the KL to N(0, I) of the same encoder outputs, the fixed prior's (not
/// for a NaN answer, which is "no answer yet" without it).
///
/// # Shapes
/// `x`: N × D; `labels`: N.
pub fn mean_kl_learned_prior(vae: &Vae<f32>, x: ArrayView2<f32>, labels: &[usize], answer: f64) -> Verdict {
    let ex = exercise(
        "10.3",
        "the KL is to the class's own prior: for each digit take (μ_c, v_c) = vae.prior_params(c)? of its \
         label, not N(0, I), and average the per-digit KL (summed over units) over the digits",
    );
    if answer.is_nan() {
        return ex.number("the mean KL to the learned prior", answer, f64::NAN, 0.0);
    }
    let learned = vae.config.condition.is_some_and(|c| c.prior == PriorKind::LearnedConditional);
    if !learned {
        let evidence =
            "this model has no learned prior P(z|c); pass the CVAE trained with ModelKind::LearnedPrior";
        return Verdict::new("10.3", Outcome::Wrong, evidence, "");
    }
    if let Err(e) = crate::engine::eval::check_input(vae, "x", x, Some(labels)) {
        return Verdict::new("10.3", Outcome::Wrong, format!("your model, digits and labels: {e}"), "");
    }
    let (mean, log_var) = vae.encode(x, Some(labels));
    let (mean, log_var) = (mean.mapv(f64::from), log_var.mapv(f64::from));
    let zd = vae.config.latent_dim;
    let mut prior_mean = Array2::zeros((x.nrows(), zd));
    let mut prior_log_var = Array2::zeros((x.nrows(), zd));
    for (i, &c) in labels.iter().enumerate() {
        match vae.prior_params(c) {
            Ok((m, v)) => {
                prior_mean.row_mut(i).assign(&m.mapv(f64::from));
                prior_log_var.row_mut(i).assign(&v.mapv(f64::from));
            }
            Err(e) => return Verdict::new("10.3", Outcome::Wrong, format!("label {c}: {e}"), ""),
        }
    }
    let to_learned = kl_diag_gaussians(mean.view(), log_var.view(), prior_mean.view(), prior_log_var.view());
    let zeros = Array2::zeros((1, zd));
    let to_standard = kl_diag_gaussians(mean.view(), log_var.view(), zeros.view(), zeros.view());
    let n = x.nrows() as f64;
    let what = format!(
        "mean KL(Q(z|x,c) ‖ P(z|c)) over your {} digits (to N(0, I) it would be {:.4})",
        x.nrows(),
        to_standard.sum() / n
    );
    ex.number(&what, answer, to_learned.sum() / n, 5e-3 + 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::vae::VaeConfig;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn the_log_sum_exp_is_accepted_and_the_mean_of_logs_is_not() {
        let m = LOG_P_X_GIVEN_C.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = LOG_P_X_GIVEN_C.iter().zip(CLASS_PRIOR).map(|(l, p)| p * (l - m).exp()).sum();
        let right = m + sum.ln();
        assert!(marginal_by_hand(right).is_correct());
        assert!(marginal_by_hand((right * 100.0).round() / 100.0).is_correct());
        // Σ_c P(c) log P(x|c): Jensen's lower bound, 5 nats below.
        let mean_of_logs: f64 = LOG_P_X_GIVEN_C.iter().zip(CLASS_PRIOR).map(|(l, p)| p * l).sum();
        assert_eq!(marginal_by_hand(mean_of_logs).outcome, Outcome::Wrong);
        // Without P(c): log 10 too high.
        assert_eq!(marginal_by_hand(right + 10f64.ln()).outcome, Outcome::Wrong);
        assert_eq!(marginal_by_hand(m).outcome, Outcome::Wrong);
        assert_eq!(marginal_by_hand(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_kl_to_the_learned_prior_is_accepted_and_the_reversed_kl_is_not() {
        let right = |mq: f64, lq: f64, mc: f64, vc: f64| {
            0.5 * (vc - lq + (lq.exp() + (mq - mc).powi(2)) / vc.exp() - 1.0)
        };
        assert!(kl_to_learned_prior(right).is_correct());
        let reversed = |mq: f64, lq: f64, mc: f64, vc: f64| right(mc, vc, mq, lq);
        let v = kl_to_learned_prior(reversed);
        assert_eq!(v.outcome, Outcome::Wrong);
        // Lesson 07's formula with the prior's mean only (prior variance ignored).
        let no_var = |mq: f64, lq: f64, mc: f64, _vc: f64| 0.5 * ((mq - mc).powi(2) + lq.exp() - 1.0 - lq);
        assert_eq!(kl_to_learned_prior(no_var).outcome, Outcome::Wrong);
        assert_eq!(kl_to_learned_prior(|_, _, _, _| f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_mean_kl_is_recomputed_against_each_class_prior() {
        let config = VaeConfig::bernoulli(4, vec![3], 2).with_condition(3, PriorKind::LearnedConditional);
        let mut vae: Vae<f32> = Vae::new(config, &mut StdRng::seed_from_u64(0)).unwrap();
        // Encoder heads zeroed: Q = N(0, I) for every digit. Class c's prior mean (c, 0), log var 0:
        // KL = ½ c², so over labels [0, 1, 2, 2] the mean is (0 + ½ + 2 + 2)/4 = 1.125.
        for head in [&mut vae.params.mean_head, &mut vae.params.log_var_head] {
            head.weight.fill(0.0);
            head.bias.fill(0.0);
        }
        let (pm, pv) = match &mut vae.params.prior {
            crate::engine::vae::PriorParams::Conditional { mean_head, log_var_head } => {
                (mean_head, log_var_head)
            }
            _ => panic!("a learned conditional prior"),
        };
        pm.weight.fill(0.0);
        pm.bias.fill(0.0);
        pv.weight.fill(0.0);
        pv.bias.fill(0.0);
        for c in 0..3 {
            pm.weight[[c, 0]] = c as f32;
        }
        let x = Array2::from_shape_fn((4, 4), |(i, d)| ((i + d) % 2) as f32);
        let labels = [0, 1, 2, 2];
        assert!(mean_kl_learned_prior(&vae, x.view(), &labels, 1.125).is_correct());
        let to_standard = mean_kl_learned_prior(&vae, x.view(), &labels, 0.0);
        assert_eq!(to_standard.outcome, Outcome::Wrong);
        assert!(to_standard.evidence.contains("to N(0, I) it would be 0.0000"), "{}", to_standard.evidence);
        let nan = mean_kl_learned_prior(&vae, x.view(), &labels, f64::NAN);
        assert_eq!(nan.outcome, Outcome::Unanswered);
        assert!(
            !nan.evidence.contains("N(0, I)"),
            "the placeholder must not print the measurement: {}",
            nan.evidence
        );
        // Labels that do not fit: a verdict, not a panic.
        assert_eq!(mean_kl_learned_prior(&vae, x.view(), &[0, 1], 1.0).outcome, Outcome::Wrong);
        assert_eq!(mean_kl_learned_prior(&vae, x.view(), &[0, 1, 2, 5], 1.0).outcome, Outcome::Wrong);
        let plain: Vae<f32> =
            Vae::new(VaeConfig::bernoulli(4, vec![3], 2), &mut StdRng::seed_from_u64(0)).unwrap();
        assert_eq!(mean_kl_learned_prior(&plain, x.view(), &labels, 1.0).outcome, Outcome::Wrong);
    }
}
