//! Toy generative models p(z) p(x|z) whose log p(x) is known exactly (§2, §3 of the course).
//!
//! The text's derivations are statements about log P(x), which a real VAE cannot compute. On these
//! four models it can, so every line of both derivations becomes a number that can be checked:
//!
//! | model | latent z | log p(x) | posterior p(z\|x) |
//! |---|---|---|---|
//! | [`LinearGaussian`] (probabilistic PCA) | ℝᶻ, N(0, I) | Gaussian N(b, WWᵀ + σ²I), closed form | Gaussian, closed form |
//! | [`Mixture`] | one of K components | log-sum-exp over components | responsibilities |
//! | [`BinaryLatent`] | {0, 1}ᵏ | enumeration of 2ᵏ states (k ≤ [`MAX_BINARY_LATENTS`]) | enumeration |
//! | [`Quadratic`] | ℝ, N(0, 1) | adaptive quadrature ([`crate::base::quadrature`]) | bimodal, none in closed form |
//!
//! Each implements [`LatentModel`]; [`Model`] holds any of them and reads/writes the JSON model
//! files (`{"kind": "linear_gaussian", ...}`, see `docs/model-files.md`), validating on load.
//!
//! Latents are stored as `f64` arrays with one row per sample: a mixture component is the row
//! `[k]` (k = 0..K−1 as a float), a binary latent is a row of 0.0/1.0. So one estimator code path,
//! vectorised over N × Z arrays, serves all four.
//!
//! Derived in `02-derivation-1-jensen.ipynb` and `03-derivation-2-kl-gap.ipynb`.

mod binary;
mod linear_gaussian;
mod mixture;
mod quadratic;

pub use binary::{BinaryLatent, MAX_BINARY_LATENTS};
pub use linear_gaussian::LinearGaussian;
pub use mixture::{Mixture, WEIGHT_SUM_TOLERANCE};
pub use quadratic::{MAX_A_OVER_SIGMA, MIN_SIGMA, QUADRATURE_REL_TOL, Quadratic};

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};

