//! The model's prior: one enum for the three priors the engine trains, and the one place that
//! decides which KL term a latent unit gets.
//!
//! | prior | parameters | KL(q(z\|x) ‖ p) | chosen by |
//! |---|---|---|---|
//! | p(z) = N(0, I) (also a CVAE's p(z\|c) = N(0, I)) | none | closed form per unit, [`kl_std_normal_elem`] | the default |
//! | p_θ(z) = Σ_k π_k N(m_k, diag e^(s_k)) | [`MixturePrior`] | one-sample estimate per row ([`super::learned_prior`]) | [`super::LatentPrior::Mixture`] |
//! | p(z\|c) = N(μ_c, diag e^(v_c)) | two linear heads of one-hot c | closed form per unit, [`kl_diag_elem`] | [`super::PriorKind::LearnedConditional`] |
//!
//! [`super::Vae::new`] turns the configuration into a [`PriorParams`]; everything after that
//! (forward, backward, evaluation, sampling) matches on it — never on which buffers happen to be
//! empty.

use ndarray::NdFloat;

use crate::base::error::{Error, Result};
use crate::engine::nn::{Linear, kl_diag_elem, kl_std_normal_elem};
use crate::engine::vae::{MixturePrior, Objective, Vae};

/// The parameters of the model's prior, by kind. Also the type of their gradients and of Adam's
/// moments (as a field of [`super::VaeParams`]).
#[derive(Clone, Debug, PartialEq)]
pub enum PriorParams<F> {
    /// p(z) = N(0, I), or for a CVAE p(z|c) = N(0, I): nothing to learn.
    StandardNormal,
    /// The learned mixture p_θ(z) of [`super::LatentPrior::Mixture`] (tensors `prior.logits`,
    /// `prior.means`, `prior.log_vars`, after every other tensor).
    Mixture(MixturePrior<F>),
    /// A CVAE's learned p(z|c) = N(μ_c, diag exp(v_c)), μ_c and v_c linear in one-hot c
    /// (tensors `prior_mean_head.*`, `prior_log_var_head.*`, after the decoder's).
    Conditional {
        /// One-hot c → μ_c, `C × Z`.
        mean_head: Linear<F>,
        /// One-hot c → v_c = log σ²_c, `C × Z`.
        log_var_head: Linear<F>,
    },
}

impl<F: NdFloat> PriorParams<F> {
    /// The mixture, if this is one.
    pub fn mixture(&self) -> Option<&MixturePrior<F>> {
        match self {
            PriorParams::Mixture(p) => Some(p),
            _ => None,
        }
    }

    /// The conditional prior's heads (μ_c, v_c), if this is one.
    pub fn heads(&self) -> Option<(&Linear<F>, &Linear<F>)> {
        match self {
            PriorParams::Conditional { mean_head, log_var_head } => Some((mean_head, log_var_head)),
            _ => None,
        }
    }

    /// The conditional heads in tensor order, with their names (empty otherwise).
    pub(crate) fn named_heads(&self) -> impl Iterator<Item = (&'static str, &Linear<F>)> {
        self.heads().into_iter().flat_map(|(m, v)| [("prior_mean_head", m), ("prior_log_var_head", v)])
    }

    /// The conditional heads, mutably, in tensor order (empty otherwise).
    pub(crate) fn heads_mut(&mut self) -> impl Iterator<Item = &mut Linear<F>> {
        let heads = match self {
            PriorParams::Conditional { mean_head, log_var_head } => Some([mean_head, log_var_head]),
            _ => None,
        };
        heads.into_iter().flatten()
    }

    /// The same prior in another float type.
    pub fn cast<G: NdFloat>(&self) -> PriorParams<G> {
        match self {
            PriorParams::StandardNormal => PriorParams::StandardNormal,
            PriorParams::Mixture(p) => PriorParams::Mixture(p.cast()),
            PriorParams::Conditional { mean_head, log_var_head } => {
                PriorParams::Conditional { mean_head: mean_head.cast(), log_var_head: log_var_head.cast() }
            }
        }
    }

    /// Zeros of the same shapes (gradients, Adam moments).
    pub fn zeros_like(&self) -> Self {
        use crate::engine::nn::Parameters;
        match self {
            PriorParams::StandardNormal => PriorParams::StandardNormal,
            PriorParams::Mixture(p) => PriorParams::Mixture(p.zeros_like()),
            PriorParams::Conditional { mean_head, log_var_head } => PriorParams::Conditional {
                mean_head: mean_head.zeros_like(),
                log_var_head: log_var_head.zeros_like(),
            },
        }
    }

