//! The exercises of lesson 04 (`notebooks/04-vae-from-scratch.ipynb`; worked solutions in
//! `notebooks/solutions/04-vae-from-scratch.ipynb`).
//!
//! - 4.1 [`kl_by_hand`]: the KL term of one diagonal Gaussian posterior, by hand.
//! - 4.2 [`gaussian_nll_backward`]: the backward pass of a Gaussian decoder with a learned
//!   per-pixel variance, against central finite differences.
//! - 4.3 [`tiny_model_total_probability`]: a measurement — Σ_x p̂(x) over all 64 images of the
//!   lesson's tiny model, by importance sampling.

use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Axis, Dimension};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Uniform};

use super::{Outcome, Verdict, exercise, finite_difference, run_caught};
use crate::base::error::Result;
use crate::base::prob::{diag_gaussian_log_density, kl_diag_gaussian_std_normal};
use crate::engine::eval::importance_sampled_log_likelihood;
use crate::engine::vae::{Vae, VaeConfig};

/// Exercise 4.1's posterior: μ = (0.5, −1.0).
pub const KL_MEAN: [f64; 2] = [0.5, -1.0];
/// Exercise 4.1's posterior: log σ² = (0.0, −1.0).
pub const KL_LOG_VAR: [f64; 2] = [0.0, -1.0];

/// Exercise 4.1: KL(N(μ, diag σ²) ‖ N(0, I)) for μ = [`KL_MEAN`], log σ² = [`KL_LOG_VAR`], by hand
/// to three decimals.
///
/// ```text
/// KL = ½ Σ_u (μ_u² + σ_u² − 1 − log σ_u²)      (lesson 04, "the loss, stated once")
/// ```
/// The expected value comes from [`kl_diag_gaussian_std_normal`]; the tolerance 5·10⁻⁴ accepts any
/// rounding to three decimals.
pub fn kl_by_hand(answer: f64) -> Verdict {
    let mean = Array2::from_shape_fn((1, 2), |(_, j)| KL_MEAN[j]);
    let log_var = Array2::from_shape_fn((1, 2), |(_, j)| KL_LOG_VAR[j]);
    let expected = kl_diag_gaussian_std_normal(mean.view(), log_var.view())[0];
    exercise(
        "4.1",
        "KL = ½ Σ_u (μ_u² + σ_u² − 1 − log σ_u²) summed over both units; σ² = e^(log σ²) (not σ), and \
         the −1 and −log σ² count in every unit",
    )
    .number("KL(q ‖ N(0, I)) for μ = (0.5, −1), log σ² = (0, −1)", answer, expected, 5e-4)
}

/// Seed of exercise 4.2's case (x, m, s).
pub const GAUSSIAN_CASE_SEED: u64 = 42;
/// Exercise 4.2's batch B and pixel count D.
pub const GAUSSIAN_CASE_DIM: (usize, usize) = (3, 4);

/// Exercise 4.2's case: `(x, mean, log_var)` drawn from a generator seeded by
/// [`GAUSSIAN_CASE_SEED`]: x, m ~ U(0, 1) (`B × D`), then s ~ U(−2, 1) (`D`).
///
/// # Shapes
/// x, mean: `B × D` = [`GAUSSIAN_CASE_DIM`]; log_var: `D`.
pub fn gaussian_nll_case() -> (Array2<f64>, Array2<f64>, Array1<f64>) {
    let mut rng = StdRng::seed_from_u64(GAUSSIAN_CASE_SEED);
    let unit = Uniform::new(0.0, 1.0).expect("0 < 1");
    let wide = Uniform::new(-2.0, 1.0).expect("−2 < 1");
    let x = Array2::from_shape_simple_fn(GAUSSIAN_CASE_DIM, || unit.sample(&mut rng));
    let mean = Array2::from_shape_simple_fn(GAUSSIAN_CASE_DIM, || unit.sample(&mut rng));
    let log_var = Array1::from_shape_simple_fn(GAUSSIAN_CASE_DIM.1, || wide.sample(&mut rng));
    (x, mean, log_var)
}

