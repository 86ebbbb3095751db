//! Claims: a sentence of a lesson, the numbers that decide it, and the test behind it.
//!
//! A lesson that says "the ELBO rises" or "KL(q_agg‖p) falls to less than half" states an outcome
//! of its own experiment. Here that sentence becomes a [`Claim`]: the statement in words, the
//! figures it rests on, and a test that decides it: an exact comparison, a comparison with a
//! margin of `k` standard errors for a Monte-Carlo [`Estimate`], or a p-value against a stated α.
//! [`Claim::verify`] prints it as one line
//!
//! ```text
//! ✓ the ELBO rises with training — after − before = 12.31 ± 0.4012 (SE, n = 1000) > 0 by 4 SE
//! ```
//! and returns [`Error::ClaimFailed`] (the same line with ✗) when it does not hold, so a notebook
//! cell that ends `….verify()?;` fails, and with it `make test`.
//!
//! How to choose the test. For a difference between two quantities measured on the same data
//! points, use the [`paired_difference`](crate::base::stats::paired_difference) of the two and
//! [`Statement::positive`] (mean > k·SE): the pairing removes the spread the points share. For an
//! estimate that should equal a known value, [`Statement::consistent`] (|mean − target| ≤ k·SE):
//! with k = 4 a correct estimator fails about once in 16,000 runs (normal tails). For a sampler
//! against a distribution, [`Statement::not_rejected`] with the test's p-value and α.
//!
//! ```
//! use vaelab::base::claim::claim;
//! use vaelab::base::stats::Estimate;
//!
//! let gain = Estimate { mean: 2.0, stderr: 0.1, samples: 100 };
//! assert!(claim("training raises the ELBO").positive("ELBO gain", gain, 4.0).holds());
//! assert!(!claim("it falls to less than half").less("after", 0.6, "half of before", 0.5).holds());
//! let c = claim("it falls to less than half").less("after", 0.4, "half of before", 0.5);
//! assert_eq!(c.to_string(), "✓ it falls to less than half — after = 0.4000 < half of before = 0.5000");
//! ```

use std::fmt;

use crate::base::error::{Error, Result};
use crate::base::stats::Estimate;

/// Starts a claim: the sentence it makes. Finish it with the test that decides it
/// ([`Statement::less`], [`Statement::positive`], …).
pub fn claim(statement: impl Into<String>) -> Statement {
    Statement { statement: statement.into() }
}

/// A sentence waiting for its test; see [`claim`].
#[derive(Debug, Clone)]
pub struct Statement {
    statement: String,
}

/// A decided claim: the sentence, whether it holds, and the figures and test that decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    statement: String,
    holds: bool,
    evidence: String,
}

impl Statement {
    fn decide(self, holds: bool, evidence: String) -> Claim {
        Claim { statement: self.statement, holds, evidence }
    }

    /// `a < b`, exactly (two numbers without sampling noise, or a stated bound).
    pub fn less(self, a_name: &str, a: f64, b_name: &str, b: f64) -> Claim {
        self.decide(a < b, format!("{a_name} = {} < {b_name} = {}", num(a), num(b)))
    }

    /// `a > b`, exactly.
    pub fn greater(self, a_name: &str, a: f64, b_name: &str, b: f64) -> Claim {
        self.decide(a > b, format!("{a_name} = {} > {b_name} = {}", num(a), num(b)))
    }

    /// `a ≤ b`, exactly.
    pub fn at_most(self, a_name: &str, a: f64, b_name: &str, b: f64) -> Claim {
        self.decide(a <= b, format!("{a_name} = {} ≤ {b_name} = {}", num(a), num(b)))
    }

    /// `a ≥ b`, exactly.
    pub fn at_least(self, a_name: &str, a: f64, b_name: &str, b: f64) -> Claim {
        self.decide(a >= b, format!("{a_name} = {} ≥ {b_name} = {}", num(a), num(b)))
    }

