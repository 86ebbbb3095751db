//! Element-wise activations and their derivatives, each written from the activation's OUTPUT.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, NdFloat, Zip};
use serde::{Deserialize, Serialize};

/// An element-wise non-linearity a = φ(u) applied to a pre-activation u.
///
/// ```text
/// ReLU      φ(u) = max(u, 0)             φ'(u) = 1[a > 0]
/// tanh      φ(u) = tanh u                φ'(u) = 1 − a²
/// softplus  φ(u) = log(1 + eᵘ)           φ'(u) = σ(u) = 1 − e^(−a)
/// sigmoid   φ(u) = σ(u) = 1/(1 + e^(−u))  φ'(u) = a (1 − a)
/// ```
/// Every derivative is written as a function of the output a = φ(u), so backward needs only the
/// activation (which the next layer keeps anyway) and the forward pass can run in place.
///
/// Softplus is computed stably as `max(u, 0) + log1p(e^(−|u|))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(u, 0).
    #[default]
    Relu,
    /// tanh u.
    Tanh,
    /// log(1 + eᵘ).
    Softplus,
    /// 1/(1 + e^(−u)).
    Sigmoid,
}

/// What [`Activation::backward`] needs: the activation's output a = φ(u).
#[derive(Clone, Debug)]
pub struct ActivationCache<F> {
    /// a = φ(u), `B × H`.
    pub output: Array2<F>,
}

impl Activation {
    /// a = φ(u) for one element.
    #[inline]
    pub fn apply<F: NdFloat>(self, u: F) -> F {
        match self {
            Activation::Relu => u.max(F::zero()),
            Activation::Tanh => u.tanh(),
            Activation::Softplus => u.max(F::zero()) + (-u.abs()).exp().ln_1p(),
            Activation::Sigmoid => {
                let t = (-u.abs()).exp();
                if u >= F::zero() { F::one() / (F::one() + t) } else { t / (F::one() + t) }
            }
        }
    }

    /// φ'(u) written through the output a = φ(u) (see the table on [`Activation`]).
    #[inline]
    pub fn derivative_from_output<F: NdFloat>(self, a: F) -> F {
        match self {
            Activation::Relu => {
                if a > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Activation::Tanh => F::one() - a * a,
            Activation::Softplus => F::one() - (-a).exp(),
            Activation::Sigmoid => a * (F::one() - a),
        }
    }

    /// In place: u ← φ(u).
    ///
    /// # Shapes
    /// `u`: any `B × H`.
    pub fn forward_in_place<F: NdFloat>(self, mut u: ArrayViewMut2<F>) {
        match self {
            Activation::Relu => u.mapv_inplace(|v| v.max(F::zero())),
            _ => u.mapv_inplace(|v| self.apply(v)),
        }
    }

    /// In place: d ← d ⊙ φ'(u), with φ' computed from the output a (chain rule through φ).
    ///
    /// # Shapes
    /// `output`, `d`: `B × H`.
    #[track_caller]
    pub fn backward_in_place<F: NdFloat>(self, output: ArrayView2<F>, d: ArrayViewMut2<F>) {
        assert_eq!(
            output.dim(),
            d.dim(),
            "activation backward: output {:?} vs d {:?}",
            output.dim(),
            d.dim()
        );
        match self {
            // A select rather than a branch: vectorised, and no mispredictions on ~50% zeros.
            Activation::Relu => {
                Zip::from(d).and(output).for_each(|d, &a| *d = if a > F::zero() { *d } else { F::zero() })
            }
            _ => Zip::from(d).and(output).for_each(|d, &a| *d *= self.derivative_from_output(a)),
        }
    }

    /// a = φ(u) and the cache backward needs.
    ///
    /// # Shapes
    /// `u`: `B × H` → a: `B × H`.
    pub fn forward<F: NdFloat>(self, u: ArrayView2<F>) -> (Array2<F>, ActivationCache<F>) {
        let mut a = u.to_owned();
        self.forward_in_place(a.view_mut());
        (a.clone(), ActivationCache { output: a })
    }

    /// d_u = d_a ⊙ φ'(u).
    ///
    /// # Shapes
    /// `d_a`: `B × H` → d_u: `B × H`.
    #[track_caller]
    pub fn backward<F: NdFloat>(self, cache: ActivationCache<F>, d_a: ArrayView2<F>) -> Array2<F> {
        let mut d = d_a.to_owned();
        self.backward_in_place(cache.output.view(), d.view_mut());
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::nn::gradcheck::{assert_grad_close, central_difference};
    use ndarray::array;

    #[test]
    fn every_activation_matches_finite_differences() {
        // Points away from ReLU's kink at 0, where the derivative is undefined.
        let u = array![[-2.3, -0.7, 0.4], [1.9, -0.05, 3.2]];
        // L = Σ w ⊙ φ(u) with fixed weights w, so ∂L/∂u = w ⊙ φ'(u).
        let w = array![[0.3, -1.1, 0.8], [0.5, 2.0, -0.4]];
        for act in [Activation::Relu, Activation::Tanh, Activation::Softplus, Activation::Sigmoid] {
            let (_, cache) = act.forward(u.view());
            let exact = act.backward(cache, w.view());
            let approx = central_difference(&u, |u| (act.forward(u.view()).0 * &w).sum());
            // Analytic: ∂L/∂u = w ⊙ φ'(u), φ' from the output (table on `Activation`).
            assert_grad_close(&format!("{act:?}"), exact.view().into_dyn(), approx.view().into_dyn(), 1e-7);
        }
    }

    #[test]
    fn values_at_known_points() {
        // By hand: softplus(0) = log 2, σ(0) = 1/2, tanh(0) = 0, ReLU(−1) = 0.
        assert!((Activation::Softplus.apply(0.0_f64) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(Activation::Sigmoid.apply(0.0_f64), 0.5);
        assert_eq!(Activation::Tanh.apply(0.0_f64), 0.0);
        assert_eq!(Activation::Relu.apply(-1.0_f64), 0.0);
        // Stability: softplus(800) = 800 (no overflow), σ(−800) = e^(−800) underflows to 0, not NaN.
        assert_eq!(Activation::Softplus.apply(800.0_f64), 800.0);
        assert_eq!(Activation::Sigmoid.apply(-800.0_f64), 0.0);
    }
}
