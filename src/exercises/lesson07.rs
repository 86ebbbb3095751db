//! The exercises of lesson 07, the VAE as a noisy channel (see `notebooks/07-noisy-channel.ipynb`
//! and `notebooks/solutions/07-noisy-channel.ipynb`).
//!
//! - 7.1 the entropy H of the 8 Gaussians with s = 0.05, by the closed form (a number);
//! - 7.2 the KL term per unit as a function of the channel's signal μ and noise σ (a function);
//! - 7.3 how many nats cross the channel of a digits model trained at β = 4 (a measurement).

use ndarray::{Array2, ArrayView2};

use super::{Outcome, Verdict, exercise};
use crate::base::prob::kl_diag_gaussian_std_normal;
use crate::engine::vae::Vae;
use crate::lessons::channel::{channel_noise, mixture_entropy_quadrature};

/// K, the number of Gaussians of exercise 7.1 (the lesson's data).
pub const COMPONENTS: usize = 8;
/// r, the radius of the circle of exercise 7.1 (the lesson's data).
pub const RADIUS: f64 = 2.0;
/// s, the standard deviation of each Gaussian in exercise 7.1 (half the lesson's 0.1).
pub const SIGMA_71: f64 = 0.05;
/// The KL (nats) above which the lesson calls a unit an open channel (Step 5: "more than 0.1 nats");
/// exercise 7.3's evidence counts them.
pub const OPEN_KL: f64 = 0.1;

/// Exercise 7.1: the entropy H of the data of Step 2 with s = [`SIGMA_71`] (K = 8, r = 2), by the
/// closed form for separated components, to the 4 decimals the lesson prints.
///
/// ```text
/// H = log K + log(2π e s²)        (Step 2; Cover & Thomas 2006, Thm 8.4.1)
/// ```
/// The checker's value is the other route of Step 2, the trapezoid quadrature of −∫ p log p
/// ([`mixture_entropy_quadrature`]), which assumes no separation: the nearest means are 30.6 s
/// apart, so the two agree far below the tolerance 5·10⁻⁵.
pub fn mixture_entropy_by_hand(answer: f64) -> Verdict {
    let ex = exercise(
        "7.1",
        "H = log K + log(2π e s²): first name the component (log K nats), then the point inside it, \
         a 2-D Gaussian, whose entropy has s², not s. It is a differential entropy, so it may be negative",
    );
    match mixture_entropy_quadrature(COMPONENTS, RADIUS, SIGMA_71, 4) {
        Ok(h) => ex.number("H (nats) of 8 Gaussians on a circle of radius 2, s = 0.05", answer, h, 5e-5),
        Err(e) => Verdict::new("7.1", Outcome::Wrong, format!("the checker could not compute H: {e}"), ""),
    }
}

/// The cases of exercise 7.2: (μ, σ) of one unit, from the prior itself to a loud, quiet channel.
pub const KL_CASES: [(f64, f64); 7] =
    [(0.0, 1.0), (0.0, 0.5), (0.0, 0.01), (1.0, 1.0), (-2.0, 0.1), (0.7, 2.0), (3.0, 0.3)];

/// Exercise 7.2: the KL term of one latent unit as a function of the channel's signal μ and its
/// noise σ (not log σ²), `kl(mu, sigma)`.
///
/// ```text
/// KL(N(μ, σ²) ‖ N(0, 1)) = ½ (μ² + σ² − 1 − log σ²)        (Step 1; Kingma & Welling 2014, App. B)
/// ```
/// Checked on [`KL_CASES`] against the crate's [`kl_diag_gaussian_std_normal`] (which takes
/// log σ² = 2 log σ), to 10⁻⁹.
///
/// # Shapes
/// `kl`: two scalars to a scalar.
pub fn kl_per_unit(kl: impl Fn(f64, f64) -> f64) -> Verdict {
    exercise(
        "7.2",
        "½ (μ² + σ² − 1 − log σ²): the log is of the variance σ², i.e. 2 log σ, and the whole bracket is halved",
    )
    .function(
        "KL(N(μ, σ²) ‖ N(0, 1))",
        |&(m, s): &(f64, f64)| kl(m, s),
        |&(m, s): &(f64, f64)| {
            let mean = Array2::from_elem((1, 1), m);
            let log_var = Array2::from_elem((1, 1), 2.0 * s.ln());
            kl_diag_gaussian_std_normal(mean.view(), log_var.view())[0]
        },
        &KL_CASES,
        |&(m, s)| format!("μ = {m}, σ = {s}"),
        1e-9,
    )
}