    /// `|a − b| ≤ tol`: two routes to the same number agree to `tol` (rounding, quadrature error).
    pub fn close(self, a_name: &str, a: f64, b_name: &str, b: f64, tol: f64) -> Claim {
        let diff = (a - b).abs();
        self.decide(
            diff <= tol,
            format!(
                "{a_name} = {}, {b_name} = {}, |difference| = {} ≤ {}",
                num(a),
                num(b),
                num(diff),
                num(tol)
            ),
        )
    }

    /// `mean > k·SE`: a Monte-Carlo difference (usually a
    /// [`paired_difference`](crate::base::stats::paired_difference)) is positive, beyond `k`
    /// standard errors of noise.
    pub fn positive(self, name: &str, d: Estimate, k: f64) -> Claim {
        self.decide(d.mean > k * d.stderr, format!("{name} = {} > 0 by {k} SE", est(d)))
    }

    /// `mean < −k·SE`: a Monte-Carlo difference is negative beyond `k` standard errors.
    pub fn negative(self, name: &str, d: Estimate, k: f64) -> Claim {
        self.decide(d.mean < -k * d.stderr, format!("{name} = {} < 0 by {k} SE", est(d)))
    }

    /// `mean − k·SE > bound`: an estimate exceeds a number beyond `k` standard errors.
    pub fn above(self, name: &str, e: Estimate, bound_name: &str, bound: f64, k: f64) -> Claim {
        self.decide(
            e.mean - k * e.stderr > bound,
            format!("{name} = {} > {bound_name} = {} by {k} SE", est(e), num(bound)),
        )
    }

    /// `mean + k·SE < bound`: an estimate falls below a number beyond `k` standard errors.
    pub fn below(self, name: &str, e: Estimate, bound_name: &str, bound: f64, k: f64) -> Claim {
        self.decide(
            e.mean + k * e.stderr < bound,
            format!("{name} = {} < {bound_name} = {} by {k} SE", est(e), num(bound)),
        )
    }

    /// `mean + k·SE ≥ bound`: an estimate is not below a number by more than `k` standard errors
    /// (what a Monte-Carlo estimate of a quantity that is ≥ `bound` must satisfy).
    pub fn not_below(self, name: &str, e: Estimate, bound_name: &str, bound: f64, k: f64) -> Claim {
        self.decide(
            e.mean + k * e.stderr >= bound,
            format!("{name} = {} ≥ {bound_name} = {} within {k} SE", est(e), num(bound)),
        )
    }

    /// `mean − k·SE ≤ bound`: an estimate is not above a number by more than `k` standard errors.
    pub fn not_above(self, name: &str, e: Estimate, bound_name: &str, bound: f64, k: f64) -> Claim {
        self.decide(
            e.mean - k * e.stderr <= bound,
            format!("{name} = {} ≤ {bound_name} = {} within {k} SE", est(e), num(bound)),
        )
    }

    /// `|mean − target| ≤ k·SE`: an estimate is consistent with a known value.
    pub fn consistent(self, name: &str, e: Estimate, target_name: &str, target: f64, k: f64) -> Claim {
        let z = (e.mean - target).abs() / e.stderr;
        self.decide(
            (e.mean - target).abs() <= k * e.stderr,
            format!("{name} = {}, {target_name} = {}: {} SE apart ≤ {k}", est(e), num(target), num(z)),
        )
    }

    /// `p ≥ α`: a goodness-of-fit test does not reject at level α (a correct sampler fails it
    /// with probability α).
    pub fn not_rejected(self, test: &str, p_value: f64, alpha: f64) -> Claim {
        self.decide(p_value >= alpha, format!("{test}: p = {} ≥ α = {alpha}", num(p_value)))
    }

