//! The diagonal Gaussian N(μ, diag σ²), parameterised by its mean and log-variance.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, NdFloat, Zip};
use ndarray_rand::RandomExt;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::{LN_2PI, assert_row_broadcast, c};
use crate::base::error::{Error, Result, ensure_finite};

/// Log-density of a diagonal Gaussian, one value per row of `z`.
///
/// ```text
/// log N(z; μ, diag σ²) = −½ Σⱼ [ ln 2π + log σⱼ² + (zⱼ − μⱼ)² / σⱼ² ]
///
///   z      a point (one row)                 μ  the mean (`mean`)
///   log σ² the log-variance (`log_var`)      j  runs over the Z (or D) columns
/// ```
/// Kingma & Welling (2014), Appendix C.2 (the Gaussian encoder).
///
/// # Shapes
/// `z`: N × Z; `mean`, `log_var`: N × Z or 1 × Z (one row is shared by all N rows).
/// Returns N.
///
/// **Panics** if the shapes do not fit (a programmer error).
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::diag_gaussian_log_density;
/// // At the mean of N(0, 1) in one dimension: −½ ln 2π.
/// let lp = diag_gaussian_log_density(array![[0.0_f64]].view(), array![[0.0]].view(), array![[0.0]].view());
/// assert!((lp[0] - (-0.918_938_533_204_672_7)).abs() < 1e-15);
/// ```
#[track_caller]
pub fn diag_gaussian_log_density<F: NdFloat>(
    z: ArrayView2<F>,
    mean: ArrayView2<F>,
    log_var: ArrayView2<F>,
) -> Array1<F> {
    assert_row_broadcast("diag_gaussian_log_density", &z, "mean", &mean);
    assert_row_broadcast("diag_gaussian_log_density", &z, "log_var", &log_var);
    let (n, dims) = z.dim();
    let constant: F = c::<F>(dims as f64) * c(LN_2PI);
    // One pass, no N × Z temporaries: each row's Σ_j [(z − μ)² e^(−log σ²) + log σ²], left to right.
    let shared_inv_var = (log_var.nrows() == 1).then(|| log_var.row(0).mapv(|v| (-v).exp()));
    Array1::from_iter((0..n).map(|i| {
        let zr = z.row(i);
        let mr = mean.row(if mean.nrows() == 1 { 0 } else { i });
        let vr = log_var.row(if log_var.nrows() == 1 { 0 } else { i });
        let mut sum = F::zero();
        for j in 0..dims {
            let d = zr[j] - mr[j];
            let inv_var = match &shared_inv_var {
                Some(iv) => iv[j],
                None => (-vr[j]).exp(),
            };
            sum += d * d * inv_var + vr[j];
        }
        c::<F>(-0.5) * (sum + constant)
    }))
}

/// Draws `n` rows z = μ + σ ⊙ ε with ε ~ N(0, I) and returns `(z, ε)`.
///
/// ```text
/// z = μ + exp(½ log σ²) ⊙ ε,   ε ~ N(0, I_Z)
/// ```
/// The reparameterisation trick, Kingma & Welling (2014), eq. (10) with g(ε, x) = μ + σ ⊙ ε.
/// ε is returned so that backward ([`reparameterize_backward`]) can use it.
///
/// # Shapes
/// `mean`, `log_var`: N × Z or 1 × Z (1 × Z: the N samples of one q). Returns (z, ε), both N × Z.
///
/// **Panics** if `mean` and `log_var` have neither `n` rows nor one row.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::sample_diag_gaussian;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// let mut rng = StdRng::seed_from_u64(1);
/// // σ² = e^{ln 4} = 4, so z = 1 + 2 ε exactly.
/// let (z, eps) = sample_diag_gaussian(array![[1.0]].view(), array![[4f64.ln()]].view(), 3, &mut rng);
/// assert_eq!(z.dim(), (3, 1));
/// for (zi, ei) in z.iter().zip(eps.iter()) {
///     assert!((zi - (1.0 + 2.0 * ei)).abs() < 1e-12);
/// }
/// ```
#[track_caller]
pub fn sample_diag_gaussian<F, R>(
    mean: ArrayView2<F>,
    log_var: ArrayView2<F>,
    n: usize,
    rng: &mut R,
) -> (Array2<F>, Array2<F>)
where
    F: NdFloat,
    StandardNormal: Distribution<F>,
    R: Rng + ?Sized,
{
    let eps = Array2::<F>::random_using((n, mean.ncols()), StandardNormal, rng);
    let z = reparameterize(mean, log_var, eps.view());
    (z, eps)
}

