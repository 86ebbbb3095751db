//! Amortised inference (Cremer, Li & Duvenaud 2018, "Inference Suboptimality in Variational
//! Autoencoders"): one encoder network q_φ(z|x) for every x, and the two gaps it leaves.
//!
//! ```text
//! log p(x) − ELBO(q_φ(·|x)) =  [log p(x) − ELBO(q*_x)]   +   [ELBO(q*_x) − ELBO(q_φ(·|x))]
//!                              approximation gap (≥ 0)       amortisation gap (≥ 0)
//! q*_x = argmax_{q ∈ family} ELBO(q)                         (Cremer et al. 2018, eqs. 2–4)
//! ```
//! The approximation gap is a property of the family (lesson 03); the amortisation gap is the
//! encoder's: the price of predicting q from x with one network instead of fitting q to each x.
//!
//! On the linear-Gaussian toy ([`LinearGaussian`], exact posterior N(μ(x), Λ⁻¹) with
//! Λ = I + WᵀW/σ²) both gaps of the diagonal Gaussian family have closed forms:
//!
//! ```text
//! best diagonal q*_x = N(μ(x), diag(1/Λⱼⱼ))                  (Bishop 2006, §10.1.2)
//! approximation gap  = KL(q*_x ‖ p(z|x)) = ½ (Σⱼ ln Λⱼⱼ − ln det Λ)        (the same for every x)
//! amortisation gap of q = N(m, diag s²):
//!   ELBO(q*_x) − ELBO(q) = KL(q ‖ p(z|x)) − KL(q*_x ‖ p(z|x))
//!                        = ½ (m − μ)ᵀ Λ (m − μ)  +  ½ Σⱼ (Λⱼⱼ sⱼ² − 1 − ln(Λⱼⱼ sⱼ²))
//!                          mean part                  variance part (each term ≥ 0: t − 1 − ln t ≥ 0)
//! ```
//! (the Gaussian KL ½[tr(Λ S) + δᵀΛδ − Z − ln det S − ln det Λ], minus its value at q*). μ(x) is
//! linear in x and q*'s variances do not depend on x, so a *linear* encoder can output q*_x exactly:
//! its amortisation gap can go to 0, while an encoder whose means lie on one line (one hidden
//! unit) keeps at least [`line_floor`].
//!
//! The encoder here is an [`Mlp`] (hand-written backward, `f64`) whose output is [mean | log s²],
//! trained on a data set drawn from the model by full-batch Adam on the mean ELBO, with the exact
//! gradient of the closed-form ELBO ([`elbo_diag_exact`]) or the reparameterised one
//! ([`crate::lessons::bounds::elbo_grad_diag`]). The digit VAE's gaps come from
//! [`crate::lessons::amortisation::amortisation_gap_with_fits`] (the encoder's q against a fitted
//! q) and importance sampling with the fitted q as proposal (log p(x), which has no closed form
//! there): [`digit_gaps`].
//!
//! Notebook: `03b-amortised-inference.ipynb`; command: `vaelab experiment amortised`.
//!
//! # Shapes
//! Data sets are N × D (rows are points); encoder outputs N × Z means and N × Z log-variances.

use nalgebra::SymmetricEigen;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, s};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::prob::{LN_2PI, cholesky, kl_full_gaussians, to_dmatrix};
use crate::base::seeds::Stream;
use crate::base::stats::{Estimate, paired_difference};
use crate::engine::data::{DigitSplit, binarize_fixed, evenly_spaced};
use crate::engine::nn::{Activation, Mlp, MlpConfig, Optimizer, OptimizerConfig, Parameters};
use crate::engine::store::ModelStore;
use crate::engine::train::{TrainSet, Trainer};
use crate::engine::vae::VaeConfig;
use crate::lessons::amortisation::{AmortisationGap, DecoderModel, amortisation_gap_with_fits};
use crate::lessons::bounds::{FitConfig, draw, elbo_grad_diag, importance_log_evidence};
use crate::lessons::toy::{LatentModel, LinearGaussian, Posterior};

#[cfg(test)]
mod tests;

/// The data set the encoder is trained on (drawn from the model).
pub const TRAIN_DATA: Stream = Stream::new("lesson 03b: training data", 0);
/// The held-out points the gaps are measured on.
pub const EVAL_DATA: Stream = Stream::new("lesson 03b: evaluation data", 1);
/// The encoders' initial weights.
pub const ENCODER_INIT: Stream = Stream::new("lesson 03b: encoder initialisation", 2);
/// ε of the reparameterised gradient and of Monte-Carlo ELBOs.
pub const EPSILON: Stream = Stream::new("lesson 03b: ε draws", 3);
/// The digit VAE's evaluation: the per-point fits and the importance samples.
pub const DIGIT_EVALUATION: Stream = Stream::new("lesson 03b: digit gaps", 4);

/// Training points of the lesson's data set.
pub const N_TRAIN: usize = 256;
/// Held-out points the lesson measures the gaps on.
pub const N_EVAL: usize = 256;

/// The lesson's model, lessons 02–03's `data/models/linear_gaussian.json` (a unit test checks they
/// are equal): W = [[1, 0.8], [0.6, 1.1], [−0.4, 0.9]], b = (0.1, −0.2, 0.3), σ = 0.5.
pub fn lesson_model() -> LinearGaussian {
    LinearGaussian::new(
        ndarray::array![[1.0, 0.8], [0.6, 1.1], [-0.4, 0.9]],
        ndarray::array![0.1, -0.2, 0.3],
        0.5,
    )
    .expect("a valid model")
}

/// An amortised encoder: one MLP maps x to q_φ(z|x) = N(m(x), diag exp(v(x))).
///
/// ```text
/// [m(x) | v(x)] = MLP_φ(x),   hidden layers φ(u) = tanh u, the last layer affine
/// ```
///
/// # Shapes
/// input `N × D`, output `N × 2Z` (columns `..Z` the means, `Z..` the log-variances).
#[derive(Clone, Debug, PartialEq)]
pub struct Encoder {
    /// The network.
    pub net: Mlp<f64>,
    /// Z.
    pub latent_dim: usize,
}

