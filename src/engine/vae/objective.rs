//! The weight of the KL term: constant β, linear warm-up, cyclical; optional free bits; and how
//! the KL term of each mini-batch of an epoch is weighted ([`KlBatchWeights`], lesson 06).

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result, ensure_positive};

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

    /// The largest β and free-bits λ accepted: 10⁶ (the course uses β ≤ 16 and λ ≤ 1; beyond this
    /// the f32 loss loses every digit of the data term, and near 10³⁸ it is infinite).
    pub const MAX_WEIGHT: f64 = 1e6;

    /// A β-weighted objective.
    ///
    /// # Errors
    /// `InvalidParameter` for β < 0, λ ≤ 0, or either above [`Objective::MAX_WEIGHT`] (the loss is summed
    /// in f32: a λ of 1e308 nats per unit is infinite there).
    pub fn new(beta: f64, free_bits: Option<f64>) -> Result<Self> {
        if !(beta.is_finite() && (0.0..=Self::MAX_WEIGHT).contains(&beta)) {
            return Err(Error::invalid("beta", beta, format!("must be >= 0 and <= {:e}", Self::MAX_WEIGHT)));
        }
        if let Some(l) = free_bits {
            ensure_positive("free_bits", l)?;
            if l > Self::MAX_WEIGHT {
                return Err(Error::invalid(
                    "free_bits",
                    l,
                    format!("must be <= {:e} nats per unit", Self::MAX_WEIGHT),
                ));
            }
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
            "invalid beta = -1: must be >= 0 and <= 1e6"
        );
    }
}

/// How the KL term of each mini-batch is weighted within an epoch of M batches.
///
/// In the text's normalisation (the epoch's objective is (1/N) Σ_x [r_x + k_x]), batch i
/// (1-based, B_i rows, M = ⌈N/B⌉ batches) contributes
///
/// ```text
/// (B_i/N) D̄_i  +  π_i R̄_i            D̄_i, R̄_i the batch means of r_n and k_n
/// PerExample   π_i = B_i/N           (the VAE's own weighting: each k_n counted once, like r_n)
/// Uniform      π_i = 1/M             (Blundell et al. 2015, §3.4: "π_i = 1/M")
/// Blundell     π_i = 2^(M−i)/(2^M − 1)                  (Blundell et al. 2015, eq. 9)
/// ```
///
/// so Σ_i π_i = 1 in every scheme: the epoch's total KL weight is 1. The trainer minimises the
/// batch-mean loss D̄_i + β_i R̄_i, that is the line above times N/B_i, so the scheme enters as a
/// factor on β (see [`KlBatchWeights::beta_factor`]):
///
/// ```text
/// β_i = β · π_i · N / B_i         PerExample: 1;  Uniform: N/(M B_i) (= 1 when B divides N)
/// ```
///
/// With equal batches Uniform *is* PerExample. Blundell's weights put half of the epoch's KL on
/// the first batch: β₁ = β M/2 (B | N), halving with every batch, below β after about log₂ M
/// batches and ≈ 0 for the rest of the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlBatchWeights {
    /// Each batch's loss is its batch mean of r_n + β k_n (the default; exact for a VAE).
    #[default]
    PerExample,
    /// π_i = 1/M.
    Uniform,
    /// π_i = 2^(M−i)/(2^M − 1).
    Blundell,
}

impl KlBatchWeights {
    /// Every scheme, in the order the lesson compares them.
    pub const ALL: [KlBatchWeights; 3] =
        [KlBatchWeights::PerExample, KlBatchWeights::Uniform, KlBatchWeights::Blundell];

