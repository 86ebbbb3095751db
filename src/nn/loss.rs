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

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, NdFloat, Zip};

use super::cast;

/// log 2π.
pub const LOG_2PI: f64 = 1.837_877_066_409_345_5;

/// Bernoulli negative log-likelihood from logits, summed over the D dimensions of each row.
///
/// ```text
/// −log p(x|l) = Σ_d [ softplus(l_d) − x_d l_d ] = Σ_d [ max(l_d, 0) − x_d l_d + log(1 + e^(−|l_d|)) ]
/// ```
/// l = logits (the decoder's output, p = σ(l) the pixel's probability), x ∈ {0, 1} (or [0, 1]).
/// The second form never evaluates e^(+|l|), so it neither overflows nor loses the small term
/// (the `binary_cross_entropy_with_logits` formula).
///
/// # Shapes
/// `logits`, `x`: `B × D` → `B`.
#[track_caller]
pub fn bernoulli_nll<F: NdFloat>(logits: ArrayView2<F>, x: ArrayView2<F>) -> Array1<f64> {
    let mut rows = vec![0.0; logits.nrows()];
    bernoulli_nll_grad_into(logits, x, F::one(), None, &mut rows);
    Array1::from(rows)
}

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

/// Gaussian negative log-likelihood with per-dimension log-variance s, summed over D per row.
///
/// ```text
/// −log N(x; m, diag eˢ) = ½ Σ_d [ log 2π + s_d + (x_d − m_d)² e^(−s_d) ]
/// ```
/// m = decoder output (the mean), s = log σ² (fixed, or a learned per-dimension parameter).
///
/// # Shapes
/// `mean`, `x`: `B × D`; `log_var`: `D` → `B`.
#[track_caller]
pub fn gaussian_nll<F: NdFloat>(
    mean: ArrayView2<F>,
    log_var: ArrayView1<F>,
    x: ArrayView2<F>,
) -> Array1<f64> {
    let mut rows = vec![0.0; mean.nrows()];
    gaussian_nll_grad_into(mean, log_var, x, F::one(), None, None, &mut rows);
    Array1::from(rows)
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
    let log_2pi: F = cast(LOG_2PI);
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
pub(crate) fn kl_std_normal_elem<F: NdFloat>(mu: F, v: F) -> (F, F, F) {
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
pub(crate) fn kl_diag_elem<F: NdFloat>(mq: F, vq: F, mp: F, vp: F) -> (F, F, F, F, F) {
    let half: F = cast(0.5);
    let wp = (-vp).exp();
    let diff = mq - mp;
    let ratio = (vq.exp() + diff * diff) * wp;
    let kl = half * (vp - vq + ratio - F::one());
    let d_mq = diff * wp;
    (kl, d_mq, half * ((vq - vp).exp() - F::one()), -d_mq, half * (F::one() - ratio))
}

/// KL to the standard normal, per coordinate (sum over Z for a data point's KL).
///
/// ```text
/// KL(q ‖ N(0, I)) = Σ_u ½ (μ_u² + σ_u² − 1 − log σ_u²)     (Kingma & Welling 2014, appendix B)
/// ```
/// μ = encoder mean, log σ² = encoder log-variance (the `log_var_head` output).
///
/// # Shapes
/// `mean`, `log_var`: `B × Z` → `B × Z`.
#[track_caller]
pub fn kl_std_normal<F: NdFloat>(mean: ArrayView2<F>, log_var: ArrayView2<F>) -> Array2<F> {
    assert_eq!(
        mean.dim(),
        log_var.dim(),
        "kl_std_normal: mean {:?} vs log_var {:?}",
        mean.dim(),
        log_var.dim()
    );
    Zip::from(&mean).and(&log_var).map_collect(|&m, &v| kl_std_normal_elem(m, v).0)
}

/// Gradient of Σ KL (over every element) with respect to the mean and the log-variance.
///
/// ```text
/// ∂KL/∂μ = μ,   ∂KL/∂log σ² = ½ (σ² − 1)
/// ```
///
/// # Shapes
/// `mean`, `log_var`: `B × Z` → (`B × Z`, `B × Z`).
#[track_caller]
pub fn kl_std_normal_grad<F: NdFloat>(mean: ArrayView2<F>, log_var: ArrayView2<F>) -> (Array2<F>, Array2<F>) {
    assert_eq!(
        mean.dim(),
        log_var.dim(),
        "kl_std_normal_grad: mean {:?} vs log_var {:?}",
        mean.dim(),
        log_var.dim()
    );
    let d_mean = mean.to_owned();
    let d_log_var = log_var.mapv(|v| kl_std_normal_elem(F::zero(), v).2);
    (d_mean, d_log_var)
}

/// KL between diagonal Gaussians q = N(μ_q, diag e^(v_q)) and p = N(μ_p, diag e^(v_p)), per coordinate.
///
/// ```text
/// KL(q ‖ p) = Σ_u ½ [ v_p − v_q + (e^(v_q) + (μ_q − μ_p)²) e^(−v_p) − 1 ]
/// ```
///
/// # Shapes
/// all four: `B × Z` → `B × Z`.
#[track_caller]
pub fn kl_diag_gaussians<F: NdFloat>(
    mean_q: ArrayView2<F>,
    log_var_q: ArrayView2<F>,
    mean_p: ArrayView2<F>,
    log_var_p: ArrayView2<F>,
) -> Array2<F> {
    kl_diag_check(&mean_q, &log_var_q, &mean_p, &log_var_p);
    Zip::from(&mean_q)
        .and(&log_var_q)
        .and(&mean_p)
        .and(&log_var_p)
        .map_collect(|&a, &b, &c, &d| kl_diag_elem(a, b, c, d).0)
}

/// Gradient of Σ KL(q ‖ p) with respect to (μ_q, v_q, μ_p, v_p) (formulas on `kl_diag_elem`):
///
/// ```text
/// ∂/∂μ_q = (μ_q − μ_p) e^(−v_p)        ∂/∂v_q = ½ (e^(v_q − v_p) − 1)
/// ∂/∂μ_p = −(μ_q − μ_p) e^(−v_p)       ∂/∂v_p = ½ [ 1 − (e^(v_q) + (μ_q − μ_p)²) e^(−v_p) ]
/// ```
///
/// # Shapes
/// all: `B × Z`.
#[track_caller]
#[allow(clippy::type_complexity)]
pub fn kl_diag_gaussians_grad<F: NdFloat>(
    mean_q: ArrayView2<F>,
    log_var_q: ArrayView2<F>,
    mean_p: ArrayView2<F>,
    log_var_p: ArrayView2<F>,
) -> (Array2<F>, Array2<F>, Array2<F>, Array2<F>) {
    kl_diag_check(&mean_q, &log_var_q, &mean_p, &log_var_p);
    let dim = mean_q.raw_dim();
    let (mut a, mut b, mut c, mut d) =
        (Array2::zeros(dim), Array2::zeros(dim), Array2::zeros(dim), Array2::zeros(dim));
    for ((i, j), &mq) in mean_q.indexed_iter() {
        let (_, g1, g2, g3, g4) = kl_diag_elem(mq, log_var_q[(i, j)], mean_p[(i, j)], log_var_p[(i, j)]);
        (a[(i, j)], b[(i, j)], c[(i, j)], d[(i, j)]) = (g1, g2, g3, g4);
    }
    (a, b, c, d)
}

#[track_caller]
fn kl_diag_check<F>(a: &ArrayView2<F>, b: &ArrayView2<F>, c: &ArrayView2<F>, d: &ArrayView2<F>) {
    assert!(
        a.dim() == b.dim() && a.dim() == c.dim() && a.dim() == d.dim(),
        "kl_diag_gaussians: mean_q {:?}, log_var_q {:?}, mean_p {:?}, log_var_p {:?}",
        a.dim(),
        b.dim(),
        c.dim(),
        d.dim()
    );
}

/// The reparameterisation trick: a draw from q(z|x) = N(μ, diag σ²) as a function of μ, log σ²
/// and a standard-normal ε, so the gradient flows into μ and log σ².
///
/// ```text
/// z = μ + σ ⊙ ε,   σ = exp(½ log σ²),   ε ~ N(0, I)        (Kingma & Welling 2014, eq. 10)
/// ```
///
/// # Shapes
/// `mean`, `log_var`, `eps`: `B × Z` → z: `B × Z`.
#[track_caller]
pub fn reparameterise<F: NdFloat>(
    mean: ArrayView2<F>,
    log_var: ArrayView2<F>,
    eps: ArrayView2<F>,
) -> Array2<F> {
    assert!(
        mean.dim() == log_var.dim() && mean.dim() == eps.dim(),
        "reparameterise: mean {:?}, log_var {:?}, eps {:?}",
        mean.dim(),
        log_var.dim(),
        eps.dim()
    );
    let half: F = cast(0.5);
    Zip::from(&mean).and(&log_var).and(&eps).map_collect(|&m, &v, &e| m + (half * v).exp() * e)
}

/// Backward through z = μ + exp(½ log σ²) ⊙ ε with ε fixed.
///
/// ```text
/// ∂L/∂μ = ∂L/∂z,    ∂L/∂log σ² = ∂L/∂z ⊙ ε ⊙ ½ exp(½ log σ²)
/// ```
///
/// # Shapes
/// `log_var`, `eps`, `d_z`: `B × Z` → (d_mean, d_log_var): `B × Z` each.
#[track_caller]
pub fn reparameterise_backward<F: NdFloat>(
    log_var: ArrayView2<F>,
    eps: ArrayView2<F>,
    d_z: ArrayView2<F>,
) -> (Array2<F>, Array2<F>) {
    assert!(
        log_var.dim() == eps.dim() && eps.dim() == d_z.dim(),
        "reparameterise backward: log_var {:?}, eps {:?}, d_z {:?}",
        log_var.dim(),
        eps.dim(),
        d_z.dim()
    );
    let half: F = cast(0.5);
    let d_log_var =
        Zip::from(&log_var).and(&eps).and(&d_z).map_collect(|&v, &e, &g| g * e * half * (half * v).exp());
    (d_z.to_owned(), d_log_var)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{assert_grad_close, central_difference};
    use ndarray::array;
    use statrs::distribution::{Continuous, Normal};

    #[test]
    fn bernoulli_nll_matches_the_naive_formula_and_stays_finite() {
        let l = array![[-3.0, 0.0, 2.5], [6.0, -6.0, 0.7]];
        let x = array![[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]];
        let got = bernoulli_nll(l.view(), x.view());
        // Naive: −Σ [x log σ(l) + (1 − x) log(1 − σ(l))], fine at these moderate logits.
        for b in 0..2 {
            let naive: f64 = (0..3)
                .map(|d| {
                    let p = 1.0 / (1.0 + (-l[(b, d)] as f64).exp());
                    -(x[(b, d)] * p.ln() + (1.0 - x[(b, d)]) * (1.0 - p).ln())
                })
                .sum();
            assert!((got[b] - naive).abs() < 1e-12 * naive.max(1.0), "row {b}: {} vs {naive}", got[b]);
        }
        // A wrong pixel at logit ±1000: loss 1000 exactly, no overflow.
        let far = bernoulli_nll(array![[1000.0_f64, -1000.0]].view(), array![[0.0, 1.0]].view());
        assert_eq!(far[0], 2000.0);
    }

    #[test]
    fn bernoulli_fused_gradient_matches_finite_differences() {
        let l = array![[-1.3, 0.2, 2.5, -0.4], [0.9, -2.2, 0.05, 1.7]];
        let x = array![[0.0, 1.0, 1.0, 0.0], [1.0, 0.0, 1.0, 1.0]];
        let mut d = Array2::zeros(l.dim());
        let mut rows = vec![0.0; 2];
        bernoulli_nll_grad_into(l.view(), x.view(), 0.5, Some(d.view_mut()), &mut rows);
        // Analytic: ∂/∂l of ½ Σ nll = ½ (σ(l) − x).
        let approx = central_difference(&l, |l| 0.5 * bernoulli_nll(l.view(), x.view()).sum());
        assert_grad_close("d_logits", d.view().into_dyn(), approx.view().into_dyn(), 1e-8);
    }

    #[test]
    fn gaussian_nll_matches_statrs_and_its_gradients_match_finite_differences() {
        let m = array![[0.3, -1.0, 2.0], [0.0, 0.5, -0.2]];
        let s = array![0.2, -1.0, 0.7];
        let x = array![[0.1, -0.4, 2.9], [1.0, 0.5, 0.0]];
        let got = gaussian_nll(m.view(), s.view(), x.view());
        for b in 0..2 {
            let reference: f64 = (0..3)
                .map(|d| -Normal::new(m[(b, d)], (s[d] as f64).exp().sqrt()).unwrap().ln_pdf(x[(b, d)]))
                .sum();
            assert!((got[b] - reference).abs() < 1e-12, "row {b}: {} vs statrs {reference}", got[b]);
        }
        let mut dm = Array2::zeros(m.dim());
        let mut ds = Array1::zeros(3);
        let mut rows = vec![0.0; 2];
        gaussian_nll_grad_into(
            m.view(),
            s.view(),
            x.view(),
            1.0,
            Some(dm.view_mut()),
            Some(ds.view_mut()),
            &mut rows,
        );
        // Analytic: ∂/∂m = −(x − m) e^(−s), ∂/∂s = Σ_b ½ (1 − (x − m)² e^(−s)).
        let approx_m = central_difference(&m, |m| gaussian_nll(m.view(), s.view(), x.view()).sum());
        assert_grad_close("d_mean", dm.view().into_dyn(), approx_m.view().into_dyn(), 1e-8);
        let approx_s = central_difference(&s, |s| gaussian_nll(m.view(), s.view(), x.view()).sum());
        assert_grad_close("d_log_var", ds.view().into_dyn(), approx_s.view().into_dyn(), 1e-8);
    }

    #[test]
    fn kl_terms_match_closed_forms_and_finite_differences() {
        let mq: Array2<f64> = array![[0.5, -1.2], [0.0, 2.0]];
        let vq = array![[-0.3, 0.4], [0.0, -2.0]];
        let mp = array![[0.1, 0.3], [-0.5, 1.0]];
        let vp = array![[0.2, -0.6], [0.5, 0.1]];
        // By hand: KL(N(0,1) ‖ N(0,1)) = 0 at (μ, v) = (0, 0).
        assert_eq!(kl_std_normal(array![[0.0]].view(), array![[0.0]].view())[(0, 0)], 0.0);
        // With p = N(0, I) the general KL reduces to the standard-normal one.
        let zeros = Array2::zeros((2, 2));
        let general = kl_diag_gaussians(mq.view(), vq.view(), zeros.view(), zeros.view());
        let special = kl_std_normal(mq.view(), vq.view());
        assert!((&general - &special).iter().all(|d: &f64| d.abs() < 1e-15));

        let (dm, dv) = kl_std_normal_grad(mq.view(), vq.view());
        // Analytic: ∂KL/∂μ = μ, ∂KL/∂v = ½ (eᵛ − 1).
        let am = central_difference(&mq, |m| kl_std_normal(m.view(), vq.view()).sum());
        let av = central_difference(&vq, |v| kl_std_normal(mq.view(), v.view()).sum());
        assert_grad_close("d_mean", dm.view().into_dyn(), am.view().into_dyn(), 1e-8);
        assert_grad_close("d_log_var", dv.view().into_dyn(), av.view().into_dyn(), 1e-8);

        let (g1, g2, g3, g4) = kl_diag_gaussians_grad(mq.view(), vq.view(), mp.view(), vp.view());
        let f = |a: &Array2<f64>, b: &Array2<f64>, c: &Array2<f64>, d: &Array2<f64>| {
            kl_diag_gaussians(a.view(), b.view(), c.view(), d.view()).sum()
        };
        // Analytic: the four partials on `kl_diag_elem`.
        let checks = [
            ("d_mean_q", g1, central_difference(&mq, |a| f(a, &vq, &mp, &vp))),
            ("d_log_var_q", g2, central_difference(&vq, |b| f(&mq, b, &mp, &vp))),
            ("d_mean_p", g3, central_difference(&mp, |c| f(&mq, &vq, c, &vp))),
            ("d_log_var_p", g4, central_difference(&vp, |d| f(&mq, &vq, &mp, d))),
        ];
        for (name, exact, approx) in checks {
            assert_grad_close(name, exact.view().into_dyn(), approx.view().into_dyn(), 1e-8);
        }
    }

    #[test]
    fn reparameterisation_gradient_matches_finite_differences() {
        let m = array![[0.5, -1.0, 0.0]];
        let v = array![[0.3, -2.0, 1.0]];
        let eps = array![[1.2, -0.3, 0.8]];
        let r = array![[0.7, 1.5, -0.2]];
        // z at ε = 0 is μ; with log σ² = 0, z = μ + ε.
        assert_eq!(reparameterise(m.view(), Array2::zeros((1, 3)).view(), eps.view()), &m + &eps);
        let (dm, dv) = reparameterise_backward(v.view(), eps.view(), r.view());
        // Analytic: ∂(r·z)/∂μ = r, ∂(r·z)/∂v = r ε ½ e^(v/2).
        let am = central_difference(&m, |m| (reparameterise(m.view(), v.view(), eps.view()) * &r).sum());
        let av = central_difference(&v, |v| (reparameterise(m.view(), v.view(), eps.view()) * &r).sum());
        assert_grad_close("d_mean", dm.view().into_dyn(), am.view().into_dyn(), 1e-8);
        assert_grad_close("d_log_var", dv.view().into_dyn(), av.view().into_dyn(), 1e-8);
    }
}
