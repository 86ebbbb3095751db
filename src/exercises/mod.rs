//! Exercises that check themselves: each lesson's exercises as functions a learner calls from the
//! notebook with an answer (a number, a closure implementing a formula or an estimator, a
//! gradient), which reply with a [`Verdict`].
//!
//! A verdict is one of three:
//! - **correct** — with the evidence (`expected −3.5164, got −3.5164`, `mean 0.498 ± 0.004 (SE)
//!   is within 4 SE of 0.5`);
//! - **not yet** — with the evidence on a case the learner can reproduce (the input, what was
//!   expected, what came back; the first gradient element that disagrees with finite
//!   differences; the k-SE band an estimate fell outside) and a hint;
//! - **no answer yet** — the answer is still the notebook's placeholder (`f64::NAN`, or a closure
//!   that returns NaN).
//!
//! A checker never panics on a wrong answer: a learner's closure that panics is caught and
//! reported as "not yet" with its message. Checkers accept every correct answer: numbers within a
//! stated tolerance (rounding to the printed digits), estimators by a k-SE test of their mean
//! (any unbiased estimator passes, whatever its variance), functions on several cases.
//!
//! Every checker prints its verdict as one line, `Exercise 3.2 — correct: …`, and returns it.
//! The solutions notebooks (`notebooks/solutions/`) call [`Verdict::expect_correct`] on the
//! solution and [`Verdict::expect_wrong`] on a typical wrong answer, so `make test` shows each
//! checker accepting the one and rejecting the other.
//!
//! The building blocks below ([`exercise`] and its [`Exercise::number`], [`Exercise::estimator`],
//! [`Exercise::function`], [`Exercise::gradient`]) are what the per-lesson modules ([`lesson01`],
//! …) are made of.
//!
//! ```
//! use vaelab::exercises::{Outcome, exercise};
//!
//! let ex = exercise("0.1", "ln, not log10");
//! let v = ex.number("log 2", 0.693, std::f64::consts::LN_2, 5e-4);
//! assert_eq!(v.outcome, Outcome::Correct);
//! let v = ex.number("log 2", 0.301, std::f64::consts::LN_2, 5e-4);
//! assert_eq!(v.outcome, Outcome::Wrong);
//! assert!(v.to_string().contains("Hint: ln, not log10"));
//! ```

pub mod lesson01;
pub mod lesson02;
pub mod lesson03;
pub mod lesson03a;
pub mod lesson03b;
pub mod lesson04;
pub mod lesson05;
pub mod lesson06;
pub mod lesson07;
pub mod lesson08;
pub mod lesson09;
pub mod lesson10;

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use ndarray::{ArrayD, ArrayViewD, Dimension, IxDyn};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::base::error::{Error, Result};
use crate::base::stats::Estimate;

/// How an answer fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The answer is right.
    Correct,
    /// The answer is wrong; the verdict's evidence says on what case.
    Wrong,
    /// The answer is still the placeholder (NaN).
    Unanswered,
}

/// A checker's reply: which exercise, how the answer fared, the evidence, and a hint when wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The exercise's number in its lesson, e.g. `"3.2"`.
    pub exercise: String,
    /// Correct, wrong or unanswered.
    pub outcome: Outcome,
    /// The figures that decided it, on a case the learner can reproduce.
    pub evidence: String,
    /// What to look at when the answer is wrong (empty when it is right).
    pub hint: String,
}

impl Verdict {
    /// A verdict, printed as one line on standard output (the notebook shows it under the cell).
    pub fn new(exercise: &str, outcome: Outcome, evidence: impl Into<String>, hint: &str) -> Verdict {
        let hint = if outcome == Outcome::Wrong { hint.to_string() } else { String::new() };
        let v = Verdict { exercise: exercise.to_string(), outcome, evidence: evidence.into(), hint };
        println!("{v}");
        v
    }

    /// True when the answer is right.
    pub fn is_correct(&self) -> bool {
        self.outcome == Outcome::Correct
    }

    /// `Ok` when the answer was judged correct, else [`Error::ClaimFailed`] naming the exercise:
    /// a solutions notebook ends its solution cell with `.expect_correct()?`.
    pub fn expect_correct(&self) -> Result<()> {
        match self.outcome {
            Outcome::Correct => Ok(()),
            _ => {
                Err(Error::ClaimFailed { line: format!("✗ the checker rejects a correct answer: {self}") })
            }
        }
    }

