//! # The engine: a VAE in pure `ndarray`, with backprop by hand
//!
//! Layers and optimisers ([`nn`]); the VAE and the conditional VAE with their priors and the
//! objective, per-batch KL weights included ([`vae`]); training ([`train`]); checkpoints
//! ([`checkpoint`]); the trained-model store, which trains a stage once and loads it after
//! ([`store`]); evaluation — ELBO, rate and distortion, importance-sampled log-likelihood,
//! active units, the aggregate posterior's moments ([`eval`]); and the data sets ([`data`]).
//! Lesson 04 (`04-vae-from-scratch.ipynb`) derives it.
//!
//! Layering: the engine's code imports only [`crate::base`], never a lesson, a plot or the command
//! line (`tests/layers.rs` enforces it; its docs may link upward).

pub mod checkpoint;
pub mod data;
pub mod eval;
pub mod nn;
pub mod store;
pub mod train;
pub mod vae;
