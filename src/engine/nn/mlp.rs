//! A multi-layer perceptron: Linear layers with an activation between them.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, NdFloat, s};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    Activation, BinaryInput, Linear, Parameters, binary_linear_backward_into, binary_linear_forward_into,
    linear_backward_into, linear_forward_into,
};
use crate::base::error::{Error, Result};

/// The shape of an MLP, by named dimensions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Width of the input.
    pub input_dim: usize,
    /// Widths of the layers, in order; the last is the output width.
    pub layer_dims: Vec<usize>,
    /// The non-linearity after each layer.
    pub activation: Activation,
    /// Whether the last layer is followed by the activation too (an encoder trunk) or is affine
    /// (a decoder's logits or mean).
    pub activate_output: bool,
}

/// An MLP: a₀ = x, aₗ = φ(aₗ₋₁ Wₗ + bₗ), the last layer without φ unless `activate_output`.
///
/// ```text
/// forward    uₗ = aₗ₋₁ Wₗ + bₗ,   aₗ = φ(uₗ)                    l = 1 … L
/// backward   ∂L/∂uₗ = ∂L/∂aₗ ⊙ φ'(uₗ)   (φ' from aₗ, see `Activation`)
///            ∂L/∂aₗ₋₁ = (∂L/∂uₗ) Wₗᵀ,   ∂L/∂Wₗ += aₗ₋₁ᵀ ∂L/∂uₗ,   ∂L/∂bₗ += Σ_rows ∂L/∂uₗ
/// ```
///
/// # Shapes
/// input `B × I`, layer l output `B × Hₗ`, output `B × O` (O = the last of `layer_dims`).
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp<F> {
    /// The layers, input to output.
    pub layers: Vec<Linear<F>>,
    /// φ.
    pub activation: Activation,
    /// Whether φ follows the last layer.
    pub activate_output: bool,
}

/// What [`Mlp::backward`] needs: the input and every layer's output.
#[derive(Clone, Debug)]
pub struct MlpCache<F> {
    /// x, `B × I`.
    pub input: Array2<F>,
    /// aₗ for l = 1 … L.
    pub activations: Vec<Array2<F>>,
}

impl<F: NdFloat> Mlp<F> {
    /// Layers initialised as [`Linear::new`] (PyTorch's default), first layer first.
    ///
    /// # Errors
    /// `InvalidParameter` for a zero width or no layer.
    pub fn new<R: Rng + ?Sized>(config: &MlpConfig, rng: &mut R) -> Result<Self> {
        if config.layer_dims.is_empty() {
            return Err(Error::invalid("layer_dims", "[]", "an MLP needs at least one layer"));
        }
        let mut fan_in = config.input_dim;
        let mut layers = Vec::with_capacity(config.layer_dims.len());
        for &width in &config.layer_dims {
            layers.push(Linear::new(fan_in, width, rng)?);
            fan_in = width;
        }
        Ok(Mlp { layers, activation: config.activation, activate_output: config.activate_output })
    }

    /// Output width.
    pub fn output_dim(&self) -> usize {
        self.layers.last().expect("at least one layer").fan_out()
    }

    /// The same MLP with every parameter zero (a gradient accumulator).
    pub fn zeros_like_mlp(&self) -> Self {
        Mlp {
            layers: self.layers.iter().map(|l| l.zeros_like()).collect(),
            activation: self.activation,
            activate_output: self.activate_output,
        }
    }

    /// The MLP in another float type.
    pub fn cast<G: NdFloat>(&self) -> Mlp<G> {
        Mlp {
            layers: self.layers.iter().map(|l| l.cast()).collect(),
            activation: self.activation,
            activate_output: self.activate_output,
        }
    }

    /// Buffers for [`Mlp::forward_into`] (one per layer) for up to `capacity` rows.
    pub fn buffers(&self, capacity: usize) -> Vec<Array2<F>> {
        self.layers.iter().map(|l| Array2::zeros((capacity, l.fan_out()))).collect()
    }

    /// Kernel: every layer's output into `acts[l][..B]` (no allocation).
    ///
    /// # Shapes
    /// `x`: `B × I`; `acts[l]`: `capacity × Hₗ` with capacity ≥ B.
    #[track_caller]
    pub fn forward_into(&self, x: ArrayView2<F>, acts: &mut [Array2<F>]) {
        self.forward_into_with(x, None, acts);
    }

