//! The exercises of lesson 03b, amortised inference (see `notebooks/03b-amortised-inference.ipynb`
//! and `notebooks/solutions/03b-amortised-inference.ipynb`).
//!
//! | exercise | checker | kind |
//! |---|---|---|
//! | 3b.1 | [`approximation_gap_by_hand`] | a printed number, by hand from Λ |
//! | 3b.2 | [`amortisation_gap_formula`] | code: the amortisation gap of a diagonal q in closed form |
//! | 3b.3 | [`tanh_encoder_gap`] | a measurement: a tanh encoder whose amortisation gap is small |
//!
//! Every expected value is computed here through the crate by a route the learner's answer does
//! not take: the ELBOs in closed form ([`crate::lessons::toy::LinearGaussian::elbo_gaussian`]) and log p(x) exactly.

use ndarray::{Array1, Array2, array};

use super::{Verdict, exercise, run_caught};
use crate::lessons::amortised::{
    EncoderSpec, N_EVAL, N_TRAIN, best_diagonal_q, lesson_model, sweep, toy_data,
};
use crate::lessons::toy::LatentModel;

/// The x of lessons 03 and 03b at which the gap is printed.
const X: [f64; 3] = [1.2, 0.4, -0.5];

/// Exercise 3b.1: the approximation gap of the diagonal family on the lesson's model, by hand
/// from the posterior precision Λ the lesson prints: ½ (ln Λ₁₁ + ln Λ₂₂ − ln det Λ).
///
/// Expected: log p(x) − ELBO(q*) at x = (1.2, 0.4, −0.5), both exact (the Cholesky route of
/// log p(x) and the closed-form ELBO). Tolerance 5e-4: an answer from Λ rounded to the 4 digits
/// the lesson prints, to 3 decimals, passes.
pub fn approximation_gap_by_hand(answer: f64) -> Verdict {
    let ex = exercise(
        "3b.1",
        "the KL of the best diagonal q to the posterior is ½ (Σⱼ ln Λⱼⱼ − ln det Λ): natural logs, the ½, and \
         det Λ = Λ₁₁Λ₂₂ − Λ₁₂²",
    );
    let model = lesson_model();
    let x = Array1::from(X.to_vec());
    let expected = (|| -> crate::base::error::Result<f64> {
        let (mean, log_var) = best_diagonal_q(&model, x.view())?;
        let cov = Array2::from_diag(&log_var.mapv(f64::exp));
        Ok(model.log_marginal(x.view())? - model.elbo_gaussian(x.view(), mean.view(), cov.view())?)
    })();
    match expected {
        Ok(e) => ex.number("approximation gap log P(x) − ELBO(q*) in nats", answer, e, 5e-4),
        Err(err) => Verdict::new("3b.1", super::Outcome::Wrong, format!("the checker failed: {err}"), ""),
    }
}

/// One case of exercise 3b.2: a point x and a diagonal q = N(m, diag exp(v)).
#[derive(Clone, Debug)]
pub struct GapCase {
    /// The data point (D = 3).
    pub x: Array1<f64>,
    /// q's mean (Z = 2).
    pub mean: Array1<f64>,
    /// q's log-variances (Z = 2).
    pub log_var: Array1<f64>,
}

