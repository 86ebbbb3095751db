//! # The base layer: what every other layer stands on
//!
//! Nothing here knows about VAEs. Sizes are checked before work starts ([`budget`]). Errors and their one-line messages ([`error`]), file output that
//! never leaves a torn file behind ([`io`]), the named seed streams of every experiment
//! ([`seeds`]), the thread pool ([`parallel`]) and the `f32` matrix-product kernels it calls where
//! they pay ([`sgemm`], [`sgemm::pays`]), the probability blocks — log-densities, KL
//! divergences, the reparameterisation, log-sum-exp ([`prob`]) — adaptive quadrature for the independent checks ([`quadrature`]), and statistics: one
//! [`stats::Estimate`] type for a mean with its standard error, paired differences, and the
//! goodness-of-fit tests ([`stats`]); and
//! the lessons' claims, each a sentence decided by its numbers and a stated test ([`claim`]).
//!
//! Layering: `base` imports nothing from the crate above it (`engine`, `plot`, `lessons`, `cli`);
//! `tests/layers.rs` enforces it.

pub mod budget;
pub mod claim;
pub mod error;
pub mod io;
pub mod parallel;
pub mod prob;
pub mod quadrature;
pub mod seeds;
pub mod sgemm;
pub mod stats;