/// Exercise 7.3: the rate R = Σ_u KL̄_u of a digits model, measured as Step 5 does on the test
/// digits `x` the learner passes (Step 5 uses the first 500, binarised by x > 0.5), in nats to the
/// 2 decimals Step 5 prints. The checker recomputes the per-unit KL with [`channel_noise`] on the
/// same model and digits:
///
/// ```text
/// KL̄_u = (1/N) Σ_n ½ (μ_u(x_n)² + σ_u(x_n)² − 1 − log σ_u(x_n)²),   R = Σ_u KL̄_u ≥ I(x; z)
/// ```
/// The evidence lists every unit's KL̄_u and mean σ_u and how many units are open channels
/// (KL̄_u > [`OPEN_KL`] nats, Step 5's criterion); a NaN answer gets "no answer yet" without them, so
/// the placeholder does not print the measurement.
///
/// # Shapes
/// `x`: N × 784 for the lesson's model (N × D in general).
pub fn channel_rate(vae: &Vae<f32>, x: ArrayView2<f32>, answer: f64) -> Verdict {
    let ex = exercise(
        "7.3",
        "R is the sum over the units of each unit's mean KL on the test digits (channel_noise(..).kl), \
         not their average, and not the training epoch's rate (other digits, dynamically binarised)",
    );
    if answer.is_nan() {
        return ex.number("R of your model on your digits", answer, f64::NAN, 0.0);
    }
    let noise = match channel_noise(vae, x) {
        Ok(n) => n,
        Err(e) => {
            return Verdict::new(
                "7.3",
                Outcome::Wrong,
                format!("channel_noise on your model and digits: {e}"),
                "",
            );
        }
    };
    let open = noise.kl.iter().filter(|&&k| k > OPEN_KL).count();
    let units: Vec<String> = noise
        .kl
        .iter()
        .zip(&noise.sigma)
        .enumerate()
        .map(|(u, (k, s))| format!("z{u} KL {k:.3} σ {s:.3}"))
        .collect();
    let what = format!(
        "R on your {} digits ({}; {open} of {} units above {OPEN_KL} nats)",
        x.nrows(),
        units.join(", "),
        noise.kl.len()
    );
    ex.number(&what, answer, noise.kl.iter().sum(), 5e-3 + 1e-9)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::vae::VaeConfig;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn the_closed_form_is_accepted_and_forgetting_log_k_or_the_square_is_not() {
        let two_pi_e = 2.0 * std::f64::consts::PI * std::f64::consts::E;
        let s2 = SIGMA_71 * SIGMA_71;
        let right = (COMPONENTS as f64).ln() + (two_pi_e * s2).ln();
        assert!(mixture_entropy_by_hand(right).is_correct());
        // Rounded to the 4 decimals the lesson prints: −1.0742.
        assert!(mixture_entropy_by_hand((right * 1e4).round() / 1e4).is_correct());
        assert_eq!(mixture_entropy_by_hand((two_pi_e * s2).ln()).outcome, Outcome::Wrong);
        assert_eq!(
            mixture_entropy_by_hand((COMPONENTS as f64).ln() + (two_pi_e * SIGMA_71).ln()).outcome,
            Outcome::Wrong
        );
        assert_eq!(mixture_entropy_by_hand(f64::NAN).outcome, Outcome::Unanswered);
    }

    #[test]
    fn the_kl_formula_is_accepted_and_log_sigma_for_log_sigma_squared_is_not() {
        assert!(kl_per_unit(|m, s| 0.5 * (m * m + s * s - 1.0 - (s * s).ln())).is_correct());
        // Also written with log σ: the same function.
        assert!(kl_per_unit(|m, s| 0.5 * (m * m + s * s - 1.0) - s.ln()).is_correct());
        let v = kl_per_unit(|m, s| 0.5 * (m * m + s * s - 1.0 - s.ln()));
        assert_eq!(v.outcome, Outcome::Wrong);
        assert!(v.evidence.contains("σ = 0.5"), "{}", v.evidence);
        assert_eq!(kl_per_unit(|m, s| m * m + s * s - 1.0 - (s * s).ln()).outcome, Outcome::Wrong);
        assert_eq!(kl_per_unit(|_, _| f64::NAN).outcome, Outcome::Unanswered);
        assert_eq!(kl_per_unit(|_, _| panic!("todo")).outcome, Outcome::Wrong);
    }

    #[test]
    fn the_rate_is_recomputed_from_the_model() {
        // Heads zeroed, then μ₀ = 1 for every x: KL₀ = ½ (open), the other units at the prior (KL 0).
        let mut vae: Vae<f32> =
            Vae::new(VaeConfig::bernoulli(4, vec![3], 3), &mut StdRng::seed_from_u64(0)).unwrap();
        for head in [&mut vae.params.mean_head, &mut vae.params.log_var_head] {
            head.weight.fill(0.0);
            head.bias.fill(0.0);
        }
        vae.params.mean_head.bias[0] = 1.0;
        let x = Array2::from_shape_fn((6, 4), |(i, d)| ((i + d) % 2) as f32);
        assert!(channel_rate(&vae, x.view(), 0.5).is_correct());
        assert!(channel_rate(&vae, x.view(), 0.504).is_correct()); // rounding to 2 decimals
        // The mean over units instead of the sum.
        let wrong = channel_rate(&vae, x.view(), 0.5 / 3.0);
        assert_eq!(wrong.outcome, Outcome::Wrong);
        assert!(
            wrong.evidence.contains("z0 KL 0.500") && wrong.evidence.contains("1 of 3 units"),
            "{}",
            wrong.evidence
        );
        let nan = channel_rate(&vae, x.view(), f64::NAN);
        assert_eq!(nan.outcome, Outcome::Unanswered);
        assert!(
            !nan.evidence.contains("0.500"),
            "the placeholder must not print the measurement: {}",
            nan.evidence
        );
        // Digits of the wrong width: a wrong answer with the reason, not a panic.
        assert_eq!(channel_rate(&vae, Array2::zeros((2, 5)).view(), 0.5).outcome, Outcome::Wrong);
    }
}
