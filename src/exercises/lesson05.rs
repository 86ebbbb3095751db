//! The exercises of lesson 05 (`notebooks/05-prior-and-aggregate-posterior.ipynb`; worked solutions
//! in `notebooks/solutions/05-prior-and-aggregate-posterior.ipynb`).
//!
//! - 5.1 [`aggregate_variance`]: the variance of an aggregate posterior of three 1-D posteriors,
//!   by the law of total variance, by hand.
//! - 5.2 [`log_aggregate_posterior`]: the learner's log q_agg(z), including far from every
//!   posterior, where exp underflows.
//! - 5.3 [`ring_information`]: a measurement — I(n; z) for eight posteriors on a ring, which is
//!   also the average KL to the best prior, q_agg itself.

use ndarray::{Array1, Array2, Axis};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::{Verdict, exercise};
use crate::base::error::Result;
use crate::engine::eval::aggregate_posterior;
use crate::lessons::prior::{elbo_surgery, log_aggregate_posterior as crate_log_aggregate_posterior};

/// Exercise 5.1's posterior means μ_n (Z = 1).
pub const AGGREGATE_MEANS: [f64; 3] = [-1.0, 0.5, 2.0];
/// Exercise 5.1's posterior variances σ_n².
pub const AGGREGATE_VARIANCES: [f64; 3] = [0.25, 1.0, 0.04];

/// Exercise 5.1: Var(z) under q_agg = (1/3) Σ_n N(μ_n, σ_n²) with μ = [`AGGREGATE_MEANS`],
/// σ² = [`AGGREGATE_VARIANCES`], to three decimals.
///
/// ```text
/// Var[z] = (1/N) Σ_n σ_n²  +  (1/N) Σ_n (μ_n − μ̄)²       (law of total variance, lesson 05 Step 3)
/// ```
/// The expected value is the crate's [`aggregate_posterior`] covariance; tolerance 5·10⁻⁴ (rounding
/// to three decimals).
pub fn aggregate_variance(answer: f64) -> Verdict {
    let mean = Array2::from_shape_fn((3, 1), |(n, _)| AGGREGATE_MEANS[n]);
    let log_var = Array2::from_shape_fn((3, 1), |(n, _)| AGGREGATE_VARIANCES[n].ln());
    let expected =
        aggregate_posterior(mean.view(), log_var.view()).map(|a| a.covariance[(0, 0)]).unwrap_or(f64::NAN);
    exercise(
        "5.1",
        "two parts: the mean of the posteriors' own variances σ_n² (within) plus the variance of their \
         means μ_n around μ̄, with 1/N, not 1/(N − 1): the mixture picks each component with probability 1/N",
    )
    .number("Var[z] under q_agg", answer, expected, 5e-4)
}

/// Exercise 5.2's posteriors: N = 3, Z = 2, `(mean, log_var)`.
///
/// # Shapes
/// Both `3 × 2`.
pub fn log_aggregate_case() -> (Array2<f64>, Array2<f64>) {
    let mean = ndarray::array![[0.0, 0.0], [1.5, -0.5], [-2.0, 1.0]];
    let log_var = ndarray::array![[0.0, 0.0], [-1.0, -2.0], [-3.0, 0.5]];
    (mean, log_var)
}

/// Exercise 5.2's query points z: at a posterior's mean, between them, and far from all of them
/// (where every N(z; μ_n, σ_n²) underflows to 0 in f64).
pub const LOG_AGGREGATE_QUERIES: [[f64; 2]; 5] =
    [[0.0, 0.0], [1.5, -0.5], [0.7, 0.3], [-4.0, 3.0], [40.0, -30.0]];

