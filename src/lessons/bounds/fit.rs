//! The best q in a Gaussian family for one x, by stochastic gradient ascent on the ELBO with
//! reparameterisation gradients written by hand.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng;

use super::q::Q;
use crate::base::error::{Error, Result};
use crate::base::prob::reparameterize_backward;
use crate::engine::nn::{Optimizer, OptimizerConfig};
use crate::lessons::toy::ContinuousLatent;

/// Which Gaussian family q is fitted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// N(μ, diag σ²): parameters μ and log σ².
    Diagonal,
    /// N(μ, L Lᵀ): parameters μ, the strict lower triangle of L and log Lᵢᵢ.
    Full,
}

/// Settings of [`fit_gaussian`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitConfig {
    /// The family.
    pub family: Family,
    /// Adam steps.
    pub steps: usize,
    /// Draws of ε per step (N).
    pub samples_per_step: usize,
    /// Adam's step size.
    pub learning_rate: f64,
}

impl Default for FitConfig {
    /// Diagonal family, 3000 steps of 32 draws, step size 0.02.
    fn default() -> Self {
        FitConfig { family: Family::Diagonal, steps: 3000, samples_per_step: 32, learning_rate: 0.02 }
    }
}

/// A fitted q and the ELBO estimate of every step.
#[derive(Debug, Clone)]
pub struct Fit {
    /// The fitted q (parameters averaged over the second half of the steps).
    pub q: Q,
    /// The Monte-Carlo ELBO estimate at each step (N draws each).
    pub elbo_trace: Vec<f64>,
}

/// The ELBO estimate at fixed ε and its gradient, diagonal family.
///
/// ```text
/// zₙ = μ + σ ⊙ εₙ,  σ = exp(½ log σ²)
/// Ê(μ, log σ²) = (1/N) Σₙ [log p(x, zₙ) − log q(zₙ)],   log q(zₙ) = −½ Σⱼ (ln 2π + log σⱼ² + εₙⱼ²)
/// ∂Ê/∂μ     = (1/N) Σₙ gₙ                                 gₙ = ∂ log p(x, z)/∂z at zₙ
/// ∂Ê/∂log σ² = (1/N) Σₙ gₙ ⊙ ½ σ ⊙ εₙ + ½                  (the ½ from the entropy term)
/// ```
/// Kingma & Welling (2014), eq. (7) (the SGVB estimator Ã); Titsias & Lázaro-Gredilla (2014).
/// Gradients are of the ELBO (to be ascended).
///
/// # Shapes
/// `x`: D; `mean`, `log_var`: Z; `eps`: N × Z. Returns (Ê, d_mean: Z, d_log_var: Z).
pub fn elbo_grad_diag<M: ContinuousLatent + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    mean: ArrayView1<f64>,
    log_var: ArrayView1<f64>,
    eps: ArrayView2<f64>,
) -> (f64, Array1<f64>, Array1<f64>) {
    let q = Q::DiagGaussian { mean: mean.to_owned(), log_var: log_var.to_owned() };
    let z = q.reparameterize(eps);
    let n = eps.nrows() as f64;
    let value = (model.log_joint(x, z.view()) - q.log_density(z.view())).mean().expect("N ≥ 1");
    let d_z = model.d_log_joint_dz(x, z.view()) / n; // N × Z: ∂Ê/∂zₙ through log p only
    let (mut d_mean, mut d_log_var) = (Array2::zeros((1, mean.len())), Array2::zeros((1, mean.len())));
    reparameterize_backward(
        log_var.insert_axis(Axis(0)),
        eps,
        d_z.view(),
        d_mean.view_mut(),
        d_log_var.view_mut(),
    );
    d_log_var += 0.5; // ∂/∂log σ² of −log q(zₙ) = ½ per dimension
    (value, d_mean.remove_axis(Axis(0)), d_log_var.remove_axis(Axis(0)))
}

/// L from its unconstrained parameters: strict lower triangle as is, diagonal exp(raw_ii).
///
/// # Shapes
/// `raw`: Z × Z (entries above the diagonal are ignored). Returns Z × Z.
pub fn chol_from_raw(raw: ArrayView2<f64>) -> Array2<f64> {
    Array2::from_shape_fn(raw.dim(), |(i, j)| match i.cmp(&j) {
        std::cmp::Ordering::Greater => raw[[i, j]],
        std::cmp::Ordering::Equal => raw[[i, i]].exp(),
        std::cmp::Ordering::Less => 0.0,
    })
}