/// Exercise 3b.2: the learner's closed form of the amortisation gap of q = N(m, diag exp(v)),
/// `f(Λ, δ, v)` with δ = m − μ(x), against ELBO(q*) − ELBO(q) with both ELBOs in closed form, on
/// five cases (tolerance 1e-9). Typical mistakes it catches: the variance part forgotten, the
/// mean part without Λ, a missing ½.
///
/// # Shapes
/// `f` gets Λ: Z × Z, δ: Z, v: Z.
pub fn amortisation_gap_formula(f: impl Fn(&Array2<f64>, &Array1<f64>, &Array1<f64>) -> f64) -> Verdict {
    let ex = exercise(
        "3b.2",
        "ELBO(q*) − ELBO(q) = KL(q ‖ p(z|x)) − KL(q* ‖ p(z|x)) = ½ δᵀΛδ + ½ Σⱼ (Λⱼⱼ sⱼ² − 1 − ln(Λⱼⱼ sⱼ²)): \
         a mean part and a variance part",
    );
    let model = lesson_model();
    let lambda = model.posterior_precision();
    let cases = [
        GapCase { x: array![1.2, 0.4, -0.5], mean: array![0.3, 0.2], log_var: array![-1.0, -1.5] },
        GapCase { x: array![1.2, 0.4, -0.5], mean: array![0.0, 0.0], log_var: array![0.0, 0.0] },
        GapCase { x: array![-0.7, 1.5, 0.9], mean: array![-0.2, 0.9], log_var: array![-2.9, -2.1] },
        GapCase { x: array![2.0, -1.0, 0.3], mean: array![0.8, -0.5], log_var: array![-3.5, -0.4] },
        GapCase { x: array![0.1, 0.1, 0.1], mean: array![0.05, -0.3], log_var: array![-1.96, -2.45] },
    ];
    let reference = |c: &GapCase| -> f64 {
        let route = || -> crate::base::error::Result<f64> {
            let (mu, lv) = best_diagonal_q(&model, c.x.view())?;
            let best =
                model.elbo_gaussian(c.x.view(), mu.view(), Array2::from_diag(&lv.mapv(f64::exp)).view())?;
            let q = model.elbo_gaussian(
                c.x.view(),
                c.mean.view(),
                Array2::from_diag(&c.log_var.mapv(f64::exp)).view(),
            )?;
            Ok(best - q)
        };
        route().unwrap_or(f64::NAN)
    };
    let answer = |c: &GapCase| -> f64 {
        match best_diagonal_q(&model, c.x.view()) {
            Ok((mu, _)) => f(&lambda, &(&c.mean - &mu), &c.log_var),
            Err(_) => f64::NAN,
        }
    };
    ex.function(
        "amortisation gap ELBO(q*) − ELBO(q)",
        answer,
        reference,
        &cases,
        |c| format!("x = {}, m = {}, v = {} (so δ = m − μ(x))", c.x, c.mean, c.log_var),
        1e-9,
    )
}

/// The largest total hidden width and the most steps [`tanh_encoder_gap`] retrains (so the check
/// stays under a second).
pub const MAX_HIDDEN_UNITS: usize = 64;
/// See [`MAX_HIDDEN_UNITS`].
pub const MAX_STEPS: usize = 4000;
const HINT_3B3: &str = "report the amortisation gap ELBO(q*) − ELBO(q_φ) averaged over the evaluation points (not \
     log P(x) − ELBO, which adds the approximation gap); more hidden units or more steps bring the tanh encoder \
     closer to the linear map x ↦ μ(x)";

/// The target of exercise 3b.3, in nats per point.
pub const TARGET_GAP: f64 = 0.01;

