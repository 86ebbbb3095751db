//! The VAE and CVAE models, their objective and KL schedules (derived in `04-vae-from-scratch.ipynb`).

pub mod learned_prior;
mod model;
mod objective;

pub use learned_prior::LatentPrior;
pub use model::{Condition, Likelihood, LossParts, PriorKind, Vae, VaeConfig, VaeParams, VaeWorkspace};
pub use objective::{KlSchedule, Objective};

#[cfg(test)]
mod tests;