impl Encoder {
    /// An encoder D → hidden… → 2Z with tanh between layers (`hidden` empty: a linear encoder),
    /// initialised as [`crate::engine::nn::Linear::new`].
    ///
    /// # Errors
    /// `InvalidParameter` for a zero width.
    pub fn new<R: Rng + ?Sized>(
        data_dim: usize,
        hidden: &[usize],
        latent_dim: usize,
        rng: &mut R,
    ) -> Result<Self> {
        if latent_dim == 0 {
            return Err(Error::invalid("latent_dim", 0, "must be >= 1"));
        }
        if data_dim == 0 {
            return Err(Error::invalid("data_dim", 0, "must be >= 1"));
        }
        if let Some(i) = hidden.iter().position(|&h| h == 0) {
            return Err(Error::invalid(format!("hidden[{i}]"), 0, "a layer needs at least one unit"));
        }
        let mut layer_dims = hidden.to_vec();
        layer_dims.push(2 * latent_dim);
        let config = MlpConfig {
            input_dim: data_dim,
            layer_dims,
            activation: Activation::Tanh,
            activate_output: false,
        };
        Ok(Encoder { net: Mlp::new(&config, rng)?, latent_dim })
    }

    /// (means, log-variances) of q_φ(z|xₙ) for every row xₙ.
    ///
    /// # Shapes
    /// `x`: N × D → (N × Z, N × Z).
    pub fn encode(&self, x: ArrayView2<f64>) -> (Array2<f64>, Array2<f64>) {
        let (out, _) = self.net.forward(x);
        let z = self.latent_dim;
        (out.slice(s![.., ..z]).to_owned(), out.slice(s![.., z..]).to_owned())
    }

    /// Number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.net.scalar_count()
    }
}

/// The ELBO of q = N(m, diag s²), s² = exp(v), on the linear-Gaussian model, and its exact
/// gradient (the closed form of [`LinearGaussian::elbo_gaussian`] with a diagonal S):
///
/// ```text
/// ELBO(m, v) = −½ D ln(2πσ²) − (‖r − W m‖² + Σⱼ sⱼ² ‖W·ⱼ‖²)/(2σ²)        r = x − b
///              − ½ Z ln 2π − ½ (‖m‖² + Σⱼ sⱼ²) + ½ Z (1 + ln 2π) + ½ Σⱼ vⱼ
/// ∂ELBO/∂m  = Wᵀ (r − W m)/σ² − m  = Λ (μ − m)
/// ∂ELBO/∂vⱼ = ½ (1 − Λⱼⱼ sⱼ²),      Λⱼⱼ = 1 + ‖W·ⱼ‖²/σ²
/// ```
/// Its maximum, where both vanish, is q* = N(μ, diag(1/Λⱼⱼ)) ([`best_diagonal_q`]).
///
/// # Shapes
/// `x`: D; `mean`, `log_var`: Z. Returns (ELBO, d_mean: Z, d_log_var: Z).
pub fn elbo_diag_exact(
    model: &LinearGaussian,
    x: ArrayView1<f64>,
    mean: ArrayView1<f64>,
    log_var: ArrayView1<f64>,
) -> (f64, Array1<f64>, Array1<f64>) {
    let (values, d_mean, d_log_var) = elbo_diag_exact_rows(
        model,
        x.insert_axis(Axis(0)),
        mean.insert_axis(Axis(0)),
        log_var.insert_axis(Axis(0)),
    );
    (values[0], d_mean.remove_axis(Axis(0)), d_log_var.remove_axis(Axis(0)))
}

/// [`elbo_diag_exact`] for N points at once, row n with its own q = N(mₙ, diag exp(vₙ)) (the
/// same formulas as matrix products: the encoder's training step).
///
/// # Shapes
/// `x`: N × D; `mean`, `log_var`: N × Z. Returns (ELBO: N, d_mean: N × Z, d_log_var: N × Z).
pub fn elbo_diag_exact_rows(
    model: &LinearGaussian,
    x: ArrayView2<f64>,
    mean: ArrayView2<f64>,
    log_var: ArrayView2<f64>,
) -> (Array1<f64>, Array2<f64>, Array2<f64>) {
    let (w, b, sigma) = (model.w(), model.b(), model.sigma());
    let (d, z) = w.dim();
    let s2 = sigma * sigma;
    let resid = &x - b - mean.dot(&w.t()); // N × D: r − W m per row
    let col_sq = w.map_axis(Axis(0), |c| c.dot(&c)); // Z: ‖W·ⱼ‖²
    let var = log_var.mapv(f64::exp); // N × Z
    let constant =
        -0.5 * d as f64 * (LN_2PI + s2.ln()) - 0.5 * z as f64 * LN_2PI + 0.5 * z as f64 * (1.0 + LN_2PI);
    let values = Array1::from_shape_fn(x.nrows(), |n| {
        let (r, m, s, v) = (resid.row(n), mean.row(n), var.row(n), log_var.row(n));
        constant - (r.dot(&r) + s.dot(&col_sq)) / (2.0 * s2) - 0.5 * (m.dot(&m) + s.sum()) + 0.5 * v.sum()
    });
    let d_mean = resid.dot(w) / s2 - mean;
    let lambda_diag = col_sq.mapv(|c| 1.0 + c / s2);
    let d_log_var = (var * &lambda_diag).mapv(|t| 0.5 * (1.0 - t));
    (values, d_mean, d_log_var)
}

/// The best q of the diagonal Gaussian family for x: q*_x = N(μ(x), diag(1/Λⱼⱼ)), the posterior
/// mean with the reciprocals of the posterior precision's diagonal as variances (Bishop 2006,
/// §10.1.2: the minimiser of KL(q ‖ p(z|x)) over factorised q for a Gaussian p).
///
/// # Shapes
/// `x`: D. Returns (mean: Z, log-variance: Z).
///
/// # Errors
/// `x` of the wrong length or not finite.
pub fn best_diagonal_q(model: &LinearGaussian, x: ArrayView1<f64>) -> Result<(Array1<f64>, Array1<f64>)> {
    let Some(Posterior::Gaussian { mean, .. }) = model.posterior(x)? else {
        unreachable!("the linear-Gaussian posterior is Gaussian")
    };
    Ok((mean, model.posterior_precision().diag().mapv(|p| -p.ln())))
}

