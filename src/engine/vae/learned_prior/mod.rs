//! A learned, unconditional prior p_θ(z): a mixture of K diagonal Gaussians trained with the VAE
//! (the text, section 先验分布: "P(z) can be chosen freely, even with parameters, learnable";
//! compared with N(0, I) in lesson `05-prior-and-aggregate-posterior.ipynb`).
//!
//! ```text
//! p_θ(z) = Σ_k π_k N(z; m_k, diag e^(s_k)),   π = softmax(α)          θ = (α, m, s): K, K × Z, K × Z
//! ```
//! KL(q(z|x) ‖ p_θ) has no closed form. The loss uses a one-sample estimate at the
//! reparameterised z the decoder already sees, with the entropy of q in closed form:
//!
//! ```text
//! KL(q ‖ p_θ) = E_q[log q(z|x)] − E_q[log p_θ(z)] = −H(q) − E_q[log p_θ(z)]
//! −H(q)       = −½ Σ_u (ln 2π + 1 + v_u)                              (v = log σ², exact)
//! KL̂          = −½ Σ_u (ln 2π + 1 + v_u) − log p_θ(z),   z = μ + exp(½ v) ⊙ ε   (one draw)
//! ```
//! The plain one-sample estimate log q(z|x) − log p_θ(z) at the same z (Kingma & Welling 2014's
//! generic estimator, eq. 6, restricted to the KL; learned priors such as Tomczak & Welling 2018's
//! VampPrior are trained with one-sample KL estimates too) differs from KL̂ by
//! log q(z|x) + H(q) = −½ Σ_u (ε_u² − 1): zero mean, variance
//! Z/2 per example, independent of the prior and of the data. Taking the entropy exactly removes
//! that noise from the reported rate and from the loss (the same idea as Kingma & Welling 2014,
//! eq. 7: integrate analytically what has a closed form, sample only the rest), so we use it. Both
//! are unbiased for the KL; with this prior a reported rate is an estimate with a standard error.
//!
//! Gradients (β/B weight per example, written with w):
//!
//! ```text
//! ∂KL̂/∂v_u   = −½ + (∂(−log p_θ)/∂z_u) · ½ exp(½ v_u) ε_u           (entropy + path through z)
//! ∂KL̂/∂μ_u   = ∂(−log p_θ)/∂z_u
//! ∂KL̂/∂θ     = −∂ log p_θ(z)/∂θ                                     ([`MixturePrior::log_density_backward`])
//! ```
//! The path through z is added to ∂L/∂z from the decoder, so [`Vae::backward`] reuses its
//! reparameterisation step. Free bits need a KL per latent unit, which log p_θ(z) does not split
//! into: a mixture prior with free bits is refused ([`Vae::check_objective`]).

use ndarray::{ArrayView2, ArrayViewMut2, NdFloat};
use serde::{Deserialize, Serialize};

use super::{Condition, Vae};
use crate::base::error::{Error, Result};
use crate::base::prob::LN_2PI;
use crate::engine::nn::cast;
use crate::engine::vae::MixturePrior;

/// The prior p(z) of a plain VAE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LatentPrior {
    /// p(z) = N(0, I), the KL in closed form (the default; the anchor).
    #[default]
    StandardNormal,
    /// p_θ(z) = Σ_k π_k N(z; m_k, diag e^(s_k)) with K learned components (parameters in
    /// [`super::VaeParams::prior`], initialised by [`MixturePrior::init`]); the KL by the
    /// entropy-form one-sample estimate of this module.
    Mixture {
        /// K ≥ 1.
        components: usize,
    },
}

impl LatentPrior {
    /// Checks K and that the prior is not combined with a CVAE's conditional prior.
    ///
    /// # Errors
    /// `InvalidParameter` for K = 0 or a mixture with a `condition`.
    pub fn validate(&self, condition: Option<Condition>) -> Result<()> {
        if let LatentPrior::Mixture { components } = *self {
            if components == 0 {
                return Err(Error::invalid("prior.components", 0, "a mixture prior needs K >= 1"));
            }
            if let Some(c) = condition {
                return Err(Error::invalid(
                    "prior",
                    format!("mixture of {components} with a CVAE of {} classes", c.classes),
                    "the learned mixture prior is unconditional; a CVAE sets its prior in `condition`",
                ));
            }
        }
        Ok(())
    }
}

