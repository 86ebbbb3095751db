//! A learnable mixture-of-Gaussians prior p_θ(z): its log-density, the hand-written gradients of
//! it, and draws. The engine trains one inside a [`crate::engine::vae::Vae`] with
//! [`crate::engine::vae::LatentPrior::Mixture`]; lesson 05 ([`crate::lessons::prior`]) compares it
//! with N(0, I).

use ndarray::{Array1, Array2, ArrayView2, Axis, NdFloat};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::base::error::{Error, Result, ensure_finite};
use crate::base::prob::{check_diag_gaussians, pairwise_diag_gaussian_log_density};

/// A learnable mixture-of-Gaussians prior p_θ(z) = Σ_k π_k N(z; m_k, diag e^(s_k)) (the text: "P(z)
/// may be chosen freely, even with learnable parameters"), with the gradients of its log-density
/// written by hand. A [`crate::engine::vae::Vae`] with [`crate::engine::vae::LatentPrior::Mixture`] keeps one in
/// [`crate::engine::vae::VaeParams::prior`] and trains it with the rest of the model (in the VAE's float
/// type `F`; the maths below runs in `f64`, see [`MixturePrior::cast`]).
///
/// Parameters: `logits` α (K), π = softmax(α); `means` m (K × Z); `log_vars` s = log σ² (K × Z).
#[derive(Clone, Debug, PartialEq)]
pub struct MixturePrior<F = f64> {
    /// α, the unnormalised log-weights, `K`.
    pub logits: Array1<F>,
    /// m_k, `K × Z`.
    pub means: Array2<F>,
    /// s_k = log σ²_k, `K × Z`.
    pub log_vars: Array2<F>,
}

impl<F: NdFloat> MixturePrior<F> {
    /// K, the number of components.
    pub fn components(&self) -> usize {
        self.logits.len()
    }

    /// The same parameters in another float type (an `f32` prior evaluated in `f64`).
    pub fn cast<G: NdFloat>(&self) -> MixturePrior<G> {
        let c = |v: &F| -> G { crate::engine::nn::cast(v.to_f64().expect("float")) };
        MixturePrior { logits: self.logits.map(c), means: self.means.map(c), log_vars: self.log_vars.map(c) }
    }

    /// A zeroed copy (a gradient struct, an optimiser moment).
    pub fn zeros_like(&self) -> Self {
        MixturePrior {
            logits: Array1::zeros(self.logits.len()),
            means: Array2::zeros(self.means.dim()),
            log_vars: Array2::zeros(self.log_vars.dim()),
        }
    }

    /// The initial prior of a VAE: equal weights (α = 0), unit variances (s = 0) and means drawn
    /// from N(0, I), K × Z values in row order (so the K components start spread over the region
    /// the N(0, I) prior covers, and not all equal, which would keep them equal under training).
    ///
    /// ```text
    /// α_k = 0,   m_ku ~ N(0, 1),   s_ku = 0
    /// ```
    ///
    /// # Errors
    /// `InvalidParameter` for K = 0 or Z = 0.
    pub fn init<R: Rng + ?Sized>(components: usize, latent_dim: usize, rng: &mut R) -> Result<Self> {
        if components == 0 {
            return Err(Error::invalid("components", 0, "a mixture prior needs K >= 1"));
        }
        if latent_dim == 0 {
            return Err(Error::invalid("latent_dim", 0, "must be >= 1"));
        }
        let means = Array2::from_shape_simple_fn((components, latent_dim), || {
            crate::engine::nn::cast::<F>(StandardNormal.sample(rng))
        });
        Ok(MixturePrior {
            logits: Array1::zeros(components),
            means,
            log_vars: Array2::zeros((components, latent_dim)),
        })
    }
}

/// ∂L/∂θ of L = Σ_b log p_θ(z_b), shaped as the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct MixturePriorGrads {
    /// ∂L/∂α, `K`.
    pub d_logits: Array1<f64>,
    /// ∂L/∂m, `K × Z`.
    pub d_means: Array2<f64>,
    /// ∂L/∂s, `K × Z`.
    pub d_log_vars: Array2<f64>,
}