/// The approximation gap of the diagonal family on this model, the same at every x:
///
/// ```text
/// KL(q*_x ‖ p(z|x)) = ½ (Σⱼ ln Λⱼⱼ − ln det Λ)
/// ```
/// (the Gaussian KL at q*; 0 exactly when Λ is diagonal, i.e. the posterior is uncorrelated).
pub fn diagonal_approximation_gap(model: &LinearGaussian) -> Result<f64> {
    let lambda = model.posterior_precision();
    let l = cholesky("posterior precision", lambda.view())?;
    let log_det: f64 = 2.0 * l.diag().iter().map(|v| v.ln()).sum::<f64>();
    Ok(0.5 * (lambda.diag().iter().map(|v| v.ln()).sum::<f64>() - log_det))
}

/// The amortisation gap of q = N(m, diag exp(v)) at x in closed form, split in two:
///
/// ```text
/// mean part     = ½ (m − μ)ᵀ Λ (m − μ)
/// variance part = ½ Σⱼ (tⱼ − 1 − ln tⱼ),   tⱼ = Λⱼⱼ exp(vⱼ)
/// ```
/// (KL(q ‖ p(z|x)) − KL(q* ‖ p(z|x)), see the module docs). Both parts are ≥ 0 and vanish only at
/// q = q*_x.
///
/// # Shapes
/// `x`: D; `mean`, `log_var`: Z. Returns (mean part, variance part).
///
/// # Errors
/// `x` invalid; `mean` or `log_var` not of length Z.
pub fn amortisation_parts(
    model: &LinearGaussian,
    x: ArrayView1<f64>,
    mean: ArrayView1<f64>,
    log_var: ArrayView1<f64>,
) -> Result<(f64, f64)> {
    let (a, b) = amortisation_parts_rows(
        model,
        x.insert_axis(Axis(0)),
        mean.insert_axis(Axis(0)),
        log_var.insert_axis(Axis(0)),
    )?;
    Ok((a[0], b[0]))
}

/// [`amortisation_parts`] for N points at once (row n: xₙ and its q).
///
/// # Shapes
/// `x`: N × D; `mean`, `log_var`: N × Z. Returns (mean parts: N, variance parts: N).
///
/// # Errors
/// Rows of `x` invalid; `mean` or `log_var` not N × Z.
pub fn amortisation_parts_rows(
    model: &LinearGaussian,
    x: ArrayView2<f64>,
    mean: ArrayView2<f64>,
    log_var: ArrayView2<f64>,
) -> Result<(Array1<f64>, Array1<f64>)> {
    let (n, z) = (x.nrows(), model.latent_dim());
    for (name, v) in [("mean", mean), ("log_var", log_var)] {
        if v.dim() != (n, z) {
            return Err(Error::shape(name, format!("{n} × {z} (N × Z)"), format!("{:?}", v.dim())));
        }
    }
    let mu = posterior_means(model, x)?;
    let lambda = model.posterior_precision();
    let delta = &mean - &mu; // N × Z
    let mean_part = (delta.dot(&lambda) * &delta).sum_axis(Axis(1)) * 0.5;
    let t = log_var.mapv(f64::exp) * lambda.diag();
    let variance_part = t.mapv(|t| t - 1.0 - t.ln()).sum_axis(Axis(1)) * 0.5;
    Ok((mean_part, variance_part))
}

/// The posterior means μ(xₙ) = Σ Wᵀ (xₙ − b)/σ² of every row (Tipping & Bishop 1999, eq. 7), with
/// Σ = Λ⁻¹ from [`LatentModel::posterior`].
///
/// # Shapes
/// `x`: N × D → N × Z.
///
/// # Errors
/// No rows, rows of the wrong length or not finite.
pub fn posterior_means(model: &LinearGaussian, x: ArrayView2<f64>) -> Result<Array2<f64>> {
    if x.nrows() == 0 {
        return Err(Error::TooFewValues { count: 0 });
    }
    for row in x.rows() {
        model.check_x(row)?;
    }
    let Some(Posterior::Gaussian { cov, .. }) = model.posterior(x.row(0))? else {
        unreachable!("the linear-Gaussian posterior is Gaussian")
    };
    let s2 = model.sigma() * model.sigma();
    Ok((&x - model.b()).dot(model.w()).dot(&cov) / s2)
}

/// The two gaps at one point, each number computed by its own route.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointGaps {
    /// log p(x), exact ([`LatentModel::log_marginal`], the Z × Z Cholesky route).
    pub log_px: f64,
    /// ELBO(q*_x) of the best diagonal q, in closed form ([`LinearGaussian::elbo_gaussian`]).
    pub best_elbo: f64,
    /// ELBO(q_φ(·|x)) of the encoder's q, in closed form.
    pub encoder_elbo: f64,
    /// log p(x) − ELBO(q*_x).
    pub approximation: f64,
    /// ELBO(q*_x) − ELBO(q_φ(·|x)).
    pub amortisation: f64,
    /// KL(q*_x ‖ p(z|x)) by the Gaussian KL formula (no log p(x), no ELBO): the approximation gap
    /// by a second route.
    pub kl_best: f64,
    /// ½ (m − μ)ᵀ Λ (m − μ) ([`amortisation_parts`]).
    pub mean_part: f64,
    /// ½ Σⱼ (tⱼ − 1 − ln tⱼ) ([`amortisation_parts`]).
    pub variance_part: f64,
}

/// The gaps of an encoder over a set of points: per point and averaged (mean ± SE across points).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gaps {
    /// Per point, in the order of the rows.
    pub points: Vec<PointGaps>,
    /// Mean approximation gap.
    pub approximation: Estimate,
    /// Mean amortisation gap.
    pub amortisation: Estimate,
    /// Mean log p(x) − ELBO(encoder).
    pub total: Estimate,
}

