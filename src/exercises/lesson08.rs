//! The exercises of lesson 08, the minimal representation (see
//! `notebooks/08-minimal-representation.ipynb` and `notebooks/solutions/08-minimal-representation.ipynb`).
//!
//! - 8.1 A_u of Step 1's hand-made unit 3, by hand (a number);
//! - 8.2 the activity A_u = Var_x μ_u(x) of one unit, as code (a function);
//! - 8.3 how many units a Z = 4 model keeps on blobs with two factors (a measurement).

use ndarray::{Array2, ArrayView2};

use super::{Outcome, Verdict, exercise};
use crate::engine::eval::active_units;
use crate::engine::vae::Vae;

/// δ of the active-unit criterion A_u > δ (Burda et al. 2016, §5.2; the lesson's value).
pub const DELTA: f64 = 0.01;

/// Step 1's hand-made encoder output for unit 3: μ₃(xᵢ) = −((i / 10) mod 10)/4 for i = 0 … 999.
///
/// # Shapes
/// Returns 1000 × 1.
pub fn unit3_means() -> Array2<f64> {
    Array2::from_shape_fn((1000, 1), |(i, _)| -(((i / 10) % 10) as f64) / 4.0)
}

/// Exercise 8.1: A₃ = Var_x μ₃(x) of Step 1's hand-made unit 3 ([`unit3_means`]), by hand, to the
/// 5 decimals the lesson prints (0.51563) or more.
///
/// ```text
/// A_u = (1/N) Σ_n (μ_u(x_n) − μ̄_u)²        (Burda et al. 2016, §5.2; population variance)
/// ```
/// The checker's value is the crate's [`active_units`] on the 1000 values; the tolerance 10⁻⁵
/// accepts the printed rounding and rejects the sample variance (÷ (N − 1), 5.2·10⁻⁴ away).
pub fn activity_by_hand(answer: f64) -> Verdict {
    let expected = active_units(unit3_means().view(), DELTA).variances[0];
    exercise(
        "8.1",
        "the values are k/4 for k = 0 … 9, each 100 times (the sign does not matter): A = Var(k)/16 with \
         Var(k) = (10² − 1)/12, the population variance (divide by N, not N − 1)",
    )
    .number("A₃ of Step 1's unit 3", answer, expected, 1e-5)
}

/// The cases of exercise 8.2: one unit's posterior means over a few data points.
pub fn activity_cases() -> Vec<Vec<f64>> {
    vec![
        vec![1.0, 2.0, 3.0, 4.0],
        vec![0.3, 0.3, 0.3, 0.3, 0.3],
        vec![-1.0, 1.0],
        vec![0.5, 0.5, 2.0],
        vec![0.09375, -0.09375, 0.09375, -0.09375],
        vec![10.0, 10.1, 9.9, 10.05, 9.95, 10.0],
    ]
}

/// Exercise 8.2: a unit's activity A_u from its posterior means μ_u(x_n) over the data,
/// `activity(&means)`.
///
/// ```text
/// A_u = (1/N) Σ_n (μ_u(x_n) − μ̄_u)²,   μ̄_u = (1/N) Σ_n μ_u(x_n)        (Burda et al. 2016, §5.2)
/// ```
/// Checked on [`activity_cases`] against the crate's [`active_units`], to 10⁻¹².
///
/// # Shapes
/// `activity`: N means to a scalar.
pub fn activity(activity: impl Fn(&[f64]) -> f64) -> Verdict {
    exercise(
        "8.2",
        "the population variance of the means over the data: subtract their mean, square, divide by N \
         (not N − 1: A_u describes these N points, it does not estimate anything)",
    )
    .function(
        "A_u",
        |m: &Vec<f64>| activity(m),
        |m: &Vec<f64>| {
            let column = Array2::from_shape_fn((m.len(), 1), |(i, _)| m[i]);
            active_units(column.view(), DELTA).variances[0]
        },
        &activity_cases(),
        |m| format!("means {m:?}"),
        1e-12,
    )
}