    /// `Ok` when the answer was judged wrong, else [`Error::ClaimFailed`]: a solutions notebook
    /// shows that the checker rejects a typical mistake with `.expect_wrong()?`.
    pub fn expect_wrong(&self) -> Result<()> {
        match self.outcome {
            Outcome::Wrong => Ok(()),
            _ => Err(Error::ClaimFailed {
                line: format!("✗ the checker does not reject a wrong answer: {self}"),
            }),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.outcome {
            Outcome::Correct => "correct",
            Outcome::Wrong => "not yet",
            Outcome::Unanswered => "no answer yet",
        };
        write!(f, "Exercise {} — {word}: {}", self.exercise, self.evidence)?;
        if !self.hint.is_empty() {
            write!(f, ". Hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// Runs a learner's closure, turning a panic into an error message (printed nowhere: the panic
/// hook is silenced while it runs, so a notebook cell shows the verdict, not a backtrace).
pub fn run_caught<T>(f: impl FnOnce() -> T) -> std::result::Result<T, String> {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let out = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(previous);
    out.map_err(|payload| {
        if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "a panic".to_string()
        }
    })
}

/// One exercise being checked: its number in the lesson (`"3.2"`) and the hint shown with a
/// wrong answer. The methods judge an answer of each kind and return the printed [`Verdict`].
#[derive(Debug, Clone)]
pub struct Exercise {
    number: String,
    hint: String,
}

/// Starts checking exercise `number` (e.g. `"3.2"`), with the hint a wrong answer gets.
pub fn exercise(number: &str, hint: &str) -> Exercise {
    Exercise { number: number.to_string(), hint: hint.to_string() }
}

/// How a Monte-Carlo answer is tested: `draws` calls of the estimator with a generator seeded by
/// `seed`, accepted when its mean lies within `k` standard errors of the exact value.
#[derive(Debug, Clone, Copy)]
pub struct Draws {
    /// Calls of the learner's estimator.
    pub draws: usize,
    /// The generator's seed (the evidence names it, so the learner can reproduce the case).
    pub seed: u64,
    /// The band, in standard errors (4: a correct estimator fails about once in 16,000 seeds).
    pub k: f64,
}

impl Exercise {
    fn verdict(&self, outcome: Outcome, evidence: String) -> Verdict {
        Verdict::new(&self.number, outcome, evidence, &self.hint)
    }

    /// A number: correct when |answer − expected| ≤ `tol` (choose `tol` from the digits the
    /// lesson prints, or the rounding a hand computation makes).
    pub fn number(&self, what: &str, answer: f64, expected: f64, tol: f64) -> Verdict {
        if answer.is_nan() {
            return self.verdict(Outcome::Unanswered, format!("{what} is still NaN; put your number in"));
        }
        let ok = (answer - expected).abs() <= tol;
        let evidence = format!("{what}: expected {expected:.6}, got {answer:.6} (tolerance {tol:.1e})");
        self.verdict(if ok { Outcome::Correct } else { Outcome::Wrong }, evidence)
    }

    /// An estimator of a known value: the learner's `estimator` is called `d.draws` times with a
    /// generator seeded by `d.seed`; it is correct when the mean of its values lies within
    /// `d.k` standard errors of `exact`. Any unbiased estimator passes, whatever its variance; a
    /// biased one fails once the draws make its bias larger than k SE. A closure that returns NaN
    /// everywhere is unanswered; one that panics or returns a non-finite value is wrong.
    pub fn estimator(
        &self,
        what: &str,
        mut estimator: impl FnMut(&mut StdRng) -> f64,
        exact: f64,
        d: Draws,
    ) -> Verdict {
        let mut rng = StdRng::seed_from_u64(d.seed);
        let values = run_caught(|| (0..d.draws).map(|_| estimator(&mut rng)).collect::<Vec<f64>>());
        let values = match values {
            Ok(v) => v,
            Err(msg) => return self.verdict(Outcome::Wrong, format!("your estimator panicked: {msg}")),
        };
        if values.iter().all(|v| v.is_nan()) {
            return self.verdict(Outcome::Unanswered, format!("{what} returns NaN; write your estimator"));
        }
        if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return self.verdict(Outcome::Wrong, format!("{what}: draw {i} gave {v}"));
        }
        let e = match Estimate::from_values(&values[..]) {
            Ok(e) => e,
            Err(err) => return self.verdict(Outcome::Wrong, format!("{what}: {err}")),
        };
        let ok = (e.mean - exact).abs() <= d.k * e.stderr.max(f64::EPSILON * exact.abs());
        let evidence = format!(
            "{what}: mean of {} draws (seed {}) = {:.5} ± {:.5} (SE), exact {exact:.5}: |difference| = {:.2} SE {} {} SE",
            d.draws,
            d.seed,
            e.mean,
            e.stderr,
            (e.mean - exact).abs() / e.stderr,
            if ok { "≤" } else { ">" },
            d.k
        );
        self.verdict(if ok { Outcome::Correct } else { Outcome::Wrong }, evidence)
    }

    /// A function: the learner's `answer` against the `reference` on each of `cases`; correct
    /// when every case agrees within `tol` (absolute, or relative to |reference| when that is
    /// larger than 1). The first disagreeing case is shown with its input (`describe` prints one).
    pub fn function<X>(
        &self,
        what: &str,
        answer: impl Fn(&X) -> f64,
        reference: impl Fn(&X) -> f64,
        cases: &[X],
        describe: impl Fn(&X) -> String,
        tol: f64,
    ) -> Verdict {
        let got = match run_caught(|| cases.iter().map(&answer).collect::<Vec<f64>>()) {
            Ok(v) => v,
            Err(msg) => return self.verdict(Outcome::Wrong, format!("your {what} panicked: {msg}")),
        };
        if got.iter().all(|v| v.is_nan()) {
            return self.verdict(Outcome::Unanswered, format!("your {what} returns NaN; write it"));
        }
        for (x, g) in cases.iter().zip(&got) {
            let r = reference(x);
            if !agrees(*g, r, tol) {
                return self.verdict(
                    Outcome::Wrong,
                    format!("{what} at {}: expected {r:.8}, got {g:.8}", describe(x)),
                );
            }
        }
        self.verdict(Outcome::Correct, format!("{what} agrees on all {} cases to {tol:.0e}", cases.len()))
    }

    /// A gradient (or any array): the learner's `answer` against `expected` (computed by the
    /// checker, e.g. by [`finite_difference`] in f64), element by element; correct when every
    /// element agrees within `tol` relative to max(1, |expected|). The first element that
    /// disagrees is shown with its index. A shape mismatch is a wrong answer, not a panic.
    pub fn gradient(
        &self,
        what: &str,
        answer: ArrayViewD<'_, f64>,
        expected: ArrayViewD<'_, f64>,
        tol: f64,
    ) -> Verdict {
        if answer.shape() != expected.shape() {
            let evidence =
                format!("{what} has shape {:?}; it should have {:?}", answer.shape(), expected.shape());
            return self.verdict(Outcome::Wrong, evidence);
        }
        if answer.iter().all(|v| v.is_nan()) {
            return self.verdict(Outcome::Unanswered, format!("{what} is NaN; write it"));
        }
        let mut max_diff = 0.0_f64;
        for ((index, a), e) in answer.indexed_iter().zip(expected.iter()) {
            if !agrees(*a, *e, tol) {
                let evidence = format!("{what}{:?}: expected {e:.8}, got {a:.8}", index.slice());
                return self.verdict(Outcome::Wrong, evidence);
            }
            max_diff = max_diff.max((a - e).abs());
        }
        let evidence = format!(
            "{what} agrees with the reference in all {} elements (max difference {max_diff:.1e})",
            answer.len()
        );
        self.verdict(Outcome::Correct, evidence)
    }
}

/// |got − expected| ≤ tol · max(1, |expected|), false for NaN: the rule of every checker here.
pub(crate) fn agrees(got: f64, expected: f64, tol: f64) -> bool {
    (got - expected).abs() <= tol * expected.abs().max(1.0)
}

/// Central finite differences of a scalar function of an array, in f64: ∂f/∂xᵢ ≈ (f(x + hεᵢ) −
/// f(x − hεᵢ)) / 2h, the reference for [`Exercise::gradient`].
///
/// # Shapes
/// `x`: any; the result has the shape of `x`.
pub fn finite_difference(f: impl Fn(&ArrayD<f64>) -> f64, x: &ArrayD<f64>, h: f64) -> ArrayD<f64> {
    let values: Vec<f64> = x.iter().copied().collect();
    let mut d_x = ArrayD::zeros(IxDyn(x.shape()));
    let mut probe = x.clone();
    for ((i, d), xi) in d_x.iter_mut().enumerate().zip(values) {
        set_flat(&mut probe, i, xi + h);
        let up = f(&probe);
        set_flat(&mut probe, i, xi - h);
        let down = f(&probe);
        set_flat(&mut probe, i, xi);
        *d += (up - down) / (2.0 * h);
    }
    d_x
}

fn set_flat(a: &mut ArrayD<f64>, i: usize, v: f64) {
    if let Some(e) = a.iter_mut().nth(i) {
        *e = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::Rng;

    #[test]
    fn numbers_are_judged_within_the_tolerance() {
        assert_eq!(exercise("t", "").number("x", 1.0005, 1.0, 1e-3).outcome, Outcome::Correct);
        assert_eq!(exercise("t", "").number("x", 1.01, 1.0, 1e-3).outcome, Outcome::Wrong);
        assert_eq!(exercise("t", "").number("x", f64::NAN, 1.0, 1e-3).outcome, Outcome::Unanswered);
        assert_eq!(exercise("t", "").number("x", f64::INFINITY, 1.0, 1e-3).outcome, Outcome::Wrong);
    }

    #[test]
    fn any_unbiased_estimator_passes_and_a_biased_one_fails() {
        // E[U] = 1/2 for U ~ Uniform(0, 1): by U itself, by the antithetic pair, and by 1 − U.
        let plain = exercise("t", "").estimator(
            "E[U]",
            |r| r.random::<f64>(),
            0.5,
            Draws { draws: 10_000, seed: 1, k: 4.0 },
        );
        let antithetic = exercise("t", "").estimator(
            "E[U]",
            |r| {
                let u = r.random::<f64>();
                0.5 * (u + (1.0 - u))
            },
            0.5,
            Draws { draws: 10_000, seed: 1, k: 4.0 },
        );
        assert!(plain.is_correct() && antithetic.is_correct());
        // Biased by 0.01: 10,000 draws give SE ≈ 0.0029, so the bias is 3.5 SE — use 100,000.
        let biased = exercise("t", "").estimator(
            "E[U]",
            |r| r.random::<f64>() + 0.01,
            0.5,
            Draws { draws: 100_000, seed: 1, k: 4.0 },
        );
        assert_eq!(biased.outcome, Outcome::Wrong);
        let panics = exercise("t", "").estimator(
            "E[U]",
            |_| panic!("oops"),
            0.5,
            Draws { draws: 10, seed: 1, k: 4.0 },
        );
        assert_eq!(panics.outcome, Outcome::Wrong);
        assert!(panics.evidence.contains("oops"));
        let nan =
            exercise("t", "").estimator("E[U]", |_| f64::NAN, 0.5, Draws { draws: 10, seed: 1, k: 4.0 });
        assert_eq!(nan.outcome, Outcome::Unanswered);
    }

    #[test]
    fn functions_report_the_first_disagreeing_case() {
        let cases = [0.5_f64, 1.0, 2.0];
        let v = exercise("t", "").function(
            "f",
            |x: &f64| x.ln(),
            |x: &f64| x.ln(),
            &cases,
            |x| format!("x = {x}"),
            1e-12,
        );
        assert!(v.is_correct());
        let v = exercise("t", "").function(
            "f",
            |x: &f64| x.log10(),
            |x: &f64| x.ln(),
            &cases,
            |x| format!("x = {x}"),
            1e-12,
        );
        assert_eq!(v.outcome, Outcome::Wrong);
        assert!(v.evidence.contains("x = 0.5"), "{}", v.evidence);
    }

    #[test]
    fn gradients_against_finite_differences() {
        // f(x) = Σ xᵢ², ∂f/∂x = 2x.
        let x = array![[1.0, -2.0], [0.5, 3.0]].into_dyn();
        let fd = finite_difference(|x| x.iter().map(|v| v * v).sum(), &x, 1e-5);
        let right = x.mapv(|v| 2.0 * v);
        assert!(exercise("t", "").gradient("d_x", right.view(), fd.view(), 1e-6).is_correct());
        let sign = x.mapv(|v| -2.0 * v);
        let v = exercise("t", "").gradient("d_x", sign.view(), fd.view(), 1e-6);
        assert_eq!(v.outcome, Outcome::Wrong);
        assert!(v.evidence.contains("[0, 0]"), "{}", v.evidence);
        let shape = array![1.0, 2.0].into_dyn();
        assert_eq!(exercise("t", "").gradient("d_x", shape.view(), fd.view(), 1e-6).outcome, Outcome::Wrong);
    }

    #[test]
    fn expectations_fail_the_cell_when_not_met() {
        let right = exercise("t", "").number("x", 1.0, 1.0, 1e-9);
        assert!(right.expect_correct().is_ok() && right.expect_wrong().is_err());
        let wrong = exercise("t", "").number("x", 2.0, 1.0, 1e-9);
        assert!(wrong.expect_wrong().is_ok() && wrong.expect_correct().is_err());
    }
}
