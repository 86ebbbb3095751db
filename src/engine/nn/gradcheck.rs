//! Finite-difference gradient checks in `f64` (used by the tests and by notebook 04).
//!
//! ```text
//! central difference   ∂f/∂θᵢ ≈ (f(θ + h eᵢ) − f(θ − h eᵢ)) / (2h),   h = ε^(1/3) ≈ 6·10⁻⁶
//! relative error       r = ‖g_exact − g_approx‖∞ / max(‖g_exact‖∞, ‖g_approx‖∞)
//! ```
//! with ε = 2.2·10⁻¹⁶ the f64 machine epsilon: h ≈ ε^(1/3) balances the truncation error
//! h²|f'''|/6 against the rounding error ε|f|/h, both ≈ 10⁻¹¹ for O(1) functions, so a correct
//! gradient shows r ≈ 10⁻⁹…10⁻⁷ and a wrong one r ≈ 10⁻² or worse.

use ndarray::{Array, ArrayViewD, Dimension};

use super::Parameters;

/// The finite-difference step h ≈ ε^(1/3) for f64.
pub const STEP: f64 = 6e-6;

/// Central-difference gradient of `f` at `x` (one pair of evaluations per element).
///
/// # Shapes
/// `x`: any shape → the gradient, same shape.
pub fn central_difference<D: Dimension>(
    x: &Array<f64, D>,
    mut f: impl FnMut(&Array<f64, D>) -> f64,
) -> Array<f64, D> {
    // Work on a standard-layout copy so that element j of the flat slice is element j of `grad`.
    let mut probe = x.as_standard_layout().into_owned();
    let mut grad = Array::zeros(x.raw_dim());
    let grad_flat = grad.as_slice_mut().expect("fresh array is contiguous");
    for (j, g) in grad_flat.iter_mut().enumerate() {
        let x0 = probe.as_slice().expect("standard layout")[j];
        probe.as_slice_mut().expect("standard layout")[j] = x0 + STEP;
        let plus = f(&probe);
        probe.as_slice_mut().expect("standard layout")[j] = x0 - STEP;
        let minus = f(&probe);
        probe.as_slice_mut().expect("standard layout")[j] = x0;
        *g = (plus - minus) / (2.0 * STEP);
    }
    grad
}

/// Central-difference gradient of `loss` with respect to tensor `i` of `params` (all other
/// tensors fixed), flat in the tensor's memory order.
pub fn parameter_difference<P: Parameters<f64>>(
    params: &mut P,
    i: usize,
    mut loss: impl FnMut(&P) -> f64,
) -> Vec<f64> {
    let n = params.tensor(i).len();
    let mut grad = vec![0.0; n];
    for (j, g) in grad.iter_mut().enumerate() {
        let x0 = params.tensor(i)[j];
        params.tensor_mut(i)[j] = x0 + STEP;
        let plus = loss(params);
        params.tensor_mut(i)[j] = x0 - STEP;
        let minus = loss(params);
        params.tensor_mut(i)[j] = x0;
        *g = (plus - minus) / (2.0 * STEP);
    }
    grad
}

/// How far an analytic gradient is from its finite-difference estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GradComparison {
    /// max |exact − approx|.
    pub max_abs_diff: f64,
    /// ‖exact − approx‖∞ / max(‖exact‖∞, ‖approx‖∞) (0 when both are 0).
    pub relative_error: f64,
}

impl std::fmt::Display for GradComparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "maxdiff {:.3e}, relative error {:.3e}", self.max_abs_diff, self.relative_error)
    }
}

/// Compares two gradients element by element.
///
/// # Panics
/// If the lengths differ.
#[track_caller]
pub fn compare(exact: &[f64], approx: &[f64]) -> GradComparison {
    assert_eq!(
        exact.len(),
        approx.len(),
        "compare: exact has {} elements, approx {}",
        exact.len(),
        approx.len()
    );
    let max_abs_diff = exact.iter().zip(approx).map(|(e, a)| (e - a).abs()).fold(0.0, f64::max);
    let scale = exact.iter().chain(approx).map(|v| v.abs()).fold(0.0, f64::max);
    let relative_error = if scale == 0.0 { 0.0 } else { max_abs_diff / scale };
    GradComparison { max_abs_diff, relative_error }
}

/// Panics, printing exact / approx / maxdiff, unless the relative error is ≤ `tol`.
#[track_caller]
pub fn assert_grad_close(name: &str, exact: ArrayViewD<f64>, approx: ArrayViewD<f64>, tol: f64) {
    assert_eq!(
        exact.shape(),
        approx.shape(),
        "{name}: exact {:?} vs approx {:?}",
        exact.shape(),
        approx.shape()
    );
    let e: Vec<f64> = exact.iter().copied().collect();
    let a: Vec<f64> = approx.iter().copied().collect();
    assert_slices_close(name, &e, &a, tol);
}

/// [`assert_grad_close`] for flat slices.
#[track_caller]
pub fn assert_slices_close(name: &str, exact: &[f64], approx: &[f64], tol: f64) {
    let c = compare(exact, approx);
    let show = |v: &[f64]| v.iter().take(6).map(|x| format!("{x:.6e}")).collect::<Vec<_>>().join(", ");
    assert!(
        c.relative_error <= tol && c.relative_error.is_finite(),
        "{name}: {c} > tolerance {tol:e}\n  exact  [{} ...]\n  approx [{} ...]",
        show(exact),
        show(approx)
    );
}