    /// Every claim of `parts` holds. The figures say how many hold and show the first that does
    /// not (or, when all hold, the first).
    pub fn for_all(self, parts: impl IntoIterator<Item = Claim>) -> Claim {
        let parts: Vec<Claim> = parts.into_iter().collect();
        let failing = parts.iter().filter(|c| !c.holds).count();
        let shown = parts.iter().find(|c| !c.holds).or(parts.first());
        let evidence = match shown {
            None => "no cases (an empty claim does not hold)".to_string(),
            Some(c) if failing > 0 => {
                format!("{failing} of {} fail; first: {}: {}", parts.len(), c.statement, c.evidence)
            }
            Some(c) => format!("all {} hold; e.g. {}: {}", parts.len(), c.statement, c.evidence),
        };
        self.decide(!parts.is_empty() && failing == 0, evidence)
    }

    /// A claim decided by a condition the caller computed, with the figures that decide it in
    /// words (e.g. `"16 of 16 units active"`). Prefer the typed tests above when one fits.
    pub fn holds_if(self, condition: bool, evidence: impl Into<String>) -> Claim {
        self.decide(condition, evidence.into())
    }
}

impl Claim {
    /// Whether the claim holds. A claim with a NaN among its figures never holds (every
    /// comparison with NaN is false).
    pub fn holds(&self) -> bool {
        self.holds
    }

    /// The claim if it holds; else [`Error::ClaimFailed`] with its line.
    pub fn check(self) -> Result<Claim> {
        if self.holds { Ok(self) } else { Err(Error::ClaimFailed { line: self.to_string() }) }
    }

    /// For a notebook cell: prints the claim's line (`✓ …`) when it holds; else returns
    /// [`Error::ClaimFailed`] with the `✗ …` line, so `claim(…).….verify()?` fails the cell.
    pub fn verify(self) -> Result<()> {
        let claim = self.check()?;
        println!("{claim}");
        Ok(())
    }
}

impl fmt::Display for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.holds { '✓' } else { '✗' };
        write!(f, "{mark} {} — {}", self.statement, self.evidence)
    }
}

/// A number with four significant digits, in scientific notation outside [10⁻³, 10⁵).
fn num(x: f64) -> String {
    let a = x.abs();
    if x == 0.0 || !x.is_finite() {
        format!("{x}")
    } else if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{x:.decimals$}")
    } else {
        format!("{x:.3e}")
    }
}

