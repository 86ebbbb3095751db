//! The exercises of lesson 02, derivation 1: Jensen's inequality (`notebooks/02-derivation-1-jensen.ipynb`;
//! worked solutions in `notebooks/solutions/02-derivation-1-jensen.ipynb`).
//!
//! | exercise | checker | the learner submits |
//! |---|---|---|
//! | 2.1 | [`kl_to_prior_by_hand`] | KL(Q ‖ P(z)) of the lesson's Q, by hand |
//! | 2.2 | [`iwae_estimator`] | a closure returning one K = 4 IWAE estimate on the mixture |
//! | 2.3 | [`fraction_too_low`] | how often a 100-draw importance-sampling estimate falls below log P(x), measured |
//!
//! The mixture model of the lesson has a discrete latent, so the IWAE bound L_K and the law of
//! the importance-sampling estimate are computed exactly here, by enumerating how many of the
//! draws fall on each component: the checkers need no Monte Carlo of their own.

use ndarray::{Array1, array};

use super::{Draws, Outcome, Verdict, exercise};
use crate::base::error::Result;
use crate::lessons::bounds::Q;
use crate::lessons::toy::{Encoding, LatentModel, Model, Prior};

/// The lesson's mixture model (`data/models/mixture.json`).
const MIXTURE_JSON: &str = include_str!("../../data/models/mixture.json");
/// The lesson's data point for the mixture.
pub const X_MIXTURE: [f64; 2] = [0.2, 0.1];

/// The diagonal Gaussian Q of lessons 02 and 03: mean (0.3, 0.2), log-variances (−1, −1.5).
pub const Q_MEAN: [f64; 2] = [0.3, 0.2];
/// Its log-variances.
pub const Q_LOG_VAR: [f64; 2] = [-1.0, -1.5];

/// Exercise 2.2: Q = (0.9, 0.1) over the mixture's two components, K = 4 importance samples.
pub const IWAE_Q: [f64; 2] = [0.9, 0.1];
/// K of exercise 2.2.
pub const IWAE_K: usize = 4;
/// How exercise 2.2 tests the learner's estimator: 20,000 calls, seed 14, 4 SE.
pub const IWAE_DRAWS: Draws = Draws { draws: 20_000, seed: 14, k: 4.0 };

/// Exercise 2.3: Q = (0.999, 0.001), N = 100 draws per estimate, R = 1000 repetitions.
pub const SKEWED_Q: [f64; 2] = [0.999, 0.001];
/// Draws per importance-sampling estimate in exercise 2.3.
pub const SKEWED_N: usize = 100;
/// Repetitions of the estimate in exercise 2.3.
pub const SKEWED_REPEATS: usize = 1000;

/// A checker that could not build its own case (a crate error, not the learner's): reported as
/// "not yet" with the error, never a panic.
fn internal(number: &str, e: impl std::fmt::Display) -> Verdict {
    Verdict::new(number, Outcome::Wrong, format!("the checker could not build its case: {e}"), "report this")
}

/// log P(x, z = k) − log q_k for the two components: the log importance weights of the mixture.
fn mixture_log_weights(q: [f64; 2]) -> Result<[f64; 2]> {
    let model = Model::from_json(MIXTURE_JSON)?;
    let x = Array1::from(X_MIXTURE.to_vec());
    let states = Encoding::Index.all_states(2);
    let log_joint = model.log_joint(x.view(), states.view());
    Ok([log_joint[0] - q[0].ln(), log_joint[1] - q[1].ln()])
}

/// The law of the number j of draws on component 0 among `n` draws from Q = (q₀, q₁):
/// P(j) = C(n, j) q₀ʲ q₁ⁿ⁻ʲ, j = 0..n, by the recursion P(j+1) = P(j) (n − j)/(j + 1) · q₀/q₁
/// started from P(0) = q₁ⁿ (in log space, so q₁ⁿ does not underflow).
fn binomial(n: usize, q: [f64; 2]) -> Vec<f64> {
    let mut log_p = Vec::with_capacity(n + 1);
    let mut l = n as f64 * q[1].ln();
    for j in 0..=n {
        log_p.push(l);
        l += ((n - j) as f64 / (j + 1) as f64).ln() + q[0].ln() - q[1].ln();
    }
    log_p.into_iter().map(f64::exp).collect()
}

