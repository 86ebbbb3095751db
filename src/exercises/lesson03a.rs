//! The exercises of lesson 03a, gradients of an expectation (see
//! `notebooks/03a-gradients-of-an-expectation.ipynb` and `notebooks/solutions/`).
//!
//! | exercise | checker | kind |
//! |---|---|---|
//! | 3a.1 | [`exp_gradient_by_hand`] | a number: ∂/∂σ E[e^{az}] in closed form |
//! | 3a.2 | [`score_estimator_sigma`] | code: a score-function estimator of that derivative |
//! | 3a.3 | [`score_variance_at_dimension`] | a measurement: the score function's variance at Z = 12 |
//! | 3a.4 | [`binary_score_estimator`] | code: the score function on the binary toy |
//!
//! The case is the lesson's: q = N(μ, σ²) with [`MU`], [`SIGMA`], f(z) = e^{[`A`] z}; the binary toy
//! of `data/models/binary_latent.json` at [`binary_x`] with logits [`binary_logits`].

use ndarray::{Array1, Array2, array};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{Draws, Outcome, Verdict, exercise};
use crate::lessons::gradients::{
    TestFunction, bernoulli_elbo_enumerated, score_function_draws, score_mean_variance_square,
    variance_estimate,
};
use crate::lessons::toy::BinaryLatent;

/// μ of the lesson's q = N(μ, σ²).
pub const MU: f64 = 0.5;
/// σ of the lesson's q.
pub const SIGMA: f64 = 0.8;
/// The rate a of f(z) = e^{az}.
pub const A: f64 = 1.0;
/// The dimension of exercise 3a.3.
pub const DIM: usize = 12;
/// The draws exercise 3a.3 asks for.
pub const DRAWS: usize = 100_000;

/// The binary toy of `data/models/binary_latent.json` (3 latent bits, 3 pixels).
///
/// # Errors
/// None for these numbers (they are the shipped model's); the `Result` is the constructor's.
pub fn binary_model() -> crate::base::error::Result<BinaryLatent> {
    BinaryLatent::new(
        array![0.3, 0.5, 0.6],
        array![[2.0, -1.0, 0.5], [-1.5, 1.0, 1.0], [0.5, 0.5, -2.0]],
        array![0.0, -0.5, 0.5],
    )
}

/// The data point of exercise 3a.4, x = (1, 0, 1).
pub fn binary_x() -> Array1<f64> {
    array![1.0, 0.0, 1.0]
}

/// The logits θ of q(z) = Πⱼ Bernoulli(σ(θⱼ)) in exercise 3a.4.
pub fn binary_logits() -> Array1<f64> {
    array![0.4, -0.8, 1.2]
}

/// Exercise 3a.1: ∂/∂σ E_{z∼N(μ, σ²)}[e^{az}] at μ = 0.5, σ = 0.8, a = 1, by hand (the lesson
/// prints it to 4 decimals; tolerance 5e-4).
pub fn exp_gradient_by_hand(answer: f64) -> Verdict {
    let (_, d_sigma) = TestFunction::Exp { a: A }.expectation_grad(MU, SIGMA);
    exercise(
        "3a.1",
        "E[e^{az}] = exp(aμ + a²σ²/2); differentiate the exponent with respect to σ (chain rule: a²σ)",
    )
    .number("∂/∂σ E[e^{z}] at μ = 0.5, σ = 0.8", answer, d_sigma, 5e-4)
}

/// Exercise 3a.2: a single-draw score-function estimator of ∂/∂σ E[e^{az}] at the lesson's case,
/// as a closure the checker calls 200,000 times with a seeded generator (seed 2024). Any unbiased
/// estimator passes (within 4 SE of the closed form).
pub fn score_estimator_sigma(estimator: impl FnMut(&mut StdRng) -> f64) -> Verdict {
    let (_, d_sigma) = TestFunction::Exp { a: A }.expectation_grad(MU, SIGMA);
    exercise(
        "3a.2",
        "draw ε ~ N(0, 1), z = μ + σε; the score is ∂ log q/∂σ = (ε² − 1)/σ, and the estimate is f(z) times it",
    )
    .estimator("∂/∂σ E[e^{z}]", estimator, d_sigma, Draws { draws: 200_000, seed: 2024, k: 4.0 })
}

