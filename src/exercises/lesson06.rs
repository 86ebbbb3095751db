//! The exercises of lesson 06 (`notebooks/06-minibatch-kl-weight.ipynb`; worked solutions in
//! `notebooks/solutions/06-minibatch-kl-weight.ipynb`).
//!
//! - 6.1 [`blundell_first_beta`]: Blundell's KL weight on the first batch at B = 4, predicted by
//!   hand.
//! - 6.2 [`batch_mean_variance`]: the learner's variance of a batch mean drawn without replacement.
//! - 6.3 [`sampled_batch_variance`]: a measurement — the variance of the batch means of a small
//!   population over random batches, against every possible batch enumerated.

use super::{Verdict, exercise};
use crate::engine::vae::KlBatchWeights;
use crate::lessons::minibatch::variance_of_batch_mean;

/// Exercise 6.1's training-set size N (lesson 06's subset).
pub const BLUNDELL_N: usize = 2000;
/// Exercise 6.1's batch size B.
pub const BLUNDELL_B: usize = 4;

/// Exercise 6.1: β₁ = π₁ N/B₁, the KL weight Blundell's scheme puts on the first batch of an epoch
/// with N = [`BLUNDELL_N`] and B = [`BLUNDELL_B`], to two decimals.
///
/// ```text
/// M = ⌈N/B⌉,   π_i = 2^(M−i)/(2^M − 1),   β_i = π_i N/B_i      (lesson 06, Step 1)
/// ```
/// Expected from the crate's [`KlBatchWeights::beta_factor`]; tolerance 5·10⁻³ (two decimals).
pub fn blundell_first_beta(answer: f64) -> Verdict {
    let expected = KlBatchWeights::Blundell.beta_factor(1, BLUNDELL_N, BLUNDELL_B);
    exercise(
        "6.1",
        "M = N/B = 500 batches; π₁ = 2^(M−1)/(2^M − 1) is ½ to many digits; the trainer's weight is \
         β₁ = π₁ · N/B, i.e. about M/2",
    )
    .number("Blundell's β₁ at N = 2000, B = 4", answer, expected, 5e-3)
}

/// Exercise 6.2's cases `(σ², N, B)`: B = 1, B = N, a few in between, and the lesson's sizes.
pub const BATCH_VARIANCE_CASES: [(f64, usize, usize); 6] =
    [(2.0, 10, 1), (2.0, 10, 3), (2.0, 10, 10), (0.7, 2000, 16), (0.7, 2000, 128), (5.0, 3, 2)];

/// Exercise 6.2: the learner's `f(σ², N, B)` → Var(batch mean) of B values drawn without
/// replacement from N with population variance σ² (1/N), against the crate's
/// [`variance_of_batch_mean`] on [`BATCH_VARIANCE_CASES`].
///
/// ```text
/// Var(x̄_B) = (σ²/B) (N − B)/(N − 1)       (Cochran 1977, Thm 2.2; lesson 06 Step 2)
/// ```
/// Tolerance 10⁻¹² relative (one formula, a few roundings).
pub fn batch_mean_variance(f: impl Fn(f64, usize, usize) -> f64) -> Verdict {
    exercise(
        "6.2",
        "without replacement the B values are negatively correlated: σ²/B times the finite-population \
         factor (N − B)/(N − 1), which is 0 at B = N (the whole population, no noise) and 1 at B = 1",
    )
    .function(
        "Var(batch mean)",
        |&(s2, n, b): &(f64, usize, usize)| f(s2, n, b),
        |&(s2, n, b): &(f64, usize, usize)| variance_of_batch_mean(s2, n, b).unwrap_or(f64::NAN),
        &BATCH_VARIANCE_CASES,
        |(s2, n, b)| format!("σ² = {s2}, N = {n}, B = {b}"),
        1e-12,
    )
}

/// Exercise 6.3's population (the first twelve two-digit groups of π's decimals, divided by 10).
pub const POPULATION: [f64; 12] = [1.4, 1.5, 9.2, 6.5, 3.5, 8.9, 7.9, 3.2, 3.8, 4.6, 2.6, 4.3];
/// Exercise 6.3's batch size.
pub const POPULATION_BATCH: usize = 4;
/// The random batches exercise 6.3 asks for (at least).
pub const POPULATION_REPEATS: usize = 20_000;

/// Mean and variance of the batch mean over every B-subset of `values` (each equally likely:
/// a batch drawn without replacement), and the 4th central moment, by enumeration.
fn enumerate_batch_means(values: &[f64], b: usize) -> (f64, f64, f64) {
    let n = values.len();
    let means: Vec<f64> = (0u32..(1 << n))
        .filter(|mask| mask.count_ones() as usize == b)
        .map(|mask| (0..n).filter(|i| (mask >> i) & 1 == 1).map(|i| values[i]).sum::<f64>() / b as f64)
        .collect();
    let count = means.len() as f64;
    let mean = means.iter().sum::<f64>() / count;
    let var = means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / count;
    let m4 = means.iter().map(|m| (m - mean).powi(4)).sum::<f64>() / count;
    (mean, var, m4)
}