/// The one-sample KL estimate of each row, written into `kl_rows` (=).
///
/// ```text
/// KL̂_b = −½ Σ_u (ln 2π + 1 + v_bu) − log p_θ(z_b)        (−H(q) exact, cross-entropy at one z)
/// ```
/// log p_θ is [`MixturePrior::log_density_and_responsibilities`], evaluated in `f64`.
///
/// # Shapes
/// `log_var`, `z`: `B × Z`; `kl_rows`: `B`.
#[track_caller]
pub fn mixture_kl_rows<F: NdFloat>(
    prior: &MixturePrior<F>,
    log_var: ArrayView2<F>,
    z: ArrayView2<F>,
    kl_rows: &mut [f64],
) {
    assert!(
        log_var.dim() == z.dim() && kl_rows.len() == z.nrows(),
        "mixture_kl_rows: log_var {:?}, z {:?}, kl_rows {}",
        log_var.dim(),
        z.dim(),
        kl_rows.len()
    );
    let prior = prior.cast::<f64>();
    let z = z.mapv(|v| v.to_f64().expect("float"));
    let (log_p, _) = prior.log_density_and_responsibilities(z.view());
    for ((kl, v_row), lp) in kl_rows.iter_mut().zip(log_var.rows()).zip(&log_p) {
        let neg_entropy: f64 =
            -0.5 * v_row.iter().map(|v| LN_2PI + 1.0 + v.to_f64().expect("float")).sum::<f64>();
        *kl = neg_entropy - lp;
    }
}

/// Backward of L = w Σ_b (−log p_θ(z_b)), the cross-entropy half of the KL: accumulates
/// ∂L/∂z into `d_z` and ∂L/∂θ into `d_prior` (+=). The entropy half's −½ w per unit of log σ²
/// is added by [`Vae::backward`].
///
/// ```text
/// ∂L/∂z_b = −w ∂ log p_θ(z_b)/∂z_b,    ∂L/∂θ = −w Σ_b ∂ log p_θ(z_b)/∂θ
/// ```
///
/// # Shapes
/// `z`, `d_z`: `B × Z`; `d_prior` shaped as `prior`.
#[track_caller]
pub fn mixture_kl_backward<F: NdFloat>(
    prior: &MixturePrior<F>,
    z: ArrayView2<F>,
    weight: F,
    mut d_z: ArrayViewMut2<F>,
    d_prior: &mut MixturePrior<F>,
) {
    assert_eq!(z.dim(), d_z.dim(), "mixture_kl_backward: z {:?} vs d_z {:?}", z.dim(), d_z.dim());
    let z = z.mapv(|v| v.to_f64().expect("float"));
    let (dz_log_p, g) = prior.cast::<f64>().log_density_backward(z.view());
    let w = weight.to_f64().expect("float");
    let add = |dst: &mut F, src: f64| *dst -= cast::<F>(w * src);
    d_z.zip_mut_with(&dz_log_p, |d, &s| add(d, s));
    d_prior.logits.zip_mut_with(&g.d_logits, |d, &s| add(d, s));
    d_prior.means.zip_mut_with(&g.d_means, |d, &s| add(d, s));
    d_prior.log_vars.zip_mut_with(&g.d_log_vars, |d, &s| add(d, s));
}

impl<F: NdFloat> Vae<F> {
    /// The learned mixture prior in `f64` (for [`crate::lessons::prior::elbo_surgery`], plots, sampling),
    /// or `None` for p(z) = N(0, I) or a CVAE.
    pub fn mixture_prior(&self) -> Option<MixturePrior<f64>> {
        self.params.prior.mixture().map(|p| p.cast())
    }
}

#[cfg(test)]
pub(crate) mod tests;