/// The three tensors `logits`, `means`, `log_vars`, in that order (what Adam and checkpoints walk
/// when the prior is part of a [`crate::engine::vae::VaeParams`]).
impl<F: NdFloat> crate::engine::nn::Parameters<F> for MixturePrior<F> {
    fn tensor_count(&self) -> usize {
        3
    }
    fn tensor_name(&self, i: usize) -> String {
        ["logits", "means", "log_vars"][i].to_string()
    }
    fn tensor_shape(&self, i: usize) -> Vec<usize> {
        match i {
            0 => vec![self.logits.len()],
            1 => self.means.shape().to_vec(),
            _ => self.log_vars.shape().to_vec(),
        }
    }
    fn tensor(&self, i: usize) -> &[F] {
        match i {
            0 => self.logits.as_slice(),
            1 => self.means.as_slice(),
            _ => self.log_vars.as_slice(),
        }
        .expect("standard-layout parameters")
    }
    fn tensor_mut(&mut self, i: usize) -> &mut [F] {
        match i {
            0 => self.logits.as_slice_mut(),
            1 => self.means.as_slice_mut(),
            _ => self.log_vars.as_slice_mut(),
        }
        .expect("standard-layout parameters")
    }
    fn zeros_like(&self) -> Self {
        MixturePrior::zeros_like(self)
    }
}

impl MixturePrior<f64> {
    /// A mixture from its parameters.
    ///
    /// # Errors
    /// No components, shapes that differ, non-finite values.
    pub fn new(logits: Array1<f64>, means: Array2<f64>, log_vars: Array2<f64>) -> Result<Self> {
        check_diag_gaussians(means.view(), log_vars.view())?;
        if logits.len() != means.nrows() {
            return Err(Error::shape("logits (K)", means.nrows(), logits.len()));
        }
        ensure_finite("logits", logits.iter())?;
        // Standard (row-major) layout, so each tensor is one slice in its shape's order.
        let standard = |a: Array2<f64>| a.as_standard_layout().into_owned();
        Ok(MixturePrior { logits, means: standard(means), log_vars: standard(log_vars) })
    }

    /// π = softmax(α), the mixture weights, `K`.
    pub fn weights(&self) -> Array1<f64> {
        let log_norm = crate::base::prob::log_sum_exp_1d(self.logits.view());
        self.logits.mapv(|a| (a - log_norm).exp())
    }

