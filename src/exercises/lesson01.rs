//! The exercises of lesson 01, inverse-transform sampling (`notebooks/01-inverse-transform-sampling.ipynb`;
//! worked solutions in `notebooks/solutions/01-inverse-transform-sampling.ipynb`).
//!
//! | exercise | checker | the learner submits |
//! |---|---|---|
//! | 1.1 | [`chi_square_by_hand`] | Pearson's X² recomputed from the counts section 4 prints |
//! | 1.2 | [`cauchy_inverse_cdf`] | F⁻¹ of the standard Cauchy, as a closure `u ↦ x` |
//! | 1.3 | [`decoder_jumps`] | the two latents where the decoder into a 3-point target jumps, measured |
//!
//! Each checker computes its expected answer through the crate, by a route other than the one
//! the exercise asks for: the χ² statistic from the lesson's own sampler and seed, the Cauchy
//! quantile from statrs, the jumps from Φ⁻¹ of the cumulative sums.

use rand::SeedableRng;
use rand::rngs::StdRng;
use statrs::distribution::{Cauchy, ContinuousCDF, Normal};

use super::{Outcome, Verdict, exercise};
use crate::base::error::Result;
use crate::base::stats::{category_counts, chi_square_test};
use crate::lessons::sampling::{Discrete, InverseCdf, StatrsInverse};

/// The category probabilities of the lesson's discrete sampler (section 4).
pub const CATEGORY_PROBS: [f64; 5] = [0.1, 0.2, 0.3, 0.15, 0.25];
/// Draws and seed of the lesson's discrete sampler (section 4: `n`, `seed_from_u64(3)`).
const CATEGORY_DRAWS: usize = 100_000;
const CATEGORY_SEED: u64 = 3;

/// The 3-point target of exercise 1.3: values 0, 1, 2 with these probabilities.
pub const DECODER_PROBS: [f64; 3] = [0.2, 0.5, 0.3];

/// A checker that could not build its own case (a crate error, not the learner's): reported as
/// "not yet" with the error, never a panic.
fn internal(number: &str, e: impl std::fmt::Display) -> Verdict {
    Verdict::new(number, Outcome::Wrong, format!("the checker could not build its case: {e}"), "report this")
}

/// Exercise 1.1: Pearson's statistic of section 4, recomputed by hand from the printed counts.
///
/// ```text
/// X² = Σ_k (O_k − E_k)² / E_k,   E_k = N p_k                                 (1.13)
/// ```
/// The expected value is the crate's [`chi_square_test`] on the counts of the lesson's sampler
/// (`Discrete::categorical(&CATEGORY_PROBS)`, N = 10⁵, seed 3). The lesson prints X² to three
/// decimals, so any answer within 5·10⁻⁴ is accepted (the exact sum of the printed integer
/// counts, or its rounding to the printed digits).
pub fn chi_square_by_hand(answer: f64) -> Verdict {
    let ex = exercise(
        "1.1",
        "X² = Σ (O_k − E_k)²/E_k with E_k = N·p_k: square each difference and divide by the expected count, not the observed one",
    );
    let expected = || -> Result<f64> {
        let sampler = Discrete::categorical(&CATEGORY_PROBS)?;
        let idx = sampler.sample_indices(CATEGORY_DRAWS, &mut StdRng::seed_from_u64(CATEGORY_SEED))?;
        let counts = category_counts(&idx, CATEGORY_PROBS.len())?;
        Ok(chi_square_test(&counts, &CATEGORY_PROBS)?.statistic)
    };
    match expected() {
        Ok(x2) => ex.number("X² of section 4", answer, x2, 5e-4),
        Err(e) => internal("1.1", e),
    }
}

/// The u at which exercise 1.2 compares inverse CDFs: both tails, the quartiles, the median.
pub const CAUCHY_CASES: [f64; 7] = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99];

/// Exercise 1.2: the learner's inverse CDF of the standard Cauchy distribution,
///
/// ```text
/// F(x) = ½ + arctan(x)/π   ⇒   F⁻¹(u) = tan(π (u − ½))
/// ```
/// against statrs' `Cauchy::inverse_cdf` (through [`StatrsInverse`]) at each u of
/// [`CAUCHY_CASES`], to 10⁻⁹ relative to max(1, |x|).
pub fn cauchy_inverse_cdf(f: impl Fn(f64) -> f64) -> Verdict {
    let ex = exercise(
        "1.2",
        "solve u = ½ + arctan(x)/π for x; F⁻¹ must be increasing, with F⁻¹(½) = 0 and F⁻¹(u) → −∞ as u → 0",
    );
    let cauchy = match Cauchy::new(0.0, 1.0) {
        Ok(c) => StatrsInverse::new(c),
        Err(e) => return internal("1.2", e),
    };
    ex.function(
        "F⁻¹(u)",
        |u: &f64| f(*u),
        |u: &f64| cauchy.inverse_cdf(*u).unwrap_or(f64::NAN),
        &CAUCHY_CASES,
        |u| format!("u = {u}"),
        1e-9,
    )
}