    /// KL(q_u ‖ p_u) of latent unit u of row i in closed form, and its partials — the one KL
    /// dispatch of the engine (forward, backward and evaluation all call it):
    ///
    /// ```text
    /// N(0, I):      KL = ½ (μ² + eᵛ − 1 − v)                                   (kl_std_normal_elem)
    /// conditional:  KL = ½ [ v_p − v + (eᵛ + (μ − μ_p)²) e^(−v_p) − 1 ]          (kl_diag_elem)
    /// ```
    /// with (μ_p, v_p) = `prior()` (the conditional heads' output for the row's class; not called
    /// for N(0, I)). Returns (KL, ∂KL/∂μ, ∂KL/∂v, ∂KL/∂μ_p, ∂KL/∂v_p); the last two are 0 for
    /// N(0, I). The float type `G` is the caller's: the training step works in the model's `F`,
    /// evaluation widens to `f64` first.
    ///
    /// **Panics** for a mixture prior, whose KL has no closed form (a programmer error: the
    /// callers take the mixture's own per-row estimate first).
    #[inline]
    #[track_caller]
    pub fn unit_kl<G: NdFloat>(
        &self,
        mean: G,
        log_var: G,
        prior: impl FnOnce() -> (G, G),
    ) -> (G, G, G, G, G) {
        match self {
            PriorParams::StandardNormal => {
                let (kl, dm, dv) = kl_std_normal_elem(mean, log_var);
                (kl, dm, dv, G::zero(), G::zero())
            }
            PriorParams::Conditional { .. } => {
                let (prior_mean, prior_log_var) = prior();
                kl_diag_elem(mean, log_var, prior_mean, prior_log_var)
            }
            PriorParams::Mixture(_) => panic!("unit_kl: a mixture prior has no per-unit closed-form KL"),
        }
    }
}

impl<F: NdFloat> Vae<F> {
    /// Refuses a learned mixture prior for `what`, a computation that needs the KL of each latent
    /// unit in closed form (N(0, I), or a CVAE's Gaussian p(z|c)).
    ///
    /// # Errors
    /// `InvalidParameter` naming the mixture's K and `what`.
    pub fn require_per_unit_kl(&self, what: &str) -> Result<()> {
        match self.params.prior.mixture() {
            Some(p) => Err(Error::invalid(
                "prior",
                format!("mixture of {}", p.components()),
                format!(
                    "{what} needs the KL of each latent unit in closed form; a mixture prior's KL does not split by unit"
                ),
            )),
            None => Ok(()),
        }
    }

    /// Whether `objective` can train this model: free bits need a KL per latent unit, which a
    /// mixture prior's log p_θ(z) does not split into.
    ///
    /// # Errors
    /// `InvalidParameter` for free bits with a mixture prior.
    pub fn check_objective(&self, objective: &Objective) -> Result<()> {
        if let (Some(lambda), PriorParams::Mixture(p)) = (objective.free_bits, &self.params.prior) {
            let components = p.components();
            return Err(Error::invalid(
                "free_bits",
                lambda,
                format!(
                    "not supported with a learned mixture prior (K = {components}): its KL does not split by latent unit"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_kl_of_each_prior_matches_its_closed_form_and_an_integral() {
        // N(0, 1) prior, q = N(0.3, e^(−0.4)): KL by the formula, and by quadrature of
        // q (log q − log p) as an independent route (tolerance: the quadrature's 1e-10).
        let (m, v) = (0.3_f64, -0.4_f64);
        let (kl, dm, dv, dmp, dvp) =
            PriorParams::<f64>::StandardNormal.unit_kl(m, v, || unreachable!("N(0, I) has no prior row"));
        let log_n =
            |z: f64, mu: f64, lv: f64| -0.5 * (crate::base::prob::LN_2PI + lv + (z - mu).powi(2) / lv.exp());
        let integral = |pm: f64, pv: f64| {
            crate::base::quadrature::integrate(
                |z| z.mapv(|z| log_n(z, m, v).exp() * (log_n(z, m, v) - log_n(z, pm, pv))),
                &[-15.0, m, 15.0],
                1e-13,
                1e-13,
            )
            .unwrap()
            .value
        };
        assert!((kl - integral(0.0, 0.0)).abs() < 1e-10, "{kl} vs {}", integral(0.0, 0.0));
        assert_eq!((dm, dv, dmp, dvp), (m, 0.5 * (v.exp() - 1.0), 0.0, 0.0));
        // A conditional prior N(−0.5, e^(0.7)) at row 1, unit 0.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let heads: PriorParams<f64> = PriorParams::Conditional {
            mean_head: Linear::new(2, 1, &mut rng).unwrap(),
            log_var_head: Linear::new(2, 1, &mut rng).unwrap(),
        };
        let (kl, ..) = heads.unit_kl(m, v, || (-0.5, 0.7));
        assert!((kl - integral(-0.5, 0.7)).abs() < 1e-10, "{kl} vs {}", integral(-0.5, 0.7));
    }

    #[test]
    #[should_panic(expected = "no per-unit closed-form KL")]
    fn unit_kl_of_a_mixture_is_a_programmer_error() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let p = PriorParams::Mixture(MixturePrior::<f64>::init(2, 1, &mut rng).unwrap());
        let _ = p.unit_kl(0.0, 0.0, || (0.0, 0.0));
    }

    use rand::SeedableRng;
}