/// log ((j w₀ + (n − j) w₁) / n) in log space: the importance-sampling estimate when j of the n
/// draws fall on component 0.
fn log_mean_weight(j: usize, n: usize, log_w: [f64; 2]) -> f64 {
    let a = if j > 0 { (j as f64).ln() + log_w[0] } else { f64::NEG_INFINITY };
    let b = if j < n { ((n - j) as f64).ln() + log_w[1] } else { f64::NEG_INFINITY };
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln() - (n as f64).ln()
}

/// Exercise 2.1: KL(Q ‖ P(z)) of the lesson's Q = N((0.3, 0.2), diag(e⁻¹, e⁻¹·⁵)) by hand,
///
/// ```text
/// KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σⱼ (σⱼ² + μⱼ² − 1 − log σⱼ²)     (Kingma & Welling 2014, App. B)
/// ```
/// against the crate's [`Q::kl_to_prior`]. The lesson prints 0.6105; answers within 10⁻⁴ are
/// accepted (the printed rounding is 5·10⁻⁵ from the exact 0.610505).
pub fn kl_to_prior_by_hand(answer: f64) -> Verdict {
    let ex = exercise(
        "2.1",
        "½ Σⱼ (σⱼ² + μⱼ² − 1 − log σⱼ²), with σⱼ² = exp(log-variance): mind the ½ and the sign of the log σ² term",
    );
    let expected = || -> Result<f64> {
        let q = Q::diag_gaussian(array![Q_MEAN[0], Q_MEAN[1]], array![Q_LOG_VAR[0], Q_LOG_VAR[1]])?;
        q.kl_to_prior(&Prior::StdNormal { dim: 2 })
    };
    match expected() {
        Ok(kl) => ex.number("KL(Q ‖ P(z))", answer, kl, 1e-4),
        Err(e) => internal("2.1", e),
    }
}

/// The exact IWAE bound of exercise 2.2, by enumerating how many of the K draws land on each
/// component:
///
/// ```text
/// L_K = Σ_{j=0}^{K} C(K, j) q₀ʲ q₁ᴷ⁻ʲ · log ((j w₀ + (K − j) w₁) / K),   w_k = P(x, z = k) / q_k
/// ```
/// (Burda et al. 2016, eq. 8, with the expectation over z₁..z_K written as a sum).
pub fn exact_iwae_bound() -> Result<f64> {
    let log_w = mixture_log_weights(IWAE_Q)?;
    Ok(binomial(IWAE_K, IWAE_Q).iter().enumerate().map(|(j, p)| p * log_mean_weight(j, IWAE_K, log_w)).sum())
}

/// Exercise 2.2: the learner's estimator of the IWAE bound L₄ on the lesson's mixture, x =
/// (0.2, 0.1), Q = (0.9, 0.1): each call draws K = 4 latents from Q with the generator it is
/// given and returns log (1/K) Σₖ wₖ.
///
/// Judged by [`super::Exercise::estimator`]: the mean of 20,000 calls (seed 14) must lie within
/// 4 SE of the exact L₄ ([`exact_iwae_bound`]). Any unbiased estimator of L₄ passes; the ELBO
/// (the mean of log w, L₁) and the log of the sum (off by log K) fail by many SE.
pub fn iwae_estimator(f: impl FnMut(&mut rand::rngs::StdRng) -> f64) -> Verdict {
    let ex = exercise(
        "2.2",
        "draw K = 4 latents from Q, take log wₖ = log P(x, zₖ) − log Q(zₖ), and return the log of their MEAN \
         (log-sum-exp minus log K), not the mean of the logs",
    );
    match exact_iwae_bound() {
        Ok(exact) => ex.estimator("L_4", f, exact, IWAE_DRAWS),
        Err(e) => internal("2.2", e),
    }
}