/// Exercise 5.2: the learner's `f(mean, log_var, z) → log q_agg(z)` against the crate's
/// [`crate::lessons::prior::log_aggregate_posterior`] on [`log_aggregate_case`] at each of
/// [`LOG_AGGREGATE_QUERIES`].
///
/// ```text
/// log q_agg(z) = log (1/N) Σ_n N(z; μ_n, diag e^(v_n)) = logmeanexp_n [ −½ Σ_u (ln 2π + v_nu + (z_u − μ_nu)² e^(−v_nu)) ]
/// ```
/// Correct when every query agrees within 10⁻⁹ relative to max(1, |reference|) (a log-mean-exp of
/// three terms of size ≤ 10⁴ rounds at ≈ 10⁻¹²). At the far query, summing exp of the log-densities
/// gives log 0 = −∞: the evidence shows it.
///
/// # Shapes
/// `f` receives mean, log_var: `N × Z`, z: `Z`.
pub fn log_aggregate_posterior(f: impl Fn(&Array2<f64>, &Array2<f64>, &Array1<f64>) -> f64) -> Verdict {
    let (mean, log_var) = log_aggregate_case();
    let cases: Vec<Array1<f64>> = LOG_AGGREGATE_QUERIES.iter().map(|z| Array1::from(z.to_vec())).collect();
    let reference = |z: &Array1<f64>| {
        crate_log_aggregate_posterior(z.view().insert_axis(Axis(0)), mean.view(), log_var.view())
            .map(|l| l[0])
            .unwrap_or(f64::NAN)
    };
    exercise(
        "5.2",
        "average the N densities, not their logs, and do it in log space: log (1/N) Σ_n e^(a_n) = \
         m + log Σ_n e^(a_n − m) − log N with m = max_n a_n, so nothing underflows far from the posteriors",
    )
    .function(
        "log q_agg(z)",
        |z| f(&mean, &log_var, z),
        reference,
        &cases,
        |z| format!("z = ({}, {})", z[0], z[1]),
        1e-9,
    )
}

/// Exercise 5.3's ring: N posteriors with means on a circle and one shared variance.
pub const RING_POINTS: usize = 8;
/// The ring's radius.
pub const RING_RADIUS: f64 = 2.0;
/// Every posterior's variance σ² on both units.
pub const RING_VARIANCE: f64 = 0.5;
/// The draws per posterior exercise 5.3 asks for (`elbo_surgery`'s S).
pub const RING_SAMPLES: usize = 1000;
/// Seed of the checker's own ELBO surgery in exercise 5.3 (for the standard error at S = 1000).
pub const RING_CHECK_SEED: u64 = 5_003;

/// Exercise 5.3's posteriors: μ_n = r (cos 2πn/N, sin 2πn/N), log σ_n² = log [`RING_VARIANCE`] on
/// both units, n = 0 … N − 1.
///
/// # Shapes
/// Both `N × 2`, N = [`RING_POINTS`].
pub fn ring_posteriors() -> (Array2<f64>, Array2<f64>) {
    let n = RING_POINTS;
    let mean = Array2::from_shape_fn((n, 2), |(i, u)| {
        let angle = 2.0 * std::f64::consts::PI * i as f64 / n as f64;
        RING_RADIUS * if u == 0 { angle.cos() } else { angle.sin() }
    });
    (mean, Array2::from_elem((n, 2), RING_VARIANCE.ln()))
}