/// Exercise 1.3: the latents where the decoder `GaussianToTarget::new(Discrete::categorical(&[0.2,
/// 0.5, 0.3]))` jumps from x = 0 to 1 (`z_01`) and from 1 to 2 (`z_12`), measured by the learner
/// (on a grid, or by bisection on `decode`).
///
/// ```text
/// g(z) = F⁻¹(Φ(z)) = x_k  for  c_{k−1} < Φ(z) ≤ c_k   ⇒   jumps at z = Φ⁻¹(c_k),  c_k = p_0 + … + p_k
/// ```
/// The expected jumps are Φ⁻¹(0.2) = −0.8416 and Φ⁻¹(0.7) = 0.5244 from statrs' normal
/// quantile. Accepted within 1.5·10⁻³ each: a grid of step 10⁻³ places a jump within 10⁻³, and
/// rounding to three decimals adds 5·10⁻⁴.
pub fn decoder_jumps(z_01: f64, z_12: f64) -> Verdict {
    let hint = "g(z) = F⁻¹(Φ(z)) changes value where Φ(z) crosses a cumulative sum c_k = p_0 + … + p_k, \
                not where it crosses p_k; report z, not u";
    if z_01.is_nan() || z_12.is_nan() {
        return Verdict::new("1.3", Outcome::Unanswered, "a jump is still NaN; put both numbers in", hint);
    }
    let normal = match Normal::new(0.0, 1.0) {
        Ok(n) => n,
        Err(e) => return internal("1.3", e),
    };
    let c0 = DECODER_PROBS[0];
    let c1 = DECODER_PROBS[0] + DECODER_PROBS[1];
    let (e01, e12) = (normal.inverse_cdf(c0), normal.inverse_cdf(c1));
    let tol = 1.5e-3;
    let ok = (z_01 - e01).abs() <= tol && (z_12 - e12).abs() <= tol;
    let evidence = format!(
        "jumps 0 → 1 and 1 → 2: expected z = {e01:.4} and {e12:.4} (Φ⁻¹ of c = {c0}, {c1}), got {z_01:.4} and {z_12:.4} (tolerance {tol:.1e})"
    );
    Verdict::new("1.3", if ok { Outcome::Correct } else { Outcome::Wrong }, evidence, hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::sampling::GaussianToTarget;
    use std::f64::consts::PI;

    #[test]
    fn chi_square_from_the_printed_counts_is_accepted_and_a_wrong_denominator_is_not() {
        // The counts lesson 01 prints for seed 3 (section 4) and their X² by hand.
        let observed = [10092.0, 20206.0, 29755.0, 15027.0, 24920.0];
        let expected: Vec<f64> = CATEGORY_PROBS.iter().map(|p| p * 1e5).collect();
        let by_hand: f64 = observed.iter().zip(&expected).map(|(o, e)| (o - e) * (o - e) / e).sum();
        assert!(chi_square_by_hand(by_hand).is_correct());
        assert!(chi_square_by_hand(5.274).is_correct()); // as printed
        // Dividing by O_k instead of E_k: 5.2615, off by 0.012.
        let by_observed: f64 = observed.iter().zip(&expected).map(|(o, e)| (o - e) * (o - e) / o).sum();
        assert_eq!(chi_square_by_hand(by_observed).outcome, Outcome::Wrong);
        assert_eq!(chi_square_by_hand(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_cauchy_quantile_is_accepted_and_a_missing_half_is_not() {
        assert!(cauchy_inverse_cdf(|u| (PI * (u - 0.5)).tan()).is_correct());
        let v = cauchy_inverse_cdf(|u| (PI * u).tan());
        assert_eq!(v.outcome, Outcome::Wrong);
        assert!(v.evidence.contains("u = 0.01"), "{}", v.evidence);
        // Decreasing (a valid sampler of the symmetric Cauchy, but not F⁻¹).
        assert_eq!(cauchy_inverse_cdf(|u| (PI * (0.5 - u)).tan()).outcome, Outcome::Wrong);
        assert_eq!(cauchy_inverse_cdf(|_| f64::NAN).outcome, Outcome::Unanswered);
        assert_eq!(cauchy_inverse_cdf(|_| panic!("todo")).outcome, Outcome::Wrong);
    }

    #[test]
    fn jumps_measured_on_a_grid_of_the_decoder_are_accepted() {
        // The learner's route: decode a grid of step 10⁻³ and find where the value changes.
        let g = GaussianToTarget::new(Discrete::categorical(&DECODER_PROBS).unwrap());
        let grid: Vec<f64> = (0..=4000).map(|i| -2.0 + i as f64 * 1e-3).collect();
        let x: Vec<f64> = grid.iter().map(|&z| g.decode(z).unwrap()).collect();
        let jump = |from: f64| grid[(1..grid.len()).find(|&i| x[i - 1] == from && x[i] != from).unwrap()];
        assert!(decoder_jumps(jump(0.0), jump(1.0)).is_correct());
        assert!(decoder_jumps(-0.842, 0.524).is_correct()); // rounded to three decimals
        // Φ⁻¹ of the probabilities, not of the cumulative sums: the second jump at Φ⁻¹(0.5) = 0.
        assert_eq!(decoder_jumps(-0.8416, 0.0).outcome, Outcome::Wrong);
        // The u's instead of the z's.
        assert_eq!(decoder_jumps(0.2, 0.7).outcome, Outcome::Wrong);
        assert_eq!(decoder_jumps(f64::NAN, 0.5244).outcome, Outcome::Unanswered);
    }
}