/// Both gaps of `encoder` at every row of `x` (Cremer et al. 2018, eqs. 2–4), diagonal family.
///
/// # Shapes
/// `x`: N × D, N ≥ 2.
///
/// # Errors
/// Fewer than 2 rows ([`Error::TooFewValues`]), rows of the wrong length or not finite, an
/// encoder of the wrong input width or latent size, a log-variance so large that q's covariance is
/// not positive definite.
pub fn gaps(model: &LinearGaussian, encoder: &Encoder, x: ArrayView2<f64>) -> Result<Gaps> {
    check_encoder(model, encoder, x)?;
    let (means, log_vars) = encoder.encode(x);
    let mut points = Vec::with_capacity(x.nrows());
    for (i, xi) in x.rows().into_iter().enumerate() {
        let log_px = model.log_marginal(xi)?;
        let (best_mean, best_log_var) = best_diagonal_q(model, xi)?;
        let best_elbo = model.elbo_gaussian(
            xi,
            best_mean.view(),
            Array2::from_diag(&best_log_var.mapv(f64::exp)).view(),
        )?;
        let (m, v) = (means.row(i), log_vars.row(i));
        let encoder_elbo = model.elbo_gaussian(xi, m, Array2::from_diag(&v.mapv(f64::exp)).view())?;
        let Some(Posterior::Gaussian { mean: post_mean, cov: post_cov }) = model.posterior(xi)? else {
            unreachable!("the linear-Gaussian posterior is Gaussian")
        };
        let post_chol = cholesky("posterior covariance", post_cov.view())?;
        let best_chol = Array2::from_diag(&best_log_var.mapv(|lv| (0.5 * lv).exp()));
        let kl_best =
            kl_full_gaussians(best_mean.view(), best_chol.view(), post_mean.view(), post_chol.view());
        let (mean_part, variance_part) = amortisation_parts(model, xi, m, v)?;
        points.push(PointGaps {
            log_px,
            best_elbo,
            encoder_elbo,
            approximation: log_px - best_elbo,
            amortisation: best_elbo - encoder_elbo,
            kl_best,
            mean_part,
            variance_part,
        });
    }
    let approx: Vec<f64> = points.iter().map(|p| p.approximation).collect();
    let amort: Vec<f64> = points.iter().map(|p| p.amortisation).collect();
    let log_px: Vec<f64> = points.iter().map(|p| p.log_px).collect();
    let enc: Vec<f64> = points.iter().map(|p| p.encoder_elbo).collect();
    Ok(Gaps {
        approximation: Estimate::from_values(&approx)?,
        amortisation: Estimate::from_values(&amort)?,
        total: paired_difference(&log_px, &enc)?,
        points,
    })
}

/// The mean amortisation gap of `encoder` over the rows of `x` by the closed-form parts alone
/// (cheap: no log p(x), no ELBO): (1/N) Σₙ (mean part + variance part).
///
/// # Shapes
/// `x`: N × D, N ≥ 1.
///
/// # Errors
/// As [`gaps`] (one row suffices).
pub fn mean_amortisation_gap(model: &LinearGaussian, encoder: &Encoder, x: ArrayView2<f64>) -> Result<f64> {
    check_encoder(model, encoder, x)?;
    let (means, log_vars) = encoder.encode(x);
    let (a, b) = amortisation_parts_rows(model, x, means.view(), log_vars.view())?;
    Ok((a.sum() + b.sum()) / x.nrows() as f64)
}

fn check_encoder(model: &LinearGaussian, encoder: &Encoder, x: ArrayView2<f64>) -> Result<()> {
    if x.nrows() == 0 {
        return Err(Error::TooFewValues { count: 0 });
    }
    let input = encoder.net.layers[0].fan_in();
    if input != model.data_dim() || x.ncols() != input {
        return Err(Error::shape(
            "x / encoder input",
            format!("{} columns (D)", model.data_dim()),
            format!("x has {} columns, the encoder takes {input}", x.ncols()),
        ));
    }
    if encoder.latent_dim != model.latent_dim() {
        return Err(Error::shape("encoder latent_dim", model.latent_dim(), encoder.latent_dim));
    }
    Ok(())
}

/// The smallest mean amortisation gap of any encoder whose means lie on one line (an encoder with
/// a single hidden unit: m(x) = c + a·h(x), h scalar), over the rows of `x`:
///
/// ```text
/// min over lines ℓ of (1/N) Σₙ ½ min_{m ∈ ℓ} (m − μₙ)ᵀ Λ (m − μₙ)  =  ½ Σ_{k ≥ 2} λₖ
/// ```
/// with λ₁ ≥ λ₂ ≥ … the eigenvalues of the covariance (1/N) Σₙ (yₙ − ȳ)(yₙ − ȳ)ᵀ of yₙ = Lᵀ μₙ,
/// Λ = L Lᵀ (in the coordinates y the Λ-distance is Euclidean, and the best line through points is
/// their first principal axis: Eckart & Young 1936). The variance part can still be 0 (constant
/// log-variances), so this is the floor of the whole gap.
///
/// # Shapes
/// `x`: N × D, N ≥ 2.
///
/// # Errors
/// Fewer than 2 rows, invalid rows.
pub fn line_floor(model: &LinearGaussian, x: ArrayView2<f64>) -> Result<f64> {
    if x.nrows() < 2 {
        return Err(Error::TooFewValues { count: x.nrows() });
    }
    let l = cholesky("posterior precision", model.posterior_precision().view())?;
    let y = posterior_means(model, x)?.dot(&l); // row n: (Lᵀ μₙ)ᵀ
    let centred = &y - &y.mean_axis(Axis(0)).expect("N ≥ 2");
    let cov = centred.t().dot(&centred) / x.nrows() as f64;
    let mut eig: Vec<f64> = SymmetricEigen::new(to_dmatrix(cov.view())).eigenvalues.iter().copied().collect();
    eig.sort_by(|a, b| b.total_cmp(a));
    Ok(0.5 * eig[1..].iter().sum::<f64>())
}

/// Which gradient of the ELBO the encoder is trained with.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Gradient {
    /// The exact gradient of the closed-form ELBO ([`elbo_diag_exact`]).
    Exact,
    /// The reparameterised estimate with `samples` draws of ε per point and step
    /// ([`crate::lessons::bounds::elbo_grad_diag`]).
    Reparameterised {
        /// Draws of ε per point and step.
        samples: usize,
    },
}

