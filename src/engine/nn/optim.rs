//! Optimisers: SGD and Adam (torch.optim semantics), each one fused pass per tensor.

use ndarray::NdFloat;
use serde::{Deserialize, Serialize};

use super::{Parameters, cast};
use crate::base::error::{Error, Result};

/// Which optimiser, with its hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum OptimizerConfig {
    /// Plain gradient descent, θ ← θ − η g.
    Sgd {
        /// Learning rate η.
        lr: f64,
    },
    /// Adam (Kingma & Ba 2015, Algorithm 1), exactly `torch.optim.Adam`'s update.
    Adam(AdamConfig),
}

/// Adam's hyper-parameters; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate η (1e-3).
    pub lr: f64,
    /// Decay of the first moment β₁ (0.9).
    pub beta1: f64,
    /// Decay of the second moment β₂ (0.999).
    pub beta2: f64,
    /// ϵ added to the denominator (1e-8).
    pub eps: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 }
    }
}

impl OptimizerConfig {
    /// Adam with PyTorch's defaults and learning rate `lr`.
    pub fn adam(lr: f64) -> Self {
        OptimizerConfig::Adam(AdamConfig { lr, ..AdamConfig::default() })
    }

    /// Checks every hyper-parameter.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field (`lr`, `beta1`, `beta2`, `eps`).
    pub fn validate(&self) -> Result<()> {
        let lr = match self {
            OptimizerConfig::Sgd { lr } => *lr,
            OptimizerConfig::Adam(a) => {
                for (name, b) in [("beta1", a.beta1), ("beta2", a.beta2)] {
                    if !(0.0..1.0).contains(&b) {
                        return Err(Error::invalid(name, b, "must be in [0, 1)"));
                    }
                }
                crate::base::error::ensure_positive("eps", a.eps)?;
                a.lr
            }
        };
        crate::base::error::ensure_positive("lr", lr)
    }
}

/// x, or 0 when |x| is below the smallest normal number of `F`: Adam's moments are flushed
/// there. A weight whose gradient stays 0 (a dead ReLU unit, an input that is never on) has its
/// first moment shrink by β₁ = 0.9 a step, into the subnormal range after ~800 steps, where every
/// operation on it takes a slow microcode path on x86 (measured: the training step at half speed
/// after 750 steps). The flushed value (|m| < 1.2e-38 in `f32`) moves θ by η·m/(√v̂ + ϵ) < 1e-31,
/// below the rounding of any θ with |θ| > 1e-24, so θ is unchanged by the flush in practice.
#[inline(always)]
pub(crate) fn flush_subnormal<F: NdFloat>(x: F) -> F {
    if x.abs() < F::min_positive_value() { F::zero() } else { x }
}

/// Stochastic gradient descent.
///
/// ```text
/// θ ← θ − η g
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate η.
    pub lr: f64,
}

/// Adam with its saved state.
///
/// ```text
/// t ← t + 1
/// m ← β₁ m + (1 − β₁) g                       first moment
/// v ← β₂ v + (1 − β₂) g²                      second moment
/// θ ← θ − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ϵ)
/// ```
/// the last line is torch.optim.Adam's arrangement of θ ← θ − η m̂/(√v̂ + ϵ) with
/// m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ) (Kingma & Ba 2015, Algorithm 1). m and v start at 0; a moment below the smallest normal number is stored as 0 (`flush_subnormal`).
#[derive(Clone, Debug, PartialEq)]
pub struct Adam<F> {
    /// Hyper-parameters.
    pub config: AdamConfig,
    /// Steps taken, t.
    pub step: u64,
    /// First moments, one vector per parameter tensor.
    pub m: Vec<Vec<F>>,
    /// Second moments, one vector per parameter tensor.
    pub v: Vec<Vec<F>>,
}

/// An optimiser and its state.
#[derive(Clone, Debug, PartialEq)]
pub enum Optimizer<F> {
    /// See [`Sgd`].
    Sgd(Sgd),
    /// See [`Adam`].
    Adam(Adam<F>),
}

