//! The Bernoulli likelihood from logits, and the stable scalar functions it is made of.

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut2, Axis, NdFloat, Zip};

/// softplus(l) = log(1 + eᴸ), computed as max(l, 0) + log1p(e^(−|l|)) so that it never overflows.
///
/// ```text
/// softplus(l) = log(1 + eˡ) = max(l, 0) + log(1 + e^(−|l|))
/// ```
///
/// ```
/// use vaelab::base::prob::softplus;
/// assert!((softplus(0.0_f64) - 2f64.ln()).abs() < 1e-15);
/// assert_eq!(softplus(1000.0_f64), 1000.0); // log(1 + e¹⁰⁰⁰) without overflow
/// ```
#[inline]
pub fn softplus<F: NdFloat>(l: F) -> F {
    l.max(F::zero()) + (-l.abs()).exp().ln_1p()
}

/// log σ(l) = −softplus(−l): finite for every finite logit.
///
/// ```text
/// log σ(l) = log (1 / (1 + e^(−l))) = −softplus(−l)
/// ```
///
/// ```
/// use vaelab::base::prob::log_sigmoid;
/// assert!((log_sigmoid(-100.0_f64) - (-100.0)).abs() < 1e-12); // log σ(−100) = −100 − log(1 + e⁻¹⁰⁰)
/// ```
#[inline]
pub fn log_sigmoid<F: NdFloat>(l: F) -> F {
    -softplus(-l)
}

/// σ(l) = 1 / (1 + e^(−l)), evaluated without overflow on either side.
///
/// ```text
/// σ(l) = 1 / (1 + e^(−l))      (l ≥ 0)
///      = eˡ / (1 + eˡ)         (l < 0)
/// ```
///
/// ```
/// use vaelab::base::prob::sigmoid;
/// assert_eq!(sigmoid(0.0_f64), 0.5);
/// assert_eq!(sigmoid(-1000.0_f64), 0.0);
/// ```
#[inline]
pub fn sigmoid<F: NdFloat>(l: F) -> F {
    if l >= F::zero() {
        F::one() / (F::one() + (-l).exp())
    } else {
        let e = l.exp();
        e / (F::one() + e)
    }
}

/// Bernoulli log-likelihood of `x` given logits, summed over the D columns, one value per row.
///
/// ```text
/// log p(x | l) = Σ_d [ x_d log σ(l_d) + (1 − x_d) log(1 − σ(l_d)) ]
///              = Σ_d [ log σ(l_d) − (1 − x_d) l_d ]          using log(1 − σ(l)) = log σ(l) − l
///   with log σ(l) = −softplus(−l)
///
///   x_d ∈ [0, 1]  a pixel (binary, or a grey level as in the "continuous Bernoulli" misuse)
///   l_d           the decoder's logit for pixel d, σ the logistic sigmoid
/// ```
/// Kingma & Welling (2014), Appendix C.1. This is the negative binary cross-entropy, summed (not
/// averaged) over pixels. It stays finite for logits of ±100 and beyond: no log(0) is ever taken.
///
/// # Shapes
/// `x`, `logits`: N × D. Returns N.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::bernoulli_log_likelihood;
/// // σ(0) = ½ for both pixels: 2 log ½.
/// let ll = bernoulli_log_likelihood(array![[1.0, 0.0]].view(), array![[0.0, 0.0]].view());
/// assert!((ll[0] - 2.0 * 0.5f64.ln()).abs() < 1e-15);
/// ```
#[track_caller]
pub fn bernoulli_log_likelihood<F: NdFloat>(x: ArrayView2<F>, logits: ArrayView2<F>) -> Array1<F> {
    assert!(
        x.dim() == logits.dim(),
        "bernoulli_log_likelihood: x {:?} vs logits {:?}",
        x.shape(),
        logits.shape()
    );
    Zip::from(x.rows()).and(logits.rows()).map_collect(|x, l| row_log_likelihood(x, l))
}

fn row_log_likelihood<F: NdFloat>(x: ArrayView1<F>, l: ArrayView1<F>) -> F {
    x.iter().zip(l.iter()).fold(F::zero(), |acc, (&x, &l)| acc + log_sigmoid(l) - (F::one() - x) * l)
}