/// Settings of [`train_encoder`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderTraining {
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// The ELBO gradient.
    pub gradient: Gradient,
}

impl Default for EncoderTraining {
    /// 2000 steps of Adam at 0.01 with the exact gradient.
    fn default() -> Self {
        EncoderTraining { steps: 2000, learning_rate: 0.01, gradient: Gradient::Exact }
    }
}

/// The mean ELBO J(φ) = (1/N) Σₙ ELBO(q_φ(·|xₙ)) and the gradient of the loss −J, accumulated
/// (`+=`) into `d_net`:
///
/// ```text
/// ∂(−J)/∂[m | v]ₙ = −(1/N) [∂ELBO/∂m | ∂ELBO/∂v] at xₙ      (elbo_diag_exact, or elbo_grad_diag
///                                                            on `samples` fresh ε per point)
/// ∂(−J)/∂φ        = Mlp::backward of those rows
/// ```
/// Returns J (exact), or its reparameterised Monte-Carlo estimate. The caller checks the rows
/// ([`train_encoder`] does); a non-finite J or gradient is returned as is.
///
/// # Shapes
/// `x`: N × D; `d_net` has the encoder's parameters.
pub fn loss_and_grads<R: Rng + ?Sized>(
    model: &LinearGaussian,
    encoder: &Encoder,
    x: ArrayView2<f64>,
    gradient: Gradient,
    d_net: &mut Mlp<f64>,
    rng: &mut R,
) -> f64 {
    let (n, z) = (x.nrows(), encoder.latent_dim);
    let (out, cache) = encoder.net.forward(x);
    let mut d_out = Array2::zeros((n, 2 * z));
    let scale = -1.0 / n as f64; // descend on −J: ∂(−J)/∂outₙ = −(1/N) ∂ELBOₙ/∂outₙ
    let objective = match gradient {
        Gradient::Exact => {
            let (values, d_m, d_v) =
                elbo_diag_exact_rows(model, x, out.slice(s![.., ..z]), out.slice(s![.., z..]));
            d_out.slice_mut(s![.., ..z]).scaled_add(scale, &d_m);
            d_out.slice_mut(s![.., z..]).scaled_add(scale, &d_v);
            values.sum() / n as f64
        }
        Gradient::Reparameterised { samples } => {
            let mut objective = 0.0;
            for (i, xi) in x.rows().into_iter().enumerate() {
                let (m, v) = (out.slice(s![i, ..z]), out.slice(s![i, z..]));
                let eps = Array2::<f64>::from_shape_simple_fn((samples, z), || rng.sample(StandardNormal));
                let (value, d_m, d_v) = elbo_grad_diag(model, xi, m, v, eps.view());
                objective += value / n as f64;
                d_out.slice_mut(s![i, ..z]).scaled_add(scale, &d_m);
                d_out.slice_mut(s![i, z..]).scaled_add(scale, &d_v);
            }
            objective
        }
    };
    encoder.net.backward(cache, d_out.view(), d_net);
    objective
}

/// Trains `encoder` on the rows of `x` by full-batch Adam ascent on the mean ELBO:
///
/// ```text
/// J(φ) = (1/N) Σₙ ELBO(q_φ(·|xₙ)),   ∂J/∂[m | v]ₙ = (1/N) [∂ELBO/∂m | ∂ELBO/∂v] at xₙ,
/// then back through the MLP (Mlp::backward); Adam descends on −J.
/// ```
/// `on_step(t, encoder)` is called after every step t = 1 … steps (for traces). Returns J before
/// each step (exact, or its Monte-Carlo estimate with the reparameterised gradient).
///
/// # Shapes
/// `x`: N × D.
///
/// # Errors
/// No rows, mismatched widths, `steps` = 0, zero samples, a bad step size, a non-finite objective
/// or gradient ([`Error::Diverged`]).
pub fn train_encoder<R: Rng + ?Sized>(
    model: &LinearGaussian,
    encoder: &mut Encoder,
    x: ArrayView2<f64>,
    config: &EncoderTraining,
    rng: &mut R,
    mut on_step: impl FnMut(usize, &Encoder),
) -> Result<Vec<f64>> {
    check_encoder(model, encoder, x)?;
    for row in x.rows() {
        model.check_x(row)?;
    }
    if config.steps == 0 {
        return Err(Error::invalid("steps", 0, "need at least 1"));
    }
    if let Gradient::Reparameterised { samples: 0 } = config.gradient {
        return Err(Error::invalid("samples", 0, "need at least 1"));
    }
    let mut optimizer = Optimizer::new(OptimizerConfig::adam(config.learning_rate), &encoder.net)?;
    let mut grads = encoder.net.zeros_like();
    crate::base::budget::ensure_memory(
        &format!("training an encoder for {} steps (one objective value a step)", config.steps),
        (config.steps as u128).saturating_mul(std::mem::size_of::<f64>() as u128),
    )?;
    let mut trace = Vec::with_capacity(config.steps);
    for step in 1..=config.steps {
        let objective = loss_and_grads(model, encoder, x, config.gradient, &mut grads, rng);
        if !objective.is_finite() || grads.first_non_finite().is_some() {
            return Err(Error::Diverged {
                epoch: 1,
                step,
                tensor: "mean ELBO or its gradient".into(),
                detail: format!("mean ELBO {objective}"),
            });
        }
        trace.push(objective);
        optimizer.step(&mut encoder.net, &mut grads);
        if let Some((t, i, v)) = encoder.net.first_non_finite() {
            return Err(Error::Diverged {
                epoch: 1,
                step,
                tensor: encoder.net.tensor_name(t),
                detail: format!("element {i} = {v}"),
            });
        }
        on_step(step, encoder);
    }
    Ok(trace)
}