/// Exercise 8.3: the number of active units (A_u > δ = 0.01) of a blob model, measured on the
/// images `x` the learner passes (the lesson's test images, 500 × 256). The checker encodes `x`
/// with the model and applies the crate's [`active_units`] to the means:
///
/// ```text
/// active = #{u : Var_n μ_u(x_n) > 0.01}
/// ```
/// The evidence lists every unit's A_u and the model's Z (not for a NaN answer, which is "no answer
/// yet" without them, so the placeholder does not print the measurement).
///
/// # Shapes
/// `x`: N × D, D the model's data dimension.
pub fn active_count(vae: &Vae<f32>, x: ArrayView2<f32>, answer: f64) -> Verdict {
    let ex = exercise(
        "8.3",
        "encode the test images, take each unit's variance of μ_u over them (unit_report(..).active.count, \
         or active_units on vae.encode(..).0): count what the model does, not the k you expect",
    );
    if answer.is_nan() {
        return ex.number("the active units of your model", answer, f64::NAN, 0.0);
    }
    if let Err(e) = crate::engine::eval::check_input(vae, "x", x, None) {
        return Verdict::new("8.3", Outcome::Wrong, format!("your model and images: {e}"), "");
    }
    let (mean, _) = vae.encode(x, None);
    let units = active_units(mean.mapv(f64::from).view(), DELTA);
    let a: Vec<String> = units.variances.iter().enumerate().map(|(u, v)| format!("A_{u} = {v:.4}")).collect();
    let what = format!(
        "active units of your Z = {} model on {} images ({})",
        vae.config.latent_dim,
        x.nrows(),
        a.join(", ")
    );
    ex.number(&what, answer, units.count as f64, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::vae::VaeConfig;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn the_population_variance_is_accepted_and_the_sample_variance_is_not() {
        let var_k = (10.0f64 * 10.0 - 1.0) / 12.0;
        assert!(activity_by_hand(var_k / 16.0).is_correct());
        assert!(activity_by_hand(0.51563).is_correct()); // as printed
        // ÷ (N − 1): 0.516141.
        assert_eq!(activity_by_hand(var_k / 16.0 * 1000.0 / 999.0).outcome, Outcome::Wrong);
        // The spread of k itself, without the 1/4 scale.
        assert_eq!(activity_by_hand(var_k).outcome, Outcome::Wrong);
        assert_eq!(activity_by_hand(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_activity_is_the_population_variance() {
        let population = |m: &[f64]| {
            let mean = m.iter().sum::<f64>() / m.len() as f64;
            m.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / m.len() as f64
        };
        assert!(activity(population).is_correct());
        let sample = |m: &[f64]| population(m) * m.len() as f64 / (m.len() as f64 - 1.0);
        let v = activity(sample);
        assert_eq!(v.outcome, Outcome::Wrong);
        assert!(v.evidence.contains("[1.0, 2.0, 3.0, 4.0]"), "{}", v.evidence);
        // The mean square without centring.
        assert_eq!(
            activity(|m| m.iter().map(|v| v * v).sum::<f64>() / m.len() as f64).outcome,
            Outcome::Wrong
        );
        assert_eq!(activity(|_| f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_active_count_is_recomputed_from_the_model() {
        // Heads zeroed, then unit 1's mean reads the hidden layer with weight 5: it moves with x; the
        // other units sit at μ = 0 for every x.
        let mut vae: Vae<f32> =
            Vae::new(VaeConfig::bernoulli(4, vec![3], 3), &mut StdRng::seed_from_u64(0)).unwrap();
        for head in [&mut vae.params.mean_head, &mut vae.params.log_var_head] {
            head.weight.fill(0.0);
            head.bias.fill(0.0);
        }
        vae.params.mean_head.weight.column_mut(1).fill(5.0);
        let x = Array2::from_shape_fn((10, 4), |(i, d)| ((i * (d + 1)) % 3) as f32);
        let (mean, _) = vae.encode(x.view(), None);
        let a = active_units(mean.mapv(f64::from).view(), DELTA);
        assert!(a.variances[1] > DELTA && a.variances[0] == 0.0 && a.variances[2] == 0.0, "{a:?}");
        assert!(active_count(&vae, x.view(), 1.0).is_correct());
        let wrong = active_count(&vae, x.view(), 3.0);
        assert_eq!(wrong.outcome, Outcome::Wrong);
        assert!(wrong.evidence.contains("A_0 = 0.0000"), "{}", wrong.evidence);
        let nan = active_count(&vae, x.view(), f64::NAN);
        assert_eq!(nan.outcome, Outcome::Unanswered);
        assert!(
            !nan.evidence.contains("A_0"),
            "the placeholder must not print the measurement: {}",
            nan.evidence
        );
        assert_eq!(active_count(&vae, Array2::zeros((2, 7)).view(), 1.0).outcome, Outcome::Wrong);
    }
}