    /// `n` draws z ~ p_θ by ancestral sampling.
    ///
    /// ```text
    /// k ~ Categorical(π),   ε ~ N(0, I_Z),   z = m_k + exp(½ s_k) ⊙ ε
    /// ```
    /// k is the first index with u < π_0 + … + π_k for u ~ Uniform[0, 1) (the last index if
    /// rounding leaves u above the total). Per draw: u first, then the Z values of ε.
    ///
    /// # Shapes
    /// Returns `n × Z`.
    ///
    /// ```
    /// use vaelab::ndarray::array;
    /// use vaelab::engine::vae::MixturePrior;
    /// use vaelab::rand::{SeedableRng, rngs::StdRng};
    /// // Weights (e^−40, ≈1): every draw comes from the second component, N(5, e^−40) ≈ the point 5.
    /// let p = MixturePrior::new(array![-40.0, 0.0], array![[-5.0], [5.0]], array![[-40.0], [-40.0]]).unwrap();
    /// let z = p.sample(50, &mut StdRng::seed_from_u64(3));
    /// assert!(z.iter().all(|&z| (z - 5.0).abs() < 1e-6));
    /// ```
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let pi = self.weights();
        let (k_count, zd) = self.means.dim();
        let mut z = Array2::<f64>::zeros((n, zd));
        for i in 0..n {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut k = k_count - 1;
            for (j, &w) in pi.iter().enumerate() {
                acc += w;
                if u < acc {
                    k = j;
                    break;
                }
            }
            for d in 0..zd {
                let e: f64 = StandardNormal.sample(rng);
                z[(i, d)] = self.means[(k, d)] + (0.5 * self.log_vars[(k, d)]).exp() * e;
            }
        }
        z
    }

    /// log p_θ on the grid x × y of a 2-D latent, for contour plots
    /// ([`crate::plot::Figure::density_contours`]): entry `[i, j]` is log p_θ((x_j, y_i)).
    ///
    /// # Shapes
    /// `x`: nx, `y`: ny → `ny × nx`.
    ///
    /// # Errors
    /// `Shape` unless Z = 2; `Empty` for an empty axis; `NonFinite` grid values.
    ///
    /// ```
    /// use vaelab::ndarray::array;
    /// use vaelab::engine::vae::MixturePrior;
    /// let p = MixturePrior::new(array![0.0], array![[0.0, 0.0]], array![[0.0, 0.0]]).unwrap();
    /// let g = p.log_density_grid(&[0.0, 1.0], &[0.0]).unwrap();
    /// assert!((g[[0, 1]] - (-1.837_877_066_409_345_5 - 0.5)).abs() < 1e-14); // log N((1, 0); 0, I)
    /// ```
    pub fn log_density_grid(&self, x: &[f64], y: &[f64]) -> Result<Array2<f64>> {
        if self.means.ncols() != 2 {
            return Err(Error::shape(
                "mixture prior latent dimension (Z) for a 2-D grid",
                2,
                self.means.ncols(),
            ));
        }
        if x.is_empty() || y.is_empty() {
            return Err(Error::empty("grid axis", "value"));
        }
        ensure_finite("x", x.iter())?;
        ensure_finite("y", y.iter())?;
        let points = Array2::from_shape_fn((x.len() * y.len(), 2), |(r, c)| {
            if c == 0 { x[r % x.len()] } else { y[r / x.len()] }
        });
        let (log_p, _) = self.log_density_and_responsibilities(points.view());
        Ok(log_p.into_shape_with_order((y.len(), x.len())).expect("ny · nx values"))
    }

    /// log p_θ(z) per row and the responsibilities r_bk.
    ///
    /// ```text
    /// log p_θ(z) = logsumexp_k [ log π_k + log N(z; m_k, diag e^(s_k)) ],   log π = α − logsumexp(α)
    /// r_bk = exp( log π_k + log N(z_b; m_k, e^(s_k)) − log p_θ(z_b) )
    /// ```
    /// (a Gaussian mixture; Bishop 2006, eqs. 9.7 and 9.13 for the responsibilities).
    ///
    /// # Shapes
    /// `z`: `B × Z` → (`B`, `B × K`).
    ///
    /// **Panics** if `z` does not have Z columns.
    ///
    /// ```
    /// use vaelab::ndarray::array;
    /// use vaelab::engine::vae::MixturePrior;
    /// // Two equal components N(0, I) in Z = 2: p(0) = 1/(2π), each responsibility ½.
    /// let p = MixturePrior::new(array![0.0, 0.0], array![[0.0, 0.0], [0.0, 0.0]], array![[0.0, 0.0], [0.0, 0.0]]).unwrap();
    /// let (lp, r) = p.log_density_and_responsibilities(array![[0.0, 0.0]].view());
    /// assert!((lp[0] + 1.837_877_066_409_345_5).abs() < 1e-14);
    /// assert!((r[[0, 0]] - 0.5).abs() < 1e-15);
    /// ```
    #[track_caller]
    pub fn log_density_and_responsibilities(&self, z: ArrayView2<f64>) -> (Array1<f64>, Array2<f64>) {
        assert_eq!(
            z.ncols(),
            self.means.ncols(),
            "MixturePrior::log_density: z {:?} vs means {:?}",
            z.shape(),
            self.means.shape()
        );
        let log_norm = crate::base::prob::log_sum_exp_1d(self.logits.view());
        let mut joint = pairwise_diag_gaussian_log_density(z, self.means.view(), self.log_vars.view()); // B × K
        for (k, &a) in self.logits.iter().enumerate() {
            joint.column_mut(k).mapv_inplace(|v| v + a - log_norm);
        }
        let log_p = crate::base::prob::log_sum_exp(joint.view(), Axis(1)); // B
        let resp = &joint - &log_p.view().insert_axis(Axis(1)); // B × K − B × 1
        (log_p, resp.mapv(f64::exp))
    }

    /// Backward of L = Σ_b log p_θ(z_b): ∂L/∂z and ∂L/∂θ.
    ///
    /// ```text
    /// ∂L/∂α_k    = Σ_b (r_bk − π_k)
    /// ∂L/∂m_ku   = Σ_b r_bk (z_bu − m_ku) e^(−s_ku)
    /// ∂L/∂s_ku   = Σ_b r_bk · ½ [ (z_bu − m_ku)² e^(−s_ku) − 1 ]
    /// ∂L/∂z_bu   = −Σ_k r_bk (z_bu − m_ku) e^(−s_ku)
    /// ```
    /// (each is the single-Gaussian derivative weighted by the responsibility, because
    /// ∂ log Σ_k e^(a_k) / ∂a_k = r_k). Checked against central differences in the tests.
    ///
    /// # Shapes
    /// `z`: `B × Z` → (`B × Z`, grads shaped as the parameters).
    #[track_caller]
    pub fn log_density_backward(&self, z: ArrayView2<f64>) -> (Array2<f64>, MixturePriorGrads) {
        let (_, r) = self.log_density_and_responsibilities(z);
        let (b, zd) = z.dim();
        let k = self.logits.len();
        let log_norm = crate::base::prob::log_sum_exp_1d(self.logits.view());
        let pi = self.logits.mapv(|a| (a - log_norm).exp());
        let mut d_z = Array2::<f64>::zeros((b, zd));
        let mut g = MixturePriorGrads {
            d_logits: r.sum_axis(Axis(0)) - &(&pi * b as f64),
            d_means: Array2::zeros((k, zd)),
            d_log_vars: Array2::zeros((k, zd)),
        };
        for i in 0..b {
            for c in 0..k {
                for u in 0..zd {
                    let prec = (-self.log_vars[(c, u)]).exp();
                    let diff = z[(i, u)] - self.means[(c, u)];
                    g.d_means[(c, u)] += r[(i, c)] * diff * prec;
                    g.d_log_vars[(c, u)] += r[(i, c)] * 0.5 * (diff * diff * prec - 1.0);
                    d_z[(i, u)] -= r[(i, c)] * diff * prec;
                }
            }
        }
        (d_z, g)
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops mirror the per-point formulas
pub(crate) mod tests {
    use super::*;
    use ndarray::array;

    /// The normal density N(z; m, v), written out (an independent route for the tests).
    pub(crate) fn normal_pdf(z: f64, m: f64, v: f64) -> f64 {
        (-(z - m) * (z - m) / (2.0 * v)).exp() / (std::f64::consts::TAU * v).sqrt()
    }

    fn mixture() -> MixturePrior {
        MixturePrior::new(
            array![0.3, -0.5, 0.1],
            array![[0.5, -1.0], [-1.2, 0.4], [0.0, 1.5]],
            array![[-0.3, 0.2], [0.4, -0.6], [0.0, 0.1]],
        )
        .unwrap()
    }

    #[test]
    fn mixture_prior_gradients_match_central_differences() {
        use crate::engine::nn::gradcheck::{assert_slices_close, central_difference};
        let p = mixture();
        let z = array![[0.2, -0.3], [1.0, 1.0], [-2.0, 0.5], [0.1, 2.0]];
        let (d_z, g) = p.log_density_backward(z.view());
        let total = |q: &MixturePrior, z: &Array2<f64>| q.log_density_and_responsibilities(z.view()).0.sum();
        let fd_z = central_difference(&z, |zz| total(&p, zz));
        let fd_a =
            central_difference(&p.logits, |a| total(&MixturePrior { logits: a.clone(), ..p.clone() }, &z));
        let fd_m =
            central_difference(&p.means, |m| total(&MixturePrior { means: m.clone(), ..p.clone() }, &z));
        let fd_s = central_difference(&p.log_vars, |s| {
            total(&MixturePrior { log_vars: s.clone(), ..p.clone() }, &z)
        });
        // Relative error below 1e-6 (a correct gradient shows ~1e-9, a wrong one ~1e-2; gradcheck docs).
        assert_slices_close("d_z", d_z.as_slice().unwrap(), fd_z.as_slice().unwrap(), 1e-6);
        assert_slices_close("d_logits", g.d_logits.as_slice().unwrap(), fd_a.as_slice().unwrap(), 1e-6);
        assert_slices_close("d_means", g.d_means.as_slice().unwrap(), fd_m.as_slice().unwrap(), 1e-6);
        assert_slices_close("d_log_vars", g.d_log_vars.as_slice().unwrap(), fd_s.as_slice().unwrap(), 1e-6);
    }

    #[test]
    fn mixture_prior_density_matches_a_direct_sum_and_responsibilities_sum_to_one() {
        let p = mixture();
        let z = array![[0.2, -0.3], [-2.0, 0.5]];
        let (lp, r) = p.log_density_and_responsibilities(z.view());
        let w: Vec<f64> = p.logits.iter().map(|a| a.exp()).collect();
        let wsum: f64 = w.iter().sum();
        for b in 0..2 {
            let mut d = 0.0;
            for k in 0..3 {
                let mut dens = 1.0;
                for u in 0..2 {
                    dens *= normal_pdf(z[(b, u)], p.means[(k, u)], p.log_vars[(k, u)].exp());
                }
                d += w[k] / wsum * dens;
            }
            assert!((lp[b] - d.ln()).abs() < 1e-13, "{} vs {}", lp[b], d.ln());
            assert!((r.row(b).sum() - 1.0).abs() < 1e-13);
        }
        assert!(MixturePrior::new(array![0.0], p.means.clone(), p.log_vars.clone()).is_err());
    }
}