/// I(n; z) of the ring by quadrature: the trapezoid rule on a grid in each posterior's standardised
/// coordinates t = (z − μ_n)/σ, |t_u| ≤ 9, step `step`.
///
/// ```text
/// I(n; z) = (1/N) Σ_n ∫ q(z|x_n) [ log q(z|x_n) − log q_agg(z) ] dz
///         = (1/N) Σ_n ∫ φ(t₁) φ(t₂) [ log q(μ_n + σt | x_n) − log q_agg(μ_n + σt) ] dt
/// ```
/// The integrand is a Gaussian times a smooth (analytic) function, so the trapezoid rule converges
/// geometrically in 1/step; the tail beyond 9 SD holds e^(−40) of the mass. (Independent of the
/// Monte-Carlo route the learner takes.)
fn ring_information_by_quadrature(step: f64) -> Result<f64> {
    let (mean, log_var) = ring_posteriors();
    let sigma = RING_VARIANCE.sqrt();
    let half = (9.0 / step).round() as i64;
    let ts: Vec<f64> = (-half..=half).map(|i| i as f64 * step).collect();
    let phi = |t: f64| (-0.5 * t * t).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let mut total = 0.0;
    for n in 0..RING_POINTS {
        let points = Array2::from_shape_fn((ts.len() * ts.len(), 2), |(k, u)| {
            let t = if u == 0 { ts[k / ts.len()] } else { ts[k % ts.len()] };
            mean[(n, u)] + sigma * t
        });
        let log_agg = crate_log_aggregate_posterior(points.view(), mean.view(), log_var.view())?;
        // log q(z|x_n) at μ_n + σt: −½ Σ_u (ln 2π + log σ² + t_u²).
        for (k, la) in log_agg.iter().enumerate() {
            let (t1, t2) = (ts[k / ts.len()], ts[k % ts.len()]);
            let log_q = -0.5
                * (2.0 * (2.0 * std::f64::consts::PI).ln() + 2.0 * RING_VARIANCE.ln() + t1 * t1 + t2 * t2);
            total += phi(t1) * phi(t2) * (log_q - la) * step * step;
        }
    }
    Ok(total / RING_POINTS as f64)
}

/// Exercise 5.3: the learner's measurement of I(n; z) for the ring ([`ring_posteriors`]) by ELBO
/// surgery with S = [`RING_SAMPLES`] draws per posterior, to two decimals.
///
/// The exact value is computed by quadrature (`ring_information_by_quadrature`, step 0.05); the
/// checker accepts |answer − I| ≤ 4 SE + 0.005, the SE being that of an ELBO surgery at
/// S = [`RING_SAMPLES`] (the checker's own run, seed [`RING_CHECK_SEED`]) and 0.005 the rounding to
/// two decimals. A larger S only shrinks the learner's error. It is also the average KL term if the
/// prior were q_agg itself (then KL(q_agg ‖ p) = 0 in the surgery).
pub fn ring_information(answer: f64) -> Verdict {
    let ex = exercise(
        "5.3",
        "I(n; z) is the surgery's mutual_information (log q(z|x_n) − log q_agg(z)), not the closed-form \
         mean KL to N(0, I) and not its cap log N; with q_agg as the prior, KL(q_agg ‖ q_agg) = 0 leaves I",
    );
    let (exact, band) = match ring_information_band() {
        Ok(v) => v,
        Err(e) => {
            return Verdict::new("5.3", super::Outcome::Wrong, format!("the checker could not run: {e}"), "");
        }
    };
    ex.number("I(n; z) of the ring (quadrature; band 4 SE at S = 1000 + rounding)", answer, exact, band)
}

