//! Likelihood terms, the KL term and the reparameterisation, with their gradients.
//!
//! **Loss reduction, stated once for the whole crate.** The VAE loss of a mini-batch is
//!
//! ```text
//! L = (1/B) Σ_b [ −log p(x_b | z_b) + β · KL(q(z|x_b) ‖ p(z)) ]
//! ```
//! each term **summed over data dimensions** (D pixels, Z latents), **averaged over the batch**,
//! in nats per example. This is the PyTorch anchor's `(BCE_sum + KL_sum) / B`. The per-example
//! kernels below return sums over dimensions; the `scale` argument of the fused kernels is the
//! 1/B of the batch mean.
//!
//! These are the **fused** forms the training step uses. The plain, one-quantity-at-a-time
//! versions (log-densities, KL, reparameterisation and their backward passes) live in
//! [`crate::base::prob`]; the tests here check the fused kernels against them and against finite
//! differences.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, NdFloat, Zip};

use super::cast;

use crate::base::prob::LN_2PI;

/// Fused kernel: Bernoulli NLL per row and its gradient with respect to the logits, in one pass.
///
/// ```text
/// nll_b  = Σ_d [ max(l, 0) − x l + log1p(e^(−|l|)) ]           (added to nll_rows[b])
/// ∂nll/∂l = σ(l) − x,   σ(l) = 1/(1 + t) if l ≥ 0 else t/(1 + t),  t = e^(−|l|)
/// d_logits ← scale · (σ(l) − x)
/// ```
/// One exponential serves the loss and the sigmoid. `scale` is the 1/B of the batch mean.
/// Returns Σ_b nll_b. Row sums accumulate in `F` over D, then in `f64` across rows.
///
/// In `f32` with contiguous rows this runs the vectorised body in `nn::simd`: e^(−|l|) and log1p
/// by polynomials accurate to a few ulp instead of libm, and each row summed in 16 lanes, so it
/// differs from the generic path in the last bits only.
///
/// # Shapes
/// `logits`, `x`, `d_logits`: `B × D`; `nll_rows`: `B`.
#[track_caller]
pub fn bernoulli_nll_grad_into<F: NdFloat>(
    logits: ArrayView2<F>,
    x: ArrayView2<F>,
    scale: F,
    d_logits: Option<ArrayViewMut2<F>>,
    nll_rows: &mut [f64],
) -> f64 {
    assert!(
        logits.dim() == x.dim() && nll_rows.len() == logits.nrows(),
        "bernoulli nll: logits {:?}, x {:?}, nll_rows {}",
        logits.dim(),
        x.dim(),
        nll_rows.len()
    );
    let zero = F::zero();
    let one = F::one();
    let mut total = 0.0;
    if let Some(scale32) = super::simd::as_f32(std::slice::from_ref(&scale)).map(|s| s[0]) {
        // f32: the vectorised body (same formulas; exp and log1p by polynomials, see `simd`).
        let rows_ok = logits.rows().into_iter().all(|r| r.as_slice().is_some())
            && x.rows().into_iter().all(|r| r.as_slice().is_some());
        if rows_ok {
            let mut d_logits = d_logits;
            let want_grad = d_logits.is_some();
            for (b, nll) in nll_rows.iter_mut().enumerate() {
                let l = super::simd::as_f32(logits.row(b).to_slice().expect("checked")).expect("f32");
                let xr = super::simd::as_f32(x.row(b).to_slice().expect("checked")).expect("f32");
                let mut d_row = d_logits.as_mut().map(|d| d.row_mut(b));
                let d = d_row.as_mut().and_then(|r| r.as_slice_mut()).and_then(super::simd::as_f32_mut);
                assert!(
                    d.is_some() || !want_grad,
                    "bernoulli grad: d_logits {:?} must have contiguous rows",
                    logits.dim()
                );
                let row = super::simd::bernoulli_row(l, xr, scale32, d);
                *nll += row;
                total += row;
            }
            return total;
        }
    }
    match d_logits {
        Some(mut d) => {
            assert_eq!(
                d.dim(),
                logits.dim(),
                "bernoulli grad: d_logits {:?} vs logits {:?}",
                d.dim(),
                logits.dim()
            );
            for (b, ((l_row, x_row), d_row)) in
                logits.outer_iter().zip(x.outer_iter()).zip(d.outer_iter_mut()).enumerate()
            {
                let mut acc = zero;
                Zip::from(d_row).and(&l_row).and(&x_row).for_each(|d, &l, &x| {
                    let t = (-l.abs()).exp();
                    let inv = one / (one + t);
                    let sig = if l >= zero { inv } else { t * inv };
                    acc += l.max(zero) - x * l + t.ln_1p();
                    *d = scale * (sig - x);
                });
                let row = acc.to_f64().expect("float");
                nll_rows[b] += row;
                total += row;
            }
        }
        None => {
            for (b, (l_row, x_row)) in logits.outer_iter().zip(x.outer_iter()).enumerate() {
                let mut acc = zero;
                Zip::from(&l_row)
                    .and(&x_row)
                    .for_each(|&l, &x| acc += l.max(zero) - x * l + (-l.abs()).exp().ln_1p());
                let row = acc.to_f64().expect("float");
                nll_rows[b] += row;
                total += row;
            }
        }
    }
    total
}