    /// A short name: `per-example`, `uniform 1/M`, `Blundell 2^(M−i)/(2^M−1)`.
    pub fn label(&self) -> &'static str {
        match self {
            KlBatchWeights::PerExample => "per-example (B_i/N)",
            KlBatchWeights::Uniform => "uniform 1/M",
            KlBatchWeights::Blundell => "Blundell 2^(M−i)/(2^M−1)",
        }
    }

    /// π_i, i = 1..M, for an epoch of `n` rows cut into batches of `batch_size` (the last one
    /// keeps the remainder, as the trainer does). Sums to 1 (see [`uniform_coefficients`] for the
    /// rounding).
    ///
    /// # Errors
    /// `n` or `batch_size` of 0.
    ///
    /// ```
    /// use vaelab::engine::vae::KlBatchWeights;
    /// // 10 rows in batches of 4: B = 4, 4, 2.
    /// assert_eq!(KlBatchWeights::PerExample.coefficients(10, 4).unwrap(), vec![0.4, 0.4, 0.2]);
    /// assert_eq!(KlBatchWeights::Blundell.coefficients(10, 4).unwrap(), vec![4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0]);
    /// ```
    pub fn coefficients(&self, n: usize, batch_size: usize) -> Result<Vec<f64>> {
        let m = batches_per_epoch(n, batch_size)?;
        Ok((1..=m).map(|i| self.coefficient(i, n, batch_size)).collect())
    }

    /// π_i for batch i (1-based) of an epoch of `n` rows in batches of `batch_size`.
    ///
    /// **Panics** if `n` or `batch_size` is 0 or i is not in 1..=M (programmer errors; the trainer
    /// has validated both).
    #[track_caller]
    pub fn coefficient(&self, i: usize, n: usize, batch_size: usize) -> f64 {
        assert!(n > 0 && batch_size > 0, "KlBatchWeights::coefficient: n = {n}, batch_size = {batch_size}");
        let m = n.div_ceil(batch_size);
        assert!((1..=m).contains(&i), "KlBatchWeights::coefficient: batch {i} of {m}");
        match self {
            KlBatchWeights::PerExample => batch_rows(i, n, batch_size) as f64 / n as f64,
            KlBatchWeights::Uniform => 1.0 / m as f64,
            KlBatchWeights::Blundell => blundell_coefficient(i, m),
        }
    }

    /// The factor on β for batch i: β_i = β · π_i · N / B_i (1 for `PerExample`).
    ///
    /// **Panics** as [`KlBatchWeights::coefficient`].
    #[track_caller]
    pub fn beta_factor(&self, i: usize, n: usize, batch_size: usize) -> f64 {
        match self {
            KlBatchWeights::PerExample => 1.0,
            _ => self.coefficient(i, n, batch_size) * n as f64 / batch_rows(i, n, batch_size) as f64,
        }
    }
}

/// M = ⌈N/B⌉, the batches of one epoch.
///
/// # Errors
/// `n` or `batch_size` of 0.
pub fn batches_per_epoch(n: usize, batch_size: usize) -> Result<usize> {
    if n == 0 {
        return Err(Error::invalid("n", 0, "an epoch needs at least one row"));
    }
    if batch_size == 0 {
        return Err(Error::invalid("batch_size", 0, "must be >= 1"));
    }
    Ok(n.div_ceil(batch_size))
}

/// B_i, the rows of batch i (1-based): `batch_size`, and the remainder for the last.
fn batch_rows(i: usize, n: usize, batch_size: usize) -> usize {
    batch_size.min(n - (i - 1) * batch_size)
}

/// The uniform coefficients π_i = 1/M, i = 1..M (Blundell et al. 2015, §3.4).
///
/// Each is 1/M rounded once; their sum is 1 to within M·2⁻⁵³ + rounding of the M − 1 additions,
/// so |Σ π_i − 1| ≤ (M + 1) ε_f64 (ε = 2⁻⁵²) — the tolerance the tests use.
///
/// # Errors
/// `m` of 0.
///
/// ```
/// let pi = vaelab::engine::vae::uniform_coefficients(4).unwrap();
/// assert_eq!(pi, vec![0.25; 4]);
/// ```
pub fn uniform_coefficients(m: usize) -> Result<Vec<f64>> {
    check_batches(m)?;
    Ok(vec![1.0 / m as f64; m])
}

/// Blundell et al.'s coefficients π_i = 2^(M−i)/(2^M − 1), i = 1..M (2015, eq. 9).
///
/// ```text
/// π_i = 2^(M−i) / (2^M − 1) = 2^(−i) / (1 − 2^(−M))       Σ_{i=1}^{M} 2^(−i) = 1 − 2^(−M)
/// ```
/// Computed in the second form: the first overflows f64 (2^M = ∞ for M ≥ 1024, giving ∞/∞ = NaN),
/// the second never does. 2^(−i) is exact (a power of two) while it is a normal number
/// (i ≤ 1022), and dividing two powers of two by the same denominator keeps their ratio, so
/// π_{i+1}/π_i is exactly ½ in that range. Past i ≈ 1074, 2^(−i) underflows to 0: those batches
/// get no KL at all, which is what the formula gives to 300 significant digits anyway.
///
/// # Errors
/// `m` of 0.
///
/// ```
/// let pi = vaelab::engine::vae::blundell_coefficients(3).unwrap();
/// assert_eq!(pi, vec![4.0 / 7.0, 2.0 / 7.0, 1.0 / 7.0]);
/// // M = 5000: 2^M would overflow; the weights still sum to 1.
/// let big = vaelab::engine::vae::blundell_coefficients(5000).unwrap();
/// assert!((big.iter().sum::<f64>() - 1.0).abs() < 1e-15);
/// ```
pub fn blundell_coefficients(m: usize) -> Result<Vec<f64>> {
    check_batches(m)?;
    Ok((1..=m).map(|i| blundell_coefficient(i, m)).collect())
}

/// π_i of [`blundell_coefficients`] for one i in 1..=M, in O(1).
fn blundell_coefficient(i: usize, m: usize) -> f64 {
    let pow_half = |k: usize| 0.5f64.powi(k.min(i32::MAX as usize) as i32); // 2^(−k), exact or 0
    pow_half(i) / (1.0 - pow_half(m))
}