/// Backward of [`bernoulli_log_likelihood`]: accumulates ∂L/∂logits given `d_ll` = ∂L/∂(log p)ᵢ.
///
/// ```text
/// ∂ log p(x | l) / ∂l_d = x_d − σ(l_d)     ⇒  d_logits += d_ll ⊙ (x − σ(l))
/// ```
///
/// # Shapes
/// `x`, `logits`, `d_logits`: N × D; `d_ll`: N. Gradients are added with `+=`.
///
/// ```
/// use vaelab::ndarray::{array, Array2};
/// use vaelab::base::prob::bernoulli_log_likelihood_backward;
/// let mut d_logits = Array2::zeros((1, 2));
/// bernoulli_log_likelihood_backward(array![[1.0, 0.0]].view(), array![[0.0, 0.0]].view(),
///     array![1.0].view(), d_logits.view_mut());
/// assert_eq!(d_logits, array![[0.5, -0.5]]);
/// ```
#[track_caller]
pub fn bernoulli_log_likelihood_backward<F: NdFloat>(
    x: ArrayView2<F>,
    logits: ArrayView2<F>,
    d_ll: ArrayView1<F>,
    mut d_logits: ArrayViewMut2<F>,
) {
    let ok = x.dim() == logits.dim() && d_logits.dim() == x.dim() && d_ll.len() == x.nrows();
    assert!(
        ok,
        "bernoulli_log_likelihood_backward: x {:?}, logits {:?}, d_ll {:?}, d_logits {:?}",
        x.shape(),
        logits.shape(),
        d_ll.shape(),
        d_logits.shape()
    );
    let d_ll = d_ll.insert_axis(Axis(1)); // N × 1, broadcast over D
    Zip::from(&mut d_logits)
        .and(&x)
        .and(&logits)
        .and_broadcast(&d_ll)
        .for_each(|d, &x, &l, &g| *d += g * (x - sigmoid(l)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn log_likelihood_matches_the_naive_formula_where_it_is_safe() {
        let x: Array2<f64> = array![[1.0, 0.0, 1.0, 0.3], [0.0, 1.0, 0.7, 0.0]];
        let logits: Array2<f64> = array![[2.5, -1.0, -7.0, 0.4], [9.0, 0.0, -3.3, -10.0]];
        let ll = bernoulli_log_likelihood(x.view(), logits.view());
        for i in 0..2 {
            let naive: f64 = (0..4)
                .map(|d| {
                    let p = 1.0 / (1.0 + (-logits[[i, d]]).exp());
                    x[[i, d]] * p.ln() + (1.0 - x[[i, d]]) * (1.0 - p).ln()
                })
                .sum();
            // Logits within ±10: the naive route loses at most ~1e-11 to 1 − p.
            assert!((ll[i] - naive).abs() < 1e-9, "row {i}: {} vs naive {naive}", ll[i]);
        }
    }

    #[test]
    fn log_likelihood_is_finite_and_correct_at_logits_of_plus_minus_100() {
        // x = 1 with l = −100: log σ(−100) = −100 − log1p(e⁻¹⁰⁰) = −100 to double precision.
        // x = 0 with l = +100: log(1 − σ(100)) = −100 likewise. The right answers: −100 each, 0 each.
        let x: Array2<f64> = array![[1.0, 0.0, 1.0, 0.0]];
        let logits: Array2<f64> = array![[-100.0, 100.0, 100.0, -100.0]];
        let ll = bernoulli_log_likelihood(x.view(), logits.view());
        assert!((ll[0] - (-200.0)).abs() < 1e-12, "{}", ll[0]);
        let ll32 = bernoulli_log_likelihood(x.mapv(|v| v as f32).view(), logits.mapv(|v| v as f32).view());
        assert!((ll32[0] - (-200.0)).abs() < 1e-4, "{}", ll32[0]);
        let big = bernoulli_log_likelihood(array![[1.0_f64, 0.0]].view(), array![[-1e6, 1e6]].view());
        assert!(big[0].is_finite() && (big[0] - (-2e6)).abs() < 1e-6);
        assert!(sigmoid(-1e4_f64).is_finite() && sigmoid(1e4_f64) == 1.0);
    }

    /// Central differences with step h = ε^(1/3) against ∂L/∂l = d_ll (x − σ(l)).
    #[test]
    fn gradient_matches_finite_differences() {
        let h = f64::EPSILON.cbrt();
        let x = array![[1.0, 0.0, 0.4], [0.0, 1.0, 1.0]];
        let logits = array![[0.5, -2.0, 3.0], [1.2, -0.1, -4.0]];
        let d_ll = array![0.8, -1.7];
        let mut d_logits = Array2::zeros((2, 3));
        bernoulli_log_likelihood_backward(x.view(), logits.view(), d_ll.view(), d_logits.view_mut());
        let loss = |l: &Array2<f64>| bernoulli_log_likelihood(x.view(), l.view()).dot(&d_ll);
        for i in 0..2 {
            for d in 0..3 {
                let (mut lp, mut lm) = (logits.clone(), logits.clone());
                lp[[i, d]] += h;
                lm[[i, d]] -= h;
                let fd = (loss(&lp) - loss(&lm)) / (2.0 * h);
                // ∂L/∂l = d_ll ⊙ (x − σ(l)); relative error allowed 1e-7.
                let rel = (d_logits[[i, d]] - fd).abs() / fd.abs().max(1e-12);
                assert!(rel < 1e-7, "({i}, {d}): {} vs {fd}", d_logits[[i, d]]);
            }
        }
    }
}