/// The toy experiment's data: `n_train` points to train on and `n_eval` held-out points to
/// measure on, drawn from the model with the streams [`TRAIN_DATA`] and [`EVAL_DATA`].
///
/// # Shapes
/// Returns (n_train × D, n_eval × D).
pub fn toy_data(
    model: &LinearGaussian,
    n_train: usize,
    n_eval: usize,
    seed: u64,
) -> (Array2<f64>, Array2<f64>) {
    let (_, train) = model.sample(n_train, &mut TRAIN_DATA.rng(seed));
    let (_, eval) = model.sample(n_eval, &mut EVAL_DATA.rng(seed));
    (train, eval)
}

/// One encoder of the sweep: hidden widths and training length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncoderSpec {
    /// Hidden widths (empty: linear).
    pub hidden: Vec<usize>,
    /// Training steps.
    pub steps: usize,
}

impl EncoderSpec {
    /// "linear" or "tanh 8-4" style name, with the steps.
    pub fn name(&self) -> String {
        let shape = if self.hidden.is_empty() {
            "linear".to_string()
        } else {
            format!("tanh {}", self.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join("-"))
        };
        format!("{shape}, {} steps", self.steps)
    }
}

/// One row of the sweep: an encoder and its gaps on the evaluation points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    /// The encoder.
    pub spec: EncoderSpec,
    /// Its parameter count.
    pub parameters: usize,
    /// Mean approximation gap (the family's: the same for every encoder).
    pub approximation: Estimate,
    /// Mean amortisation gap.
    pub amortisation: Estimate,
    /// Mean log p(x) − ELBO(encoder).
    pub total: Estimate,
}

/// Trains one encoder per spec (each from [`ENCODER_INIT`] of `seed`, exact gradient, Adam at
/// `learning_rate`) on `train` and measures its gaps on `eval`.
///
/// # Errors
/// As [`Encoder::new`], [`train_encoder`] and [`gaps`].
pub fn sweep(
    model: &LinearGaussian,
    train: ArrayView2<f64>,
    eval: ArrayView2<f64>,
    specs: &[EncoderSpec],
    learning_rate: f64,
    seed: u64,
) -> Result<Vec<SweepRow>> {
    let mut rows = Vec::with_capacity(specs.len());
    for spec in specs {
        let mut encoder =
            Encoder::new(model.data_dim(), &spec.hidden, model.latent_dim(), &mut ENCODER_INIT.rng(seed))?;
        let config = EncoderTraining { steps: spec.steps, learning_rate, gradient: Gradient::Exact };
        train_encoder(model, &mut encoder, train, &config, &mut EPSILON.rng(seed), |_, _| {})?;
        let g = gaps(model, &encoder, eval)?;
        rows.push(SweepRow {
            spec: spec.clone(),
            parameters: encoder.parameter_count(),
            approximation: g.approximation,
            amortisation: g.amortisation,
            total: g.total,
        });
    }
    Ok(rows)
}

/// The sweep as a table (one line per encoder).
pub fn sweep_table(rows: &[SweepRow]) -> String {
    let mut out = format!(
        "{:24} {:>7} {:>20} {:>20} {:>20}\n",
        "encoder", "params", "approximation gap", "amortisation gap", "log P(x) − ELBO"
    );
    for r in rows {
        out += &format!(
            "{:24} {:>7} {:>11.5} ± {:.5} {:>11.5} ± {:.5} {:>11.5} ± {:.5}\n",
            r.spec.name(),
            r.parameters,
            r.approximation.mean,
            r.approximation.stderr,
            r.amortisation.mean,
            r.amortisation.stderr,
            r.total.mean,
            r.total.stderr
        );
    }
    out
}

/// Settings of [`digit_gaps`]: a small digit VAE trained briefly, then measured on a few test
/// digits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigitConfig {
    /// Hidden widths of the VAE (encoder trunk and decoder).
    pub hidden: Vec<usize>,
    /// Z.
    pub latent_dim: usize,
    /// Training digits (the first of the 8,000).
    pub n_train: usize,
    /// Epochs.
    pub epochs: usize,
    /// Test digits measured (evenly spaced over the 2,000, so over the classes; binarised at 0.5), ≥ 2.
    pub n_points: usize,
    /// Adam steps of each per-point fit of q*.
    pub fit_steps: usize,
    /// Draws of z for each ELBO estimate.
    pub elbo_samples: usize,
    /// Importance samples K for log p(x).
    pub is_samples: usize,
    /// Seed (training, and the streams of the evaluation).
    pub seed: u64,
}

impl DigitConfig {
    /// The lesson's: 784-64-4 trained 3 epochs on the 8,000 training digits, 12 test digits,
    /// fits of 300 steps, 200 draws per ELBO, K = 1000.
    pub fn small() -> Self {
        DigitConfig {
            hidden: vec![64],
            latent_dim: 4,
            n_train: 8000,
            epochs: 3,
            n_points: 12,
            fit_steps: 300,
            elbo_samples: 200,
            is_samples: 1000,
            seed: 0,
        }
    }
}

/// The two gaps of a trained digit VAE, per test point, with log p(x) estimated.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigitGaps {
    /// The settings.
    pub config: DigitConfig,
    /// The classes of the measured test digits, in order.
    pub labels: Vec<u8>,
    /// ELBO(fitted q*) − ELBO(encoder's q), from [`amortisation_gap_with_fits`].
    pub amortisation: AmortisationGap,
    /// log p̂(x) per point: importance sampling with the fitted q* as proposal, K = `is_samples`
    /// ([`importance_log_evidence`]; consistent, biased low for finite K).
    pub log_px: Vec<Estimate>,
    /// log p̂(x) − ELBO(q*) paired over the points: the approximation gap, estimated low on
    /// average by log p(x) − E log p̂(x) ≥ 0.
    pub approximation: Estimate,
    /// log p̂(x) − ELBO(encoder) paired over the points (the sum of the two).
    pub total: Estimate,
    /// The trained-model store's line for the VAE ("loaded from the store: …" or "trained …,
    /// stored: …", [`crate::engine::store::Stage`]); not serialised.
    #[serde(skip)]
    pub store: String,
}