impl<F: NdFloat> Optimizer<F> {
    /// A fresh optimiser for `params` (Adam's moments at zero, t = 0).
    ///
    /// # Errors
    /// `InvalidParameter` if a hyper-parameter is out of range.
    pub fn new<P: Parameters<F>>(config: OptimizerConfig, params: &P) -> Result<Self> {
        config.validate()?;
        Ok(match config {
            OptimizerConfig::Sgd { lr } => Optimizer::Sgd(Sgd { lr }),
            OptimizerConfig::Adam(config) => {
                let zeros: Vec<Vec<F>> =
                    (0..params.tensor_count()).map(|i| vec![F::zero(); params.tensor(i).len()]).collect();
                Optimizer::Adam(Adam { config, step: 0, m: zeros.clone(), v: zeros })
            }
        })
    }

    /// The configuration this optimiser was built from.
    pub fn config(&self) -> OptimizerConfig {
        match self {
            Optimizer::Sgd(s) => OptimizerConfig::Sgd { lr: s.lr },
            Optimizer::Adam(a) => OptimizerConfig::Adam(a.config),
        }
    }

    /// The first NaN or infinity in the optimiser's state: `(moment, tensor index, element index,
    /// value)` with moment `adam_m` or `adam_v` (SGD has no state). An infinite second moment
    /// would silently freeze its weight (the update m/√v is 0), so training checks this too.
    pub fn first_non_finite(&self) -> Option<(&'static str, usize, usize, F)> {
        let Optimizer::Adam(a) = self else { return None };
        [("adam_m", &a.m), ("adam_v", &a.v)].into_iter().find_map(|(name, moments)| {
            moments
                .iter()
                .enumerate()
                .find_map(|(i, t)| super::params::first_non_finite(t).map(|(j, v)| (name, i, j, v)))
        })
    }

    /// Applies one update from `grads` to `params`, then sets `grads` to zero, in the same pass
    /// (so the next backward can accumulate into it without a separate zeroing pass).
    ///
    /// # Panics
    /// If `params`, `grads` and the optimiser state do not have the same tensors.
    #[track_caller]
    pub fn step<P: Parameters<F>>(&mut self, params: &mut P, grads: &mut P) {
        self.step_checked(params, grads);
    }