/// The loss of exercise 4.2, through the crate's Gaussian log-density: the negative log-likelihood
/// of a Gaussian decoder with mean `m` and a learned per-pixel log-variance `s` shared by the batch,
/// averaged over the batch.
///
/// ```text
/// L(m, s) = −(1/B) Σ_b log N(x_b; m_b, diag e^s) = (1/B) Σ_b Σ_d ½ [ log 2π + s_d + (x_bd − m_bd)² e^(−s_d) ]
/// ```
///
/// # Shapes
/// `x`, `mean`: `B × D`; `log_var`: `D`.
pub fn gaussian_nll(x: &Array2<f64>, mean: &Array2<f64>, log_var: &Array1<f64>) -> f64 {
    let s = log_var.view().insert_axis(Axis(0));
    -diag_gaussian_log_density(x.view(), mean.view(), s).sum() / x.nrows() as f64
}

/// Exercise 4.2: the learner's backward pass of [`gaussian_nll`], `f(x, m, s) → (∂L/∂m, ∂L/∂s)`,
/// against central finite differences of the loss in f64 on [`gaussian_nll_case`].
///
/// ```text
/// ∂L/∂m_bd = −(x_bd − m_bd) e^(−s_d) / B,     ∂L/∂s_d = (1/B) Σ_b ½ [ 1 − (x_bd − m_bd)² e^(−s_d) ]
/// ```
/// Correct when every element agrees within 10⁻⁷ relative to max(1, |reference|): with h = 10⁻⁵ the
/// finite differences' truncation error h²|f'''|/6 and rounding error ε|L|/h are each ≈ 10⁻¹⁰ here
/// (|L| ≈ 3, |f'''| ≤ e² on this case), so 10⁻⁷ leaves three orders of magnitude; every typical
/// mistake (a sign, the ½, the 1/B, the sum over the batch) is off by ≥ 10⁻².
///
/// # Shapes
/// `f` receives x, m: `B × D` and s: `D`, and returns `(B × D, D)`.
pub fn gaussian_nll_backward(
    f: impl Fn(&Array2<f64>, &Array2<f64>, &Array1<f64>) -> (Array2<f64>, Array1<f64>),
) -> Verdict {
    let hint = "with r = x − m and w = e^(−s): ∂/∂m of ½ r² w is −r w; ∂/∂s of ½ (s + r² w) is ½ (1 − r² w); \
                s is shared by the B rows, so ∂L/∂s sums over them; and L averages over the batch (1/B)";
    let (x, mean, log_var) = gaussian_nll_case();
    let (d_mean, d_log_var) = match run_caught(|| f(&x, &mean, &log_var)) {
        Ok(g) => g,
        Err(msg) => {
            return Verdict::new("4.2", Outcome::Wrong, format!("your backward panicked: {msg}"), hint);
        }
    };
    let h = 1e-5;
    let fd_mean = finite_difference(|m| gaussian_nll(&x, &to_2d(m), &log_var), &mean.clone().into_dyn(), h);
    let fd_log_var =
        finite_difference(|s| gaussian_nll(&x, &mean, &to_1d(s)), &log_var.clone().into_dyn(), h);
    compare_gradients(
        "4.2",
        hint,
        &[
            ("∂L/∂m", d_mean.view().into_dyn(), fd_mean.view()),
            ("∂L/∂s", d_log_var.view().into_dyn(), fd_log_var.view()),
        ],
        1e-7,
        "central differences (h = 1e-5) of the loss on gaussian_nll_case()",
    )
}

fn to_2d(a: &ArrayD<f64>) -> Array2<f64> {
    a.clone().into_dimensionality().unwrap_or_else(|_| Array2::zeros((0, 0)))
}

fn to_1d(a: &ArrayD<f64>) -> Array1<f64> {
    a.clone().into_dimensionality().unwrap_or_else(|_| Array1::zeros(0))
}