/// The deterministic half of the reparameterisation: z = μ + exp(½ log σ²) ⊙ ε for a given ε.
///
/// ```text
/// z = μ + σ ⊙ ε,   σ = exp(½ log σ²)
/// ```
/// Kingma & Welling (2014), eq. (10).
///
/// # Shapes
/// `mean`, `log_var`: N × Z or 1 × Z; `eps`: N × Z. Returns N × Z.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::reparameterize;
/// let z = reparameterize(array![[1.0, 0.0]].view(), array![[0.0, 2f64.ln()]].view(), array![[2.0, 1.0]].view());
/// assert!((z[[0, 0]] - 3.0).abs() < 1e-15 && (z[[0, 1]] - 2f64.sqrt()).abs() < 1e-15);
/// ```
#[track_caller]
pub fn reparameterize<F: NdFloat>(
    mean: ArrayView2<F>,
    log_var: ArrayView2<F>,
    eps: ArrayView2<F>,
) -> Array2<F> {
    assert_row_broadcast("reparameterize", &eps, "mean", &mean);
    assert_row_broadcast("reparameterize", &eps, "log_var", &log_var);
    let sigma = log_var.mapv(|v| (c::<F>(0.5) * v).exp());
    &(&eps * &sigma) + &mean // N × Z
}

/// Backward of [`reparameterize`]: accumulates ∂L/∂μ and ∂L/∂log σ² given `d_z` = ∂L/∂z.
///
/// ```text
/// ∂zⱼ/∂μⱼ = 1                 ⇒  d_mean    += d_z
/// ∂zⱼ/∂log σⱼ² = ½ σⱼ εⱼ      ⇒  d_log_var += d_z ⊙ ½ σ ⊙ ε
/// ```
/// When `mean`/`log_var` have one row shared by N samples, the N rows of the gradient are summed.
///
/// # Shapes
/// `log_var`: N × Z or 1 × Z; `eps`, `d_z`: N × Z; `d_mean`, `d_log_var`: same shape as `mean`,
/// `log_var` (N × Z or 1 × Z). Gradients are added with `+=`.
///
/// ```
/// use vaelab::ndarray::{array, Array2};
/// use vaelab::base::prob::reparameterize_backward;
/// // L = z = μ + σ ε with σ = 1, ε = 2: ∂L/∂μ = 1, ∂L/∂log σ² = ½·1·2 = 1.
/// let (mut d_mean, mut d_log_var) = (Array2::zeros((1, 1)), Array2::zeros((1, 1)));
/// reparameterize_backward(array![[0.0]].view(), array![[2.0]].view(), array![[1.0]].view(),
///     d_mean.view_mut(), d_log_var.view_mut());
/// assert_eq!((d_mean[[0, 0]], d_log_var[[0, 0]]), (1.0, 1.0));
/// ```
#[track_caller]
pub fn reparameterize_backward<F: NdFloat>(
    log_var: ArrayView2<F>,
    eps: ArrayView2<F>,
    d_z: ArrayView2<F>,
    d_mean: ArrayViewMut2<F>,
    d_log_var: ArrayViewMut2<F>,
) {
    assert!(
        eps.dim() == d_z.dim(),
        "reparameterize_backward: eps {:?} vs d_z {:?}",
        eps.shape(),
        d_z.shape()
    );
    assert_row_broadcast("reparameterize_backward", &eps, "log_var", &log_var);
    let half_sigma = log_var.mapv(|v| c::<F>(0.5) * (c::<F>(0.5) * v).exp());
    let g_log_var = &(&d_z * &eps) * &half_sigma; // N × Z
    add_rows(d_mean, d_z, "d_mean");
    add_rows(d_log_var, g_log_var.view(), "d_log_var");
}