fn ring_information_band() -> Result<(f64, f64)> {
    let exact = ring_information_by_quadrature(0.05)?;
    let (mean, log_var) = ring_posteriors();
    let s = elbo_surgery(
        mean.view(),
        log_var.view(),
        None,
        RING_SAMPLES,
        1000,
        &mut StdRng::seed_from_u64(RING_CHECK_SEED),
    )?;
    Ok((exact, 4.0 * s.mutual_information.stderr + 0.005))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exercises::Outcome;

    #[test]
    fn aggregate_variance_by_hand() {
        // μ̄ = 0.5; within = (0.25 + 1 + 0.04)/3 = 0.43; between = (2.25 + 0 + 2.25)/3 = 1.5.
        assert!(aggregate_variance(1.93).is_correct());
        assert_eq!(aggregate_variance(0.43).outcome, Outcome::Wrong); // within only
        assert_eq!(aggregate_variance(1.5).outcome, Outcome::Wrong); // between only
        assert_eq!(aggregate_variance(0.43 + 2.25).outcome, Outcome::Wrong); // 1/(N − 1)
        assert_eq!(aggregate_variance(f64::NAN).outcome, Outcome::Unanswered);
    }

    fn stable(mean: &Array2<f64>, log_var: &Array2<f64>, z: &Array1<f64>) -> f64 {
        let a: Vec<f64> = (0..mean.nrows())
            .map(|n| {
                -0.5 * (0..z.len())
                    .map(|u| {
                        let v = log_var[(n, u)];
                        (2.0 * std::f64::consts::PI).ln() + v + (z[u] - mean[(n, u)]).powi(2) * (-v).exp()
                    })
                    .sum::<f64>()
            })
            .collect();
        let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        m + a.iter().map(|x| (x - m).exp()).sum::<f64>().ln() - (a.len() as f64).ln()
    }

    #[test]
    fn log_aggregate_accepts_log_mean_exp_and_rejects_underflow_and_missing_log_n() {
        assert!(log_aggregate_posterior(stable).is_correct());
        let naive = log_aggregate_posterior(|m, v, z| {
            let n = m.nrows() as f64;
            (0..m.nrows())
                .map(|i| {
                    let lp = stable(
                        &m.slice(ndarray::s![i..i + 1, ..]).to_owned(),
                        &v.slice(ndarray::s![i..i + 1, ..]).to_owned(),
                        z,
                    );
                    lp.exp()
                })
                .sum::<f64>()
                .ln()
                - n.ln()
        });
        assert_eq!(naive.outcome, Outcome::Wrong);
        assert!(naive.evidence.contains("z = (40, -30)"), "{}", naive.evidence);
        let no_log_n = log_aggregate_posterior(|m, v, z| stable(m, v, z) + (m.nrows() as f64).ln());
        assert_eq!(no_log_n.outcome, Outcome::Wrong);
        assert!(no_log_n.evidence.contains("z = (0, 0)"), "{}", no_log_n.evidence);
        // The mean of the log-densities (a lower bound by Jensen), not the log of the mean density.
        let mean_of_logs = log_aggregate_posterior(|m, v, z| {
            (0..m.nrows())
                .map(|i| {
                    stable(
                        &m.slice(ndarray::s![i..i + 1, ..]).to_owned(),
                        &v.slice(ndarray::s![i..i + 1, ..]).to_owned(),
                        z,
                    )
                })
                .sum::<f64>()
                / m.nrows() as f64
        });
        assert_eq!(mean_of_logs.outcome, Outcome::Wrong);
        assert_eq!(log_aggregate_posterior(|_, _, _| f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn quadrature_has_converged_and_is_below_log_n() {
        let (fine, coarse) =
            (ring_information_by_quadrature(0.05).unwrap(), ring_information_by_quadrature(0.1).unwrap());
        assert!((fine - coarse).abs() < 1e-10, "{fine} vs {coarse}");
        assert!(fine > 0.0 && fine < (RING_POINTS as f64).ln());
    }

    #[test]
    fn ring_information_accepts_surgeries_with_other_seeds_and_rejects_the_wrong_terms() {
        let (exact, band) = ring_information_band().unwrap();
        let (mean, log_var) = ring_posteriors();
        for seed in [1, 2, 3] {
            let s = elbo_surgery(
                mean.view(),
                log_var.view(),
                None,
                RING_SAMPLES,
                1000,
                &mut StdRng::seed_from_u64(seed),
            )
            .unwrap();
            let rounded = (s.mutual_information.mean * 100.0).round() / 100.0;
            assert!(ring_information(rounded).is_correct(), "seed {seed}: {rounded} vs {exact} ± {band}");
            // The mean KL to N(0, I) and log N are the typical wrong answers.
            assert_eq!(ring_information(s.mean_kl).outcome, Outcome::Wrong);
        }
        assert_eq!(ring_information((RING_POINTS as f64).ln()).outcome, Outcome::Wrong);
        assert_eq!(ring_information(f64::NAN).outcome, Outcome::Unanswered);
    }
}
