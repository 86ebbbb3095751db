//! # The lessons: one module per section of the text, in its order
//!
//! Each module holds its section's experiment: the function a notebook cell calls and the
//! `vaelab experiment NAME` command calls too, so both run the same code.
//!
//! | § | section of the text | module | notebook |
//! |---|---|---|---|
//! | 1 | 逆变换采样 | [`sampling`] | `01-inverse-transform-sampling.ipynb` |
//! | 2 | VAE推导方法1 | [`toy`] (models with exact log P(x)), [`bounds`] (ELBO, IS, IWAE) | `02-derivation-1-jensen.ipynb` |
//! | 3 | VAE推导方法2 | [`bounds`] (KL(Q‖P(z\|x)) and the gap, fitted Q), [`amortisation`] (the encoder's Q against the best Q) | `03-derivation-2-kl-gap.ipynb` |
//! | – | (used, not said) | [`gradients`] (∇ E_q[f(z)]: score function and reparameterisation) | `03a-gradients-of-an-expectation.ipynb` |
//! | – | (used, not said) | [`amortised`] (one encoder for every x: approximation and amortisation gaps), [`amortisation`] | `03b-amortised-inference.ipynb` |
//! | 4 | 先验分布 | [`prior`] | `05-prior-and-aggregate-posterior.ipynb` |
//! | 5 | mini-batch | [`minibatch`] | `06-minibatch-kl-weight.ipynb` |
//! | 6 | VAE解释1 | [`channel`] | `07-noisy-channel.ipynb` |
//! | 6 | VAE解释2 | [`representation`] | `08-minimal-representation.ipynb` |
//! | 7 | 两种collapse | [`collapse`] | `09-two-collapses.ipynb` |
//! | 8 | CVAE | [`conditional`] | `10-cvae.ipynb` |
//!
//! Layering: lessons use [`crate::base`], [`crate::engine`] and [`crate::plot`], never
//! [`crate::cli`] (`tests/layers.rs` enforces it).

pub mod amortisation;
pub mod amortised;
pub mod bounds;
pub mod channel;
pub mod collapse;
pub mod conditional;
pub mod gradients;
pub mod minibatch;
pub mod prior;
pub mod representation;
pub mod sampling;
pub mod toy;