/// A latent-variable model p(x, z) = p(z) p(x|z) with an exact log p(x).
///
/// # Shapes
/// `z`: N × Z (one latent per row), `x`: D (one data point). Functions of z return N.
pub trait LatentModel {
    /// Z, the number of latent columns.
    fn latent_dim(&self) -> usize;
    /// D, the data dimension.
    fn data_dim(&self) -> usize;
    /// The prior p(z), described so that KL(q ‖ p(z)) can be taken in closed form.
    fn prior(&self) -> Prior;
    /// Draws N pairs (z, x) from p(z) p(x|z): returns (z: N × Z, x: N × D).
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Array2<f64>, Array2<f64>);
    /// log p(z) for each row of `z` (N).
    fn log_prior(&self, z: ArrayView2<f64>) -> Array1<f64>;
    /// log p(x|z) for one `x` and each row of `z` (N).
    fn log_likelihood(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64>;
    /// log p(x, z) = log p(z) + log p(x|z) for each row of `z` (N).
    fn log_joint(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64> {
        self.log_prior(z) + self.log_likelihood(x, z)
    }
    /// The exact log p(x) (to the accuracy each model states).
    fn log_marginal(&self, x: ArrayView1<f64>) -> Result<f64>;
    /// The exact posterior p(z|x), when it has a closed or enumerable form.
    fn posterior(&self, x: ArrayView1<f64>) -> Result<Option<Posterior>>;
    /// Checks that `x` is a valid data point (length D, finite, in the support).
    fn check_x(&self, x: ArrayView1<f64>) -> Result<()>;
}

/// A model whose latent is continuous and whose log-joint can be differentiated in z: what the
/// reparameterisation gradient needs.
pub trait ContinuousLatent: LatentModel {
    /// ∂ log p(x, z) / ∂z for each row of `z`.
    ///
    /// # Shapes
    /// `x`: D; `z`: N × Z; returns N × Z.
    fn d_log_joint_dz(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array2<f64>;
}

/// The prior p(z) of a toy model.
#[derive(Debug, Clone, PartialEq)]
pub enum Prior {
    /// N(0, I_Z).
    StdNormal {
        /// Z.
        dim: usize,
    },
    /// z = k with probability `weights[k]`.
    Categorical {
        /// π, summing to 1.
        weights: Array1<f64>,
    },
    /// Independent bits, zⱼ = 1 with probability `probs[j]`.
    Bernoulli {
        /// ρ, each in (0, 1).
        probs: Array1<f64>,
    },
}

/// How a category index is written as a latent row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Category i is the row `[i]` (mixture components).
    Index,
    /// Category i is the row of its k bits, bit j = (i >> j) & 1 (binary latents).
    Bits(usize),
}

impl Encoding {
    /// Z, the width of a latent row.
    pub fn width(&self) -> usize {
        match self {
            Encoding::Index => 1,
            Encoding::Bits(k) => *k,
        }
    }

    /// The row for category `i`.
    pub fn encode(&self, i: usize, row: ndarray::ArrayViewMut1<f64>) {
        let mut row = row;
        match self {
            Encoding::Index => row[0] = i as f64,
            Encoding::Bits(k) => {
                for j in 0..*k {
                    row[j] = ((i >> j) & 1) as f64;
                }
            }
        }
    }

    /// The category of a row. **Panics** if the row is not a valid code (a programmer error).
    #[track_caller]
    pub fn decode(&self, row: ArrayView1<f64>) -> usize {
        match self {
            Encoding::Index => {
                let v = row[0];
                assert!(v >= 0.0 && v.fract() == 0.0, "Encoding::Index: latent {v} is not a category index");
                v as usize
            }
            Encoding::Bits(_) => row.iter().enumerate().fold(0, |acc, (j, &b)| {
                assert!(b == 0.0 || b == 1.0, "Encoding::Bits: latent bit {b} is not 0 or 1");
                acc | ((b as usize) << j)
            }),
        }
    }

    /// All categories as rows: C × Z.
    pub fn all_states(&self, count: usize) -> Array2<f64> {
        let mut s = Array2::zeros((count, self.width()));
        for (i, row) in s.rows_mut().into_iter().enumerate() {
            self.encode(i, row);
        }
        s
    }
}

/// An exact posterior p(z|x).
#[derive(Debug, Clone, PartialEq)]
pub enum Posterior {
    /// N(mean, cov) (linear-Gaussian model).
    Gaussian {
        /// Posterior mean (Z).
        mean: Array1<f64>,
        /// Posterior covariance (Z × Z).
        cov: Array2<f64>,
    },
    /// A distribution over finitely many latents, p(z = state i | x) = `exp(log_probs[i])`.
    Categorical {
        /// log p(z = i | x), C.
        log_probs: Array1<f64>,
        /// How category i is written as a latent row.
        encoding: Encoding,
    },
}

impl Posterior {
    /// Bayes' rule by enumeration, in probability space:
    ///
    /// ```text
    /// p(z = i | x) = p(x, z = i) / Σⱼ p(x, z = j),   computed as wᵢ / Σⱼ wⱼ with wᵢ = exp(ℓᵢ − maxⱼ ℓⱼ)
    /// ```
    /// from the log-joints ℓᵢ = log p(x, z = i) of every latent state. The normaliser is summed
    /// here, not taken from the model's `log_marginal`, so KL(Q ‖ P(z|x)) computed from this
    /// posterior is an independent route to log P(x) − ELBO (derivation 2, line 4).
    ///
    /// # Shapes
    /// `log_joint`: C (one entry per state); the posterior's `log_probs`: C.
    ///
    /// # Errors
    /// [`Error::NotFinite`] when no state has a finite log-joint (every p(x, z) underflows, e.g. x
    /// far from every component, or one is NaN or +∞): the ratio is 0/0, not a distribution.
    pub fn by_bayes_rule(log_joint: Array1<f64>, encoding: Encoding) -> Result<Posterior> {
        let peak = log_joint
            .fold(f64::NEG_INFINITY, |m, &v| if v.is_nan() || m.is_nan() { f64::NAN } else { m.max(v) });
        if !peak.is_finite() {
            return Err(Error::NotFinite {
                quantity: "max over z of log p(x, z)".into(),
                value: peak,
                hint: "p(z|x) is undefined (0/0): x is too far from every latent state for f64".into(),
            });
        }
        let w = log_joint.mapv(|l| (l - peak).exp());
        let total = w.sum();
        Ok(Posterior::Categorical { log_probs: w.mapv(|wi| (wi / total).ln()), encoding })
    }
}

/// Any of the four toy models; the JSON model files deserialise into it.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// Probabilistic PCA.
    LinearGaussian(LinearGaussian),
    /// Gaussian mixture with a discrete latent.
    Mixture(Mixture),
    /// Binary latents with a Bernoulli decoder.
    BinaryLatent(BinaryLatent),
    /// 1-D latent with a bimodal posterior.
    Quadratic(Quadratic),
}