/// Several named gradients against their references, as ONE verdict: shapes first, then every
/// element within `tol` relative to max(1, |reference|); the first element that disagrees is shown
/// with its array and index. All-NaN answers are "no answer yet".
pub(crate) fn compare_gradients(
    number: &str,
    hint: &str,
    parts: &[(&str, ArrayViewD<'_, f64>, ArrayViewD<'_, f64>)],
    tol: f64,
    reference: &str,
) -> Verdict {
    if parts.iter().all(|(_, a, _)| a.iter().all(|v| v.is_nan())) {
        let names: Vec<&str> = parts.iter().map(|(n, _, _)| *n).collect();
        let evidence = format!("{} still NaN; write your backward", names.join(" and "));
        return Verdict::new(number, Outcome::Unanswered, evidence, hint);
    }
    let mut max_diff = 0.0_f64;
    let mut count = 0;
    for (name, answer, expected) in parts {
        if answer.shape() != expected.shape() {
            let evidence =
                format!("{name} has shape {:?}; it should have {:?}", answer.shape(), expected.shape());
            return Verdict::new(number, Outcome::Wrong, evidence, hint);
        }
        for ((index, a), e) in answer.indexed_iter().zip(expected.iter()) {
            if !super::agrees(*a, *e, tol) {
                let evidence = format!("{name}{:?}: {reference} give {e:.8}, yours {a:.8}", index.slice());
                return Verdict::new(number, Outcome::Wrong, evidence, hint);
            }
            max_diff = max_diff.max((a - e).abs());
            count += 1;
        }
    }
    let names: Vec<&str> = parts.iter().map(|(n, _, _)| *n).collect();
    let evidence = format!(
        "{} agree with {reference} in all {count} elements (max difference {max_diff:.1e} ≤ {tol:.0e})",
        names.join(" and ")
    );
    Verdict::new(number, Outcome::Correct, evidence, hint)
}

/// Seed of the lesson's tiny model (lesson 04, Step 1: `StdRng::seed_from_u64(4)`, the model drawn
/// first).
pub const TINY_MODEL_SEED: u64 = 4;
/// The importance samples per image exercise 4.3 asks for.
pub const TOTAL_PROBABILITY_K: usize = 1000;
/// Seed of the checker's own importance samples in exercise 4.3.
pub const TOTAL_PROBABILITY_CHECK_SEED: u64 = 4_003;

/// The tiny model of lesson 04, Step 1: a Bernoulli VAE 6-5-3 in f64, initialised from
/// `StdRng::seed_from_u64(`[`TINY_MODEL_SEED`]`)`.
///
/// # Errors
/// None in practice (the configuration is valid); the model constructor's error otherwise.
pub fn tiny_model() -> Result<Vae<f64>> {
    Vae::new(VaeConfig::bernoulli(6, vec![5], 3), &mut StdRng::seed_from_u64(TINY_MODEL_SEED))
}

/// The 2^d binary images of d pixels, image i's pixel j = bit j of i.
///
/// # Shapes
/// Returns `2^d × d`.
fn all_binary_images(d: usize) -> Array2<f64> {
    Array2::from_shape_fn((1 << d, d), |(i, j)| ((i >> j) & 1) as f64)
}