/// The ELBO estimate at fixed ε and its gradient, full-covariance family.
///
/// ```text
/// zₙ = μ + L εₙ,  Lᵢⱼ = rawᵢⱼ (i > j),  Lᵢᵢ = exp(rawᵢᵢ)
/// log q(zₙ) = −½ Z ln 2π − Σᵢ rawᵢᵢ − ½ ‖εₙ‖²
/// ∂Ê/∂μ      = (1/N) Σₙ gₙ
/// ∂Ê/∂rawᵢⱼ = Gᵢⱼ  (i > j),     Gᵢⱼ = (1/N) Σₙ gₙᵢ εₙⱼ
/// ∂Ê/∂rawᵢᵢ = Gᵢᵢ Lᵢᵢ + 1       (the 1 from the entropy term)
/// ```
/// (Titsias & Lázaro-Gredilla 2014, doubly stochastic VI with a Cholesky factor.)
///
/// # Shapes
/// `x`: D; `mean`: Z; `raw`: Z × Z; `eps`: N × Z. Returns (Ê, d_mean: Z, d_raw: Z × Z, zero above
/// the diagonal).
pub fn elbo_grad_full<M: ContinuousLatent + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    mean: ArrayView1<f64>,
    raw: ArrayView2<f64>,
    eps: ArrayView2<f64>,
) -> (f64, Array1<f64>, Array2<f64>) {
    let chol = chol_from_raw(raw);
    let q = Q::FullGaussian { mean: mean.to_owned(), chol: chol.clone() };
    let z = q.reparameterize(eps);
    let n = eps.nrows() as f64;
    let value = (model.log_joint(x, z.view()) - q.log_density(z.view())).mean().expect("N ≥ 1");
    let g = model.d_log_joint_dz(x, z.view()); // N × Z
    let d_mean = g.sum_axis(Axis(0)) / n;
    let big_g = g.t().dot(&eps) / n; // Z × Z: Gᵢⱼ = mean gₙᵢ εₙⱼ
    let d_raw = Array2::from_shape_fn(raw.dim(), |(i, j)| match i.cmp(&j) {
        std::cmp::Ordering::Greater => big_g[[i, j]],
        std::cmp::Ordering::Equal => big_g[[i, i]] * chol[[i, i]] + 1.0,
        std::cmp::Ordering::Less => 0.0,
    });
    (value, d_mean, d_raw)
}

/// Fits q for one x by stochastic gradient ascent on the ELBO, starting from `init`.
///
/// ```text
/// φ ← φ + Adam(∇_φ Ê(φ; ε₁..ε_N)),   εₙ ∼ N(0, I) fresh each step
/// ```
/// Adam is the crate's one copy, [`crate::engine::nn::Optimizer`] with PyTorch's defaults, descending on
/// −Ê.
/// The returned q averages the parameters over the second half of the steps (Polyak–Ruppert
/// averaging), which removes most of the jitter the gradient noise leaves. Its gap
/// log p(x) − ELBO(q) is the approximation gap of the family at x (Cremer, Li & Duvenaud 2018, §3).
///
/// # Errors
/// Zero steps or samples, a non-positive step size, an invalid x, an `init` that is not a Gaussian
/// of the model's Z, or a non-finite ELBO or gradient ([`Error::Diverged`], naming the step).
///
/// ```
/// use vaelab::lessons::bounds::{exact_elbo, fit_gaussian, prior_q, FitConfig};
/// use vaelab::ndarray::array;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::lessons::toy::{LatentModel, LinearGaussian, Model};
/// let lg = LinearGaussian::new(array![[1.0]], array![0.0], 1.0).unwrap();
/// let model = Model::LinearGaussian(lg.clone());
/// let x = array![0.7];
/// let fit = fit_gaussian(&lg, x.view(), &prior_q(&model), &FitConfig::default(), &mut StdRng::seed_from_u64(3)).unwrap();
/// // In 1-D the diagonal family contains p(z|x) = N(0.35, ½): the gap closes (fitter accuracy 1e-3 nats).
/// let gap = model.log_marginal(x.view()).unwrap() - exact_elbo(&model, x.view(), &fit.q).unwrap().unwrap();
/// assert!(gap < 1e-3);
/// ```
pub fn fit_gaussian<M: ContinuousLatent + ?Sized, R: Rng + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    init: &Q,
    config: &FitConfig,
    rng: &mut R,
) -> Result<Fit> {
    fit(model, x, init, config, rng, false)
}

/// [`fit_gaussian`] in `init`'s own units: the ascent moves u with μ = μ₀ + τ₀ ⊙ u (μ₀ the mean
/// of `init`, τ₀ its standard deviations), so Adam's steps of about `learning_rate` are steps of
/// that many widths of `init`, whatever its scale. From a Laplace start at a narrow peak (the
/// quadratic toy at x = 1e12: a peak of width 2e-7 at z = 1e6) a step of 0.02 in z would leave the
/// peak by 1e5 widths; here it is 0.02 widths. From the standard-normal prior (μ₀ = 0, τ₀ = 1) it
/// takes the same steps as [`fit_gaussian`].
///
/// ```text
/// ∂Ê/∂u = τ₀ ⊙ ∂Ê/∂μ          (chain rule; log σ² and the Cholesky factor as in fit_gaussian)
/// ```
///
/// # Errors
/// As [`fit_gaussian`].
pub fn fit_gaussian_standardised<M: ContinuousLatent + ?Sized, R: Rng + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    init: &Q,
    config: &FitConfig,
    rng: &mut R,
) -> Result<Fit> {
    fit(model, x, init, config, rng, true)
}