/// The JSON form of a [`Model`], tagged by `"kind"`; matrices are lists of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// `{"kind": "linear_gaussian", "w": D rows of Z, "b": D, "sigma": σ}`
    LinearGaussian {
        /// W, D rows of Z.
        w: Vec<Vec<f64>>,
        /// b, D.
        b: Vec<f64>,
        /// σ > 0.
        sigma: f64,
    },
    /// `{"kind": "mixture", "weights": K, "means": K rows of D, "sigmas": K rows of D}`
    Mixture {
        /// π, K, summing to 1.
        weights: Vec<f64>,
        /// μₖ, K rows of D.
        means: Vec<Vec<f64>>,
        /// σₖ (standard deviations), K rows of D.
        sigmas: Vec<Vec<f64>>,
    },
    /// `{"kind": "binary_latent", "prior": k, "w": D rows of k, "b": D}`
    BinaryLatent {
        /// ρ, k probabilities in (0, 1).
        prior: Vec<f64>,
        /// W, D rows of k.
        w: Vec<Vec<f64>>,
        /// b, D.
        b: Vec<f64>,
    },
    /// `{"kind": "quadratic", "a": D, "c": D, "sigma": σ}`
    Quadratic {
        /// a, D.
        a: Vec<f64>,
        /// c, D.
        c: Vec<f64>,
        /// σ > 0.
        sigma: f64,
    },
}

impl Model {
    /// Parses and validates a JSON model. Errors name the field and the value.
    ///
    /// ```
    /// use vaelab::lessons::toy::{LatentModel, Model};
    /// let m = Model::from_json(r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": 1.0}"#).unwrap();
    /// assert_eq!((m.data_dim(), m.latent_dim()), (1, 1));
    /// let e = Model::from_json(r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": -1.0}"#).unwrap_err();
    /// assert_eq!(e.to_string(), "invalid sigma = -1: must be finite and > 0");
    /// ```
    pub fn from_json(text: &str) -> Result<Model> {
        let spec: ModelSpec =
            serde_json::from_str(text).map_err(|e| Error::format("model JSON", e.to_string()))?;
        Model::from_spec(spec)
    }

    /// Reads a JSON model file.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Model> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Model::from_json(&text).map_err(|e| match e {
            Error::Format { what, detail } => Error::format(format!("{} ({what})", path.display()), detail),
            other => other,
        })
    }

    /// Builds and validates a model from its JSON form.
    pub fn from_spec(spec: ModelSpec) -> Result<Model> {
        Ok(match spec {
            ModelSpec::LinearGaussian { w, b, sigma } => {
                Model::LinearGaussian(LinearGaussian::new(matrix("w", &w)?, Array1::from(b), sigma)?)
            }
            ModelSpec::Mixture { weights, means, sigmas } => Model::Mixture(Mixture::new(
                Array1::from(weights),
                matrix("means", &means)?,
                matrix("sigmas", &sigmas)?,
            )?),
            ModelSpec::BinaryLatent { prior, w, b } => Model::BinaryLatent(BinaryLatent::new(
                Array1::from(prior),
                matrix("w", &w)?,
                Array1::from(b),
            )?),
            ModelSpec::Quadratic { a, c, sigma } => {
                Model::Quadratic(Quadratic::new(Array1::from(a), Array1::from(c), sigma)?)
            }
        })
    }

    /// The JSON form.
    pub fn to_spec(&self) -> ModelSpec {
        let rows = |m: &Array2<f64>| m.rows().into_iter().map(|r| r.to_vec()).collect();
        match self {
            Model::LinearGaussian(m) => {
                ModelSpec::LinearGaussian { w: rows(&m.w), b: m.b.to_vec(), sigma: m.sigma }
            }
            Model::Mixture(m) => ModelSpec::Mixture {
                weights: m.weights.to_vec(),
                means: rows(&m.means),
                sigmas: rows(&m.sigmas),
            },
            Model::BinaryLatent(m) => {
                ModelSpec::BinaryLatent { prior: m.prior.to_vec(), w: rows(&m.w), b: m.b.to_vec() }
            }
            Model::Quadratic(m) => ModelSpec::Quadratic { a: m.a.to_vec(), c: m.c.to_vec(), sigma: m.sigma },
        }
    }

    /// The JSON text (pretty-printed).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_spec()).expect("a model spec always serialises")
    }

    /// The model's `"kind"` tag.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::LinearGaussian(_) => "linear_gaussian",
            Model::Mixture(_) => "mixture",
            Model::BinaryLatent(_) => "binary_latent",
            Model::Quadratic(_) => "quadratic",
        }
    }
}

macro_rules! dispatch {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            Model::LinearGaussian($m) => $e,
            Model::Mixture($m) => $e,
            Model::BinaryLatent($m) => $e,
            Model::Quadratic($m) => $e,
        }
    };
}