/// `acc += g`, summing the rows of `g` when `acc` has one row (a parameter shared by all rows).
#[track_caller]
fn add_rows<F: NdFloat>(mut acc: ArrayViewMut2<F>, g: ArrayView2<F>, name: &str) {
    assert_row_broadcast("gradient accumulation", &g, name, &acc.view());
    if acc.nrows() == g.nrows() {
        acc += &g;
    } else {
        acc += &g.sum_axis(Axis(0)).insert_axis(Axis(0));
    }
}

/// KL(q ‖ N(0, I)) of a diagonal Gaussian q = N(μ, diag σ²), in closed form, one value per row.
///
/// ```text
/// KL(N(μ, diag σ²) ‖ N(0, I)) = ½ Σⱼ [ σⱼ² + μⱼ² − 1 − log σⱼ² ]
/// ```
/// Kingma & Welling (2014), Appendix B (there written as −KL).
///
/// # Shapes
/// `mean`, `log_var`: N × Z. Returns N.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::kl_diag_gaussian_std_normal;
/// // μ = 1, σ² = 1: ½ (1 + 1 − 1 − 0) = 0.5.
/// let kl = kl_diag_gaussian_std_normal(array![[1.0_f64]].view(), array![[0.0]].view());
/// assert!((kl[0] - 0.5).abs() < 1e-15);
/// ```
#[track_caller]
pub fn kl_diag_gaussian_std_normal<F: NdFloat>(mean: ArrayView2<F>, log_var: ArrayView2<F>) -> Array1<F> {
    assert!(
        mean.dim() == log_var.dim(),
        "kl_diag_gaussian_std_normal: mean {:?} vs log_var {:?}",
        mean.shape(),
        log_var.shape()
    );
    let mut terms = Array2::<F>::zeros(mean.dim());
    Zip::from(&mut terms)
        .and(&mean)
        .and(&log_var)
        .for_each(|t, &m, &lv| *t = lv.exp() + m * m - F::one() - lv);
    terms.sum_axis(Axis(1)).mapv(|s| c::<F>(0.5) * s)
}

/// Backward of [`kl_diag_gaussian_std_normal`]: accumulates gradients given `d_kl` = ∂L/∂KLᵢ per row.
///
/// ```text
/// ∂KL/∂μⱼ = μⱼ                 ⇒  d_mean    += d_kl ⊙ μ
/// ∂KL/∂log σⱼ² = ½ (σⱼ² − 1)   ⇒  d_log_var += d_kl ⊙ ½ (σ² − 1)
/// ```
///
/// # Shapes
/// `mean`, `log_var`, `d_mean`, `d_log_var`: N × Z; `d_kl`: N. Gradients are added with `+=`.
///
/// ```
/// use vaelab::ndarray::{array, Array2};
/// use vaelab::base::prob::kl_diag_gaussian_std_normal_backward;
/// let (mut d_mean, mut d_log_var) = (Array2::zeros((1, 1)), Array2::zeros((1, 1)));
/// kl_diag_gaussian_std_normal_backward(array![[3.0]].view(), array![[0.0]].view(), array![1.0].view(),
///     d_mean.view_mut(), d_log_var.view_mut());
/// assert_eq!((d_mean[[0, 0]], d_log_var[[0, 0]]), (3.0, 0.0));
/// ```
#[track_caller]
pub fn kl_diag_gaussian_std_normal_backward<F: NdFloat>(
    mean: ArrayView2<F>,
    log_var: ArrayView2<F>,
    d_kl: ArrayView1<F>,
    mut d_mean: ArrayViewMut2<F>,
    mut d_log_var: ArrayViewMut2<F>,
) {
    let ok = mean.dim() == log_var.dim()
        && d_mean.dim() == mean.dim()
        && d_log_var.dim() == mean.dim()
        && d_kl.len() == mean.nrows();
    assert!(
        ok,
        "kl_diag_gaussian_std_normal_backward: mean {:?}, log_var {:?}, d_kl {:?}, d_mean {:?}, d_log_var {:?}",
        mean.shape(),
        log_var.shape(),
        d_kl.shape(),
        d_mean.shape(),
        d_log_var.shape()
    );
    let d_kl = d_kl.insert_axis(Axis(1)); // N × 1, broadcast over Z
    Zip::from(&mut d_mean).and(&mean).and_broadcast(&d_kl).for_each(|d, &m, &g| *d += g * m);
    Zip::from(&mut d_log_var)
        .and(&log_var)
        .and_broadcast(&d_kl)
        .for_each(|d, &lv, &g| *d += g * c::<F>(0.5) * (lv.exp() - F::one()));
}

