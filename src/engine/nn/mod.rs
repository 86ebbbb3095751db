//! Layers, losses and optimisers with hand-written backprop (derived in `04-vae-from-scratch.ipynb`).
//!
//! Every piece comes as a forward/backward pair. The teaching API allocates and returns a named
//! cache ([`Linear::forward`] → `(y, LinearCache)`, [`Linear::backward`] consumes it); the
//! training step uses the `*_into` kernels underneath, which write into preallocated buffers so a
//! step allocates nothing. There is one copy of the maths: the teaching API calls the kernels.
//!
//! Conventions (fixed once for the whole crate):
//! - row-major batches: a batch of `B` vectors of length `D` is a `B × D` array;
//! - `d_x` is ∂L/∂x and has the shape of `x`;
//! - parameter gradients are **accumulated** with `+=` into a gradient struct of the same type as
//!   the parameters (llm.c's `ParameterTensors` holds both), which starts at zero;
//! - the maths is generic over `F: ndarray::NdFloat`: training runs in `f32`, checks in `f64`.

mod activation;
mod binary;
pub mod gradcheck;
mod linear;
mod loss;
mod mlp;
mod optim;
mod params;
pub(crate) mod simd;

pub use activation::{Activation, ActivationCache};
pub use binary::{
    AUTO_MAX_DENSITY_PERCENT, BinaryInput, InputPath, binary_linear_backward_into, binary_linear_forward_into,
};
pub use linear::{Linear, LinearCache, LinearGrads, linear_backward_into, linear_forward_into};
pub use loss::{bernoulli_nll_grad_into, gaussian_nll_grad_into, kl_diag_elem, kl_std_normal_elem};
pub use mlp::{Mlp, MlpCache, MlpConfig};
pub use optim::{Adam, AdamConfig, Optimizer, OptimizerConfig, Sgd};
pub use params::Parameters;
pub(crate) use params::first_non_finite;

use ndarray::NdFloat;

/// `x` as the float type `F` (for constants in generic code).
#[inline]
pub(crate) fn cast<F: NdFloat>(x: f64) -> F {
    <F as num_traits::NumCast>::from(x).expect("f64 constant fits the float type")
}
