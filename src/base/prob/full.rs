//! Full-covariance Gaussians N(μ, Σ = L Lᵀ) in f64, through nalgebra's Cholesky factorisation and
//! triangular solves (the toy models' posteriors and the full-covariance q).

use nalgebra::DMatrix;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::LN_2PI;
use crate::base::error::{Error, Result};

/// An ndarray matrix as a nalgebra one.
pub(crate) fn to_dmatrix(a: ArrayView2<f64>) -> DMatrix<f64> {
    DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

/// A nalgebra matrix as an ndarray one.
pub(crate) fn from_dmatrix(m: &DMatrix<f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// The lower Cholesky factor L of a symmetric positive-definite `cov` (Σ = L Lᵀ).
///
/// # Shapes
/// `cov`: Z × Z; returns Z × Z (zeros above the diagonal).
///
/// # Errors
/// [`Error::Shape`] if `cov` is not square, [`Error::InvalidParameter`] (naming `name`) if it is
/// not finite, symmetric (to 1e-10 relative) and positive definite.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::cholesky;
/// let l = cholesky("cov", array![[4.0, 2.0], [2.0, 5.0]].view()).unwrap();
/// assert_eq!(l, array![[2.0, 0.0], [1.0, 2.0]]);
/// // Eigenvalues 3 and −1: refused in one line.
/// let err = cholesky("cov", array![[1.0, 2.0], [2.0, 1.0]].view()).unwrap_err().to_string();
/// assert!(err.starts_with("invalid cov = a 2 × 2 matrix with smallest eigenvalue -"), "{err}");
/// assert!(err.ends_with(": must be positive definite") && !err.contains('\n'), "{err}");
/// ```
pub fn cholesky(name: &str, cov: ArrayView2<f64>) -> Result<Array2<f64>> {
    let (r, c) = cov.dim();
    if r != c || r == 0 {
        return Err(Error::shape(name, "a non-empty square matrix", format!("{r} × {c}")));
    }
    let scale = cov.iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    for ((i, j), &v) in cov.indexed_iter() {
        if !v.is_finite() {
            return Err(Error::invalid(format!("{name}[{i}][{j}]"), v, "must be finite"));
        }
        if (v - cov[[j, i]]).abs() > 1e-10 * scale {
            return Err(Error::invalid(
                format!("{name}[{i}][{j}]"),
                v,
                format!("must equal {name}[{j}][{i}] = {}", cov[[j, i]]),
            ));
        }
    }
    match to_dmatrix(cov).cholesky() {
        Some(ch) => Ok(from_dmatrix(&ch.l())),
        None => {
            // One line, not the matrix: its size and the eigenvalue that is not positive.
            let smallest = to_dmatrix(cov).symmetric_eigen().eigenvalues.min();
            Err(Error::invalid(
                name,
                format!("a {r} × {r} matrix with smallest eigenvalue {smallest:e}"),
                "must be positive definite",
            ))
        }
    }
}

#[track_caller]
fn assert_lower(op: &str, chol: &ArrayView2<f64>, z: usize) {
    assert!(chol.dim() == (z, z), "{op}: chol has shape {:?}, needs ({z}, {z})", chol.shape());
}

/// Log-density of N(μ, L Lᵀ), one value per row of `z`.
///
/// ```text
/// log N(z; μ, LLᵀ) = −½ Z ln 2π − Σᵢ ln Lᵢᵢ − ½ ‖L⁻¹ (z − μ)‖²
///
///   L  lower-triangular with positive diagonal (the Cholesky factor of Σ), Z the dimension
/// ```
///
/// # Shapes
/// `z`: N × Z, `mean`: Z, `chol`: Z × Z. Returns N.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::full_gaussian_log_density;
/// // Σ = diag(4, 1) at the mean: −ln 2π − ln 2.
/// let lp = full_gaussian_log_density(array![[1.0, 1.0]].view(), array![1.0, 1.0].view(), array![[2.0, 0.0], [0.0, 1.0]].view());
/// assert!((lp[0] - (-(2.0 * std::f64::consts::PI).ln() - 2f64.ln())).abs() < 1e-14);
/// ```
#[track_caller]
pub fn full_gaussian_log_density(
    z: ArrayView2<f64>,
    mean: ArrayView1<f64>,
    chol: ArrayView2<f64>,
) -> Array1<f64> {
    let dim = z.ncols();
    assert!(mean.len() == dim, "full_gaussian_log_density: mean {:?} vs z {:?}", mean.shape(), z.shape());
    assert_lower("full_gaussian_log_density", &chol, dim);
    let centred = (&z - &mean).reversed_axes(); // Z × N
    let l = to_dmatrix(chol);
    let u = l.solve_lower_triangular(&to_dmatrix(centred.view())).expect("L has a positive diagonal"); // Z × N
    let log_det_half: f64 = chol.diag().iter().map(|v| v.ln()).sum();
    Array1::from_iter(
        u.column_iter().map(|col| -0.5 * dim as f64 * LN_2PI - log_det_half - 0.5 * col.norm_squared()),
    )
}

/// KL(N(μ_q, L_q L_qᵀ) ‖ N(μ_p, L_p L_pᵀ)) in closed form.
///
/// ```text
/// KL(q ‖ p) = ½ [ tr(Σ_p⁻¹ Σ_q) + (μ_p − μ_q)ᵀ Σ_p⁻¹ (μ_p − μ_q) − Z + ln det Σ_p − ln det Σ_q ]
///           = ½ [ ‖L_p⁻¹ L_q‖²_F + ‖L_p⁻¹ (μ_p − μ_q)‖² − Z ] + Σᵢ ln (L_p)ᵢᵢ − Σᵢ ln (L_q)ᵢᵢ
/// ```
/// (Bishop 2006, the Gaussian KL; Σ = L Lᵀ with L the Cholesky factor.)
///
/// # Shapes
/// `mean_q`, `mean_p`: Z; `chol_q`, `chol_p`: Z × Z.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::prob::kl_full_gaussians;
/// // q = N(0, 1), p = N(1, 1): ½ (1 + 1 − 1) = ½.
/// let kl = kl_full_gaussians(array![0.0].view(), array![[1.0]].view(), array![1.0].view(), array![[1.0]].view());
/// assert!((kl - 0.5).abs() < 1e-15);
/// ```
#[track_caller]
pub fn kl_full_gaussians(
    mean_q: ArrayView1<f64>,
    chol_q: ArrayView2<f64>,
    mean_p: ArrayView1<f64>,
    chol_p: ArrayView2<f64>,
) -> f64 {
    let dim = mean_q.len();
    assert!(
        mean_p.len() == dim,
        "kl_full_gaussians: mean_q {:?} vs mean_p {:?}",
        mean_q.shape(),
        mean_p.shape()
    );
    assert_lower("kl_full_gaussians (q)", &chol_q, dim);
    assert_lower("kl_full_gaussians (p)", &chol_p, dim);
    let lp = to_dmatrix(chol_p);
    let a = lp.solve_lower_triangular(&to_dmatrix(chol_q)).expect("L_p has a positive diagonal");
    let d = to_dmatrix((&mean_p - &mean_q).insert_axis(ndarray::Axis(1)).view());
    let u = lp.solve_lower_triangular(&d).expect("L_p has a positive diagonal");
    let log_det_p: f64 = chol_p.diag().iter().map(|v| v.ln()).sum();
    let log_det_q: f64 = chol_q.diag().iter().map(|v| v.ln()).sum();
    0.5 * (a.norm_squared() + u.norm_squared() - dim as f64) + log_det_p - log_det_q
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::prob::kl_diag_gaussians;
    use ndarray::{Array2, array};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use rand_distr::StandardNormal;
    use statrs::distribution::{Continuous, MultivariateNormal};

    #[test]
    fn log_density_matches_statrs_multivariate_normal() {
        let cov = array![[2.0, 0.3, -0.4], [0.3, 1.0, 0.2], [-0.4, 0.2, 0.5]];
        let mean = array![0.5, -1.0, 2.0];
        let chol = cholesky("cov", cov.view()).unwrap();
        let mvn = MultivariateNormal::new(mean.to_vec(), cov.iter().copied().collect()).unwrap();
        let z = array![[0.0, 0.0, 0.0], [1.0, -2.0, 2.5], [-3.0, 1.0, 0.0]];
        let lp = full_gaussian_log_density(z.view(), mean.view(), chol.view());
        for i in 0..3 {
            let expected = mvn.ln_pdf(&nalgebra::DVector::from_vec(z.row(i).to_vec()));
            // Two implementations of one formula: agreement to rounding (1e-12 relative).
            assert!((lp[i] - expected).abs() < 1e-12 * expected.abs(), "row {i}: {} vs {expected}", lp[i]);
        }
    }

    /// KL(q‖p) = E_q[log q − log p] by Monte Carlo in Z = 3 with N = 200 000 draws; 4 SE allowed.
    #[test]
    fn kl_matches_monte_carlo_and_the_diagonal_closed_form() {
        let cov_q = array![[1.0, 0.5, 0.0], [0.5, 2.0, -0.3], [0.0, -0.3, 0.7]];
        let cov_p = array![[1.5, -0.2, 0.1], [-0.2, 0.8, 0.0], [0.1, 0.0, 1.2]];
        let (mq, mp) = (array![0.3, -0.5, 1.0], array![0.0, 0.4, 0.6]);
        let (lq, lp) = (cholesky("cov_q", cov_q.view()).unwrap(), cholesky("cov_p", cov_p.view()).unwrap());
        let kl = kl_full_gaussians(mq.view(), lq.view(), mp.view(), lp.view());
        let mut rng = StdRng::seed_from_u64(11);
        let n = 200_000;
        let eps = Array2::<f64>::from_shape_simple_fn((n, 3), || rng.sample(StandardNormal));
        let z = eps.dot(&lq.t()) + &mq; // z = μ + L ε, N × Z
        let r = full_gaussian_log_density(z.view(), mq.view(), lq.view())
            - full_gaussian_log_density(z.view(), mp.view(), lp.view());
        let (mc, se) = (r.mean().unwrap(), r.std(1.0) / (n as f64).sqrt());
        assert!((mc - kl).abs() < 4.0 * se, "closed {kl}, MC {mc} ± {se}");

        // Diagonal covariances: the diagonal closed form (an independent formula).
        let (vq, vp) = (array![0.5, 2.0], array![1.5, 0.3]);
        let diag = |v: &Array1<f64>| Array2::from_diag(&v.mapv(f64::sqrt));
        let full = kl_full_gaussians(
            array![0.1, 0.2].view(),
            diag(&vq).view(),
            array![-0.4, 1.0].view(),
            diag(&vp).view(),
        );
        let d = kl_diag_gaussians(
            array![[0.1, 0.2]].view(),
            vq.mapv(f64::ln).insert_axis(ndarray::Axis(0)).view(),
            array![[-0.4, 1.0]].view(),
            vp.mapv(f64::ln).insert_axis(ndarray::Axis(0)).view(),
        )[0];
        assert!((full - d).abs() < 1e-13, "{full} vs {d}");
    }

    #[test]
    fn cholesky_rejects_bad_covariances_by_name() {
        let e = cholesky("cov", array![[1.0, 0.5], [0.4, 1.0]].view()).unwrap_err().to_string();
        assert!(e.contains("cov[0][1]"), "{e}");
        let e = cholesky("cov", array![[1.0, 0.0, 0.0]].view()).unwrap_err().to_string();
        assert!(e.contains("1 × 3"), "{e}");
        let e = cholesky("cov", array![[f64::NAN]].view()).unwrap_err().to_string();
        assert!(e.contains("cov[0][0] = NaN"), "{e}");
    }
}