    /// [`Mlp::forward_into`], the first layer from `binary` (x's on-entries, scanned by
    /// [`BinaryInput::scan`]) when given: [`binary_linear_forward_into`], the same sums without
    /// their zero terms.
    ///
    /// # Shapes
    /// `x`: `B × I` (`binary` describes the same `B × I`); `acts[l]`: `capacity × Hₗ`.
    #[track_caller]
    pub fn forward_into_with(&self, x: ArrayView2<F>, binary: Option<&BinaryInput>, acts: &mut [Array2<F>]) {
        let b = x.nrows();
        assert_eq!(
            acts.len(),
            self.layers.len(),
            "mlp forward: {} buffers for {} layers",
            acts.len(),
            self.layers.len()
        );
        for (l, layer) in self.layers.iter().enumerate() {
            let (done, rest) = acts.split_at_mut(l);
            let input = if l == 0 { x } else { done[l - 1].slice(s![..b, ..]) };
            let mut out = rest[0].slice_mut(s![..b, ..]);
            match binary.filter(|_| l == 0) {
                Some(on) => {
                    binary_linear_forward_into(on, layer.weight.view(), layer.bias.view(), out.view_mut())
                }
                None => linear_forward_into(input, layer.weight.view(), layer.bias.view(), out.view_mut()),
            }
            if l + 1 < self.layers.len() || self.activate_output {
                self.activation.forward_in_place(out);
            }
        }
    }

    /// Kernel: backward from ∂L/∂(output) in `d_out` (overwritten with ∂L/∂u_L), accumulating the
    /// parameter gradients into `grads` and writing ∂L/∂x into `d_x` if given.
    ///
    /// # Shapes
    /// `x`: `B × I`; `acts[l]`, `d_hidden[l]`: `capacity × Hₗ` (`d_hidden` has L − 1 entries);
    /// `d_out`: `B × O`; `d_x`: `B × I`.
    #[track_caller]
    pub fn backward_into(
        &self,
        x: ArrayView2<F>,
        acts: &[Array2<F>],
        d_out: ArrayViewMut2<F>,
        d_hidden: &mut [Array2<F>],
        d_x: Option<ArrayViewMut2<F>>,
        grads: &mut Mlp<F>,
    ) {
        self.backward_into_with(x, None, acts, d_out, d_hidden, d_x, grads);
    }

    /// [`Mlp::backward_into`], the first layer's ∂W from `binary` (x's on-entries) when given:
    /// [`binary_linear_backward_into`]. Then no ∂L/∂x is computed (`d_x` must be `None`).
    ///
    /// # Shapes
    /// As [`Mlp::backward_into`].
    #[allow(clippy::too_many_arguments)]
    #[track_caller]
    pub fn backward_into_with(
        &self,
        x: ArrayView2<F>,
        binary: Option<&BinaryInput>,
        acts: &[Array2<F>],
        mut d_out: ArrayViewMut2<F>,
        d_hidden: &mut [Array2<F>],
        mut d_x: Option<ArrayViewMut2<F>>,
        grads: &mut Mlp<F>,
    ) {
        assert!(binary.is_none() || d_x.is_none(), "mlp backward: the binary first layer computes no ∂L/∂x");
        let b = x.nrows();
        let n = self.layers.len();
        assert!(
            acts.len() == n && d_hidden.len() + 1 == n && grads.layers.len() == n,
            "mlp backward: {} layers, {} activations, {} hidden gradients, {} gradient layers",
            n,
            acts.len(),
            d_hidden.len(),
            grads.layers.len()
        );
        if self.activate_output {
            self.activation.backward_in_place(acts[n - 1].slice(s![..b, ..]), d_out.view_mut());
        }
        for l in (0..n).rev() {
            let (lower, upper) = d_hidden.split_at_mut(l);
            let d_cur = if l == n - 1 { d_out.view() } else { upper[0].slice(s![..b, ..]) };
            let input = if l == 0 { x } else { acts[l - 1].slice(s![..b, ..]) };
            let target = if l == 0 {
                d_x.as_mut().map(|d| d.view_mut())
            } else {
                Some(lower[l - 1].slice_mut(s![..b, ..]))
            };
            let g = &mut grads.layers[l];
            if let Some(on) = binary.filter(|_| l == 0) {
                binary_linear_backward_into(on, d_cur, g.weight.view_mut(), g.bias.view_mut());
                continue;
            }
            linear_backward_into(
                input,
                self.layers[l].weight.view(),
                d_cur,
                g.weight.view_mut(),
                g.bias.view_mut(),
                target,
            );
            if l > 0 {
                self.activation
                    .backward_in_place(acts[l - 1].slice(s![..b, ..]), lower[l - 1].slice_mut(s![..b, ..]));
            }
        }
    }

