//! The exercises of lesson 09, the two collapses (see `notebooks/09-two-collapses.ipynb` and
//! `notebooks/solutions/09-two-collapses.ipynb`).
//!
//! - 9.1 D₀ = Σ_d h(x̄_d) of a four-pixel mean image, by hand (a number);
//! - 9.2 the free-bits KL term of the loss, as code, checked against the trainer's loss (a function);
//! - 9.3 the rate of a free-bits model with λ = 2 at β = 16 (a measurement).

use ndarray::{Array1, Array2, ArrayView1, s};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, StandardNormal};

use super::{Outcome, Verdict, exercise};
use crate::base::prob::kl_diag_gaussian_std_normal;
use crate::engine::vae::{Objective, Vae, VaeConfig};
use crate::lessons::collapse::{CollapsePoint, bernoulli_entropy};

/// The mean image of exercise 9.1: four pixels' mean grey levels x̄_d.
pub const MEAN_IMAGE: [f32; 4] = [0.1, 0.5, 0.0, 0.9];

/// Exercise 9.1: D₀ = Σ_d h(x̄_d) of the four-pixel mean image [`MEAN_IMAGE`], in nats, to 3
/// decimals.
///
/// ```text
/// D₀ = Σ_d h(x̄_d),   h(p) = −p log p − (1 − p) log(1 − p),   h(0) = 0        (Step 1)
/// ```
/// The checker's value is the crate's [`bernoulli_entropy`].
pub fn mean_image_distortion(answer: f64) -> Verdict {
    let ex = exercise(
        "9.1",
        "h(p) = −p log p − (1 − p) log(1 − p) in nats (natural log), h(0) = h(1) = 0 (the limit of p log p), \
         and D₀ sums h over the pixels",
    );
    match bernoulli_entropy(ArrayView1::from(&MEAN_IMAGE[..])) {
        Ok(d0) => ex.number("D₀ of the mean image [0.1, 0.5, 0.0, 0.9] (nats)", answer, d0, 5e-4),
        Err(e) => Verdict::new("9.1", Outcome::Wrong, format!("the checker could not compute D₀: {e}"), ""),
    }
}

/// One case of exercise 9.2: the batch means R̄_u of each unit's KL, β and λ, and the KL term of
/// the loss the crate's trainer minimises for them.
#[derive(Clone, Debug)]
pub struct FreeBitsCase {
    /// R̄_u, the batch mean of unit u's KL (nats), `Z`.
    pub unit_kl: Vec<f64>,
    /// β.
    pub beta: f64,
    /// λ, free nats per unit.
    pub lambda: f64,
    /// The loss's KL term for this batch: [`Vae::loss`] with free bits minus its distortion.
    pub kl_term: f64,
}

/// The cases of exercise 9.2, made by the crate's model: a 6-5-4 Bernoulli VAE whose heads' biases
/// spread the four units' KLs (about 0.02 to 2.6 nats), one batch of 8 points, and (β, λ) pairs
/// that leave none, some or all units below λ. Each case's KL term is [`Vae::loss`] with
/// `Objective { beta, free_bits: Some(λ) }` minus the distortion of the same pass, and the unit KLs
/// are the batch means of [`kl_diag_gaussian_std_normal`] on each unit's (μ, log σ²).
///
/// # Shapes
/// Each case holds 4 unit KLs.
pub fn free_bits_cases() -> Vec<FreeBitsCase> {
    let mut rng = StdRng::seed_from_u64(9);
    let mut vae = match Vae::<f64>::new(VaeConfig::bernoulli(6, vec![5], 4), &mut rng) {
        Ok(v) => v,
        Err(_) => return Vec::new(),
    };
    vae.params.mean_head.bias.assign(&Array1::from(vec![0.1, 0.6, 1.2, 2.0]));
    vae.params.log_var_head.bias.assign(&Array1::from(vec![0.0, -0.8, 0.4, -1.5]));
    let x = Array2::from_shape_fn((8, 6), |(i, d)| ((i * 7 + d * 3) % 5 < 2) as u8 as f64);
    let eps = Array2::from_shape_simple_fn((8, 4), || StandardNormal.sample(&mut rng));
    let (mean, log_var) = vae.encode(x.view(), None);
    let unit_kl: Vec<f64> = (0..4)
        .map(|u| {
            let per_row =
                kl_diag_gaussian_std_normal(mean.slice(s![.., u..=u]), log_var.slice(s![.., u..=u]));
            per_row.mean().unwrap_or(f64::NAN)
        })
        .collect();
    let mut cases = Vec::new();
    for &(beta, lambda) in &[(1.0, 0.01), (16.0, 0.5), (4.0, 1.0), (16.0, 2.0), (0.5, 5.0)] {
        let parts = vae.loss(x.view(), None, eps.view(), &Objective { beta, free_bits: Some(lambda) });
        cases.push(FreeBitsCase {
            unit_kl: unit_kl.clone(),
            beta,
            lambda,
            kl_term: parts.loss - parts.distortion,
        });
    }
    cases
}

