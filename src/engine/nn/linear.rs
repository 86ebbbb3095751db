//! The affine layer y = x W + b.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, NdFloat, Zip};
use rand::Rng;
use rand_distr::{Distribution, Uniform};

use super::{Parameters, cast};
use crate::base::error::{Error, Result};

/// An affine layer, y = x W + b.
///
/// ```text
/// forward    y = x W + b                      x: B × I,  W: I × O,  b: O,  y: B × O
/// backward   ∂L/∂W = xᵀ (∂L/∂y)               I × O
///            ∂L/∂b = Σ_rows ∂L/∂y             O
///            ∂L/∂x = (∂L/∂y) Wᵀ               B × I
/// init       Wᵢⱼ, bⱼ ~ U(−1/√I, 1/√I)         (PyTorch's `nn.Linear` default)
/// ```
/// `I` = fan-in (input width), `O` = fan-out. The weight is stored `I × O` (input-major), the
/// transpose of PyTorch's `O × I`, so that the forward product `x W` multiplies two row-major
/// matrices; the two backward products read the same buffers through transposed strides.
///
/// # Shapes
/// `weight`: `I × O`; `bias`: `O`.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear<F> {
    /// W, `fan_in × fan_out`.
    pub weight: Array2<F>,
    /// b, `fan_out`.
    pub bias: Array1<F>,
}

/// Gradients of a [`Linear`] layer are held in a `Linear` of the same shape.
pub type LinearGrads<F> = Linear<F>;

/// What [`Linear::backward`] needs: the layer's input.
#[derive(Clone, Debug)]
pub struct LinearCache<F> {
    /// x, `B × I`.
    pub input: Array2<F>,
}

impl<F: NdFloat> Linear<F> {
    /// A layer with PyTorch's default initialisation: every weight and bias drawn from
    /// U(−1/√fan_in, 1/√fan_in), the weight first (row by row of the `I × O` array), then the bias.
    ///
    /// # Errors
    /// `InvalidParameter` if `fan_in` or `fan_out` is 0.
    pub fn new<R: Rng + ?Sized>(fan_in: usize, fan_out: usize, rng: &mut R) -> Result<Self> {
        if fan_in == 0 {
            return Err(Error::invalid("fan_in", fan_in, "a layer needs at least one input"));
        }
        if fan_out == 0 {
            return Err(Error::invalid("fan_out", fan_out, "a layer needs at least one output"));
        }
        let bound = 1.0 / (fan_in as f64).sqrt();
        let u = Uniform::new(-bound, bound).expect("bound > 0");
        let weight = Array2::from_shape_simple_fn((fan_in, fan_out), || cast(u.sample(rng)));
        let bias = Array1::from_shape_simple_fn(fan_out, || cast(u.sample(rng)));
        Ok(Linear { weight, bias })
    }

    /// A layer of zeros (a gradient accumulator).
    pub fn zeros(fan_in: usize, fan_out: usize) -> Self {
        Linear { weight: Array2::zeros((fan_in, fan_out)), bias: Array1::zeros(fan_out) }
    }

    /// Input width I.
    pub fn fan_in(&self) -> usize {
        self.weight.nrows()
    }

    /// Output width O.
    pub fn fan_out(&self) -> usize {
        self.weight.ncols()
    }

    /// The layer in another float type (e.g. an `f32` model checked in `f64`).
    pub fn cast<G: NdFloat>(&self) -> Linear<G> {
        Linear {
            weight: self.weight.mapv(|v| cast(v.to_f64().expect("float"))),
            bias: self.bias.mapv(|v| cast(v.to_f64().expect("float"))),
        }
    }

    /// y = x W + b, returning the cache backward consumes.
    ///
    /// # Shapes
    /// `x`: `B × I` → y: `B × O`.
    #[track_caller]
    pub fn forward(&self, x: ArrayView2<F>) -> (Array2<F>, LinearCache<F>) {
        let mut y = Array2::zeros((x.nrows(), self.fan_out()));
        linear_forward_into(x, self.weight.view(), self.bias.view(), y.view_mut());
        (y, LinearCache { input: x.to_owned() })
    }

