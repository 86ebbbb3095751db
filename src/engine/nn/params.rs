//! A fixed, named list of parameter tensors: what optimisers, gradient checks and checkpoints walk.

/// A model's parameter tensors, in a fixed order, each a contiguous slice.
///
/// The same type holds the parameters, their gradients and the optimiser's moments (llm.c's
/// `ParameterTensors`), so walking tensor `i` of each visits the same weight. Walking allocates
/// nothing: [`Parameters::tensor`] and [`Parameters::tensor_mut`] index into the struct.
pub trait Parameters<F> {
    /// Number of tensors.
    fn tensor_count(&self) -> usize;
    /// Name of tensor `i` (`trunk.0.weight`, `mean_head.bias`, ...), used in errors and checkpoints.
    fn tensor_name(&self, i: usize) -> String;
    /// Shape of tensor `i`.
    fn tensor_shape(&self, i: usize) -> Vec<usize>;
    /// Tensor `i` as a flat slice in memory order.
    fn tensor(&self, i: usize) -> &[F];
    /// Tensor `i` as a mutable flat slice in memory order.
    fn tensor_mut(&mut self, i: usize) -> &mut [F];
    /// A copy with every element set to zero (a gradient struct, an optimiser moment).
    fn zeros_like(&self) -> Self
    where
        Self: Sized;

    /// Total number of scalars.
    fn scalar_count(&self) -> usize {
        (0..self.tensor_count()).map(|i| self.tensor(i).len()).sum()
    }

    /// Sets every element to zero.
    fn fill_zero(&mut self)
    where
        F: Copy + num_traits::Zero,
    {
        for i in 0..self.tensor_count() {
            self.tensor_mut(i).fill(F::zero());
        }
    }

    /// The first tensor holding a NaN or an infinity: `(tensor index, element index, value)`.
    fn first_non_finite(&self) -> Option<(usize, usize, F)>
    where
        F: num_traits::Float + 'static,
    {
        (0..self.tensor_count()).find_map(|i| first_non_finite(self.tensor(i)).map(|(j, v)| (i, j, v)))
    }
}

/// The first NaN or infinity in `t`: `(element index, value)`. One vectorised pass for `f32`.
pub(crate) fn first_non_finite<F: num_traits::Float + 'static>(t: &[F]) -> Option<(usize, F)> {
    if let Some(t32) = super::simd::as_f32(t) {
        // f32: the same probe in 16 independent lanes (vectorised).
        if super::simd::all_finite(t32) {
            return None;
        }
    } else {
        // One fused pass: `g - g` is 0 for a finite g and NaN otherwise.
        #[allow(clippy::eq_op)]
        let probe = t.iter().fold(F::zero(), |acc, &g| acc + (g - g));
        if probe.is_finite() {
            return None;
        }
    }
    let j = t.iter().position(|g| !g.is_finite()).unwrap_or(0);
    Some((j, t[j]))
}

/// A flat vector is one tensor, `values`: what a hand-rolled parameter vector (e.g. the q of
/// [`crate::lessons::bounds::fit_gaussian`]) hands to an [`super::Optimizer`].
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::engine::nn::{Optimizer, OptimizerConfig, Parameters};
/// let mut theta = array![1.0, -2.0];
/// let mut grad = array![0.5, -1.0];
/// let mut sgd = Optimizer::new(OptimizerConfig::Sgd { lr: 0.1 }, &theta).unwrap();
/// sgd.step(&mut theta, &mut grad);
/// assert_eq!(theta, array![0.95, -1.9]); // θ − 0.1 g
/// assert_eq!((theta.tensor_count(), theta.tensor_name(0)), (1, "values".to_string()));
/// ```
impl<F: Copy + num_traits::Zero> Parameters<F> for ndarray::Array1<F> {
    fn tensor_count(&self) -> usize {
        1
    }
    fn tensor_name(&self, _i: usize) -> String {
        "values".to_string()
    }
    fn tensor_shape(&self, _i: usize) -> Vec<usize> {
        vec![self.len()]
    }
    fn tensor(&self, _i: usize) -> &[F] {
        self.as_slice().expect("an owned Array1 is contiguous")
    }
    fn tensor_mut(&mut self, _i: usize) -> &mut [F] {
        self.as_slice_mut().expect("an owned Array1 is contiguous")
    }
    fn zeros_like(&self) -> Self {
        ndarray::Array1::zeros(self.len())
    }
}