    /// [`Optimizer::step`], returning whether every parameter and every moment it wrote is
    /// finite: the same check as `params.first_non_finite()` and
    /// [`Optimizer::first_non_finite`] both `None`, made on the values as they are written
    /// instead of in two more passes over the memory (call those only when this is `false`, to
    /// name the element).
    ///
    /// # Panics
    /// As [`Optimizer::step`].
    #[track_caller]
    pub fn step_checked<P: Parameters<F>>(&mut self, params: &mut P, grads: &mut P) -> bool {
        let mut finite = true;
        assert_eq!(
            params.tensor_count(),
            grads.tensor_count(),
            "optimizer step: params vs grads tensor count"
        );
        match self {
            Optimizer::Sgd(s) => {
                let lr: F = cast(s.lr);
                for i in 0..params.tensor_count() {
                    let (p, g) = (params.tensor_mut(i), grads.tensor_mut(i));
                    assert_eq!(
                        p.len(),
                        g.len(),
                        "sgd step: tensor {i} params {} vs grads {}",
                        p.len(),
                        g.len()
                    );
                    for (p, g) in p.iter_mut().zip(g.iter_mut()) {
                        *p -= lr * *g;
                        *g = F::zero();
                        finite &= p.is_finite();
                    }
                }
            }
            Optimizer::Adam(a) => {
                assert_eq!(a.m.len(), params.tensor_count(), "adam step: state vs params tensor count");
                a.step += 1;
                let c = a.config;
                let t = a.step as f64;
                let bias_correction1 = 1.0 - c.beta1.powf(t);
                let bias_correction2 = 1.0 - c.beta2.powf(t);
                let step_size: F = cast(c.lr / bias_correction1);
                let inv_sqrt_bc2: F = cast(1.0 / bias_correction2.sqrt());
                let (b1, b2, eps): (F, F, F) = (cast(c.beta1), cast(c.beta2), cast(c.eps));
                let (one_b1, one_b2) = (F::one() - b1, F::one() - b2);
                let fast = super::simd::AdamStep {
                    b1: c.beta1 as f32,
                    b2: c.beta2 as f32,
                    one_b1: 1.0 - c.beta1 as f32,
                    one_b2: 1.0 - c.beta2 as f32,
                    step_size: (c.lr / bias_correction1) as f32,
                    inv_sqrt_bc2: (1.0 / bias_correction2.sqrt()) as f32,
                    eps: c.eps as f32,
                };
                for i in 0..params.tensor_count() {
                    let (p, g) = (params.tensor_mut(i), grads.tensor_mut(i));
                    let (m, v) = (&mut a.m[i], &mut a.v[i]);
                    if let (Some(p), Some(g), Some(m), Some(v)) = (
                        super::simd::as_f32_mut(p),
                        super::simd::as_f32_mut(&mut *g),
                        super::simd::as_f32_mut(m),
                        super::simd::as_f32_mut(v),
                    ) {
                        // f32: the same update, vectorised (bit-identical to the loop below).
                        finite &= super::simd::adam(fast, p, g, m, v);
                        continue;
                    }
                    assert!(
                        p.len() == g.len() && p.len() == m.len() && p.len() == v.len(),
                        "adam step: tensor {i} params {}, grads {}, m {}, v {}",
                        p.len(),
                        g.len(),
                        m.len(),
                        v.len()
                    );
                    for (((p, g), m), v) in p.iter_mut().zip(g.iter_mut()).zip(m.iter_mut()).zip(v.iter_mut())
                    {
                        let gi = *g;
                        *m = flush_subnormal(b1 * *m + one_b1 * gi);
                        *v = flush_subnormal(b2 * *v + one_b2 * gi * gi);
                        *p -= step_size * *m / (v.sqrt() * inv_sqrt_bc2 + eps);
                        *g = F::zero();
                        finite &= p.is_finite() && m.is_finite() && v.is_finite();
                    }
                }
            }
        }
        finite
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::nn::Linear;
    use ndarray::array;

    fn layer(w: f64, b: f64) -> Linear<f64> {
        Linear { weight: array![[w]], bias: array![b] }
    }

    #[test]
    fn sgd_steps_against_the_gradient_and_zeroes_it() {
        let mut p = layer(1.0, -2.0);
        let mut g = layer(0.5, -1.0);
        let mut opt = Optimizer::new(OptimizerConfig::Sgd { lr: 0.1 }, &p).unwrap();
        opt.step(&mut p, &mut g);
        // By hand: 1 − 0.1·0.5 = 0.95, −2 − 0.1·(−1) = −1.9.
        assert_eq!((p.weight[(0, 0)], p.bias[0]), (0.95, -1.9));
        assert_eq!((g.weight[(0, 0)], g.bias[0]), (0.0, 0.0));
    }

    #[test]
    fn adam_first_steps_by_hand() {
        // Step 1 with gradient g: m = 0.1 g, v = 0.001 g², m̂ = g, v̂ = g², so the step is
        // η g/(|g| + ϵ) = η·sign(g) up to ϵ: θ = 1 − 1e-3 · 0.5/(0.5 + 1e-8).
        let mut p = layer(1.0, 0.0);
        let mut opt = Optimizer::new(OptimizerConfig::adam(1e-3), &p).unwrap();
        opt.step(&mut p, &mut layer(0.5, 0.0));
        let expected1 = 1.0 - 1e-3 * 0.5 / (0.5 + 1e-8);
        assert!((p.weight[(0, 0)] - expected1).abs() < 1e-15, "{} vs {expected1}", p.weight[(0, 0)]);
        // A zero gradient leaves a zero-moment parameter where it was.
        assert_eq!(p.bias[0], 0.0);
        // Step 2 with g = −0.25: m = 0.9·0.05 − 0.1·0.25 = 0.02, v = 0.999·2.5e-4 + 0.001·0.0625
        // = 3.1225e-4; m̂ = 0.02/0.19, v̂ = 3.1225e-4/(1 − 0.999²).
        opt.step(&mut p, &mut layer(-0.25, 0.0));
        let m_hat = 0.02 / (1.0 - 0.9f64.powi(2));
        let v_hat = 3.1225e-4 / (1.0 - 0.999f64.powi(2));
        let expected2 = expected1 - 1e-3 * m_hat / (v_hat.sqrt() + 1e-8);
        assert!((p.weight[(0, 0)] - expected2).abs() < 1e-15, "{} vs {expected2}", p.weight[(0, 0)]);
        let Optimizer::Adam(a) = &opt else { unreachable!() };
        assert_eq!(a.step, 2);
    }

    #[test]
    fn the_checked_step_reports_exactly_what_the_scans_find() {
        // f32 (the vectorised pass, 16 lanes and a tail) and f64 (the plain loop), Adam and SGD:
        // a step that makes any parameter or moment non-finite returns false, one that does not
        // returns true; the scans name the same outcome.
        fn check<F: NdFloat>(config: OptimizerConfig, n: usize, bad_at: Option<usize>, bad: F) {
            let mut p = Linear::<F> {
                weight: ndarray::Array2::from_shape_fn((n, 1), |(i, _)| cast(0.01 * i as f64)),
                bias: ndarray::Array1::zeros(1),
            };
            let mut g = p.clone();
            if let Some(j) = bad_at {
                g.weight[(j, 0)] = bad;
            }
            let mut opt = Optimizer::new(config, &p).unwrap();
            let finite = opt.step_checked(&mut p, &mut g);
            let scans = p.first_non_finite().is_none() && opt.first_non_finite().is_none();
            assert_eq!(finite, scans, "{config:?} n = {n} bad at {bad_at:?}");
            assert_eq!(finite, bad_at.is_none(), "{config:?} n = {n} bad at {bad_at:?}");
        }
        for config in [OptimizerConfig::adam(1e-3), OptimizerConfig::Sgd { lr: 0.1 }] {
            for n in [1, 16, 37] {
                for bad_at in [None, Some(0), Some(n - 1), Some(n / 2)] {
                    check::<f32>(config, n, bad_at, f32::NAN);
                    check::<f32>(config, n, bad_at, f32::INFINITY);
                    check::<f64>(config, n, bad_at, f64::NEG_INFINITY);
                }
            }
            // A finite gradient whose square overflows f32: v = ∞ while θ stays finite (Adam).
            if matches!(config, OptimizerConfig::Adam(_)) {
                check::<f32>(config, 20, Some(7), 1e30);
            }
        }
    }

    #[test]
    fn moments_decaying_to_subnormal_are_stored_as_zero_and_leave_theta_as_without_the_flush() {
        // One step with g = 1e-3 on 37 f32 weights (the vectorised pass), then 1200 with g = 0:
        // m shrinks by 0.9 a step and would turn subnormal near step 800. Against a plain
        // f32 replay of the update (the same constants and order) without any flush: θ the same bits.
        let n = 37;
        let mut p = Linear::<f32> {
            weight: ndarray::Array2::from_elem((n, 1), 0.5),
            bias: ndarray::Array1::zeros(1),
        };
        let mut opt = Optimizer::new(OptimizerConfig::adam(1e-3), &p).unwrap();
        let (mut theta, mut m, mut v) = (0.5f32, 0.0f32, 0.0f32);
        for t in 1..=1200u64 {
            let g = if t == 1 { 1e-3f32 } else { 0.0 };
            let mut grads = Linear::<f32> {
                weight: ndarray::Array2::from_elem((n, 1), g),
                bias: ndarray::Array1::zeros(1),
            };
            assert!(opt.step_checked(&mut p, &mut grads));
            m = 0.9 * m + (1.0 - 0.9f32) * g;
            v = 0.999 * v + (1.0 - 0.999f32) * g * g;
            let (bc1, bc2) = (1.0 - 0.9f64.powf(t as f64), 1.0 - 0.999f64.powf(t as f64));
            let step_size = (1e-3 / bc1) as f32;
            let inv = (1.0 / bc2.sqrt()) as f32;
            theta -= step_size * m / (v.sqrt() * inv + 1e-8);
        }
        let Optimizer::Adam(a) = &opt else { unreachable!() };
        assert!(m != 0.0 && m.abs() < f32::MIN_POSITIVE, "the unflushed m is subnormal: {m:e}");
        assert!(a.m[0].iter().all(|&x| x == 0.0), "stored m flushed to 0: {:e}", a.m[0][0]);
        assert!(a.v[0].iter().all(|&x| x.is_normal()), "v still normal");
        assert!(p.weight.iter().all(|&w| w.to_bits() == theta.to_bits()), "{} vs {theta}", p.weight[(0, 0)]);
    }

    #[test]
    fn bad_hyper_parameters_are_named() {
        let p = layer(0.0, 0.0);
        let e = Optimizer::<f64>::new(OptimizerConfig::Sgd { lr: -1.0 }, &p).unwrap_err();
        assert_eq!(e.to_string(), "invalid lr = -1: must be finite and > 0");
        let bad = OptimizerConfig::Adam(AdamConfig { beta2: 1.0, ..AdamConfig::default() });
        assert!(Optimizer::<f64>::new(bad, &p).unwrap_err().to_string().contains("beta2 = 1"));
    }
}