/// Trains a small digit VAE and measures both gaps on `n_points` test digits evenly spaced over the
/// test set, so over the classes ([`evenly_spaced`]; the set is stored class by class) (Cremer et
/// al. 2018, §5):
/// the amortisation gap by [`amortisation_gap_with_fits`] (a diagonal q fitted to each point,
/// started at the encoder's q), log p(x) by importance sampling with each fitted q* as proposal
/// (Cremer et al. use such estimates, AIS and IWAE, for log p(x) of a VAE).
///
/// ```text
/// log p̂(x) = log (1/K) Σₖ p(x, zₖ)/q*(zₖ),   zₖ ∼ q*_x          (the IWAE bound with K samples)
/// ```
///
/// The VAE is trained through the trained-model store ([`ModelStore::from_env`]): a second call
/// with the same configuration loads it, bit for bit what training gives ([`DigitGaps::store`]).
///
/// # Errors
/// A bad size, a training or fitting divergence.
pub fn digit_gaps(config: &DigitConfig, digits: &DigitSplit) -> Result<DigitGaps> {
    if config.n_points < 2 {
        return Err(Error::invalid("n_points", config.n_points, "need at least 2 (a standard error)"));
    }
    if config.n_train == 0 || config.n_train > digits.train.images.nrows() {
        return Err(Error::invalid(
            "n_train",
            config.n_train,
            format!("must be in 1..={}", digits.train.images.nrows()),
        ));
    }
    if config.n_points > digits.test.images.nrows() {
        return Err(Error::invalid(
            "n_points",
            config.n_points,
            format!("at most {} test digits", digits.test.images.nrows()),
        ));
    }
    if config.is_samples < 2 {
        return Err(Error::invalid("is_samples", config.is_samples, "need at least 2"));
    }
    let vae_config =
        VaeConfig::bernoulli(digits.train.images.ncols(), config.hidden.clone(), config.latent_dim);
    let mut trainer =
        Trainer::new(vae_config, crate::engine::train::TrainConfig::anchor(config.epochs, config.seed))?;
    let set =
        TrainSet { x: digits.train.images.slice(s![..config.n_train, ..]), labels: None, binarize: true };
    // Through the trained-model store: loaded, bit for bit what training gives, if trained before.
    let stage = ModelStore::from_env().train_epochs(&mut trainer, &set, config.epochs, &mut |_| {})?;
    // Evenly spaced over the test set, which is stored class by class: the first 12 are all zeros.
    let rows = evenly_spaced(digits.test.images.nrows(), config.n_points);
    let x = binarize_fixed(digits.test.images.select(Axis(0), &rows).view()).mapv(f64::from);
    let vae = trainer.vae.cast::<f64>();
    let mut rng = DIGIT_EVALUATION.rng(config.seed);
    let fit = FitConfig { steps: config.fit_steps, samples_per_step: 8, ..FitConfig::default() };
    let (amortisation, fits) =
        amortisation_gap_with_fits(&vae, x.view(), &fit, config.elbo_samples, &mut rng)?;
    let model = DecoderModel::new(&vae)?;
    let mut log_px = Vec::with_capacity(fits.len());
    for (xi, q) in x.rows().into_iter().zip(&fits) {
        log_px.push(importance_log_evidence(&draw(&model, xi, q, config.is_samples, &mut rng)?)?);
    }
    let lp: Vec<f64> = log_px.iter().map(|e| e.mean).collect();
    let fitted: Vec<f64> = amortisation.points.iter().map(|p| p.fitted_elbo).collect();
    let encoder: Vec<f64> = amortisation.points.iter().map(|p| p.encoder_elbo).collect();
    Ok(DigitGaps {
        config: config.clone(),
        labels: rows.iter().map(|&r| digits.test.labels[r]).collect(),
        approximation: paired_difference(&lp, &fitted)?,
        total: paired_difference(&lp, &encoder)?,
        amortisation,
        log_px,
        store: stage.to_string(),
    })
}

