//! # vaelab: variational autoencoders, derived and measured
//!
//! A course in a crate. It follows one text, a guide to the Variational Autoencoder (the
//! `shared/seed` text, 2020-10-29), section by section. Each section has its module(s) here and a
//! notebook in `notebooks/` that derives the section's claim and then checks it with numbers
//! computed by these modules. Notebooks `:dep` this crate and never paste its code.
//!
//! ## The layers
//!
//! Six folders, each using only those above it in this list (`tests/layers.rs` enforces it):
//!
//! | layer | what it holds |
//! |---|---|
//! | [`base`] | errors, atomic file writes, named seed streams, threads, probability blocks, quadrature, statistics (one [`base::stats::Estimate`] for a mean with its standard error) |
//! | [`engine`] | the VAE from scratch: layers and optimisers, the VAE and CVAE with their priors and objective, training, checkpoints, evaluation, data |
//! | [`plot`] | plots that work offline in JupyterLab and in the HTML book; the training report |
//! | [`lessons`] | one module per section of the text, in its order: each section's experiment |
//! | [`exercises`] | each lesson's exercises as checkers: a learner calls one with an answer (a number, a formula as a closure, an estimator, a gradient) and reads a verdict |
//! | [`cli`] | the `vaelab` command (`main.rs` only dispatches) |
//!
//! ## Course map
//!
//! | § | section of the text | course name | module(s) | notebook |
//! |---|---|---|---|---|
//! | 1 | 逆变换采样 | inverse-transform sampling | [`lessons::sampling`], [`base::stats`] (KS and χ² tests) | `01-inverse-transform-sampling.ipynb` |
//! | 2 | VAE推导方法1 | derivation 1: Jensen's inequality | [`base::prob`] (log-densities, KL, log-sum-exp), [`lessons::toy`] (models with exact log P(x)), [`lessons::bounds`] (ELBO, IS, IWAE estimators) | `02-derivation-1-jensen.ipynb` |
//! | 3 | VAE推导方法2 | derivation 2: the KL decomposition and the gap | [`lessons::bounds`] (KL(Q‖P(z\|x)) vs the gap, fitted q), [`lessons::toy`] (exact posteriors), [`lessons::amortisation`] (the encoder's q against the best q) | `03-derivation-2-kl-gap.ipynb` |
//! | – | (what the text uses without saying) | gradients of an expectation | [`lessons::gradients`] (score-function and reparameterised estimators of ∇ E_q[f(z)] against closed forms; variance against samples and dimension; baselines; the binary toy by enumeration) | `03a-gradients-of-an-expectation.ipynb` |
//! | – | (what the text uses without saying) | amortised inference | [`lessons::amortised`] (one encoder for every x on the linear-Gaussian toy: the approximation and amortisation gaps as the encoder grows), [`lessons::amortisation`] (the same two gaps on a digit VAE) | `03b-amortised-inference.ipynb` |
//! | – | (the engine) | the VAE from scratch, backprop by hand | [`engine`] ([`engine::nn`], [`engine::vae`], [`engine::train`], [`engine::eval`], [`engine::checkpoint`], [`engine::data`]) | `04-vae-from-scratch.ipynb` |
//! | 4 | 先验分布 | the prior and the aggregate posterior | [`lessons::prior`] (log q_agg, ELBO surgery: I(n; z) + KL(q_agg‖p), N(0, I) against a learned mixture prior) | `05-prior-and-aggregate-posterior.ipynb` |
//! | 5 | mini-batch | mini-batches and the weight of the KL term | [`lessons::minibatch`] (per-batch KL coefficients: per-example, uniform 1/M, Blundell's 2^(M−i)/(2^M−1); noise of both terms' batch means and gradients vs (σ²/B)(N−B)/(N−1); training with each scheme) | `06-minibatch-kl-weight.ipynb` |
//! | 6 | VAE解释1 | reading 1: a noisy channel | [`lessons::channel`] (β-sweep: rate, distortion, channel noise; entropy of the toy data) | `07-noisy-channel.ipynb` |
//! | 6 | VAE解释2 | reading 2: a minimal representation | [`lessons::representation`] (latent-size sweep on blobs with known factors: active units, KL and σ per unit, traversals and how much they move the image) | `08-minimal-representation.ipynb` |
//! | 7 | 两种collapse | the two collapses | [`lessons::collapse`] (β-sweep on digits: rate, active units, σ, I(n; z) and KL(q_agg‖p), IS log-likelihood, prior samples vs the mean image; independent pixels; KL warm-up and free bits) | `09-two-collapses.ipynb` |
//! | 8 | CVAE | the conditional VAE | [`lessons::conditional`] (three models: VAE, CVAE with P(z\|c) = N(0, I), CVAE with learned P(z\|c); IS log P(x\|c) and log P(x) = log Σ_c P(c) P(x\|c); class grids) | `10-cvae.ipynb` |
//!
//! Every lesson's experiment also runs from the command line: [`cli::experiment`] (`vaelab
//! experiment NAME --out DIR` writes the numbers as JSON and the plots as an offline HTML page).
//!
//! Data: [`engine::data`] holds 10,000 real MNIST digits shipped with the repo (split 8,000 train /
//! 2,000 test, binarised dynamically for training and by `x > 0.5` for testing), a reader for the
//! standard MNIST IDX files, 2-D toys (two moons, rings, 8 Gaussians) and blob images with known
//! generative factors.
//!
//! ## Notation
//!
//! Dimension letters, used in every `# Shapes` section and in the notebooks:
//!
//! | letter | meaning |
//! |---|---|
//! | `N` | a number of rows: data points (a data set in [`engine::eval`], the posteriors of [`lessons::prior`]) or draws (the output of a sampler in [`lessons::sampling`], Monte-Carlo draws of a toy estimator in [`lessons::bounds`]); each `# Shapes` section says which |
//! | `S` | Monte-Carlo draws of z per data point (the ELBO's inner expectation) |
//! | `K` | importance samples per data point (IS, IWAE); the components of a mixture prior |
//! | `B` | batch size (data points in a mini-batch) |
//! | `M` | batches in an epoch, M = ⌈N/B⌉ |
//! | `D` | data dimension (784 for 28×28 digits) |
//! | `H` | hidden width of an MLP layer |
//! | `I`, `O` | input and output width of one linear layer |
//! | `Z` | latent dimension |
//! | `C` | number of classes (conditions of a CVAE); in [`lessons::prior::log_aggregate_posterior`], query points |
//!
//! Symbols: `x` a data point, `z` a latent, `P(z)` the prior, `P(x|z)` the decoder,
//! `Q(z|x)` the encoder (approximate posterior), `F` a CDF and `F⁻¹` its inverse, `U ~ Uniform(0, 1)`,
//! `Φ` the standard normal CDF. Logarithms are natural; information is in nats.
//!
//! ## Conventions
//!
//! - Randomness is an argument: every sampler takes `rng: &mut R` with `R: Rng + ?Sized`; nothing
//!   draws from a global generator. Use [`rand::rngs::StdRng`] with `seed_from_u64` for
//!   reproducible runs.
//! - Functions that take user input return [`Result`]; a shape mismatch between arrays the crate
//!   made itself is a programmer error and panics with the operation and both shapes.
//! - Gradients are named `d_x` for ∂L/∂x and have the shape of `x`.
//!
//! ## One rand family
//!
//! `ndarray-rand` 0.16 uses rand 0.9; `statrs` is built without its `rand` feature (which would
//! bring rand 0.10). The re-exports below are the versions this crate is built with, so a notebook
//! needs a single `:dep vaelab = { path = ".." }` line and never meets two `Rng` traits.

pub mod base;
pub mod cli;
pub mod engine;
pub mod exercises;
pub mod lessons;
pub mod plot;

pub use base::error::{Error, Result};

pub use ndarray;
pub use ndarray_rand;
pub use plotly;
pub use rand;
pub use rand_distr;
pub use statrs;