/// KL(q ‖ p) between two diagonal Gaussians in closed form, one value per row.
///
/// ```text
/// KL(N(μ_q, diag σ_q²) ‖ N(μ_p, diag σ_p²))
///     = ½ Σⱼ [ log σ_pⱼ² − log σ_qⱼ² + (σ_qⱼ² + (μ_qⱼ − μ_pⱼ)²) / σ_pⱼ² − 1 ]
/// ```
/// (the Gaussian KL, e.g. Bishop 2006, exercise 2.13 in the diagonal case).
///
/// # Shapes
/// Each of `mean_q`, `log_var_q`, `mean_p`, `log_var_p`: N × Z or 1 × Z, where N is the largest
/// number of rows among them. Returns N.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::kl_diag_gaussians;
/// // q = N(0, 1), p = N(0, e²): ½ (2 − 0 + 1/e² − 1) = ½ (1 + e⁻²).
/// let kl = kl_diag_gaussians(array![[0.0]].view(), array![[0.0]].view(), array![[0.0]].view(), array![[2.0]].view());
/// assert!((kl[0] - 0.5 * (1.0 + (-2f64).exp())).abs() < 1e-15);
/// ```
#[track_caller]
pub fn kl_diag_gaussians<F: NdFloat>(
    mean_q: ArrayView2<F>,
    log_var_q: ArrayView2<F>,
    mean_p: ArrayView2<F>,
    log_var_p: ArrayView2<F>,
) -> Array1<F> {
    let all = [&mean_q, &log_var_q, &mean_p, &log_var_p];
    let n = all.iter().map(|a| a.nrows()).max().unwrap_or(0);
    let z = mean_q.ncols();
    let ok = all.iter().all(|a| a.ncols() == z && (a.nrows() == n || a.nrows() == 1));
    assert!(
        ok,
        "kl_diag_gaussians: shapes mean_q {:?}, log_var_q {:?}, mean_p {:?}, log_var_p {:?} do not broadcast to ({n}, {z})",
        mean_q.shape(),
        log_var_q.shape(),
        mean_p.shape(),
        log_var_p.shape()
    );
    let shape = (n, z);
    let mut terms = Array2::<F>::zeros(shape);
    Zip::from(&mut terms)
        .and(broadcast_rows(&mean_q, shape))
        .and(broadcast_rows(&log_var_q, shape))
        .and(broadcast_rows(&mean_p, shape))
        .and(broadcast_rows(&log_var_p, shape))
        .for_each(|t, &mq, &lq, &mp, &lp| {
            let d = mq - mp;
            *t = lp - lq + (lq.exp() + d * d) * (-lp).exp() - F::one();
        });
    terms.sum_axis(Axis(1)).mapv(|s| c::<F>(0.5) * s)
}

/// A view of `a` broadcast to `shape` (shapes are checked by the caller).
fn broadcast_rows<'b, F>(a: &'b ArrayView2<F>, shape: (usize, usize)) -> ArrayView2<'b, F> {
    a.broadcast(shape).expect("shapes checked by the caller")
}

/// Checks the N diagonal Gaussians' parameters: non-empty, `log_var` of `mean`'s shape, finite.
pub fn check_diag_gaussians(mean: ArrayView2<f64>, log_var: ArrayView2<f64>) -> Result<()> {
    if mean.nrows() == 0 || mean.ncols() == 0 {
        return Err(Error::empty("posterior means", "row and column"));
    }
    if mean.dim() != log_var.dim() {
        return Err(Error::shape("log_var", format!("{:?}", mean.dim()), format!("{:?}", log_var.dim())));
    }
    ensure_finite("mean", mean.iter())?;
    ensure_finite("log_var", log_var.iter())
}