/// Fused kernel: Gaussian NLL per row and its gradients, in one pass.
///
/// ```text
/// r = x − m,  w = e^(−s)
/// nll_b      = ½ Σ_d [ log 2π + s_d + r_d² w_d ]                (added to nll_rows[b])
/// d_mean    ← scale · (−r w)                                   ∂nll/∂m = −(x − m) e^(−s)
/// d_log_var += scale · Σ_b ½ (1 − r² w)                         ∂nll/∂s = ½ (1 − (x − m)² e^(−s))
/// ```
/// Returns Σ_b nll_b.
///
/// # Shapes
/// `mean`, `x`, `d_mean`: `B × D`; `log_var`, `d_log_var`: `D`; `nll_rows`: `B`.
#[track_caller]
pub fn gaussian_nll_grad_into<F: NdFloat>(
    mean: ArrayView2<F>,
    log_var: ArrayView1<F>,
    x: ArrayView2<F>,
    scale: F,
    mut d_mean: Option<ArrayViewMut2<F>>,
    mut d_log_var: Option<ArrayViewMut1<F>>,
    nll_rows: &mut [f64],
) -> f64 {
    assert!(
        mean.dim() == x.dim() && log_var.len() == mean.ncols() && nll_rows.len() == mean.nrows(),
        "gaussian nll: mean {:?}, log_var {}, x {:?}, nll_rows {}",
        mean.dim(),
        log_var.len(),
        x.dim(),
        nll_rows.len()
    );
    let half: F = cast(0.5);
    let log_2pi: F = cast(LN_2PI);
    let mut total = 0.0;
    for b in 0..mean.nrows() {
        let mut acc = F::zero();
        let (m_row, x_row) = (mean.row(b), x.row(b));
        for d in 0..mean.ncols() {
            let s = log_var[d];
            let w = (-s).exp();
            let r = x_row[d] - m_row[d];
            acc += half * (log_2pi + s + r * r * w);
            if let Some(dm) = d_mean.as_mut() {
                dm[(b, d)] = scale * (-r * w);
            }
            if let Some(ds) = d_log_var.as_mut() {
                ds[d] += scale * half * (F::one() - r * r * w);
            }
        }
        let row = acc.to_f64().expect("float");
        nll_rows[b] += row;
        total += row;
    }
    total
}

/// KL(N(μ, e^v) ‖ N(0, 1)) for one coordinate and its two partial derivatives.
///
/// ```text
/// KL = ½ (μ² + eᵛ − 1 − v),   ∂KL/∂μ = μ,   ∂KL/∂v = ½ (eᵛ − 1)
/// ```
#[inline]
pub fn kl_std_normal_elem<F: NdFloat>(mu: F, v: F) -> (F, F, F) {
    let half: F = cast(0.5);
    let ev = v.exp();
    (half * (mu * mu + ev - F::one() - v), mu, half * (ev - F::one()))
}