impl LatentModel for Model {
    fn latent_dim(&self) -> usize {
        dispatch!(self, m => m.latent_dim())
    }
    fn data_dim(&self) -> usize {
        dispatch!(self, m => m.data_dim())
    }
    fn prior(&self) -> Prior {
        dispatch!(self, m => m.prior())
    }
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Array2<f64>, Array2<f64>) {
        dispatch!(self, m => m.sample(n, rng))
    }
    fn log_prior(&self, z: ArrayView2<f64>) -> Array1<f64> {
        dispatch!(self, m => m.log_prior(z))
    }
    fn log_likelihood(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64> {
        dispatch!(self, m => m.log_likelihood(x, z))
    }
    fn log_marginal(&self, x: ArrayView1<f64>) -> Result<f64> {
        dispatch!(self, m => m.log_marginal(x))
    }
    fn posterior(&self, x: ArrayView1<f64>) -> Result<Option<Posterior>> {
        dispatch!(self, m => m.posterior(x))
    }
    fn check_x(&self, x: ArrayView1<f64>) -> Result<()> {
        dispatch!(self, m => m.check_x(x))
    }
}

/// A matrix from JSON rows; every row must have the first row's length.
fn matrix(name: &str, rows: &[Vec<f64>]) -> Result<Array2<f64>> {
    let ncols = rows.first().map_or(0, Vec::len);
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != ncols) {
        return Err(Error::shape(
            format!("{name}[{i}]"),
            format!("{ncols} columns (as {name}[0])"),
            format!("{} columns", r.len()),
        ));
    }
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    Ok(Array2::from_shape_vec((rows.len(), ncols), flat).expect("rows checked to be equal length"))
}

/// Checks that every element of a matrix is finite, naming `name[row][col]`.
pub(crate) fn ensure_finite_matrix(name: &str, m: &Array2<f64>) -> Result<()> {
    for ((i, j), &v) in m.indexed_iter() {
        if !v.is_finite() {
            return Err(Error::invalid(format!("{name}[{i}][{j}]"), v, "must be finite"));
        }
    }
    Ok(())
}

/// Checks that every element of a vector is finite, naming `name[i]`.
pub(crate) fn ensure_finite_vector(name: &str, v: &Array1<f64>) -> Result<()> {
    for (i, &x) in v.iter().enumerate() {
        if !x.is_finite() {
            return Err(Error::invalid(format!("{name}[{i}]"), x, "must be finite"));
        }
    }
    Ok(())
}

/// Checks `len(v) == expected`, naming the field.
pub(crate) fn ensure_len(name: &str, v: &Array1<f64>, expected: usize, because: &str) -> Result<()> {
    if v.len() == expected {
        Ok(())
    } else {
        Err(Error::shape(name, format!("length {expected} ({because})"), format!("length {}", v.len())))
    }
}

/// Checks a data point: length D and finite.
pub(crate) fn check_x_len_finite(x: ArrayView1<f64>, d: usize) -> Result<()> {
    if x.len() != d {
        return Err(Error::shape(
            "x",
            format!("length {d} (the model's data dimension D)"),
            format!("length {}", x.len()),
        ));
    }
    for (i, &v) in x.iter().enumerate() {
        if !v.is_finite() {
            return Err(Error::invalid(format!("x[{i}]"), v, "must be finite"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip() {
        let e = Encoding::Bits(3);
        let s = e.all_states(8);
        assert_eq!(s.row(5).to_vec(), vec![1.0, 0.0, 1.0]); // 5 = 0b101, bit 0 first
        for i in 0..8 {
            assert_eq!(e.decode(s.row(i)), i);
        }
        assert_eq!(Encoding::Index.decode(Encoding::Index.all_states(4).row(3)), 3);
    }

    #[test]
    fn json_round_trips_and_errors_name_the_field() {
        let text = r#"{"kind": "mixture", "weights": [0.25, 0.75], "means": [[0.0], [3.0]], "sigmas": [[1.0], [0.5]]}"#;
        let m = Model::from_json(text).unwrap();
        assert_eq!(Model::from_json(&m.to_json()).unwrap(), m);
        let ragged =
            r#"{"kind": "linear_gaussian", "w": [[1.0, 2.0], [3.0]], "b": [0.0, 0.0], "sigma": 1.0}"#;
        let e = Model::from_json(ragged).unwrap_err().to_string();
        assert!(e.contains("w[1]") && e.contains("1 columns"), "{e}");
        let e = Model::from_json(r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `sigma`"), "{e}");
        let e = Model::from_json(r#"{"kind": "nope"}"#).unwrap_err().to_string();
        assert!(e.contains("unknown variant `nope`"), "{e}");
        let e =
            Model::from_json(r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": 1, "s": 2}"#)
                .unwrap_err()
                .to_string();
        assert!(e.contains("unknown field `s`"), "{e}");
    }
}
