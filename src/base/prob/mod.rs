//! Probability building blocks shared by the bounds lessons (§2, §3) and the VAE engine.
//!
//! Everything here is generic over the float type `F: ndarray::NdFloat`, so the f32 training engine
//! and the f64 checks run one copy of the maths. Arrays are 2-D with **rows = samples or batch
//! elements** and columns = dimensions; each function reduces over the columns and returns one
//! number per row.
//!
//! | block | functions |
//! |---|---|
//! | diagonal Gaussian N(μ, diag exp(log σ²)) | [`diag_gaussian_log_density`], [`sample_diag_gaussian`], [`reparameterize`], [`reparameterize_backward`] |
//! | KL divergences in closed form | [`kl_diag_gaussian_std_normal`] (+ `_backward`), [`kl_diag_gaussians`] |
//! | Bernoulli from logits | [`bernoulli_log_likelihood`] (+ `_backward`), [`softplus`], [`log_sigmoid`], [`sigmoid`] |
//! | full-covariance Gaussian N(μ, LLᵀ) (f64, nalgebra) | [`cholesky`], [`full_gaussian_log_density`], [`kl_full_gaussians`] |
//! | log-sum-exp | [`log_sum_exp`], [`log_mean_exp`], [`log_sum_exp_1d`], [`log_mean_exp_1d`] |
//!
//! Derived in notebook `02-derivation-1-jensen.ipynb` (the ELBO's terms) and used by every later one.
//!
//! # Shapes
//!
//! `N` rows (samples or batch elements) × `Z` (latent) or `D` (data) columns. Parameter arrays
//! (`mean`, `log_var`) have either `N` rows or **one** row, which is broadcast to all `N` rows (the
//! K samples of one data point share one q).

mod bernoulli;
pub(crate) mod full;
mod gaussian;
mod logsumexp;

pub use bernoulli::{
    bernoulli_log_likelihood, bernoulli_log_likelihood_backward, log_sigmoid, sigmoid, softplus,
};
pub use full::{cholesky, full_gaussian_log_density, kl_full_gaussians};
pub(crate) use full::{from_dmatrix, to_dmatrix};
pub use gaussian::{
    check_diag_gaussians, diag_gaussian_log_density, kl_diag_gaussian_std_normal,
    kl_diag_gaussian_std_normal_backward, kl_diag_gaussians, pairwise_diag_gaussian_log_density,
    reparameterize, reparameterize_backward, sample_diag_gaussian,
};
pub use logsumexp::{log_mean_exp, log_mean_exp_1d, log_sum_exp, log_sum_exp_1d};

use ndarray::{ArrayView2, NdFloat};

use crate::base::error::{Error, Result, ensure_finite};

/// `F::from(x)` for a constant the code writes in f64; every `NdFloat` can hold it.
#[inline]
pub(crate) fn c<F: NdFloat>(x: f64) -> F {
    F::from(x).expect("an f64 constant fits every NdFloat")
}

/// ln(2π), the constant of every Gaussian log-density.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Asserts that `params` has `Z` columns and either the rows of `values` or one row.
#[track_caller]
pub(crate) fn assert_row_broadcast<A, B>(
    op: &str,
    values: &ArrayView2<A>,
    name: &str,
    params: &ArrayView2<B>,
) {
    let (n, z) = values.dim();
    let (pn, pz) = params.dim();
    assert!(
        pz == z && (pn == n || pn == 1),
        "{op}: {name} has shape {:?}, needs ({n}, {z}) or (1, {z}) to match {:?}",
        params.shape(),
        values.shape()
    );
}

/// How far the probabilities' sum may be from 1: `|Σ p_k − 1| ≤ 10⁻⁹`.
pub const PROB_SUM_TOL: f64 = 1e-9;

/// Checks a probability vector: non-empty, finite, each `p_k ≥ 0`, `|Σ p_k − 1| ≤ PROB_SUM_TOL`.
/// Returns the sum. Errors name `name[k]` and the value.
pub fn check_probabilities(name: &str, p: &[f64]) -> Result<f64> {
    if p.is_empty() {
        return Err(Error::empty(name, "probability"));
    }
    ensure_finite(name, p)?;
    if let Some((k, &pk)) = p.iter().enumerate().find(|(_, pk)| **pk < 0.0) {
        return Err(Error::invalid(format!("{name}[{k}]"), pk, "a probability must be ≥ 0"));
    }
    let sum: f64 = p.iter().sum();
    if (sum - 1.0).abs() > PROB_SUM_TOL {
        return Err(Error::invalid(
            format!("sum of {name}"),
            sum,
            format!("must be 1 within {PROB_SUM_TOL:e}"),
        ));
    }
    Ok(sum)
}