fn check_batches(m: usize) -> Result<()> {
    if m == 0 {
        return Err(Error::invalid("m", 0, "an epoch has at least one batch"));
    }
    Ok(())
}

#[cfg(test)]
mod kl_batch_weight_tests {
    use super::*;

    /// |Σ π_i − 1| ≤ (M + 1) ε: each π_i is rounded once (relative error ≤ ε/2) and the M − 1
    /// additions of positive terms add at most (M − 1) ε/2 relative each (Higham 2002, §4.2).
    fn assert_sums_to_one(pi: &[f64]) {
        let m = pi.len() as f64;
        let sum: f64 = pi.iter().sum();
        assert!((sum - 1.0).abs() <= (m + 1.0) * f64::EPSILON, "M = {m}: Σ π_i = {sum:e}");
        assert!(pi.iter().all(|p| p.is_finite() && *p >= 0.0));
    }

    #[test]
    fn uniform_and_blundell_coefficients_sum_to_one() {
        for m in [1, 2, 3, 7, 10, 49, 63, 100, 1000, 1023, 1024, 1100, 5000, 100_000] {
            let u = uniform_coefficients(m).unwrap();
            assert_eq!(u.len(), m);
            assert_sums_to_one(&u);
            let b = blundell_coefficients(m).unwrap();
            assert_eq!(b.len(), m);
            assert_sums_to_one(&b);
        }
        // Through the trainer's entry point, with a short last batch (N = 1000, B = 64: 15 × 64 + 40).
        for w in KlBatchWeights::ALL {
            let pi = w.coefficients(1000, 64).unwrap();
            assert_eq!(pi.len(), 16);
            assert_sums_to_one(&pi);
            // Epoch total KL weight in the text's normalisation: Σ_i (B_i/N) β_i = Σ_i π_i = 1.
            let total: f64 =
                (1..=16).map(|i| w.beta_factor(i, 1000, 64) * batch_rows(i, 1000, 64) as f64 / 1000.0).sum();
            assert!((total - 1.0).abs() <= 20.0 * f64::EPSILON, "{w:?}: {total}");
        }
        assert!(uniform_coefficients(0).is_err());
        assert!(blundell_coefficients(0).is_err());
        assert!(KlBatchWeights::Uniform.coefficients(0, 4).is_err());
        assert!(KlBatchWeights::Uniform.coefficients(4, 0).is_err());
    }

    #[test]
    fn blundell_coefficients_are_geometric_with_ratio_one_half() {
        // Exact: 2^(−i) is a power of two and both neighbours share the denominator (see the doc).
        for m in [2, 3, 60, 1000, 1022, 5000] {
            let b = blundell_coefficients(m).unwrap();
            for i in 0..(m - 1).min(1000) {
                assert_eq!(b[i + 1] / b[i], 0.5, "M = {m}, i = {}", i + 1);
            }
        }
        // The closed form 2^(M−i)/(2^M − 1) by hand for M = 4: 8/15, 4/15, 2/15, 1/15.
        let b = blundell_coefficients(4).unwrap();
        for (p, num) in b.iter().zip([8.0, 4.0, 2.0, 1.0]) {
            assert!((p - num / 15.0).abs() <= f64::EPSILON * p);
        }
        // For M ≤ 60 the naive formula is representable: both forms agree to a few ulps.
        for m in [5usize, 30, 60] {
            for (i, p) in blundell_coefficients(m).unwrap().iter().enumerate() {
                let naive = 2f64.powi((m - i - 1) as i32) / (2f64.powi(m as i32) - 1.0);
                assert!(
                    (p - naive).abs() <= 4.0 * f64::EPSILON * naive,
                    "M = {m}, i = {}: {p} vs {naive}",
                    i + 1
                );
            }
        }
        // The naive form overflows where ours does not.
        assert!((2f64.powi(1100) / (2f64.powi(1100) - 1.0)).is_nan());
    }

    #[test]
    fn beta_factors_by_hand() {
        // N = 8, B = 4: M = 2. Uniform: π = ½, β_i = ½ · 8/4 = 1. Blundell: π = 2/3, 1/3 → β = 4/3, 2/3.
        assert_eq!(KlBatchWeights::PerExample.beta_factor(2, 8, 4), 1.0);
        assert_eq!(KlBatchWeights::Uniform.beta_factor(1, 8, 4), 1.0);
        assert!((KlBatchWeights::Blundell.beta_factor(1, 8, 4) - 4.0 / 3.0).abs() < 1e-15);
        assert!((KlBatchWeights::Blundell.beta_factor(2, 8, 4) - 2.0 / 3.0).abs() < 1e-15);
        // N = 10, B = 4 (4, 4, 2): Uniform β_3 = (1/3) · 10/2.
        assert!((KlBatchWeights::Uniform.beta_factor(3, 10, 4) - 5.0 / 3.0).abs() < 1e-15);
    }
}
