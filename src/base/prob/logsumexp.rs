//! Log-sum-exp and log-mean-exp, stable for inputs of any magnitude.

use ndarray::{Array1, ArrayView1, ArrayView2, Axis, NdFloat};

use super::c;

/// log Σᵢ exp(aᵢ) along `axis`, shifted by the maximum so that nothing overflows.
///
/// ```text
/// log Σᵢ exp(aᵢ) = m + log Σᵢ exp(aᵢ − m),   m = maxᵢ aᵢ
/// ```
/// Edge cases: a lane that is all −∞ (every weight is zero) gives −∞, an empty lane gives −∞
/// (log of an empty sum), a lane containing +∞ gives +∞, and a NaN in a lane gives NaN (the input
/// was already broken; it is not hidden).
///
/// # Shapes
/// `a`: N × K. `axis = Axis(1)` reduces the K columns and returns N (one value per row, e.g. per
/// data point over its K importance samples); `Axis(0)` returns K.
///
/// ```
/// use vaelab::ndarray::{array, Axis};
/// use vaelab::base::prob::log_sum_exp;
/// let v = log_sum_exp(array![[1e4, 1e4], [-1e4, f64::NEG_INFINITY]].view(), Axis(1));
/// assert!((v[0] - (1e4 + 2f64.ln())).abs() < 1e-9);
/// assert_eq!(v[1], -1e4);
/// ```
pub fn log_sum_exp<F: NdFloat>(a: ArrayView2<F>, axis: Axis) -> Array1<F> {
    a.map_axis(axis, log_sum_exp_1d)
}

/// [`log_sum_exp`] of one lane.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::log_sum_exp_1d;
/// assert_eq!(log_sum_exp_1d(array![f64::NEG_INFINITY, f64::NEG_INFINITY].view()), f64::NEG_INFINITY);
/// ```
pub fn log_sum_exp_1d<F: NdFloat>(a: ArrayView1<F>) -> F {
    let mut m = F::neg_infinity();
    for &v in a {
        if v.is_nan() {
            return v;
        }
        m = m.max(v);
    }
    if !m.is_finite() {
        return m; // all −∞ (or empty) → −∞; any +∞ → +∞
    }
    m + a.iter().fold(F::zero(), |s, &v| s + (v - m).exp()).ln()
}

/// log (1/n) Σᵢ exp(aᵢ) along `axis`: [`log_sum_exp`] − log n.
///
/// ```text
/// log (1/n) Σᵢ exp(aᵢ) = log Σᵢ exp(aᵢ) − log n
/// ```
/// The IWAE bound's inner term with aₖ = log wₖ (Burda et al. 2016, eq. 8).
///
/// # Shapes
/// `a`: N × K; returns N for `Axis(1)`, K for `Axis(0)`.
///
/// **Panics** if the reduced axis is empty (a mean of nothing).
///
/// ```
/// use vaelab::ndarray::{array, Axis};
/// use vaelab::base::prob::log_mean_exp;
/// let v = log_mean_exp(array![[0.0, 2f64.ln()]].view(), Axis(1)); // log ((1 + 2) / 2)
/// assert!((v[0] - 1.5f64.ln()).abs() < 1e-15);
/// ```
#[track_caller]
pub fn log_mean_exp<F: NdFloat>(a: ArrayView2<F>, axis: Axis) -> Array1<F> {
    let n = a.len_of(axis);
    assert!(n > 0, "log_mean_exp: axis {} of shape {:?} is empty", axis.index(), a.shape());
    let log_n: F = c((n as f64).ln());
    log_sum_exp(a, axis).mapv(|v| v - log_n)
}

/// [`log_mean_exp`] of one lane.
///
/// **Panics** if `a` is empty.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::log_mean_exp_1d;
/// assert!((log_mean_exp_1d(array![-1e4_f64, -1e4].view()) - (-1e4)).abs() < 1e-9);
/// ```
#[track_caller]
pub fn log_mean_exp_1d<F: NdFloat>(a: ArrayView1<F>) -> F {
    assert!(!a.is_empty(), "log_mean_exp_1d: empty input");
    log_sum_exp_1d(a) - c((a.len() as f64).ln())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn finite_at_plus_minus_ten_thousand() {
        let a: ndarray::Array2<f64> = array![[1e4, 1e4 - 2f64.ln()], [-1e4, -1e4], [-1e4, 1e4]];
        let lse = log_sum_exp(a.view(), Axis(1));
        // log(e^{1e4} (1 + ½)) = 1e4 + log 1.5; log(2 e^{−1e4}) = −1e4 + log 2; e^{−2e4} vanishes beside 1.
        let expected = [1e4 + 1.5f64.ln(), -1e4 + 2f64.ln(), 1e4];
        for i in 0..3 {
            assert!((lse[i] - expected[i]).abs() < 1e-9, "row {i}: {} vs {}", lse[i], expected[i]);
        }
        let lme = log_mean_exp(a.view(), Axis(1));
        assert!((lme[1] - (-1e4)).abs() < 1e-9);
        // f32 also stays finite.
        let a32 = a.mapv(|v| v as f32);
        assert!(log_sum_exp(a32.view(), Axis(1)).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn infinities_and_nan_are_handled_not_hidden() {
        let ninf = f64::NEG_INFINITY;
        let a = array![[ninf, ninf], [ninf, 3.0], [f64::INFINITY, 1.0], [f64::NAN, 1.0]];
        let lse = log_sum_exp(a.view(), Axis(1));
        assert_eq!(lse[0], ninf);
        assert_eq!(lse[1], 3.0);
        assert_eq!(lse[2], f64::INFINITY);
        assert!(lse[3].is_nan());
        assert_eq!(log_mean_exp(a.view(), Axis(1))[0], ninf);
    }

    #[test]
    fn agrees_with_the_naive_formula_in_safe_range_and_along_axis_0() {
        let a: ndarray::Array2<f64> = array![[0.1, -2.0, 1.5], [3.0, 0.0, -0.5]];
        let lse0 = log_sum_exp(a.view(), Axis(0));
        for j in 0..3 {
            let naive = (a[[0, j]].exp() + a[[1, j]].exp()).ln();
            assert!((lse0[j] - naive).abs() < 1e-14);
        }
        let lme1 = log_mean_exp(a.view(), Axis(1));
        let naive = ((0.1f64.exp() + (-2f64).exp() + 1.5f64.exp()) / 3.0).ln();
        assert!((lme1[0] - naive).abs() < 1e-14);
    }
}