/// log N(z_c; μ_n, diag e^(v_n)) for every pair of a point and a Gaussian: a `C × N` matrix, one
/// column per Gaussian (for lesson 05, log q(z_c | x_n) of every posterior).
///
/// ```text
/// log N(z_c; μ_n, diag e^(v_n)) = −½ Σ_u [ ln 2π + v_nu + (z_cu − μ_nu)² e^(−v_nu) ]
/// ```
///
/// # Shapes
/// `z`: C × Z; `mean`, `log_var`: N × Z. Returns C × N.
pub fn pairwise_diag_gaussian_log_density(
    z: ArrayView2<f64>,
    mean: ArrayView2<f64>,
    log_var: ArrayView2<f64>,
) -> Array2<f64> {
    let (c, zd) = z.dim();
    let n = mean.nrows();
    let mut acc = Array2::<f64>::zeros((c, n));
    for u in 0..zd {
        let zu = z.column(u).insert_axis(Axis(1)); // C × 1
        let mu = mean.column(u).insert_axis(Axis(0)); // 1 × N
        let v = log_var.column(u).insert_axis(Axis(0)); // 1 × N
        let prec = v.mapv(|v| (-v).exp()); // 1 × N
        Zip::from(&mut acc)
            .and_broadcast(&zu)
            .and_broadcast(&mu)
            .and_broadcast(&v)
            .and_broadcast(&prec)
            .for_each(|a, &z, &m, &v, &p| {
                *a += v + (z - m) * (z - m) * p;
            });
    }
    acc.mapv_inplace(|a| -0.5 * (zd as f64 * LN_2PI + a));
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, array};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use statrs::distribution::{Continuous, Normal};

    /// Composite Simpson's rule with `n` (even) intervals on [a, b]; for the smooth, rapidly
    /// decaying integrands below its error is far under the 1e-9 the tests allow.
    fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64, n: usize) -> f64 {
        let h = (b - a) / n as f64;
        let mut s = f(a) + f(b);
        for i in 1..n {
            s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(a + i as f64 * h);
        }
        s * h / 3.0
    }

    #[test]
    fn log_density_matches_statrs_normal_summed_over_dimensions() {
        let z = array![[0.3, -1.2, 2.0], [5.0, 0.0, -0.7]];
        let mean = array![[0.1, 0.5, -1.0]]; // one row, broadcast
        let log_var = array![[-1.0, 0.0, 1.5]];
        let lp = diag_gaussian_log_density(z.view(), mean.view(), log_var.view());
        for i in 0..2 {
            let expected: f64 = (0..3)
                .map(|j| Normal::new(mean[[0, j]], (0.5 * log_var[[0, j]]).exp()).unwrap().ln_pdf(z[[i, j]]))
                .sum();
            // Same formula by an independent implementation: relative error at rounding level.
            assert!((lp[i] - expected).abs() <= 1e-12 * expected.abs(), "row {i}: {} vs {expected}", lp[i]);
        }
        // f32 runs the same code: agrees with f64 to f32 precision.
        let lp32 = diag_gaussian_log_density(
            z.mapv(|v| v as f32).view(),
            mean.mapv(|v| v as f32).view(),
            log_var.mapv(|v| v as f32).view(),
        );
        for i in 0..2 {
            assert!((lp32[i] as f64 - lp[i]).abs() < 1e-5 * lp[i].abs());
        }
    }

    #[test]
    fn kl_to_standard_normal_matches_quadrature_in_1d() {
        for &(m, lv) in &[(0.0, 0.0), (1.5, -2.0), (-0.7, 1.0), (3.0, 0.5)] {
            let q = Normal::new(m, (0.5_f64 * lv).exp()).unwrap();
            let p = Normal::new(0.0, 1.0).unwrap();
            let s = (0.5_f64 * lv).exp();
            let quad = simpson(|z| q.pdf(z) * (q.ln_pdf(z) - p.ln_pdf(z)), m - 14.0 * s, m + 14.0 * s, 4000);
            let kl = kl_diag_gaussian_std_normal(array![[m]].view(), array![[lv]].view())[0];
            assert!((kl - quad).abs() < 1e-9, "μ={m}, log σ²={lv}: closed {kl} vs quadrature {quad}");
        }
    }

    #[test]
    fn kl_between_gaussians_matches_quadrature_in_1d() {
        for &(mq, lq, mp, lp) in &[(0.0, 0.0, 1.0, 0.0), (1.5, -2.0, -0.5, 1.0), (-0.7, 1.0, 0.3, -0.5)] {
            let q = Normal::new(mq, (0.5_f64 * lq).exp()).unwrap();
            let p = Normal::new(mp, (0.5_f64 * lp).exp()).unwrap();
            let s = (0.5_f64 * lq).exp();
            let quad =
                simpson(|z| q.pdf(z) * (q.ln_pdf(z) - p.ln_pdf(z)), mq - 14.0 * s, mq + 14.0 * s, 4000);
            let kl = kl_diag_gaussians(
                array![[mq]].view(),
                array![[lq]].view(),
                array![[mp]].view(),
                array![[lp]].view(),
            )[0];
            assert!((kl - quad).abs() < 1e-9, "closed {kl} vs quadrature {quad}");
        }
        // With p = N(0, I) it is the other closed form.
        let (m, lv): (Array2<f64>, Array2<f64>) =
            (array![[0.4, -1.0], [2.0, 0.1]], array![[0.3, -0.2], [-1.0, 1.0]]);
        let a = kl_diag_gaussians(
            m.view(),
            lv.view(),
            Array2::zeros((1, 2)).view(),
            Array2::zeros((1, 2)).view(),
        );
        let b = kl_diag_gaussian_std_normal(m.view(), lv.view());
        assert!((&a - &b).iter().all(|d| d.abs() < 1e-14));
    }

    /// KL(q‖p) = E_q[log q(z) − log p(z)] in Z = 3 by Monte Carlo with N = 200 000 draws from q.
    /// Allowed error: 4 standard errors of the Monte-Carlo mean.
    #[test]
    fn kl_matches_monte_carlo_in_three_dimensions() {
        let mut rng = StdRng::seed_from_u64(3);
        let (mq, lq) = (array![[0.5, -1.0, 2.0]], array![[-0.5, 0.4, 0.0]]);
        let (mp, lp) = (array![[0.0, 0.3, 1.0]], array![[0.2, -0.3, 0.8]]);
        let n = 200_000;
        let (z, _) = sample_diag_gaussian(mq.view(), lq.view(), n, &mut rng);
        let log_q = diag_gaussian_log_density(z.view(), mq.view(), lq.view());
        for (name, mean_p, log_var_p, closed) in [
            (
                "N(0, I)",
                Array2::zeros((1, 3)),
                Array2::zeros((1, 3)),
                kl_diag_gaussian_std_normal(mq.view(), lq.view())[0],
            ),
            (
                "diag p",
                mp.clone(),
                lp.clone(),
                kl_diag_gaussians(mq.view(), lq.view(), mp.view(), lp.view())[0],
            ),
        ] {
            let log_ratio = &log_q - &diag_gaussian_log_density(z.view(), mean_p.view(), log_var_p.view());
            let mc = log_ratio.mean().unwrap();
            let se = log_ratio.std(1.0) / (n as f64).sqrt();
            assert!((mc - closed).abs() < 4.0 * se, "{name}: closed {closed}, MC {mc} ± {se}");
        }
    }

    /// The sampler's mean and variance match μ and σ² within 4 standard errors (N = 100 000).
    #[test]
    fn samples_have_the_requested_moments_and_return_their_eps() {
        let mut rng = StdRng::seed_from_u64(5);
        let (mean, log_var): (Array2<f64>, Array2<f64>) = (array![[1.0, -2.0]], array![[0.0, 2.0]]);
        let n = 100_000;
        let (z, eps) = sample_diag_gaussian(mean.view(), log_var.view(), n, &mut rng);
        assert_eq!(z, reparameterize(mean.view(), log_var.view(), eps.view()));
        for j in 0..2 {
            let var = log_var[[0, j]].exp();
            let col = z.column(j);
            let m = col.mean().unwrap();
            // SE of the mean: σ/√N; SE of the sample variance of a Gaussian: σ² √(2/(N−1)).
            assert!((m - mean[[0, j]]).abs() < 4.0 * var.sqrt() / (n as f64).sqrt(), "mean {m}");
            let v = col.var(1.0);
            assert!((v - var).abs() < 4.0 * var * (2.0 / (n as f64 - 1.0)).sqrt(), "var {v} vs {var}");
        }
    }

    fn rel_err(a: f64, b: f64) -> f64 {
        (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
    }

    /// Central differences with step h = ε^(1/3) ≈ 6e-6 against the analytic gradients.
    #[test]
    fn kl_and_reparameterization_gradients_match_finite_differences() {
        let h = f64::EPSILON.cbrt();
        let mean = array![[0.3, -1.1], [2.0, 0.4]];
        let log_var = array![[-0.6, 0.9], [0.2, -1.5]];
        let d_kl = array![0.7, -1.3]; // L = Σᵢ d_klᵢ KLᵢ
        let (mut d_mean, mut d_log_var) = (Array2::zeros((2, 2)), Array2::zeros((2, 2)));
        kl_diag_gaussian_std_normal_backward(
            mean.view(),
            log_var.view(),
            d_kl.view(),
            d_mean.view_mut(),
            d_log_var.view_mut(),
        );
        let loss =
            |m: &Array2<f64>, lv: &Array2<f64>| kl_diag_gaussian_std_normal(m.view(), lv.view()).dot(&d_kl);
        for idx in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let (mut mp, mut mm) = (mean.clone(), mean.clone());
            mp[idx] += h;
            mm[idx] -= h;
            let fd = (loss(&mp, &log_var) - loss(&mm, &log_var)) / (2.0 * h);
            // ∂L/∂μ = d_kl ⊙ μ
            assert!(rel_err(d_mean[idx], fd) < 1e-7, "d_mean{idx:?}: {} vs {fd}", d_mean[idx]);
            let (mut lp, mut lm) = (log_var.clone(), log_var.clone());
            lp[idx] += h;
            lm[idx] -= h;
            let fd = (loss(&mean, &lp) - loss(&mean, &lm)) / (2.0 * h);
            // ∂L/∂log σ² = d_kl ⊙ ½ (σ² − 1)
            assert!(rel_err(d_log_var[idx], fd) < 1e-7, "d_log_var{idx:?}: {} vs {fd}", d_log_var[idx]);
        }

        // Reparameterisation with one shared row (1 × Z) and N = 3 samples: gradients summed over rows.
        let (m1, lv1) = (array![[0.3, -1.1]], array![[-0.6, 0.9]]);
        let eps = array![[0.5, -1.0], [1.5, 0.2], [-0.3, 2.0]];
        let coef: Array2<f64> = Array::from_shape_vec((3, 2), vec![1.0, -2.0, 0.5, 3.0, -1.0, 0.25]).unwrap();
        let loss = |m: &Array2<f64>, lv: &Array2<f64>| {
            let z = reparameterize(m.view(), lv.view(), eps.view());
            (&z * &z * &coef).sum() // L = Σ coef ⊙ z², so d_z = 2 coef ⊙ z
        };
        let z = reparameterize(m1.view(), lv1.view(), eps.view());
        let d_z = &z * &coef * 2.0;
        let (mut d_m, mut d_lv) = (Array2::zeros((1, 2)), Array2::zeros((1, 2)));
        reparameterize_backward(lv1.view(), eps.view(), d_z.view(), d_m.view_mut(), d_lv.view_mut());
        for idx in [(0, 0), (0, 1)] {
            let (mut mp, mut mm) = (m1.clone(), m1.clone());
            mp[idx] += h;
            mm[idx] -= h;
            let fd = (loss(&mp, &lv1) - loss(&mm, &lv1)) / (2.0 * h);
            // ∂L/∂μ = Σₙ d_zₙ
            assert!(rel_err(d_m[idx], fd) < 1e-7, "d_mean{idx:?}: {} vs {fd}", d_m[idx]);
            let (mut lp, mut lm) = (lv1.clone(), lv1.clone());
            lp[idx] += h;
            lm[idx] -= h;
            let fd = (loss(&m1, &lp) - loss(&m1, &lm)) / (2.0 * h);
            // ∂L/∂log σ² = Σₙ d_zₙ ½ σ εₙ
            assert!(rel_err(d_lv[idx], fd) < 1e-7, "d_log_var{idx:?}: {} vs {fd}", d_lv[idx]);
        }
    }
}