/// The exact probability that one importance-sampling estimate log (1/N) Σₙ wₙ of exercise 2.3
/// (N = 100 draws from Q = (0.999, 0.001)) falls below log P(x):
///
/// ```text
/// P(estimate < log P(x)) = Σ_j C(N, j) q₀ʲ q₁ᴺ⁻ʲ · 1[log ((j w₀ + (N − j) w₁)/N) < log P(x)]
/// ```
/// log P(x) from the model's own `log_marginal`.
pub fn exact_fraction_too_low() -> Result<f64> {
    let model = Model::from_json(MIXTURE_JSON)?;
    let log_px = model.log_marginal(Array1::from(X_MIXTURE.to_vec()).view())?;
    let log_w = mixture_log_weights(SKEWED_Q)?;
    Ok(binomial(SKEWED_N, SKEWED_Q)
        .iter()
        .enumerate()
        .filter(|(j, _)| log_mean_weight(*j, SKEWED_N, log_w) < log_px)
        .map(|(_, p)| p)
        .sum())
}

/// Exercise 2.3: the fraction of R = 1000 importance-sampling estimates of log P(x) (each from
/// N = 100 draws of Q = (0.999, 0.001), the mixture at x = (0.2, 0.1)) that fall below the exact
/// log P(x), measured by the learner.
///
/// A binomial proportion: accepted within 4 standard errors √(p(1 − p)/R) of the exact
/// probability p ([`exact_fraction_too_low`]).
pub fn fraction_too_low(fraction: f64) -> Verdict {
    let hint = "count the estimates with log (1/N) Σ w < log P(x) and divide by R = 1000; an estimate is below \
                log P(x) unless a draw lands on the rare component";
    if fraction.is_nan() {
        return Verdict::new(
            "2.3",
            Outcome::Unanswered,
            "the fraction is still NaN; put your measurement in",
            hint,
        );
    }
    let p = match exact_fraction_too_low() {
        Ok(p) => p,
        Err(e) => return internal("2.3", e),
    };
    let se = (p * (1.0 - p) / SKEWED_REPEATS as f64).sqrt();
    let k = 4.0;
    let ok = (fraction - p).abs() <= k * se;
    let evidence = format!(
        "fraction of {SKEWED_REPEATS} estimates below log P(x): exact probability {p:.4} (SE of a fraction of \
         {SKEWED_REPEATS}: {se:.4}), got {fraction:.4}: |difference| = {:.2} SE {} {k} SE",
        (fraction - p).abs() / se,
        if ok { "≤" } else { ">" }
    );
    Verdict::new("2.3", if ok { Outcome::Correct } else { Outcome::Wrong }, evidence, hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::prob::{log_mean_exp_1d, log_sum_exp_1d};
    use crate::lessons::bounds::{self, iwae};
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn mixture() -> Model {
        Model::from_json(MIXTURE_JSON).unwrap()
    }

    #[test]
    fn the_kl_by_hand_is_accepted_with_the_printed_rounding_and_a_missing_half_is_not() {
        let kl = 0.5 * ((-1f64).exp() + 0.09 - 1.0 + 1.0 + (-1.5f64).exp() + 0.04 - 1.0 + 1.5);
        assert!(kl_to_prior_by_hand(kl).is_correct());
        assert!(kl_to_prior_by_hand(0.6105).is_correct()); // as lesson 02 prints it
        assert_eq!(kl_to_prior_by_hand(2.0 * kl).outcome, Outcome::Wrong); // no ½
        // + log σ² instead of − log σ²: ½ (… − 2.5 + … ) = kl − 2.5.
        assert_eq!(kl_to_prior_by_hand(kl - 2.5).outcome, Outcome::Wrong);
        assert_eq!(kl_to_prior_by_hand(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_exact_iwae_bound_matches_the_crates_monte_carlo() {
        // The enumeration against bounds::iwae (an independent route: sampling), 4 SE.
        let exact = exact_iwae_bound().unwrap();
        let q = Q::categorical(array![IWAE_Q[0], IWAE_Q[1]].view(), Encoding::Index).unwrap();
        let x = Array1::from(X_MIXTURE.to_vec());
        let mc = iwae(&mixture(), x.view(), &q, IWAE_K, 50_000, &mut StdRng::seed_from_u64(1)).unwrap();
        assert!((mc.mean - exact).abs() < 4.0 * mc.stderr, "{} ± {} vs {exact}", mc.mean, mc.stderr);
        // K = 1 is the ELBO: Σ_k q_k log w_k, and the bound lies between it and log P(x).
        let log_w = mixture_log_weights(IWAE_Q).unwrap();
        let elbo = IWAE_Q[0] * log_w[0] + IWAE_Q[1] * log_w[1];
        let log_px = mixture().log_marginal(x.view()).unwrap();
        assert!(elbo < exact && exact < log_px, "{elbo} < {exact} < {log_px}");
    }

    #[test]
    fn an_iwae_estimator_is_accepted_and_the_elbo_and_a_missing_one_over_k_are_not() {
        let model = mixture();
        let q = Q::categorical(array![IWAE_Q[0], IWAE_Q[1]].view(), Encoding::Index).unwrap();
        let x = Array1::from(X_MIXTURE.to_vec());
        let log_w = |rng: &mut StdRng| {
            let z = q.sample(IWAE_K, rng);
            model.log_joint(x.view(), z.view()) - q.log_density(z.view())
        };
        assert!(iwae_estimator(|rng| log_mean_exp_1d(log_w(rng).view())).is_correct());
        for seed in [1, 2] {
            // Other seeds: a correct estimator passes there too.
            let d = Draws { seed, ..IWAE_DRAWS };
            let v = exercise("t", "").estimator(
                "L_4",
                |rng| log_mean_exp_1d(log_w(rng).view()),
                exact_iwae_bound().unwrap(),
                d,
            );
            assert!(v.is_correct(), "{v}");
        }
        // The mean of the logs: an unbiased estimate of L₁, not L₄.
        let elbo = iwae_estimator(|rng| log_w(rng).mean().unwrap());
        assert_eq!(elbo.outcome, Outcome::Wrong);
        // The log of the sum, without 1/K: off by log 4.
        assert_eq!(iwae_estimator(|rng| log_sum_exp_1d(log_w(rng).view())).outcome, Outcome::Wrong);
        assert_eq!(iwae_estimator(|_| f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_fraction_too_low_is_the_chance_of_no_rare_draw() {
        // w₁ = P(x, 1)/0.001 is so large that one draw on component 1 lifts the estimate above
        // log P(x), and with none it stays below: the probability is 0.999¹⁰⁰ = 0.9048.
        let p = exact_fraction_too_low().unwrap();
        assert!((p - 0.999f64.powi(100)).abs() < 1e-12, "{p}");
    }

    #[test]
    fn a_measured_fraction_is_accepted_and_one_half_is_not() {
        // The learner's route: R = 1000 estimates of N = 100 draws each, with the crate.
        let model = mixture();
        let q = Q::categorical(array![SKEWED_Q[0], SKEWED_Q[1]].view(), Encoding::Index).unwrap();
        let x = Array1::from(X_MIXTURE.to_vec());
        let log_px = model.log_marginal(x.view()).unwrap();
        for seed in [5, 6, 7] {
            let mut rng = StdRng::seed_from_u64(seed);
            let below = (0..SKEWED_REPEATS)
                .filter(|_| {
                    let d = bounds::draw(&model, x.view(), &q, SKEWED_N, &mut rng).unwrap();
                    bounds::importance_log_evidence(&d).unwrap().mean < log_px
                })
                .count();
            let v = fraction_too_low(below as f64 / SKEWED_REPEATS as f64);
            assert!(v.is_correct(), "seed {seed}: {v}");
        }
        // "Consistent, so half the estimates are low": rejected.
        assert_eq!(fraction_too_low(0.5).outcome, Outcome::Wrong);
        // The complement (the fraction above): rejected.
        assert_eq!(fraction_too_low(1.0 - 0.999f64.powi(100)).outcome, Outcome::Wrong);
        assert_eq!(fraction_too_low(f64::NAN).outcome, Outcome::Unanswered);
    }
}