/// Exercise 4.3: the learner's Σ_x p̂(x) over all 64 binary images of the tiny model
/// ([`tiny_model`]), each p̂(x) = exp(log p̂(x)) an importance-sampled estimate with K ≥
/// [`TOTAL_PROBABILITY_K`] draws from the encoder.
///
/// ```text
/// Σ_x p(x) = 1   (the model is a distribution over the 2⁶ images),   E[p̂(x)] = p(x)
/// Var[p̂(x)] = Var_q[w]/K ≈ p̂(x)² (K/ESS_x − 1)/K     (ESS = (Σw)²/Σw², the crate's `ess`)
/// ```
/// The exact answer is 1 whatever the model; the checker estimates the standard error of the sum
/// at K = [`TOTAL_PROBABILITY_K`] from its own importance samples (seed
/// [`TOTAL_PROBABILITY_CHECK_SEED`]) and accepts |answer − 1| ≤ 4 SE + 5·10⁻⁴ (rounding to three
/// decimals). A larger K only shrinks the learner's error, so it passes too. exp(ELBO) summed over
/// the images falls short of 1 by Σ_x p(x)(1 − e^(−gap_x)) and is rejected when that exceeds the band.
pub fn tiny_model_total_probability(answer: f64) -> Verdict {
    let ex = exercise(
        "4.3",
        "exponentiate each image's importance-sampled log p̂(x) and add the 64 values; exp of the ELBO \
         (or of the mean log-weight) is a lower bound of p(x), not an estimate of it",
    );
    let band = match total_probability_band() {
        Ok(b) => b,
        Err(e) => return Verdict::new("4.3", Outcome::Wrong, format!("the checker could not run: {e}"), ""),
    };
    ex.number("Σ_x p̂(x) over the 64 images (exactly 1; band 4 SE at K = 1000 + rounding)", answer, 1.0, band)
}

/// 4 SE of Σ_x p̂(x) at K = [`TOTAL_PROBABILITY_K`] plus 5·10⁻⁴ of rounding, and the checker's sum.
fn total_probability_band() -> Result<f64> {
    Ok(total_probability_estimate()?.1 * 4.0 + 5e-4)
}