/// Exercise 3a.3: the variance of one score-function draw of ∂/∂μ₁ E[Σⱼ zⱼ²] under
/// N(0.5, 0.8²) in Z = 12 dimensions, b = 0, measured from [`DRAWS`] draws. Accepted within 4
/// standard errors of the closed form ([`score_mean_variance_square`]), the SE being that of a
/// sample variance from [`DRAWS`] draws (measured by the checker with seed 303).
pub fn score_variance_at_dimension(answer: f64) -> Verdict {
    let ex = exercise(
        "3a.3",
        "the variance of one draw (not of the average of all draws), score function without a baseline, with all 12 coordinates in F",
    );
    let (mean, sigma) = (Array1::from_elem(DIM, MU), Array1::from_elem(DIM, SIGMA));
    let expected = score_mean_variance_square(mean.view(), sigma.view(), 0.0);
    let mut rng = StdRng::seed_from_u64(303);
    let eps = Array2::from_shape_simple_fn((DRAWS, DIM), || {
        rand::Rng::sample(&mut rng, rand_distr::StandardNormal)
    });
    let se = score_function_draws(TestFunction::Square, mean.view(), sigma.view(), eps.view(), 0.0)
        .and_then(|g| variance_estimate(g.d_mean.column(0)))
        .map(|e| e.stderr);
    match (expected, se) {
        (Ok(expected), Ok(se)) => ex.number(
            &format!("Var of one draw at Z = {DIM} (tolerance 4 SE of a variance from {DRAWS} draws)"),
            answer,
            expected,
            4.0 * se,
        ),
        (Err(e), _) | (_, Err(e)) => {
            Verdict::new("3a.3", Outcome::Wrong, format!("the checker failed: {e}"), "")
        }
    }
}