/// Exercise 6.3: the learner's measured variance of the batch mean of [`POPULATION`] over at least
/// [`POPULATION_REPEATS`] random batches of B = [`POPULATION_BATCH`] drawn without replacement
/// (e.g. with `vaelab::lessons::minibatch::scalar_batch_noise`), to three decimals.
///
/// The exact value is the variance over all C(12, 4) = 495 batches, enumerated (no formula); the
/// sample variance of R batch means has standard error √((μ₄ − Var²)/R) with μ₄ the 4th central
/// moment of the batch mean (also enumerated), so the checker accepts |answer − exact| ≤
/// 4 SE at R = [`POPULATION_REPEATS`] + 5·10⁻⁴ (rounding). Drawing with replacement gives
/// σ²/B, (N − 1)/(N − B) = 11/8 times too large, far outside the band.
pub fn sampled_batch_variance(answer: f64) -> Verdict {
    let (_, var, m4) = enumerate_batch_means(&POPULATION, POPULATION_BATCH);
    let se = ((m4 - var * var) / POPULATION_REPEATS as f64).sqrt();
    exercise(
        "6.3",
        "draw each batch WITHOUT replacement (four distinct indices), take its mean, and report the \
         variance of those means around their average — not the population variance, and not σ²/B",
    )
    .number(
        "Var(batch mean), B = 4 of the 12 values (all 495 batches enumerated; band 4 SE at R = 20,000 + rounding)",
        answer,
        var,
        4.0 * se + 5e-4,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercises::Outcome;
    use crate::lessons::minibatch::scalar_batch_noise;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand::seq::index::sample;

    #[test]
    fn blundell_beta_by_hand() {
        // M = 500, π₁ = 2^499/(2^500 − 1) = ½ (1 + 2^−500)… = ½ in f64, β₁ = ½ · 2000/4 = 250.
        assert!(blundell_first_beta(250.0).is_correct());
        assert_eq!(blundell_first_beta(62.5).outcome, Outcome::Wrong); // the lesson's B = 16 value
        assert_eq!(blundell_first_beta(0.5).outcome, Outcome::Wrong); // π₁, not β₁
        assert_eq!(blundell_first_beta(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn batch_variance_accepts_cochran_and_rejects_with_replacement() {
        let cochran = |s2: f64, n: usize, b: usize| {
            if n == 1 { 0.0 } else { s2 / b as f64 * (n - b) as f64 / (n - 1) as f64 }
        };
        assert!(batch_mean_variance(cochran).is_correct());
        let iid = batch_mean_variance(|s2, _, b| s2 / b as f64);
        assert_eq!(iid.outcome, Outcome::Wrong);
        assert!(iid.evidence.contains("B = 3"), "{}", iid.evidence); // B = 1 agrees; B = 3 is the first miss
        let n_not_n1 = batch_mean_variance(|s2, n, b| s2 / b as f64 * (n - b) as f64 / n as f64);
        assert_eq!(n_not_n1.outcome, Outcome::Wrong);
        assert_eq!(batch_mean_variance(|_, _, _| f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn enumeration_agrees_with_the_closed_form() {
        // An independent check of the checker's exact value: Cochran's formula.
        let (mean, var, _) = enumerate_batch_means(&POPULATION, POPULATION_BATCH);
        let n = POPULATION.len() as f64;
        let mu = POPULATION.iter().sum::<f64>() / n;
        let s2 = POPULATION.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / n;
        assert!((mean - mu).abs() < 1e-12);
        let closed = variance_of_batch_mean(s2, POPULATION.len(), POPULATION_BATCH).unwrap();
        assert!((var - closed).abs() < 1e-12, "{var} vs {closed}");
    }

    #[test]
    fn sampled_variance_accepts_measurements_and_rejects_with_replacement() {
        for seed in [1, 2, 3] {
            let noise = scalar_batch_noise(
                &POPULATION,
                &[POPULATION_BATCH],
                POPULATION_REPEATS,
                &mut StdRng::seed_from_u64(seed),
            )
            .unwrap();
            let measured = noise[0].sampled.unwrap().mean;
            let rounded = (measured * 1000.0).round() / 1000.0;
            assert!(sampled_batch_variance(rounded).is_correct(), "seed {seed}: {measured}");
        }
        // A learner's own loop, with replacement: σ²/B.
        let mut rng = StdRng::seed_from_u64(4);
        let with_replacement: Vec<f64> = (0..POPULATION_REPEATS)
            .map(|_| {
                (0..POPULATION_BATCH)
                    .map(|_| POPULATION[rand::Rng::random_range(&mut rng, 0..12)])
                    .sum::<f64>()
                    / POPULATION_BATCH as f64
            })
            .collect();
        let m = with_replacement.iter().sum::<f64>() / with_replacement.len() as f64;
        let v = with_replacement.iter().map(|x| (x - m).powi(2)).sum::<f64>() / with_replacement.len() as f64;
        assert_eq!(sampled_batch_variance(v).outcome, Outcome::Wrong, "with replacement {v}");
        // The same loop without replacement is accepted.
        let without: Vec<f64> = (0..POPULATION_REPEATS)
            .map(|_| sample(&mut rng, 12, POPULATION_BATCH).iter().map(|i| POPULATION[i]).sum::<f64>() / 4.0)
            .collect();
        let m = without.iter().sum::<f64>() / without.len() as f64;
        let v = without.iter().map(|x| (x - m).powi(2)).sum::<f64>() / without.len() as f64;
        assert!(sampled_batch_variance(v).is_correct(), "without replacement {v}");
        assert_eq!(sampled_batch_variance(f64::NAN).outcome, Outcome::Unanswered);
    }
}
