//! The two derivations of the ELBO made measurable (§2 derivation 1, §3 derivation 2).
//!
//! The text writes, for any distribution Q(z|x):
//!
//! ```text
//! derivation 1 (Jensen)                               estimator here
//! log P(x) = log E_{z∼Q} [P(x|z) P(z) / Q(z|x)]       importance_log_evidence: log-mean-exp of log w
//!          ≥ E_{z∼Q} log [P(x|z) P(z) / Q(z|x)]       elbo: mean of log w
//!          = E_{z∼Q} log P(x|z) − KL(Q(z|x) ‖ P(z))   elbo_analytic_kl: mean of log p(x|z), minus closed-form KL
//! tighter: L_K = E log (1/K) Σₖ wₖ                    iwae (Burda et al. 2016)
//!
//! derivation 2 (the gap)
//! log P(x) − ELBO = KL(Q(z|x) ‖ P(z|x))                kl_q_posterior (computed directly) vs BoundsReport::gap
//! ```
//! with w = P(x|z) P(z) / Q(z|x) the importance weight. The toy models of [`crate::lessons::toy`] give the
//! exact log P(x) and P(z|x) to compare with; [`Q`] is the variational family; [`fit_gaussian`]
//! finds the best Gaussian q for one x, whose remaining gap is the approximation gap of Cremer, Li &
//! Duvenaud (2018). [`crate::cli::bounds`] is the `vaelab bounds` command.
//!
//! Notebooks: `02-derivation-1-jensen.ipynb`, `03-derivation-2-kl-gap.ipynb`.
//!
//! # Shapes
//! One data point x (D) at a time; N draws of z from q as N × Z arrays; IWAE groups as B × K.

mod estimate;
mod fit;
mod q;
mod slider;

pub use estimate::{
    BoundsReport, Draws, IwaeEstimate, KlValue, draw, elbo, elbo_analytic_kl, exact_elbo,
    importance_log_evidence, iwae, iwae_per_point, kl_q_posterior, kl_q_posterior_mc, posterior_q, prior_q,
    report, variance_difference,
};
pub use fit::{
    Family, Fit, FitConfig, chol_from_raw, elbo_grad_diag, elbo_grad_full, fit_gaussian,
    fit_gaussian_standardised,
};
pub use q::{MAX_ABS_LOG_VAR, Q};
pub use slider::{
    GapFrame, IwaeFrame, JensenFrame, gap_frames, gap_slider, iwae_frames, iwae_slider, jensen_frames,
    jensen_slider,
};

#[cfg(test)]
mod tests;