/// The checker's own Σ_x p̂(x) at K = [`TOTAL_PROBABILITY_K`] and its standard error.
fn total_probability_estimate() -> Result<(f64, f64)> {
    let vae = tiny_model()?;
    let x = all_binary_images(vae.config.data_dim);
    let k = TOTAL_PROBABILITY_K;
    let mut rng = StdRng::seed_from_u64(TOTAL_PROBABILITY_CHECK_SEED);
    let is = importance_sampled_log_likelihood(&vae, x.view(), None, k, k, &mut rng)?;
    let p: Vec<f64> = is.per_example.iter().map(|l| l.exp()).collect();
    let var: f64 = p.iter().zip(&is.ess).map(|(p, ess)| p * p * (k as f64 / ess - 1.0) / k as f64).sum();
    Ok((p.iter().sum(), var.sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::eval::elbo_stats;
    use ndarray::Zip;

    #[test]
    fn kl_by_hand_accepts_the_rounded_value_and_rejects_typical_mistakes() {
        // By hand: ½[(0.25 + 1 − 1 − 0) + (1 + e^(−1) − 1 + 1)] = ½(0.25 + 1.367879) = 0.808940.
        assert!(kl_by_hand(0.809).is_correct());
        assert!(kl_by_hand(0.808_94).is_correct());
        // σ instead of σ²: ½[0.25 + (1 + e^(−½) − 1 + 1)] = 0.928.
        assert_eq!(kl_by_hand(0.928).outcome, Outcome::Wrong);
        // Without the −1 per unit: 1.809.
        assert_eq!(kl_by_hand(1.809).outcome, Outcome::Wrong);
        assert_eq!(kl_by_hand(f64::NAN).outcome, Outcome::Unanswered);
    }

    fn reference_backward(x: &Array2<f64>, m: &Array2<f64>, s: &Array1<f64>) -> (Array2<f64>, Array1<f64>) {
        let b = x.nrows() as f64;
        let mut d_m = Array2::zeros(m.raw_dim());
        let mut d_s = Array1::zeros(s.raw_dim());
        Zip::indexed(&mut d_m).for_each(|(i, j), d| {
            let r = x[(i, j)] - m[(i, j)];
            let w = (-s[j]).exp();
            *d += -r * w / b;
            d_s[j] += 0.5 * (1.0 - r * r * w) / b;
        });
        (d_m, d_s)
    }

    #[test]
    fn gaussian_backward_accepts_the_derivation_and_rejects_mistakes() {
        assert!(gaussian_nll_backward(reference_backward).is_correct());
        // Sign error in ∂L/∂m.
        let sign = gaussian_nll_backward(|x, m, s| {
            let (d_m, d_s) = reference_backward(x, m, s);
            (-d_m, d_s)
        });
        assert_eq!(sign.outcome, Outcome::Wrong);
        assert!(sign.evidence.contains("∂L/∂m[0, 0]"), "{}", sign.evidence);
        // ∂L/∂s without the ½ (d/ds of s + r² e^(−s)): the first element of ∂L/∂s is shown.
        let half = gaussian_nll_backward(|x, m, s| {
            let (d_m, d_s) = reference_backward(x, m, s);
            (d_m, d_s * 2.0)
        });
        assert_eq!(half.outcome, Outcome::Wrong);
        assert!(half.evidence.contains("∂L/∂s[0]"), "{}", half.evidence);
        // Forgot that s is shared: one row's term only (no sum over the batch).
        let shared = gaussian_nll_backward(|x, m, s| {
            let (d_m, _) = reference_backward(x, m, s);
            let r0 = &x.row(0) - &m.row(0);
            let d_s =
                Zip::from(&r0).and(s).map_collect(|r, s| 0.5 * (1.0 - r * r * (-s).exp()) / x.nrows() as f64);
            (d_m, d_s)
        });
        assert_eq!(shared.outcome, Outcome::Wrong);
        // A wrong shape, a panic and the placeholder.
        let shape = gaussian_nll_backward(|x, _, s| (x.t().to_owned(), s.clone()));
        assert_eq!(shape.outcome, Outcome::Wrong);
        assert!(shape.evidence.contains("shape"), "{}", shape.evidence);
        let panics = gaussian_nll_backward(|_, _, _| panic!("not yet written"));
        assert_eq!(panics.outcome, Outcome::Wrong);
        let nan = gaussian_nll_backward(|x, _, s| (x.mapv(|_| f64::NAN), s.mapv(|_| f64::NAN)));
        assert_eq!(nan.outcome, Outcome::Unanswered);
    }

    #[test]
    fn total_probability_is_one_within_its_band_and_exp_elbo_falls_short() {
        let (sum, se) = total_probability_estimate().unwrap();
        // The checker's own estimate is an unbiased estimate of 1: within 4 of its SE.
        assert!((sum - 1.0).abs() <= 4.0 * se, "sum {sum} ± {se}");
        // Another seed and a larger K are accepted too (a learner's independent estimate).
        let vae = tiny_model().unwrap();
        let x = all_binary_images(6);
        for (seed, k) in [(1, 1000), (2, 5000)] {
            let is = importance_sampled_log_likelihood(
                &vae,
                x.view(),
                None,
                k,
                1000,
                &mut StdRng::seed_from_u64(seed),
            )
            .unwrap();
            let s: f64 = is.per_example.iter().map(|l| l.exp()).sum();
            assert!(tiny_model_total_probability(s).is_correct(), "seed {seed}, K {k}: {s}");
        }
        // Σ exp(ELBO) is a sum of lower bounds: rejected.
        let elbo = elbo_stats(&vae, x.view(), None, 1000, 64, &mut StdRng::seed_from_u64(3)).unwrap();
        let s: f64 = elbo.elbo.iter().map(|l| l.exp()).sum();
        assert_eq!(tiny_model_total_probability(s).outcome, Outcome::Wrong, "Σ exp ELBO = {s}");
        assert_eq!(tiny_model_total_probability(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn binary_images_are_all_distinct() {
        let x = all_binary_images(3);
        assert_eq!(x.row(5).to_vec(), vec![1.0, 0.0, 1.0]);
        assert_eq!(x.sum(), 12.0); // each of 3 pixels is on in half of the 8 images
    }

    #[test]
    fn gaussian_case_is_reproducible() {
        let (a, b) = (gaussian_nll_case(), gaussian_nll_case());
        assert_eq!(a.0, b.0);
        assert!(a.2.iter().all(|s| (-2.0..1.0).contains(s)));
        assert_eq!(a.1.dim(), GAUSSIAN_CASE_DIM);
    }
}
