//! Toy 3: binary latents with a Bernoulli decoder; log p(x) by enumerating all 2ᵏ latents.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, concatenate};
use rand::Rng;

use super::{
    Encoding, LatentModel, Posterior, Prior, check_x_len_finite, ensure_finite_matrix, ensure_finite_vector,
    ensure_len,
};
use crate::base::error::{Error, Result};
use crate::base::prob::{bernoulli_log_likelihood, log_sum_exp_1d, sigmoid};

/// The largest k the model accepts: enumeration visits 2ᵏ states (2²⁰ ≈ 10⁶).
pub const MAX_BINARY_LATENTS: usize = 20;

/// States enumerated at a time, so memory stays at CHUNK × (k + D) numbers.
const CHUNK: usize = 4096;

/// z ∈ {0, 1}ᵏ with independent bits zⱼ ~ Bernoulli(ρⱼ), x | z ~ Bernoulli(σ(W z + b)) per pixel.
///
/// ```text
/// log p(z)   = Σⱼ [ zⱼ ln ρⱼ + (1 − zⱼ) ln(1 − ρⱼ) ]
/// log p(x|z) = Σ_d [ x_d log σ(l_d) + (1 − x_d) log(1 − σ(l_d)) ],   l = W z + b
/// log p(x)   = log Σ_{z ∈ {0,1}ᵏ} p(z) p(x|z)                 (all 2ᵏ states, by log-sum-exp)
/// p(z|x)     = p(z) p(x|z) / p(x)
///
///   ρ  k prior probabilities     W  D × k     b  D     σ  the logistic sigmoid
/// ```
/// A sigmoid belief net with one hidden layer (Neal 1992). A latent is a row of k bits, 0.0/1.0
/// ([`Encoding::Bits`]); state i of the posterior has bit j = (i >> j) & 1.
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::lessons::toy::{BinaryLatent, LatentModel};
/// // W = 0, b = 0: every pixel is a fair coin whatever z, so p(x) = 2⁻ᴰ.
/// let m = BinaryLatent::new(array![0.3, 0.6], array![[0.0, 0.0], [0.0, 0.0]], array![0.0, 0.0]).unwrap();
/// let lp = m.log_marginal(array![1.0, 0.0].view()).unwrap();
/// assert!((lp - 2.0 * 0.5f64.ln()).abs() < 1e-14);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BinaryLatent {
    pub(crate) prior: Array1<f64>,
    pub(crate) w: Array2<f64>,
    pub(crate) b: Array1<f64>,
    prior_logits: Array1<f64>,
}

impl BinaryLatent {
    /// Validates and builds the model.
    ///
    /// # Errors
    /// k = 0 or k > [`MAX_BINARY_LATENTS`], `w` not D × k, `b` not of length D, non-finite values,
    /// prior probabilities outside (0, 1): an error naming the field and the value.
    pub fn new(prior: Array1<f64>, w: Array2<f64>, b: Array1<f64>) -> Result<Self> {
        let k = prior.len();
        if k == 0 {
            return Err(Error::empty("prior", "binary latent"));
        }
        if k > MAX_BINARY_LATENTS {
            return Err(Error::invalid(
                "prior",
                format!("{k} binary latents"),
                format!("at most {MAX_BINARY_LATENTS} can be enumerated (2^{k} states to sum for log p(x))"),
            ));
        }
        ensure_finite_vector("prior", &prior)?;
        if let Some((j, &p)) = prior.iter().enumerate().find(|(_, p)| !(**p > 0.0 && **p < 1.0)) {
            return Err(Error::invalid(format!("prior[{j}]"), p, "must be a probability in (0, 1)"));
        }
        if w.ncols() != k || w.nrows() == 0 {
            return Err(Error::shape(
                "w",
                format!("D ≥ 1 rows of {k} columns (one per prior entry)"),
                format!("{} × {}", w.nrows(), w.ncols()),
            ));
        }
        ensure_finite_matrix("w", &w)?;
        ensure_len("b", &b, w.nrows(), "D = rows of w")?;
        ensure_finite_vector("b", &b)?;
        let prior_logits = prior.mapv(|p| p.ln() - (-p).ln_1p());
        Ok(BinaryLatent { prior, w, b, prior_logits })
    }

    /// ρ (k).
    pub fn prior_probs(&self) -> &Array1<f64> {
        &self.prior
    }
    /// W (D × k).
    pub fn w(&self) -> &Array2<f64> {
        &self.w
    }
    /// b (D).
    pub fn b(&self) -> &Array1<f64> {
        &self.b
    }
    /// The number of latent states, 2ᵏ.
    pub fn states(&self) -> usize {
        1 << self.prior.len()
    }