/// Exercise 9.2: the KL term of the free-bits loss from the units' batch-mean KLs,
/// `kl_term(&unit_kl, beta, lambda)`:
///
/// ```text
/// L = D̄ + β Σ_u max(λ, R̄_u)        (Kingma et al. 2016, eq. 15; lesson 09, Step 6)
/// ```
/// so the answer is β Σ_u max(λ, R̄_u). Checked on [`free_bits_cases`] against what the crate's
/// model puts in its loss ([`Vae::loss`] minus the distortion), to 10⁻⁹ relative.
///
/// # Shapes
/// `kl_term`: Z unit KLs and two scalars to a scalar.
pub fn free_bits_term(kl_term: impl Fn(&[f64], f64, f64) -> f64) -> Verdict {
    exercise(
        "9.2",
        "free bits act unit by unit: each unit's batch-mean KL is raised to λ if it is below, then the \
         units are summed and weighted by β (the loss's value keeps the λ of a held unit, though its \
         gradient is zero)",
    )
    .function(
        "β Σ_u max(λ, R̄_u)",
        |c: &FreeBitsCase| kl_term(&c.unit_kl, c.beta, c.lambda),
        |c: &FreeBitsCase| c.kl_term,
        &free_bits_cases(),
        |c| {
            let kl: Vec<String> = c.unit_kl.iter().map(|k| format!("{k:.4}")).collect();
            format!("R̄_u = [{}], β = {}, λ = {}", kl.join(", "), c.beta, c.lambda)
        },
        1e-9,
    )
}

/// λ of exercise 9.3.
pub const LAMBDA_93: f64 = 2.0;
/// β of exercise 9.3.
pub const BETA_93: f64 = 16.0;