/// Exercise 3a.4: a single-draw score-function estimator of ∂ELBO/∂θ₀ for the binary toy
/// ([`binary_model`], x = [`binary_x`], q = Πⱼ Bernoulli(σ(θⱼ)), θ = [`binary_logits`]), as a
/// closure called 100,000 times (seed 77). The exact value is the sum over all 8 states
/// ([`bernoulli_elbo_enumerated`]); any unbiased estimator passes within 4 SE.
pub fn binary_score_estimator(estimator: impl FnMut(&mut StdRng) -> f64) -> Verdict {
    let ex = exercise(
        "3a.4",
        "h(z) = log p(x, z) − log q(z) (both terms), times ∂ log q/∂θ₀ = z₀ − σ(θ₀); a pathwise derivative is 0 for a discrete z",
    );
    let exact =
        binary_model().and_then(|m| bernoulli_elbo_enumerated(&m, binary_x().view(), binary_logits().view()));
    match exact {
        Ok((_, grad)) => {
            ex.estimator("∂ELBO/∂θ₀", estimator, grad[0], Draws { draws: 100_000, seed: 77, k: 4.0 })
        }
        Err(e) => Verdict::new("3a.4", Outcome::Wrong, format!("the checker failed: {e}"), ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::toy::LatentModel;
    use rand::Rng;
    use rand_distr::StandardNormal;

    #[test]
    fn exercise_1_accepts_the_closed_form_and_rejects_a_missing_chain_rule() {
        // a²σ exp(aμ + a²σ²/2) = 0.8 e^{0.82}
        let right = 0.8 * (0.5_f64 + 0.32).exp();
        assert_eq!(exp_gradient_by_hand(right).outcome, Outcome::Correct);
        assert_eq!(exp_gradient_by_hand((right * 1e4).round() / 1e4).outcome, Outcome::Correct);
        assert_eq!(exp_gradient_by_hand((0.5_f64 + 0.32).exp()).outcome, Outcome::Wrong);
        assert_eq!(exp_gradient_by_hand(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn exercise_2_accepts_score_and_pathwise_and_rejects_a_missing_minus_one() {
        let score = |r: &mut StdRng| {
            let e: f64 = r.sample(StandardNormal);
            (MU + SIGMA * e).exp() * (e * e - 1.0) / SIGMA
        };
        assert_eq!(score_estimator_sigma(score).outcome, Outcome::Correct);
        let pathwise = |r: &mut StdRng| {
            let e: f64 = r.sample(StandardNormal);
            (MU + SIGMA * e).exp() * e
        };
        assert_eq!(score_estimator_sigma(pathwise).outcome, Outcome::Correct);
        let no_minus_one = |r: &mut StdRng| {
            let e: f64 = r.sample(StandardNormal);
            (MU + SIGMA * e).exp() * e * e / SIGMA
        };
        assert_eq!(score_estimator_sigma(no_minus_one).outcome, Outcome::Wrong);
        assert_eq!(score_estimator_sigma(|_| f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn exercise_3_accepts_a_measurement_and_rejects_the_variance_of_the_mean() {
        // A learner's own measurement with another seed.
        let mut rng = StdRng::seed_from_u64(5);
        let eps = Array2::from_shape_simple_fn((DRAWS, DIM), || rng.sample(StandardNormal));
        let (mean, sigma) = (Array1::from_elem(DIM, MU), Array1::from_elem(DIM, SIGMA));
        let g =
            score_function_draws(TestFunction::Square, mean.view(), sigma.view(), eps.view(), 0.0).unwrap();
        let measured = variance_estimate(g.d_mean.column(0)).unwrap().mean;
        assert_eq!(score_variance_at_dimension(measured).outcome, Outcome::Correct);
        assert_eq!(score_variance_at_dimension(measured / DRAWS as f64).outcome, Outcome::Wrong);
        assert_eq!(score_variance_at_dimension(4.0 * SIGMA * SIGMA).outcome, Outcome::Wrong);
        assert_eq!(score_variance_at_dimension(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn exercise_4_accepts_the_score_function_and_rejects_pathwise_and_a_missing_log_q() {
        let m = binary_model().unwrap();
        let (x, theta) = (binary_x(), binary_logits());
        let p = theta.mapv(crate::base::prob::sigmoid);
        let draw = move |r: &mut StdRng| {
            let z = Array2::from_shape_fn((1, 3), |(_, j)| f64::from(u8::from(r.random::<f64>() < p[j])));
            let log_q: f64 =
                (0..3).map(|j| if z[[0, j]] == 1.0 { p[j].ln() } else { (1.0 - p[j]).ln() }).sum();
            (z, log_q, p[0])
        };
        let mm = m.clone();
        let xx = x.clone();
        let draw_again = draw.clone();
        let score = move |r: &mut StdRng| {
            let (z, log_q, p0) = draw_again(r);
            (mm.log_joint(xx.view(), z.view())[0] - log_q) * (z[[0, 0]] - p0)
        };
        assert_eq!(binary_score_estimator(score).outcome, Outcome::Correct);
        assert_eq!(binary_score_estimator(|_| 0.0).outcome, Outcome::Wrong);
        let no_log_q = move |r: &mut StdRng| {
            let (z, _, p0) = draw(r);
            m.log_joint(x.view(), z.view())[0] * (z[[0, 0]] - p0)
        };
        assert_eq!(binary_score_estimator(no_log_q).outcome, Outcome::Wrong);
        assert_eq!(binary_score_estimator(|_| f64::NAN).outcome, Outcome::Unanswered);
    }
}
