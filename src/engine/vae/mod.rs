//! The VAE and CVAE models, their objective and KL schedules (derived in `04-vae-from-scratch.ipynb`).

pub mod learned_prior;
pub(crate) mod mixture_prior;
mod model;
mod objective;
mod prior;

pub use learned_prior::LatentPrior;
pub use mixture_prior::{MixturePrior, MixturePriorGrads};
pub use model::{Condition, Likelihood, LossParts, PriorKind, Vae, VaeConfig, VaeParams, VaeWorkspace};
pub use objective::{
    KlBatchWeights, KlSchedule, Objective, batches_per_epoch, blundell_coefficients, uniform_coefficients,
};
pub use prior::PriorParams;

#[cfg(test)]
mod tests;
