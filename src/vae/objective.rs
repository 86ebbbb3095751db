//! The weight of the KL term: constant β, linear warm-up, cyclical; optional free bits.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, ensure_positive};

/// How one mini-batch's loss weighs its KL term.
///
/// ```text
/// without free bits   L = D̄ + β R̄,                    R̄ = Σ_u R̄_u
/// with free bits λ     L = D̄ + β Σ_u max(λ, R̄_u)        (Kingma et al. 2016, eq. 15)
/// ```
/// D̄ = batch mean of −log p(x|z) (distortion), R̄_u = batch mean of KL_u, the KL of latent unit u
/// (rate), β ≥ 0 the KL weight. With free bits, a unit whose batch-mean KL is below λ nats gets
/// no KL gradient. Reported rates are always the plain R̄.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// β, the weight of the KL term.
    pub beta: f64,
    /// λ in nats per latent unit, or `None`.
    pub free_bits: Option<f64>,
}

impl Objective {
    /// The plain ELBO: β = 1, no free bits.
    pub const ELBO: Objective = Objective { beta: 1.0, free_bits: None };

    /// A β-weighted objective.
    ///
    /// # Errors
    /// `InvalidParameter` for β < 0 or not finite, or λ ≤ 0.
    pub fn new(beta: f64, free_bits: Option<f64>) -> Result<Self> {
        if !(beta.is_finite() && beta >= 0.0) {
            return Err(Error::invalid("beta", beta, "must be finite and >= 0"));
        }
        if let Some(l) = free_bits {
            ensure_positive("free_bits", l)?;
        }
        Ok(Objective { beta, free_bits })
    }
}

/// β as a function of the global training step t (0-based).
///
/// ```text
/// Constant        β(t) = β
/// LinearWarmup    β(t) = β · min(1, (t + 1)/T)                              T = warmup_steps
/// Cyclical        β(t) = β · min(1, τ/(ρ P)),  τ = (t mod P) + 1           P = period, ρ = ramp
/// ```
/// The cyclical schedule is Fu et al. 2019 ("Cyclical annealing schedule"): in each period of P
/// steps β rises linearly from ≈0 to β over the first ρP steps, then stays at β.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum KlSchedule {
    /// β throughout.
    Constant {
        /// β.
        beta: f64,
    },
    /// From β/T to β over the first T steps.
    LinearWarmup {
        /// Final β.
        beta: f64,
        /// T.
        warmup_steps: usize,
    },
    /// Repeated ramps.
    Cyclical {
        /// β at the top of each ramp.
        beta: f64,
        /// P, steps per cycle.
        period_steps: usize,
        /// ρ ∈ (0, 1], fraction of the cycle spent ramping.
        ramp_fraction: f64,
    },
}

impl Default for KlSchedule {
    fn default() -> Self {
        KlSchedule::Constant { beta: 1.0 }
    }
}

impl KlSchedule {
    /// Checks the schedule's parameters.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field.
    pub fn validate(&self) -> Result<()> {
        let beta = match *self {
            KlSchedule::Constant { beta } => beta,
            KlSchedule::LinearWarmup { beta, warmup_steps } => {
                if warmup_steps == 0 {
                    return Err(Error::invalid("warmup_steps", 0, "must be >= 1"));
                }
                beta
            }
            KlSchedule::Cyclical { beta, period_steps, ramp_fraction } => {
                if period_steps == 0 {
                    return Err(Error::invalid("period_steps", 0, "must be >= 1"));
                }
                if !(ramp_fraction > 0.0 && ramp_fraction <= 1.0) {
                    return Err(Error::invalid("ramp_fraction", ramp_fraction, "must be in (0, 1]"));
                }
                beta
            }
        };
        Objective::new(beta, None).map(|_| ())
    }

    /// β at global step `step`.
    pub fn beta_at(&self, step: usize) -> f64 {
        match *self {
            KlSchedule::Constant { beta } => beta,
            KlSchedule::LinearWarmup { beta, warmup_steps } => {
                beta * ((step + 1) as f64 / warmup_steps as f64).min(1.0)
            }
            KlSchedule::Cyclical { beta, period_steps, ramp_fraction } => {
                let tau = (step % period_steps + 1) as f64;
                beta * (tau / (ramp_fraction * period_steps as f64)).min(1.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_by_hand() {
        assert_eq!(KlSchedule::Constant { beta: 0.5 }.beta_at(1000), 0.5);
        let warm = KlSchedule::LinearWarmup { beta: 2.0, warmup_steps: 4 };
        // (t + 1)/4 · 2 for t = 0, 1, 3, then capped.
        assert_eq!(
            [warm.beta_at(0), warm.beta_at(1), warm.beta_at(3), warm.beta_at(9)],
            [0.5, 1.0, 2.0, 2.0]
        );
        let cyc = KlSchedule::Cyclical { beta: 1.0, period_steps: 4, ramp_fraction: 0.5 };
        // Ramp over 2 of every 4 steps: ½, 1, 1, 1, then again ½.
        let seq: Vec<f64> = (0..6).map(|t| cyc.beta_at(t)).collect();
        assert_eq!(seq, [0.5, 1.0, 1.0, 1.0, 0.5, 1.0]);
        assert!(KlSchedule::Cyclical { beta: 1.0, period_steps: 4, ramp_fraction: 0.0 }.validate().is_err());
        assert_eq!(
            Objective::new(-1.0, None).unwrap_err().to_string(),
            "invalid beta = -1: must be finite and >= 0"
        );
    }
}