    /// log p(x, z) for every state z (2ᵏ, indexed as in [`Encoding::Bits`]), CHUNK states at a time.
    fn log_joint_all_states(&self, x: ArrayView1<f64>) -> Array1<f64> {
        let enc = Encoding::Bits(self.prior.len());
        let mut parts = Vec::new();
        let mut start = 0;
        while start < self.states() {
            let end = (start + CHUNK).min(self.states());
            let mut z = Array2::zeros((end - start, enc.width()));
            for (i, row) in z.rows_mut().into_iter().enumerate() {
                enc.encode(start + i, row);
            }
            parts.push(self.log_joint(x, z.view()));
            start = end;
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        concatenate(Axis(0), &views).expect("1-D parts")
    }
}

impl LatentModel for BinaryLatent {
    fn latent_dim(&self) -> usize {
        self.prior.len()
    }

    fn data_dim(&self) -> usize {
        self.w.nrows()
    }

    fn prior(&self) -> Prior {
        Prior::Bernoulli { probs: self.prior.clone() }
    }

    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Array2<f64>, Array2<f64>) {
        let k = self.latent_dim();
        let z =
            Array2::from_shape_fn((n, k), |(_, j)| f64::from(u8::from(rng.random::<f64>() < self.prior[j])));
        let p = (z.dot(&self.w.t()) + &self.b).mapv(sigmoid); // N × D
        let x = p.mapv(|p| f64::from(u8::from(rng.random::<f64>() < p)));
        (z, x)
    }

    fn log_prior(&self, z: ArrayView2<f64>) -> Array1<f64> {
        let logits = self.prior_logits.broadcast(z.dim()).expect("z is N × k"); // N × k
        bernoulli_log_likelihood(z, logits)
    }

    fn log_likelihood(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64> {
        let logits = z.dot(&self.w.t()) + &self.b; // N × D
        let xs = x.broadcast(logits.dim()).expect("x has D entries"); // N × D
        bernoulli_log_likelihood(xs, logits.view())
    }

    fn log_marginal(&self, x: ArrayView1<f64>) -> Result<f64> {
        self.check_x(x)?;
        Ok(log_sum_exp_1d(self.log_joint_all_states(x).view()))
    }

    /// Bayes' rule over all 2^K states ([`Posterior::by_bayes_rule`]), normalised by its own sum.
    fn posterior(&self, x: ArrayView1<f64>) -> Result<Option<Posterior>> {
        self.check_x(x)?;
        Posterior::by_bayes_rule(self.log_joint_all_states(x), Encoding::Bits(self.latent_dim())).map(Some)
    }

    fn check_x(&self, x: ArrayView1<f64>) -> Result<()> {
        check_x_len_finite(x, self.data_dim())?;
        match x.iter().position(|&v| v != 0.0 && v != 1.0) {
            Some(i) => Err(Error::invalid(format!("x[{i}]"), x[i], "must be 0 or 1 (binary data)")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn model(k: usize) -> BinaryLatent {
        let prior = Array1::from_shape_fn(k, |j| 0.2 + 0.6 * j as f64 / k as f64);
        let w = Array2::from_shape_fn((4, k), |(d, j)| ((d * 7 + j * 3) % 5) as f64 - 2.0);
        BinaryLatent::new(prior, w, array![0.5, -1.0, 0.0, 1.5]).unwrap()
    }

    /// Enumeration against Monte Carlo over the prior, log p(x) = log E_{p(z)} p(x|z):
    /// N = 100 000 draws, delta-method SE of the log-mean, 4 SE.
    #[test]
    fn enumeration_matches_monte_carlo_over_the_prior() {
        let m = model(5);
        let x = array![1.0, 0.0, 0.0, 1.0];
        let (z, _) = m.sample(100_000, &mut StdRng::seed_from_u64(31));
        let log_lik = m.log_likelihood(x.view(), z.view());
        let mc = crate::base::prob::log_mean_exp_1d(log_lik.view());
        let w = log_lik.mapv(|l| (l - mc).exp());
        let se = w.std(1.0) / (w.len() as f64).sqrt();
        let exact = m.log_marginal(x.view()).unwrap();
        assert!((mc - exact).abs() < 4.0 * se, "exact {exact}, MC {mc} ± {se}");
    }

    /// Chunked enumeration (k = 13: 8192 states, two chunks) sums p(x) over all x ∈ {0,1}⁴ to 1.
    #[test]
    fn marginal_sums_to_one_over_all_data_points() {
        let m = model(13);
        let total: f64 = (0..16)
            .map(|i| {
                let x = Array1::from_shape_fn(4, |d| ((i >> d) & 1) as f64);
                m.log_marginal(x.view()).unwrap().exp()
            })
            .sum();
        assert!((total - 1.0).abs() < 1e-12, "Σₓ p(x) = {total}");
    }

    #[test]
    fn too_many_latents_and_non_binary_x_are_refused() {
        let e = BinaryLatent::new(Array1::from_elem(21, 0.5), Array2::zeros((1, 21)), array![0.0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("21 binary latents") && e.contains("at most 20"), "{e}");
        let e = model(2).log_marginal(array![1.0, 0.5, 0.0, 1.0].view()).unwrap_err().to_string();
        assert!(e.contains("x[1] = 0.5"), "{e}");
        let e =
            BinaryLatent::new(array![0.5, 1.0], Array2::zeros((1, 2)), array![0.0]).unwrap_err().to_string();
        assert!(e.contains("prior[1] = 1"), "{e}");
    }
}