    /// Accumulates ∂L/∂W and ∂L/∂b into `grads` and returns ∂L/∂x.
    ///
    /// # Shapes
    /// `d_y`: `B × O` → d_x: `B × I`.
    #[track_caller]
    pub fn backward(
        &self,
        cache: LinearCache<F>,
        d_y: ArrayView2<F>,
        grads: &mut LinearGrads<F>,
    ) -> Array2<F> {
        let mut d_x = Array2::zeros(cache.input.raw_dim());
        linear_backward_into(
            cache.input.view(),
            self.weight.view(),
            d_y,
            grads.weight.view_mut(),
            grads.bias.view_mut(),
            Some(d_x.view_mut()),
        );
        d_x
    }
}

/// Kernel: y ← x W + b, written into an existing buffer (no allocation).
///
/// # Shapes
/// `x`: `B × I`, `weight`: `I × O`, `bias`: `O`, `y`: `B × O`.
#[track_caller]
pub fn linear_forward_into<F: NdFloat>(
    x: ArrayView2<F>,
    weight: ArrayView2<F>,
    bias: ArrayView1<F>,
    mut y: ArrayViewMut2<F>,
) {
    assert!(
        x.ncols() == weight.nrows() && y.dim() == (x.nrows(), weight.ncols()) && bias.len() == weight.ncols(),
        "linear forward: x {:?} · W {:?} + b {:?} -> y {:?}",
        x.dim(),
        weight.dim(),
        bias.len(),
        y.dim()
    );
    // B × O ← O row by row, then += x W (the kernel reads the bias itself where it can).
    crate::base::parallel::gemm_bias(&x, &weight, &bias, &mut y);
}

/// Kernel: d_W += xᵀ d_y, d_b += Σ_rows d_y, and (if asked) d_x ← d_y Wᵀ.
///
/// Pass `d_x = None` for a network's first layer, whose input gradient nobody needs: that skips
/// the largest product of the backward pass (B·I·O multiply-adds).
///
/// # Shapes
/// `x`: `B × I`, `weight`: `I × O`, `d_y`: `B × O`, `d_weight`: `I × O`, `d_bias`: `O`,
/// `d_x`: `B × I`.
#[track_caller]
pub fn linear_backward_into<F: NdFloat>(
    x: ArrayView2<F>,
    weight: ArrayView2<F>,
    d_y: ArrayView2<F>,
    mut d_weight: ArrayViewMut2<F>,
    mut d_bias: ArrayViewMut1<F>,
    d_x: Option<ArrayViewMut2<F>>,
) {
    assert!(
        x.nrows() == d_y.nrows()
            && x.ncols() == weight.nrows()
            && d_y.ncols() == weight.ncols()
            && d_weight.dim() == weight.dim()
            && d_bias.len() == weight.ncols(),
        "linear backward: x {:?}, W {:?}, d_y {:?}, d_W {:?}, d_b {:?}",
        x.dim(),
        weight.dim(),
        d_y.dim(),
        d_weight.dim(),
        d_bias.len()
    );
    crate::base::parallel::gemm(F::one(), &x.t(), &d_y, F::one(), &mut d_weight); // I × O += (I × B)(B × O)
    for row in d_y.axis_iter(Axis(0)) {
        Zip::from(&mut d_bias).and(&row).for_each(|db, &g| *db += g);
    }
    if let Some(mut d_x) = d_x {
        assert_eq!(d_x.dim(), x.dim(), "linear backward: d_x {:?} vs x {:?}", d_x.dim(), x.dim());
        crate::base::parallel::gemm(F::one(), &d_y, &weight.t(), F::zero(), &mut d_x); // B × I = (B × O)(O × I)
    }
}