/// KL(N(μ_q, e^(v_q)) ‖ N(μ_p, e^(v_p))) for one coordinate and its four partial derivatives.
///
/// ```text
/// KL       = ½ [ v_p − v_q + (e^(v_q) + (μ_q − μ_p)²) e^(−v_p) − 1 ]
/// ∂KL/∂μ_q = (μ_q − μ_p) e^(−v_p)              ∂KL/∂μ_p = −∂KL/∂μ_q
/// ∂KL/∂v_q = ½ (e^(v_q − v_p) − 1)             ∂KL/∂v_p = ½ [ 1 − (e^(v_q) + (μ_q − μ_p)²) e^(−v_p) ]
/// ```
#[inline]
pub fn kl_diag_elem<F: NdFloat>(mq: F, vq: F, mp: F, vp: F) -> (F, F, F, F, F) {
    let half: F = cast(0.5);
    let wp = (-vp).exp();
    let diff = mq - mp;
    let ratio = (vq.exp() + diff * diff) * wp;
    let kl = half * (vp - vq + ratio - F::one());
    let d_mq = diff * wp;
    (kl, d_mq, half * ((vq - vp).exp() - F::one()), -d_mq, half * (F::one() - ratio))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::prob;
    use crate::engine::nn::gradcheck::{assert_grad_close, assert_slices_close, central_difference};
    use ndarray::{Array1, Array2, array};

    fn nll_rows_bernoulli(l: &Array2<f64>, x: &Array2<f64>) -> Vec<f64> {
        let mut rows = vec![0.0; l.nrows()];
        bernoulli_nll_grad_into(l.view(), x.view(), 1.0, None, &mut rows);
        rows
    }

    fn nll_rows_gaussian(m: &Array2<f64>, s: &Array1<f64>, x: &Array2<f64>) -> Vec<f64> {
        let mut rows = vec![0.0; m.nrows()];
        gaussian_nll_grad_into(m.view(), s.view(), x.view(), 1.0, None, None, &mut rows);
        rows
    }

    #[test]
    fn fused_bernoulli_agrees_with_prob_and_finite_differences() {
        let l = array![[-1.3, 0.2, 2.5, -0.4], [0.9, -2.2, 0.05, 1.7], [1000.0, -1000.0, 30.0, -30.0]];
        let x = array![[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]];
        let mut d = Array2::zeros(l.dim());
        let mut rows = vec![0.0; 3];
        bernoulli_nll_grad_into(l.view(), x.view(), 0.5, Some(d.view_mut()), &mut rows);
        // The reference: prob::bernoulli_log_likelihood (the unfused block) and its backward.
        let reference = prob::bernoulli_log_likelihood(x.view(), l.view());
        for b in 0..3 {
            assert!(
                (rows[b] + reference[b]).abs() < 1e-12 * rows[b].abs().max(1.0),
                "row {b}: {} vs {}",
                rows[b],
                -reference[b]
            );
        }
        // Two pixels wrong by a logit of 1000 cost 1000 nats each; two right by 30 cost log1p(e^(−30)) each.
        let want = 2000.0 + 2.0 * (-30f64).exp().ln_1p();
        assert!((rows[2] - want).abs() <= 1e-12 * want, "{} vs {want}", rows[2]);
        let mut d_ref = Array2::zeros(l.dim());
        prob::bernoulli_log_likelihood_backward(
            x.view(),
            l.view(),
            Array1::from_elem(3, -0.5).view(),
            d_ref.view_mut(),
        );
        assert_slices_close(
            "fused vs prob d_logits",
            d.as_slice().unwrap(),
            d_ref.as_slice().unwrap(),
            1e-15,
        );
        // Analytic: ∂/∂l of ½ Σ nll = ½ (σ(l) − x), against central differences on the moderate rows.
        let lm = l.slice(ndarray::s![..2, ..]).to_owned();
        let xm = x.slice(ndarray::s![..2, ..]).to_owned();
        let approx = central_difference(&lm, |l| 0.5 * nll_rows_bernoulli(l, &xm).iter().sum::<f64>());
        let exact = d.slice(ndarray::s![..2, ..]).to_owned();
        assert_grad_close("d_logits", exact.view().into_dyn(), approx.view().into_dyn(), 1e-8);
    }

    #[test]
    fn fused_gaussian_agrees_with_prob_and_finite_differences() {
        let m = array![[0.3, -1.0, 2.0], [0.0, 0.5, -0.2]];
        let s = array![0.2, -1.0, 0.7];
        let x = array![[0.1, -0.4, 2.9], [1.0, 0.5, 0.0]];
        let rows = nll_rows_gaussian(&m, &s, &x);
        // The reference: prob::diag_gaussian_log_density(x; m, log σ² broadcast over rows).
        let s_rows = s.clone().insert_axis(ndarray::Axis(0));
        let reference = prob::diag_gaussian_log_density(x.view(), m.view(), s_rows.view());
        for b in 0..2 {
            assert!((rows[b] + reference[b]).abs() < 1e-12, "row {b}: {} vs {}", rows[b], -reference[b]);
        }
        let mut dm = Array2::zeros(m.dim());
        let mut ds = Array1::zeros(3);
        let mut r = vec![0.0; 2];
        gaussian_nll_grad_into(
            m.view(),
            s.view(),
            x.view(),
            1.0,
            Some(dm.view_mut()),
            Some(ds.view_mut()),
            &mut r,
        );
        // Analytic: ∂/∂m = −(x − m) e^(−s), ∂/∂s = Σ_b ½ (1 − (x − m)² e^(−s)).
        let approx_m = central_difference(&m, |m| nll_rows_gaussian(m, &s, &x).iter().sum());
        assert_grad_close("d_mean", dm.view().into_dyn(), approx_m.view().into_dyn(), 1e-8);
        let approx_s = central_difference(&s, |s| nll_rows_gaussian(&m, s, &x).iter().sum());
        assert_grad_close("d_log_var", ds.view().into_dyn(), approx_s.view().into_dyn(), 1e-8);
    }

    #[test]
    fn kl_elements_agree_with_prob_and_finite_differences() {
        let (mq, vq, mp, vp): (f64, f64, f64, f64) = (0.7, -0.4, -0.2, 0.3);
        let (kl, d_m, d_v) = kl_std_normal_elem(mq, vq);
        let reference = prob::kl_diag_gaussian_std_normal(array![[mq]].view(), array![[vq]].view())[0];
        assert!((kl - reference).abs() < 1e-15, "{kl} vs {reference}");
        let h = crate::engine::nn::gradcheck::STEP;
        let fd = |f: &dyn Fn(f64) -> f64, at: f64| (f(at + h) - f(at - h)) / (2.0 * h);
        // Analytic: ∂KL/∂μ = μ, ∂KL/∂v = ½ (eᵛ − 1).
        assert_slices_close(
            "kl_std_normal",
            &[d_m, d_v],
            &[fd(&|m| kl_std_normal_elem(m, vq).0, mq), fd(&|v| kl_std_normal_elem(mq, v).0, vq)],
            1e-8,
        );

        let (kl, g1, g2, g3, g4) = kl_diag_elem(mq, vq, mp, vp);
        let reference = prob::kl_diag_gaussians(
            array![[mq]].view(),
            array![[vq]].view(),
            array![[mp]].view(),
            array![[vp]].view(),
        )[0];
        assert!((kl - reference).abs() < 1e-15, "{kl} vs {reference}");
        let approx = [
            fd(&|a| kl_diag_elem(a, vq, mp, vp).0, mq),
            fd(&|a| kl_diag_elem(mq, a, mp, vp).0, vq),
            fd(&|a| kl_diag_elem(mq, vq, a, vp).0, mp),
            fd(&|a| kl_diag_elem(mq, vq, mp, a).0, vp),
        ];
        // Analytic: the four partials written on `kl_diag_elem`.
        assert_slices_close("kl_diag", &[g1, g2, g3, g4], &approx, 1e-8);
    }
}