/// Exercise 3b.3: a tanh encoder (at least one hidden layer, ≤ [`MAX_HIDDEN_UNITS`] hidden units,
/// ≤ [`MAX_STEPS`] steps) whose mean amortisation gap on the lesson's evaluation points is below
/// [`TARGET_GAP`]; `answer` is the gap the learner measured. The checker retrains the same encoder
/// with the lesson's data, seed 0 and settings ([`sweep`]), and accepts when the learner's number
/// is the measured one (to 5e-5, four decimals) and below the target.
pub fn tanh_encoder_gap(hidden: &[usize], steps: usize, answer: f64) -> Verdict {
    let ex = exercise("3b.3", HINT_3B3);
    if answer.is_nan() {
        return ex.number("your measured gap", answer, 0.0, 0.0);
    }
    if hidden.is_empty() {
        return Verdict::new(
            "3b.3",
            super::Outcome::Wrong,
            "hidden = [] is the linear encoder; the question asks for at least one tanh layer",
            "put the hidden widths in, e.g. &[8]",
        );
    }
    let units: usize = hidden.iter().sum();
    if units > MAX_HIDDEN_UNITS || steps > MAX_STEPS || steps == 0 || hidden.contains(&0) {
        return Verdict::new(
            "3b.3",
            super::Outcome::Wrong,
            format!(
                "hidden = {hidden:?} ({units} units), {steps} steps: the checker retrains up to {MAX_HIDDEN_UNITS} \
                 hidden units (none 0) and 1..={MAX_STEPS} steps"
            ),
            "stay within the limits",
        );
    }
    let model = lesson_model();
    let (train, eval) = toy_data(&model, N_TRAIN, N_EVAL, 0);
    let spec = EncoderSpec { hidden: hidden.to_vec(), steps };
    let measured = run_caught(|| sweep(&model, train.view(), eval.view(), &[spec], 0.01, 0));
    let gap = match measured {
        Ok(Ok(rows)) => rows[0].amortisation.mean,
        Ok(Err(err)) => {
            return Verdict::new("3b.3", super::Outcome::Wrong, format!("training failed: {err}"), "");
        }
        Err(msg) => {
            return Verdict::new("3b.3", super::Outcome::Wrong, format!("training panicked: {msg}"), "");
        }
    };
    let same = (answer - gap).abs() <= 5e-5;
    let below = gap < TARGET_GAP;
    let evidence = format!(
        "tanh {hidden:?}, {steps} steps: measured amortisation gap {gap:.5} nats, you reported {answer:.5}; target < \
         {TARGET_GAP}"
    );
    let outcome = if same && below { super::Outcome::Correct } else { super::Outcome::Wrong };
    let evidence = if !same {
        format!("{evidence} (the two differ by more than 5e-5)")
    } else if !below {
        format!("{evidence} (the gap is not below the target)")
    } else {
        evidence
    };
    Verdict::new("3b.3", outcome, evidence, HINT_3B3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercises::Outcome;

    /// The reference solution: ½ (ln Λ₁₁ + ln Λ₂₂ − ln det Λ) from Λ rounded to 4 digits, to 3
    /// decimals.
    #[test]
    fn gap_by_hand_accepts_the_formula_and_rejects_a_missing_half() {
        let l = lesson_model().posterior_precision().mapv(|v| (v * 1e4).round() / 1e4);
        let det = l[[0, 0]] * l[[1, 1]] - l[[0, 1]] * l[[1, 0]];
        let gap = 0.5 * (l[[0, 0]].ln() + l[[1, 1]].ln() - det.ln());
        assert!(approximation_gap_by_hand((gap * 1e3).round() / 1e3).is_correct());
        assert_eq!(approximation_gap_by_hand(2.0 * gap).outcome, Outcome::Wrong);
        assert_eq!(approximation_gap_by_hand(f64::NAN).outcome, Outcome::Unanswered);
    }

    fn solution(lambda: &Array2<f64>, delta: &Array1<f64>, log_var: &Array1<f64>) -> f64 {
        let mean_part = 0.5 * delta.dot(&lambda.dot(delta));
        let var_part: f64 = (0..delta.len())
            .map(|j| {
                let t = lambda[[j, j]] * log_var[j].exp();
                t - 1.0 - t.ln()
            })
            .sum();
        mean_part + 0.5 * var_part
    }

    #[test]
    fn formula_accepts_the_solution_and_rejects_a_missing_variance_part() {
        assert!(amortisation_gap_formula(solution).is_correct());
        let mean_only = |l: &Array2<f64>, d: &Array1<f64>, _: &Array1<f64>| 0.5 * d.dot(&l.dot(d));
        assert_eq!(amortisation_gap_formula(mean_only).outcome, Outcome::Wrong);
        let no_lambda = |l: &Array2<f64>, d: &Array1<f64>, v: &Array1<f64>| {
            solution(l, d, v) - 0.5 * d.dot(&l.dot(d)) + 0.5 * d.dot(d)
        };
        assert_eq!(amortisation_gap_formula(no_lambda).outcome, Outcome::Wrong);
        assert_eq!(amortisation_gap_formula(|_, _, _| f64::NAN).outcome, Outcome::Unanswered);
        assert_eq!(amortisation_gap_formula(|_, _, _| panic!("todo")).outcome, Outcome::Wrong);
    }

    #[test]
    fn tanh_gap_accepts_a_measured_small_gap_and_rejects_the_total_gap() {
        let model = lesson_model();
        let (train, eval) = toy_data(&model, N_TRAIN, N_EVAL, 0);
        let spec = EncoderSpec { hidden: vec![8], steps: 3000 };
        let row = sweep(&model, train.view(), eval.view(), &[spec], 0.01, 0).unwrap().remove(0);
        assert!(row.amortisation.mean < TARGET_GAP, "{row:?}");
        let rounded = (row.amortisation.mean * 1e4).round() / 1e4;
        assert!(tanh_encoder_gap(&[8], 3000, rounded).is_correct());
        assert_eq!(tanh_encoder_gap(&[8], 3000, row.total.mean).outcome, Outcome::Wrong);
        assert_eq!(tanh_encoder_gap(&[], 3000, rounded).outcome, Outcome::Wrong);
        assert_eq!(tanh_encoder_gap(&[8], 3000, f64::NAN).outcome, Outcome::Unanswered);
    }
}