    /// y = MLP(x), returning the cache backward consumes.
    ///
    /// # Shapes
    /// `x`: `B × I` → y: `B × O`.
    #[track_caller]
    pub fn forward(&self, x: ArrayView2<F>) -> (Array2<F>, MlpCache<F>) {
        let mut acts = self.buffers(x.nrows());
        self.forward_into(x, &mut acts);
        let y = acts.last().expect("at least one layer").clone();
        (y, MlpCache { input: x.to_owned(), activations: acts })
    }

    /// Accumulates the parameter gradients into `grads` and returns ∂L/∂x.
    ///
    /// # Shapes
    /// `d_y`: `B × O` → d_x: `B × I`.
    #[track_caller]
    pub fn backward(&self, cache: MlpCache<F>, d_y: ArrayView2<F>, grads: &mut Mlp<F>) -> Array2<F> {
        let b = cache.input.nrows();
        let mut d_out = d_y.to_owned();
        let mut d_hidden: Vec<Array2<F>> =
            self.layers[..self.layers.len() - 1].iter().map(|l| Array2::zeros((b, l.fan_out()))).collect();
        let mut d_x = Array2::zeros(cache.input.raw_dim());
        self.backward_into(
            cache.input.view(),
            &cache.activations,
            d_out.view_mut(),
            &mut d_hidden,
            Some(d_x.view_mut()),
            grads,
        );
        d_x
    }
}

impl<F: NdFloat> Parameters<F> for Mlp<F> {
    fn tensor_count(&self) -> usize {
        2 * self.layers.len()
    }
    fn tensor_name(&self, i: usize) -> String {
        format!("{}.{}", i / 2, self.layers[i / 2].tensor_name(i % 2))
    }
    fn tensor_shape(&self, i: usize) -> Vec<usize> {
        self.layers[i / 2].tensor_shape(i % 2)
    }
    fn tensor(&self, i: usize) -> &[F] {
        self.layers[i / 2].tensor(i % 2)
    }
    fn tensor_mut(&mut self, i: usize) -> &mut [F] {
        self.layers[i / 2].tensor_mut(i % 2)
    }
    fn zeros_like(&self) -> Self {
        self.zeros_like_mlp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::nn::gradcheck::{
        assert_grad_close, assert_slices_close, central_difference, parameter_difference,
    };
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn gradients_match_finite_differences_for_every_activation() {
        let mut rng = StdRng::seed_from_u64(4);
        let x = Array2::from_shape_simple_fn((3, 4), || StandardNormal.sample(&mut rng));
        let r = Array2::from_shape_simple_fn((3, 2), || StandardNormal.sample(&mut rng));
        for (activation, activate_output) in [
            (Activation::Relu, false),
            (Activation::Tanh, true),
            (Activation::Softplus, false),
            (Activation::Sigmoid, true),
        ] {
            let config = MlpConfig { input_dim: 4, layer_dims: vec![5, 3, 2], activation, activate_output };
            let mlp: Mlp<f64> = Mlp::new(&config, &mut rng).unwrap();
            // L = Σ r ⊙ MLP(x), so ∂L/∂y = r.
            let loss = |m: &Mlp<f64>, x: &Array2<f64>| (m.forward(x.view()).0 * &r).sum();
            let mut grads = mlp.zeros_like();
            let d_x = mlp.backward(mlp.forward(x.view()).1, r.view(), &mut grads);
            // Analytic: the chain on `Mlp`; here checked against central differences.
            let approx = central_difference(&x, |x| loss(&mlp, x));
            assert_grad_close(
                &format!("{activation:?} d_x"),
                d_x.view().into_dyn(),
                approx.view().into_dyn(),
                1e-7,
            );
            let mut probe = mlp.clone();
            for i in 0..mlp.tensor_count() {
                let approx = parameter_difference(&mut probe, i, |m| loss(m, &x));
                assert_slices_close(
                    &format!("{activation:?} {}", mlp.tensor_name(i)),
                    grads.tensor(i),
                    &approx,
                    1e-7,
                );
            }
        }
    }
}