/// Exercise 9.3: the rate R of the model trained with free bits λ = [`LAMBDA_93`] at
/// β = [`BETA_93`] (`Variant::free_bits(16.0, 2.0)`), read from its measured point, to the
/// 2 decimals of the lesson's table. The checker first checks that the point is that variant, then
/// compares with its rate (a NaN answer is "no answer yet" whatever the point) (the mean over the test digits of KL(q(z|x) ‖ N(0, I)), closed form)
/// and prints it next to Zλ.
///
/// ```text
/// R = (1/N) Σ_n KL(q(z|x_n) ‖ N(0, I))
/// ```
pub fn free_bits_rate(point: &CollapsePoint, answer: f64) -> Verdict {
    let ex = exercise(
        "9.3",
        "report the R column of your free-bits row (point.rate.mean), measured on the test digits: \
         Zλ is the prediction, not the measurement",
    );
    if answer.is_nan() {
        return ex.number("R of the free-bits model", answer, point.rate.mean, 5e-3);
    }
    let is_variant = point.variant.free_bits == Some(LAMBDA_93) && point.variant.final_beta() == BETA_93;
    if !is_variant {
        let evidence = format!(
            "this point is \"{}\"; train Variant::free_bits({BETA_93:?}, {LAMBDA_93:?}) and pass its point",
            point.variant.label
        );
        return Verdict::new(
            "9.3",
            Outcome::Wrong,
            evidence,
            "the exercise is about free bits λ = 2 at β = 16",
        );
    }
    let z = point.kl_per_unit.len();
    let what = format!(
        "R of \"{}\" (Z = {z}, Zλ = {}; per unit {:?})",
        point.variant.label,
        z as f64 * LAMBDA_93,
        point.kl_per_unit.iter().map(|k| (k * 1000.0).round() / 1000.0).collect::<Vec<_>>()
    );
    ex.number(&what, answer, point.rate.mean, 5e-3 + 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d0_in_nats_is_accepted_and_in_bits_is_not() {
        let h = |p: f64| if p == 0.0 || p == 1.0 { 0.0 } else { -p * p.ln() - (1.0 - p) * (1.0 - p).ln() };
        let d0: f64 = MEAN_IMAGE.iter().map(|&p| h(f64::from(p))).sum();
        assert!(mean_image_distortion(d0).is_correct());
        assert!(mean_image_distortion((d0 * 1e3).round() / 1e3).is_correct());
        assert_eq!(mean_image_distortion(d0 / 2f64.ln()).outcome, Outcome::Wrong);
        assert_eq!(mean_image_distortion(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_cases_hold_units_on_both_sides_of_lambda() {
        let cases = free_bits_cases();
        assert_eq!(cases.len(), 5);
        let k = &cases[0].unit_kl;
        assert!(k.iter().all(|v| v.is_finite() && *v > 0.0), "{k:?}");
        // Some case has units both below and above its λ, one has all below, one all above.
        let below = |c: &FreeBitsCase| c.unit_kl.iter().filter(|&&v| v < c.lambda).count();
        assert!(cases.iter().any(|c| below(c) == 0));
        assert!(cases.iter().any(|c| below(c) == 4));
        assert!(cases.iter().any(|c| below(c) > 0 && below(c) < 4), "{k:?}");
    }

    #[test]
    fn the_per_unit_hinge_is_accepted_and_free_bits_on_the_total_is_not() {
        let right = |k: &[f64], beta: f64, lambda: f64| beta * k.iter().map(|&r| r.max(lambda)).sum::<f64>();
        assert!(free_bits_term(right).is_correct());
        let total = |k: &[f64], beta: f64, lambda: f64| beta * k.iter().sum::<f64>().max(lambda);
        assert_eq!(free_bits_term(total).outcome, Outcome::Wrong);
        // The hinge without the constant: same gradient, not the loss's value.
        let hinge =
            |k: &[f64], beta: f64, lambda: f64| beta * k.iter().map(|&r| (r - lambda).max(0.0)).sum::<f64>();
        assert_eq!(free_bits_term(hinge).outcome, Outcome::Wrong);
        // No free bits at all.
        assert_eq!(free_bits_term(|k, beta, _| beta * k.iter().sum::<f64>()).outcome, Outcome::Wrong);
        assert_eq!(free_bits_term(|_, _, _| f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_rate_is_read_from_the_free_bits_point_only() {
        use crate::lessons::collapse::tests::{tiny_config, tiny_digits};
        use crate::lessons::collapse::{Variant, collapse_runs};
        let (digits, config) = (tiny_digits(), tiny_config());
        let variants = [Variant::free_bits(BETA_93, LAMBDA_93), Variant::constant(BETA_93)];
        let runs = collapse_runs(&digits, &config, &variants, &mut |_, _| {}).unwrap();
        let (free, constant) = (&runs.points[0], &runs.points[1]);
        let r = free.rate.mean;
        assert!(free_bits_rate(free, r).is_correct());
        assert!(free_bits_rate(free, (r * 100.0).round() / 100.0).is_correct());
        let v = free_bits_rate(free, 2.0 * LAMBDA_93);
        assert_eq!(v.outcome, Outcome::Wrong, "{v}");
        assert!(v.evidence.contains("Zλ = 4"), "{}", v.evidence);
        // The right number from the wrong model is not the measurement asked for.
        assert_eq!(free_bits_rate(constant, constant.rate.mean).outcome, Outcome::Wrong);
        assert_eq!(free_bits_rate(free, f64::NAN).outcome, Outcome::Unanswered);
        // The placeholder is "no answer yet" whatever point the cell passes.
        assert_eq!(free_bits_rate(constant, f64::NAN).outcome, Outcome::Unanswered);
    }
}