/// The ascent of [`fit_gaussian`] (`standardise` false) or [`fit_gaussian_standardised`].
fn fit<M: ContinuousLatent + ?Sized, R: Rng + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    init: &Q,
    config: &FitConfig,
    rng: &mut R,
    standardise: bool,
) -> Result<Fit> {
    model.check_x(x)?;
    if config.steps == 0 {
        return Err(Error::invalid("steps", 0, "need at least 1"));
    }
    if config.samples_per_step == 0 {
        return Err(Error::invalid("samples_per_step", 0, "need at least 1"));
    }
    if !(config.learning_rate > 0.0 && config.learning_rate.is_finite()) {
        return Err(Error::invalid("learning_rate", config.learning_rate, "must be finite and > 0"));
    }
    let z_dim = model.latent_dim();
    let (mean0, raw0) = match init {
        Q::DiagGaussian { mean, log_var } if mean.len() == z_dim => {
            (mean.clone(), Array2::from_diag(&(log_var * 0.5)))
        }
        Q::FullGaussian { mean, chol } if mean.len() == z_dim => (
            mean.clone(),
            Array2::from_shape_fn(chol.dim(), |(i, j)| if i == j { chol[[i, i]].ln() } else { chol[[i, j]] }),
        ),
        _ => {
            return Err(Error::invalid(
                "init",
                init.family(),
                format!("must be a Gaussian q with Z = {z_dim}"),
            ));
        }
    };
    // Standardised: the first Z entries are u, μ = centre + scale ⊙ u, starting at u = 0.
    let (centre, scale) = (mean0.clone(), raw0.diag().mapv(f64::exp));
    let to_mean = |u: ArrayView1<f64>| -> Array1<f64> {
        if standardise { &centre + &(&scale * &u) } else { u.to_owned() }
    };
    let start = if standardise { Array1::zeros(z_dim) } else { mean0 };
    // One flat vector: [μ or u (Z), then log σ² (Z) or raw (Z × Z)].
    let mut params = match config.family {
        Family::Diagonal => ndarray::concatenate![Axis(0), start, raw0.diag().mapv(|r| 2.0 * r)],
        Family::Full => ndarray::concatenate![Axis(0), start, Array1::from_iter(raw0.iter().copied())],
    };
    let mut adam = Optimizer::new(OptimizerConfig::adam(config.learning_rate), &params)?;
    let mut average = Array1::zeros(params.len());
    let mut averaged = 0usize;
    let mut trace = Vec::with_capacity(config.steps);
    for step in 0..config.steps {
        let eps = Array2::<f64>::from_shape_simple_fn((config.samples_per_step, z_dim), || {
            rng.sample(rand_distr::StandardNormal)
        });
        let mean = to_mean(params.slice(ndarray::s![..z_dim]));
        let du = |dm: Array1<f64>| if standardise { dm * &scale } else { dm };
        let (value, grad) = match config.family {
            Family::Diagonal => {
                let (v, dm, dlv) =
                    elbo_grad_diag(model, x, mean.view(), params.slice(ndarray::s![z_dim..]), eps.view());
                (v, ndarray::concatenate![Axis(0), du(dm), dlv])
            }
            Family::Full => {
                let raw =
                    params.slice(ndarray::s![z_dim..]).into_shape_with_order((z_dim, z_dim)).expect("Z × Z");
                let (v, dm, draw) = elbo_grad_full(model, x, mean.view(), raw, eps.view());
                (v, ndarray::concatenate![Axis(0), du(dm), Array1::from_iter(draw.iter().copied())])
            }
        };
        if !value.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(Error::Diverged {
                epoch: 1,
                step: step + 1,
                tensor: if value.is_finite() { "ELBO gradient".into() } else { "ELBO".into() },
                detail: format!("ELBO estimate {value}, parameters {params}"),
            });
        }
        trace.push(value);
        let mut descent = -grad; // the optimiser descends: minimise −Ê
        adam.step(&mut params, &mut descent);
        if step >= config.steps / 2 {
            average += &params;
            averaged += 1;
        }
    }
    let p = average / averaged as f64;
    let mean = to_mean(p.slice(ndarray::s![..z_dim]));
    let q = match config.family {
        Family::Diagonal => Q::DiagGaussian { mean, log_var: p.slice(ndarray::s![z_dim..]).to_owned() },
        Family::Full => {
            let raw = p.slice(ndarray::s![z_dim..]).into_shape_with_order((z_dim, z_dim)).expect("Z × Z");
            Q::FullGaussian { mean, chol: chol_from_raw(raw) }
        }
    };
    Ok(Fit { q, elbo_trace: trace })
}