/// The mean amortisation gap on `eval` of one encoder during its training on `train`, after the
/// steps in `at` (increasing; the encoder from [`ENCODER_INIT`] of `seed`, exact gradient, Adam at
/// `learning_rate`). Step 0 is the untrained encoder.
///
/// # Shapes
/// `train`: N × D, `eval`: M × D. Returns one (step, gap) per entry of `at`.
///
/// # Errors
/// `at` empty or not increasing; as [`train_encoder`] and [`mean_amortisation_gap`].
pub fn gap_trace(
    model: &LinearGaussian,
    train: ArrayView2<f64>,
    eval: ArrayView2<f64>,
    hidden: &[usize],
    at: &[usize],
    learning_rate: f64,
    seed: u64,
) -> Result<Vec<(usize, f64)>> {
    if at.is_empty() || at.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid("at", format!("{at:?}"), "must be non-empty and increasing"));
    }
    let mut encoder =
        Encoder::new(model.data_dim(), hidden, model.latent_dim(), &mut ENCODER_INIT.rng(seed))?;
    let mut trace = Vec::with_capacity(at.len());
    if at[0] == 0 {
        trace.push((0, mean_amortisation_gap(model, &encoder, eval)?));
    }
    let last = *at.last().expect("non-empty");
    if last > 0 {
        let config = EncoderTraining { steps: last, learning_rate, gradient: Gradient::Exact };
        let mut failure = None;
        train_encoder(model, &mut encoder, train, &config, &mut EPSILON.rng(seed), |step, enc| {
            if failure.is_none() && at.binary_search(&step).is_ok() {
                match mean_amortisation_gap(model, enc, eval) {
                    Ok(g) => trace.push((step, g)),
                    Err(e) => failure = Some(e),
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
    }
    Ok(trace)
}

/// The amortisation gap against training steps, log–log, one line per encoder, with the
/// approximation gap and the line floor as dashed levels.
pub fn trace_plot(traces: &[(String, Vec<(usize, f64)>)], approximation: f64, floor: f64) -> plotly::Plot {
    let mut fig = crate::plot::Figure::new("amortisation gap on held-out points during training")
        .log_x("training step")
        .log_y("mean amortisation gap (nats)");
    let mut steps_all: Vec<f64> = Vec::new();
    for (name, trace) in traces {
        let kept: Vec<&(usize, f64)> = trace.iter().filter(|(s, g)| *s > 0 && *g > 0.0).collect();
        let s: Vec<f64> = kept.iter().map(|(s, _)| *s as f64).collect();
        let g: Vec<f64> = kept.iter().map(|(_, g)| *g).collect();
        steps_all.extend(&s);
        fig = fig.line(name, &s, &g);
    }
    let lo = steps_all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = steps_all.iter().copied().fold(0.0_f64, f64::max);
    if lo.is_finite() && hi > 0.0 {
        fig = fig
            .dashed("approximation gap (diagonal family)", &[lo, hi], &[approximation, approximation])
            .dashed("floor of any one-unit encoder", &[lo, hi], &[floor, floor]);
    }
    fig.plot()
}

/// Settings of [`experiment`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExperimentConfig {
    /// Training points.
    pub n_train: usize,
    /// Held-out points.
    pub n_eval: usize,
    /// Training steps of every encoder of the sweep.
    pub steps: usize,
    /// The hidden widths of the one-layer tanh encoders (the linear encoder is always included).
    pub hidden_sizes: Vec<usize>,
    /// Adam's step size.
    pub learning_rate: f64,
    /// The digit part (None: skipped).
    pub digits: Option<DigitConfig>,
    /// Seed of everything.
    pub seed: u64,
}

impl ExperimentConfig {
    /// The lesson's: 256 + 256 points, 3000 steps, tanh widths 1, 2, 4, 8, 32, step size 0.01,
    /// [`DigitConfig::small`].
    pub fn lesson(seed: u64) -> Self {
        ExperimentConfig {
            n_train: N_TRAIN,
            n_eval: N_EVAL,
            steps: 3000,
            hidden_sizes: vec![1, 2, 4, 8, 32],
            learning_rate: 0.01,
            digits: Some(DigitConfig { seed, ..DigitConfig::small() }),
            seed,
        }
    }
}

/// Everything [`experiment`] measures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExperimentResult {
    /// The settings.
    pub config: ExperimentConfig,
    /// ½ (Σⱼ ln Λⱼⱼ − ln det Λ) ([`diagonal_approximation_gap`]).
    pub approximation_gap: f64,
    /// [`line_floor`] on the held-out points.
    pub line_floor: f64,
    /// One row per encoder: linear, then tanh of each width.
    pub sweep: Vec<SweepRow>,
    /// (name, (step, gap) …) of the linear and the one-unit encoders ([`gap_trace`]).
    pub traces: Vec<(String, Vec<(usize, f64)>)>,
    /// The digit VAE's gaps, when asked for.
    pub digits: Option<DigitGaps>,
}

/// The lesson's experiment: the sweep of encoders on the linear-Gaussian toy, the traces of the
/// linear and one-unit encoders, and (with `digits`) the gaps of a small digit VAE.
/// `progress(stage)` is called after each stage: every encoder of the sweep (its
/// [`EncoderSpec::name`]), each trace (`trace linear`, `trace tanh 1`) and the digits (`digits`).
///
/// # Errors
/// Sizes of 0, a hidden width of 0, a divergence; the digit part's errors; `InvalidParameter`
/// when `config.digits` is set but no digits are given.
pub fn experiment(
    config: &ExperimentConfig,
    digits: Option<&DigitSplit>,
    progress: &mut dyn FnMut(&str),
) -> Result<ExperimentResult> {
    if config.n_train == 0 {
        return Err(Error::invalid("n_train", 0, "must be >= 1"));
    }
    if config.n_eval < 2 {
        return Err(Error::invalid("n_eval", config.n_eval, "must be >= 2 (a standard error)"));
    }
    if let Some(i) = config.hidden_sizes.iter().position(|&h| h == 0) {
        return Err(Error::invalid(format!("hidden_sizes[{i}]"), 0, "a layer needs at least one unit"));
    }
    let model = lesson_model();
    let (train, eval) = toy_data(&model, config.n_train, config.n_eval, config.seed);
    let mut specs = vec![EncoderSpec { hidden: vec![], steps: config.steps }];
    specs.extend(config.hidden_sizes.iter().map(|&h| EncoderSpec { hidden: vec![h], steps: config.steps }));
    let mut rows = Vec::with_capacity(specs.len());
    for spec in &specs {
        // Each encoder starts from the same seeds, so one at a time is the same as all at once.
        rows.extend(sweep(
            &model,
            train.view(),
            eval.view(),
            std::slice::from_ref(spec),
            config.learning_rate,
            config.seed,
        )?);
        progress(&spec.name());
    }
    let at = log_spaced_steps(config.steps);
    let mut traces = Vec::new();
    for hidden in [vec![], vec![1]] {
        let name = EncoderSpec { hidden: hidden.clone(), steps: config.steps }.name();
        let name = name.split(',').next().unwrap_or("").to_string();
        traces.push((
            name.clone(),
            gap_trace(&model, train.view(), eval.view(), &hidden, &at, config.learning_rate, config.seed)?,
        ));
        progress(&format!("trace {name}"));
    }
    let digit_result = match (&config.digits, digits) {
        (Some(c), Some(d)) => {
            let gaps = digit_gaps(c, d)?;
            progress("digits");
            Some(gaps)
        }
        (Some(_), None) => return Err(Error::invalid("digits", "none", "the digit part needs the digits")),
        (None, _) => None,
    };
    Ok(ExperimentResult {
        config: config.clone(),
        approximation_gap: diagonal_approximation_gap(&model)?,
        line_floor: line_floor(&model, eval.view())?,
        sweep: rows,
        traces,
        digits: digit_result,
    })
}

/// 0, then about 12 steps per decade up to `steps` (distinct, increasing, ending at `steps`).
pub fn log_spaced_steps(steps: usize) -> Vec<usize> {
    let mut at = vec![0];
    let n = ((steps.max(1) as f64).log10() * 12.0).ceil() as usize;
    for k in 0..=n {
        let s = ((steps.max(1) as f64).powf(k as f64 / n.max(1) as f64)).round() as usize;
        if s > *at.last().expect("non-empty") && s <= steps {
            at.push(s);
        }
    }
    if *at.last().expect("non-empty") != steps {
        at.push(steps);
    }
    at
}