/// `mean ± SE (SE, n = …)`.
fn est(e: Estimate) -> String {
    format!("{} ± {} (SE, n = {})", num(e.mean), num(e.stderr), e.samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(mean: f64, stderr: f64) -> Estimate {
        Estimate { mean, stderr, samples: 50 }
    }

    #[test]
    fn exact_comparisons_decide_by_their_operator() {
        assert!(claim("s").less("a", 1.0, "b", 2.0).holds());
        assert!(!claim("s").less("a", 2.0, "b", 2.0).holds());
        assert!(claim("s").at_most("a", 2.0, "b", 2.0).holds());
        assert!(claim("s").greater("a", 3.0, "b", 2.0).holds());
        assert!(!claim("s").greater("a", 2.0, "b", 2.0).holds());
        assert!(claim("s").at_least("a", 2.0, "b", 2.0).holds());
        assert!(!claim("s").at_least("a", 1.0, "b", 2.0).holds());
        assert!(claim("s").close("a", 1.0, "b", 1.05, 0.1).holds());
        assert!(!claim("s").close("a", 1.0, "b", 1.2, 0.1).holds());
    }

    #[test]
    fn standard_error_tests_use_k_standard_errors() {
        // mean 1, SE 0.2: 5 SE above 0, so positive at k = 4 and not at k = 6.
        assert!(claim("s").positive("d", e(1.0, 0.2), 4.0).holds());
        assert!(!claim("s").positive("d", e(1.0, 0.2), 6.0).holds());
        assert!(claim("s").negative("d", e(-1.0, 0.2), 4.0).holds());
        assert!(!claim("s").negative("d", e(1.0, 0.2), 4.0).holds());
        // 1 − 4·0.2 = 0.2 > 0.1, but not > 0.3.
        assert!(claim("s").above("e", e(1.0, 0.2), "b", 0.1, 4.0).holds());
        assert!(!claim("s").above("e", e(1.0, 0.2), "b", 0.3, 4.0).holds());
        assert!(claim("s").below("e", e(1.0, 0.2), "b", 1.9, 4.0).holds());
        assert!(!claim("s").below("e", e(1.0, 0.2), "b", 1.7, 4.0).holds());
        // 1 + 4·0.2 = 1.8 ≥ 1.7 but not ≥ 1.9; 1 − 4·0.2 = 0.2 ≤ 0.3 but not ≤ 0.1.
        assert!(claim("s").not_below("e", e(1.0, 0.2), "b", 1.7, 4.0).holds());
        assert!(!claim("s").not_below("e", e(1.0, 0.2), "b", 1.9, 4.0).holds());
        assert!(claim("s").not_above("e", e(1.0, 0.2), "b", 0.3, 4.0).holds());
        assert!(!claim("s").not_above("e", e(1.0, 0.2), "b", 0.1, 4.0).holds());
        // 0.7 from the target is 3.5 SE.
        assert!(claim("s").consistent("e", e(1.0, 0.2), "t", 1.7, 4.0).holds());
        assert!(!claim("s").consistent("e", e(1.0, 0.2), "t", 1.7, 3.0).holds());
        assert!(claim("s").not_rejected("KS", 0.02, 1e-3).holds());
        assert!(!claim("s").not_rejected("KS", 1e-4, 1e-3).holds());
    }

    #[test]
    fn nan_never_holds() {
        let nan = f64::NAN;
        assert!(!claim("s").less("a", nan, "b", 1.0).holds());
        assert!(!claim("s").greater("a", nan, "b", 1.0).holds());
        assert!(!claim("s").close("a", nan, "b", 1.0, 1.0).holds());
        assert!(!claim("s").positive("d", e(nan, 0.1), 4.0).holds());
        assert!(!claim("s").consistent("e", e(1.0, nan), "t", 1.0, 4.0).holds());
        assert!(!claim("s").not_rejected("KS", nan, 1e-3).holds());
    }

    #[test]
    fn for_all_needs_every_part_and_at_least_one() {
        let ok = || claim("p").less("a", 1.0, "b", 2.0);
        let bad = claim("q").less("a", 3.0, "b", 2.0);
        assert!(claim("all").for_all([ok(), ok()]).holds());
        let failed = claim("all").for_all([ok(), bad]);
        assert!(!failed.holds());
        assert_eq!(failed.to_string(), "✗ all — 1 of 2 fail; first: q: a = 3.000 < b = 2.000");
        assert!(!claim("all").for_all(Vec::new()).holds());
    }

    #[test]
    fn a_failed_claim_is_an_error_carrying_its_line() {
        let err = claim("it falls").less("after", 2.0, "before", 1.0).check().unwrap_err();
        assert_eq!(err.to_string(), "claim does not hold: ✗ it falls — after = 2.000 < before = 1.000");
        assert!(claim("it falls").less("after", 0.5, "before", 1.0).verify().is_ok());
    }

    #[test]
    fn figures_keep_four_significant_digits() {
        assert_eq!(num(0.0), "0");
        assert_eq!(num(123.456), "123.5");
        assert_eq!(num(-0.012345), "-0.01235");
        assert_eq!(num(1.5e-9), "1.500e-9");
        assert_eq!(num(2.5e6), "2.500e6");
        assert_eq!(num(f64::NAN), "NaN");
        let d = Estimate { mean: 12.31, stderr: 0.4012, samples: 1000 };
        assert_eq!(
            claim("gain").positive("after − before", d, 4.0).to_string(),
            "✓ gain — after − before = 12.31 ± 0.4012 (SE, n = 1000) > 0 by 4 SE"
        );
    }
}