impl<F: NdFloat> Parameters<F> for Linear<F> {
    fn tensor_count(&self) -> usize {
        2
    }
    fn tensor_name(&self, i: usize) -> String {
        ["weight", "bias"][i].to_string()
    }
    fn tensor_shape(&self, i: usize) -> Vec<usize> {
        if i == 0 { self.weight.shape().to_vec() } else { self.bias.shape().to_vec() }
    }
    fn tensor(&self, i: usize) -> &[F] {
        match i {
            0 => self.weight.as_slice_memory_order().expect("owned weight is contiguous"),
            1 => self.bias.as_slice_memory_order().expect("owned bias is contiguous"),
            _ => panic!("Linear has 2 tensors, asked for {i}"),
        }
    }
    fn tensor_mut(&mut self, i: usize) -> &mut [F] {
        match i {
            0 => self.weight.as_slice_memory_order_mut().expect("owned weight is contiguous"),
            1 => self.bias.as_slice_memory_order_mut().expect("owned bias is contiguous"),
            _ => panic!("Linear has 2 tensors, asked for {i}"),
        }
    }
    fn zeros_like(&self) -> Self {
        Linear::zeros(self.fan_in(), self.fan_out())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::nn::gradcheck::{
        assert_grad_close, assert_slices_close, central_difference, parameter_difference,
    };
    use ndarray::array;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn forward_by_hand() {
        // [1 2] · [[1 0 2], [0 1 1]] + [0.5 0 −1] = [1.5 2 3].
        let layer = Linear { weight: array![[1.0, 0.0, 2.0], [0.0, 1.0, 1.0]], bias: array![0.5, 0.0, -1.0] };
        let (y, _) = layer.forward(array![[1.0, 2.0]].view());
        assert_eq!(y, array![[1.5, 2.0, 3.0]]);
    }

    #[test]
    fn init_is_uniform_within_one_over_sqrt_fan_in() {
        let mut rng = StdRng::seed_from_u64(1);
        let layer: Linear<f64> = Linear::new(400, 50, &mut rng).unwrap();
        let bound = 1.0 / 20.0;
        assert!(layer.weight.iter().chain(&layer.bias).all(|v| v.abs() < bound));
        // The mean of n = 20,050 draws of U(−a, a) has standard error a/√(3n) = 2.04e-4; allow 4 SE.
        let n = (layer.weight.len() + layer.bias.len()) as f64;
        let mean = (layer.weight.sum() + layer.bias.sum()) / n;
        assert!(mean.abs() < 4.0 * bound / (3.0 * n).sqrt(), "mean {mean}");
        // Its variance is a²/3 = 8.33e-4; the sample variance's SE is ≈ a²·√(4/(45 n)) = 5.3e-6; allow 4 SE.
        let var = layer.weight.iter().chain(&layer.bias).map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let se = bound * bound * (4.0 / (45.0 * n)).sqrt();
        assert!((var - bound * bound / 3.0).abs() < 4.0 * se, "var {var}");
        assert!(Linear::<f64>::new(0, 3, &mut rng).unwrap_err().to_string().contains("fan_in = 0"));
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = StdRng::seed_from_u64(2);
        let layer: Linear<f64> = Linear::new(4, 3, &mut rng).unwrap();
        let x = array![[0.3, -1.2, 0.5, 2.0], [1.1, 0.4, -0.7, 0.0]];
        // L = Σ r ⊙ y for a fixed r, so ∂L/∂y = r.
        let r = array![[0.2, -0.5, 1.3], [-0.9, 0.7, 0.1]];
        let loss = |layer: &Linear<f64>, x: &Array2<f64>| (layer.forward(x.view()).0 * &r).sum();
        let (_, cache) = layer.forward(x.view());
        let mut grads = layer.zeros_like();
        let d_x = layer.backward(cache, r.view(), &mut grads);
        // Analytic: ∂L/∂x = r Wᵀ.
        let approx = central_difference(&x, |x| loss(&layer, x));
        assert_grad_close("d_x", d_x.view().into_dyn(), approx.view().into_dyn(), 1e-8);
        // Analytic: ∂L/∂W = xᵀ r, ∂L/∂b = Σ_rows r.
        let mut probe = layer.clone();
        for i in 0..2 {
            let approx = parameter_difference(&mut probe, i, |l| loss(l, &x));
            assert_slices_close(&layer.tensor_name(i), grads.tensor(i), &approx, 1e-8);
        }
    }

    #[test]
    fn backward_accumulates_into_the_gradient() {
        let mut rng = StdRng::seed_from_u64(3);
        let layer: Linear<f64> = Linear::new(2, 2, &mut rng).unwrap();
        let x = array![[1.0, -1.0]];
        let d_y = array![[0.5, 2.0]];
        let mut grads = layer.zeros_like();
        layer.backward(layer.forward(x.view()).1, d_y.view(), &mut grads);
        let once = grads.clone();
        layer.backward(layer.forward(x.view()).1, d_y.view(), &mut grads);
        // Two identical backward passes give twice the gradient (+=, not =).
        assert_eq!(grads.weight, &once.weight * 2.0);
        assert_eq!(grads.bias, &once.bias * 2.0);
    }
}
