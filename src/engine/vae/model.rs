//! The VAE and the CVAE: one model type, the CVAE being the VAE with a condition.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, NdFloat, s};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use super::learned_prior::{LatentPrior, mixture_kl_backward, mixture_kl_rows};
use super::{Objective, PriorParams};
use crate::base::error::{Error, Result};
use crate::engine::nn::{
    Activation, BinaryInput, InputPath, Linear, Mlp, MlpConfig, Parameters, bernoulli_nll_grad_into, cast,
    gaussian_nll_grad_into, linear_backward_into, linear_forward_into,
};
use crate::engine::vae::MixturePrior;

/// The decoder's distribution p(x|z).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Likelihood {
    /// Independent Bernoulli pixels; the decoder outputs logits l, p(x_d = 1|z) = σ(l_d).
    Bernoulli,
    /// N(x; m, diag σ²) with one fixed log σ² for every dimension; the decoder outputs m.
    GaussianFixed {
        /// log σ².
        log_var: f64,
    },
    /// N(x; m, diag σ²) with a learned log σ²_d per data dimension (parameter `obs_log_var`,
    /// initialised at 0); the decoder outputs m.
    GaussianLearned,
}

/// The prior of a CVAE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorKind {
    /// p(z|c) = N(0, I): the prior ignores c (the text: it reduces to P(z)).
    StandardNormal,
    /// p(z|c) = N(μ_c, diag exp(v_c)) with μ_c, v_c given by two linear heads of the one-hot c
    /// ([`PriorParams::Conditional`]; one learned Gaussian per class).
    LearnedConditional,
}

/// What a CVAE conditions on: a class label c ∈ {0, …, C − 1}, fed to the networks one-hot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// C, the number of classes.
    pub classes: usize,
    /// p(z|c).
    pub prior: PriorKind,
}

/// A VAE's shape, by named dimensions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    /// D.
    pub data_dim: usize,
    /// Widths of the encoder trunk's layers, input side first; the decoder mirrors them.
    pub hidden_dims: Vec<usize>,
    /// Z.
    pub latent_dim: usize,
    /// φ between layers.
    #[serde(default)]
    pub activation: Activation,
    /// p(x|z).
    pub likelihood: Likelihood,
    /// `Some` for a CVAE.
    #[serde(default)]
    pub condition: Option<Condition>,
    /// p(z) of a plain VAE: N(0, I) (default) or a learned mixture ([`LatentPrior`]).
    #[serde(default)]
    pub prior: LatentPrior,
}

impl VaeConfig {
    /// A Bernoulli VAE with ReLU, e.g. `VaeConfig::bernoulli(784, vec![400], 20)` (the anchor).
    pub fn bernoulli(data_dim: usize, hidden_dims: Vec<usize>, latent_dim: usize) -> Self {
        VaeConfig {
            data_dim,
            hidden_dims,
            latent_dim,
            activation: Activation::Relu,
            likelihood: Likelihood::Bernoulli,
            condition: None,
            prior: LatentPrior::StandardNormal,
        }
    }

    /// The same with prior `prior` (e.g. `LatentPrior::Mixture { components: 10 }`).
    pub fn with_prior(mut self, prior: LatentPrior) -> Self {
        self.prior = prior;
        self
    }

    /// The same with another likelihood.
    pub fn with_likelihood(mut self, likelihood: Likelihood) -> Self {
        self.likelihood = likelihood;
        self
    }

    /// The same as a CVAE with `classes` classes and prior `prior`.
    pub fn with_condition(mut self, classes: usize, prior: PriorKind) -> Self {
        self.condition = Some(Condition { classes, prior });
        self
    }

    /// C (0 for a plain VAE).
    pub fn classes(&self) -> usize {
        self.condition.map_or(0, |c| c.classes)
    }

    /// The number of parameters (encoder trunk, both heads, decoder, a learned decoder variance,
    /// the prior's), in `u128` so that no user-given size overflows:
    ///
    /// ```text
    /// Σ_layers (in·out + out)  over  trunk (D + C → H₁ → … → H_L), heads (H_L → Z, twice),
    ///                                 decoder (Z + C → H_L → … → H₁ → D)
    /// + D (learned Gaussian variance) + K(2Z + 1) (mixture prior) + 2(C·Z + Z) (learned p(z|c))
    /// ```
    pub fn parameter_count(&self) -> u128 {
        let (d, z, c) = (self.data_dim as u128, self.latent_dim as u128, self.classes() as u128);
        let layers = |input: u128, widths: &mut dyn Iterator<Item = u128>| {
            widths
                .fold((input, 0u128), |(i, n), o| {
                    (o, n.saturating_add(i.saturating_mul(o)).saturating_add(o))
                })
                .1
        };
        let hidden: Vec<u128> = self.hidden_dims.iter().map(|&h| h as u128).collect();
        let h_last = hidden.last().copied().unwrap_or(0);
        let trunk = layers(d + c, &mut hidden.iter().copied());
        let heads = h_last.saturating_mul(z).saturating_add(z).saturating_mul(2);
        let decoder = layers(z + c, &mut hidden.iter().rev().copied().chain(std::iter::once(d)));
        let obs = if matches!(self.likelihood, Likelihood::GaussianLearned) { d } else { 0 };
        let prior = match (self.prior, self.condition) {
            (LatentPrior::Mixture { components }, _) => {
                (components as u128).saturating_mul(z.saturating_mul(2).saturating_add(1))
            }
            (_, Some(cond)) if cond.prior == PriorKind::LearnedConditional => {
                c.saturating_mul(z).saturating_add(z).saturating_mul(2)
            }
            _ => 0,
        };
        [trunk, heads, decoder, obs, prior].iter().fold(0u128, |a, &b| a.saturating_add(b))
    }

    /// Checks every dimension, and that the parameters fit in the memory available.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field; `TooLarge` with the memory the parameters need.
    pub fn validate(&self) -> Result<()> {
        if self.data_dim == 0 {
            return Err(Error::invalid("data_dim", 0, "must be >= 1"));
        }
        if self.latent_dim == 0 {
            return Err(Error::invalid("latent_dim", 0, "must be >= 1"));
        }
        if self.hidden_dims.is_empty() || self.hidden_dims.contains(&0) {
            return Err(Error::invalid(
                "hidden_dims",
                format!("{:?}", self.hidden_dims),
                "need at least one width, all >= 1",
            ));
        }
        if let Likelihood::GaussianFixed { log_var } = self.likelihood
            && !log_var.is_finite()
        {
            return Err(Error::invalid("log_var", log_var, "must be finite"));
        }
        if let Some(c) = self.condition
            && c.classes == 0
        {
            return Err(Error::invalid("classes", 0, "a CVAE needs at least one class"));
        }
        self.prior.validate(self.condition)?;
        crate::base::budget::ensure_memory(
            &format!("a VAE with D = {}, H = {:?}, Z = {}", self.data_dim, self.hidden_dims, self.latent_dim),
            self.parameter_count().saturating_mul(4),
        )
    }
}

/// Every parameter tensor of a VAE, by role. Also the type of its gradients and of Adam's moments.
#[derive(Clone, Debug, PartialEq)]
pub struct VaeParams<F> {
    /// Encoder trunk: x (and one-hot c) → h, activation after every layer.
    pub trunk: Mlp<F>,
    /// h → μ(x), the mean of q(z|x).
    pub mean_head: Linear<F>,
    /// h → log σ²(x), the log-variance of q(z|x).
    pub log_var_head: Linear<F>,
    /// Decoder: z (and one-hot c) → logits or mean, affine last layer.
    pub decoder: Mlp<F>,
    /// Learned per-dimension log σ² of a Gaussian decoder, `D`.
    pub obs_log_var: Option<Array1<F>>,
    /// The prior p(z) or p(z|c), by kind ([`PriorParams`]): the one value every KL dispatch
    /// matches on.
    pub prior: PriorParams<F>,
}

impl<F: NdFloat> VaeParams<F> {
    fn linears(&self) -> impl Iterator<Item = (String, &Linear<F>)> {
        let trunk = self.trunk.layers.iter().enumerate().map(|(i, l)| (format!("trunk.{i}"), l));
        let heads =
            [("mean_head".to_string(), &self.mean_head), ("log_var_head".to_string(), &self.log_var_head)];
        let decoder = self.decoder.layers.iter().enumerate().map(|(i, l)| (format!("decoder.{i}"), l));
        let prior = self.prior.named_heads().map(|(name, l)| (name.to_string(), l));
        trunk.chain(heads).chain(decoder).chain(prior)
    }

    /// The layers in [`Self::linears`]' order without their names (no allocation: what the
    /// per-step tensor walks use).
    fn linear_refs(&self) -> impl Iterator<Item = &Linear<F>> {
        self.trunk
            .layers
            .iter()
            .chain([&self.mean_head, &self.log_var_head])
            .chain(self.decoder.layers.iter())
            .chain(self.prior.named_heads().map(|(_, l)| l))
    }

    fn linears_mut(&mut self) -> impl Iterator<Item = &mut Linear<F>> {
        self.trunk
            .layers
            .iter_mut()
            .chain([&mut self.mean_head, &mut self.log_var_head])
            .chain(self.decoder.layers.iter_mut())
            .chain(self.prior.heads_mut())
    }

    fn linear_count(&self) -> usize {
        self.trunk.layers.len() + 2 + self.decoder.layers.len() + self.prior.named_heads().count()
    }

    /// Index of the learned prior's first tensor (after the linears and `obs_log_var`).
    fn prior_start(&self) -> usize {
        2 * self.linear_count() + self.obs_log_var.is_some() as usize
    }

    /// The parameters in another float type.
    pub fn cast<G: NdFloat>(&self) -> VaeParams<G> {
        VaeParams {
            trunk: self.trunk.cast(),
            mean_head: self.mean_head.cast(),
            log_var_head: self.log_var_head.cast(),
            decoder: self.decoder.cast(),
            obs_log_var: self.obs_log_var.as_ref().map(|v| v.mapv(|x| cast(x.to_f64().expect("float")))),
            prior: self.prior.cast(),
        }
    }
}

impl<F: NdFloat> Parameters<F> for VaeParams<F> {
    fn tensor_count(&self) -> usize {
        self.prior_start() + self.prior.mixture().map_or(0, |p| p.tensor_count())
    }
    fn tensor_name(&self, i: usize) -> String {
        if i < 2 * self.linear_count() {
            let (name, l) = self.linears().nth(i / 2).expect("index in range");
            format!("{name}.{}", l.tensor_name(i % 2))
        } else if i >= self.prior_start() {
            format!(
                "prior.{}",
                self.prior.mixture().expect("index in range").tensor_name(i - self.prior_start())
            )
        } else {
            "obs_log_var".to_string()
        }
    }
    fn tensor_shape(&self, i: usize) -> Vec<usize> {
        if i < 2 * self.linear_count() {
            self.linear_refs().nth(i / 2).expect("index in range").tensor_shape(i % 2)
        } else if i >= self.prior_start() {
            self.prior.mixture().expect("index in range").tensor_shape(i - self.prior_start())
        } else {
            vec![self.obs_log_var.as_ref().expect("index in range").len()]
        }
    }
    fn tensor(&self, i: usize) -> &[F] {
        if i < 2 * self.linear_count() {
            self.linear_refs().nth(i / 2).expect("index in range").tensor(i % 2)
        } else if i >= self.prior_start() {
            self.prior.mixture().expect("index in range").tensor(i - self.prior_start())
        } else {
            self.obs_log_var.as_ref().and_then(|v| v.as_slice()).expect("index in range")
        }
    }
    fn tensor_mut(&mut self, i: usize) -> &mut [F] {
        let start = self.prior_start();
        if i < 2 * self.linear_count() {
            self.linears_mut().nth(i / 2).expect("index in range").tensor_mut(i % 2)
        } else if i >= start {
            match &mut self.prior {
                PriorParams::Mixture(p) => p.tensor_mut(i - start),
                _ => panic!("tensor_mut: index {i} out of range"),
            }
        } else {
            self.obs_log_var.as_mut().and_then(|v| v.as_slice_mut()).expect("index in range")
        }
    }
    fn zeros_like(&self) -> Self {
        VaeParams {
            trunk: self.trunk.zeros_like_mlp(),
            mean_head: self.mean_head.zeros_like(),
            log_var_head: self.log_var_head.zeros_like(),
            decoder: self.decoder.zeros_like_mlp(),
            obs_log_var: self.obs_log_var.as_ref().map(|v| Array1::zeros(v.len())),
            prior: self.prior.zeros_like(),
        }
    }
}

/// A mini-batch's loss and its two parts, in nats per example (batch means).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossParts {
    /// The minimised objective: distortion + β·rate (or its free-bits form, see [`Objective`]).
    pub loss: f64,
    /// Rate R̄ = mean over the batch of KL(q(z|x) ‖ p(z)) (or p(z|c)); with a mixture prior the
    /// one-sample estimate of [`mixture_kl_rows`].
    pub rate: f64,
    /// Distortion D̄ = mean over the batch of −log p(x|z) at the sampled z.
    pub distortion: f64,
}

impl LossParts {
    /// The single-sample ELBO estimate, −(distortion + rate).
    pub fn elbo(&self) -> f64 {
        -(self.distortion + self.rate)
    }
}

/// Every intermediate of a forward pass, kept for the backward pass: the model-level cache.
///
/// Sized once for up to `capacity` rows and reused across steps, so a training step allocates
/// nothing; each pass uses the first B rows. Fields are named after the quantity they hold.
#[derive(Clone, Debug)]
pub struct VaeWorkspace<F> {
    capacity: usize,
    batch: usize,
    /// [x, one-hot c], `capacity × (D + C)`.
    pub encoder_input: Array2<F>,
    /// one-hot c, `capacity × C`.
    pub one_hot: Array2<F>,
    /// Trunk activations, one `capacity × Hₗ` per layer (the last is h).
    pub trunk_acts: Vec<Array2<F>>,
    /// μ(x), `capacity × Z`.
    pub mean: Array2<F>,
    /// log σ²(x), `capacity × Z`.
    pub log_var: Array2<F>,
    /// ε, `capacity × Z`.
    pub eps: Array2<F>,
    /// [z, one-hot c], `capacity × (Z + C)`; z = μ + exp(½ log σ²) ⊙ ε.
    pub decoder_input: Array2<F>,
    /// Learned prior mean μ_c, `capacity × Z` (zero columns otherwise).
    pub prior_mean: Array2<F>,
    /// Learned prior log-variance, `capacity × Z` (zero columns otherwise).
    pub prior_log_var: Array2<F>,
    /// Decoder activations; the last is the output (logits or mean), `capacity × D`.
    pub decoder_acts: Vec<Array2<F>>,
    /// ∂L/∂(decoder output), written by the fused likelihood pass.
    pub d_output: Array2<F>,
    /// ∂L/∂(decoder hidden activations).
    pub d_decoder_hidden: Vec<Array2<F>>,
    /// ∂L/∂[z, c].
    pub d_decoder_input: Array2<F>,
    /// ∂L/∂μ.
    pub d_mean: Array2<F>,
    /// ∂L/∂log σ².
    pub d_log_var: Array2<F>,
    /// ∂L/∂(prior mean).
    pub d_prior_mean: Array2<F>,
    /// ∂L/∂(prior log-variance).
    pub d_prior_log_var: Array2<F>,
    /// ∂L/∂h (trunk output).
    pub d_trunk_out: Array2<F>,
    /// ∂L/∂(trunk hidden activations).
    pub d_trunk_hidden: Vec<Array2<F>>,
    /// ∂L/∂(obs_log_var), filled by the fused Gaussian pass.
    pub d_obs_log_var: Array1<F>,
    /// The fixed log σ² of a `GaussianFixed` decoder, per dimension.
    pub fixed_obs_log_var: Array1<F>,
    /// −log p(x_b|z_b) per row.
    pub nll_rows: Vec<f64>,
    /// KL_b per row (summed over Z).
    pub kl_rows: Vec<f64>,
    /// Σ_b KL_bu per unit (left at 0 with a mixture prior, whose KL does not split by unit).
    pub kl_units: Vec<f64>,
    /// The KL gradient's weight per unit (β, or 0 for a unit held by free bits).
    pub kl_weight: Vec<F>,
    /// How the encoder's first layer reads its input: [`InputPath::Auto`] takes the on-entries
    /// path when the batch's [x, one-hot c] is all 0/1 and sparse enough
    /// ([`InputPath::max_on_entries`]; the default), [`InputPath::Binary`] whenever it is all
    /// 0/1, [`InputPath::Dense`] never.
    pub input_path: InputPath,
    /// The on-entries of the last pass's [x, one-hot c] (the binary first layer's cache): empty
    /// until the first pass that scans, then 2·(min(⌊t·B·(D + C)⌋, B·(D + C)) + 8) `u32` for
    /// `Auto`, and with AVX2 a ⌈B/32⌉ × ⌈(D + C)/8⌉·8-word bit matrix.
    pub binary_input: BinaryInput,
    /// Whether the last pass's first layer took the on-entries path.
    binary_used: bool,
}

impl<F: NdFloat> VaeWorkspace<F> {
    /// Rows the workspace holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Rows of the last pass.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The decoder output of the last pass (logits or mean), `B × D`.
    pub fn output(&self) -> ArrayView2<'_, F> {
        self.decoder_acts.last().expect("decoder has a layer").slice(s![..self.batch, ..])
    }

    /// Whether the last pass's first encoder layer used the on-entries of a binary input
    /// ([`crate::engine::nn::binary_linear_forward_into`]) instead of the dense product.
    pub fn used_binary_input(&self) -> bool {
        self.binary_used
    }

    /// z of the last pass, `B × Z`.
    pub fn z(&self) -> ArrayView2<'_, F> {
        let z = self.mean.ncols();
        self.decoder_input.slice(s![..self.batch, ..z])
    }
}

/// A variational autoencoder (a CVAE when `config.condition` is set).
///
/// ```text
/// encoder   h = trunk([x, c]),  μ = mean_head(h),  log σ² = log_var_head(h),  q(z|x,c) = N(μ, diag σ²)
/// sample    z = μ + exp(½ log σ²) ⊙ ε,  ε ~ N(0, I)                         (reparameterisation)
/// decoder   out = decoder([z, c]);  Bernoulli: p(x_d = 1|z,c) = σ(out_d);  Gaussian: mean out
/// prior     p(z|c) = N(0, I), or N(μ_c, diag exp(v_c)) learned; for a plain VAE optionally a learned
///           mixture p_θ(z), whose KL is a one-sample estimate (see `learned_prior`)
/// loss      L = (1/B) Σ_b [ −log p(x_b|z_b,c_b) + β KL(q(z|x_b,c_b) ‖ p(z|c_b)) ]
/// ```
/// `c` is absent for a plain VAE. The loss reduction (sum over dimensions, mean over the batch,
/// nats per example) is the one stated in [`crate::engine::nn`]'s loss module and used everywhere.
///
/// # Shapes
/// x: `B × D`, labels: `B`, ε and z: `B × Z`, h: `B × H`, output: `B × D`.
#[derive(Clone, Debug, PartialEq)]
pub struct Vae<F> {
    /// The shape.
    pub config: VaeConfig,
    /// The parameters.
    pub params: VaeParams<F>,
}

impl<F: NdFloat> Vae<F> {
    /// A VAE with PyTorch-default initialisation, layers drawn from `rng` in the order trunk,
    /// mean_head, log_var_head, decoder, prior heads, then a mixture prior's means
    /// ([`MixturePrior::init`]).
    ///
    /// # Errors
    /// `InvalidParameter` from [`VaeConfig::validate`].
    pub fn new<R: Rng + ?Sized>(config: VaeConfig, rng: &mut R) -> Result<Self> {
        config.validate()?;
        Self::from_validated(config, rng)
    }

    /// [`Vae::new`] for a `config` that [`VaeConfig::validate`] has already accepted (callers that
    /// validate first, to size their memory before building, do not validate twice).
    ///
    /// # Errors
    /// `InvalidParameter` from the layers.
    pub(crate) fn from_validated<R: Rng + ?Sized>(config: VaeConfig, rng: &mut R) -> Result<Self> {
        let c = config.classes();
        let (d, z) = (config.data_dim, config.latent_dim);
        let h = *config.hidden_dims.last().expect("validated");
        let trunk = Mlp::new(
            &MlpConfig {
                input_dim: d + c,
                layer_dims: config.hidden_dims.clone(),
                activation: config.activation,
                activate_output: true,
            },
            rng,
        )?;
        let mean_head = Linear::new(h, z, rng)?;
        let log_var_head = Linear::new(h, z, rng)?;
        let mut decoder_dims: Vec<usize> = config.hidden_dims.iter().rev().copied().collect();
        decoder_dims.push(d);
        let decoder = Mlp::new(
            &MlpConfig {
                input_dim: z + c,
                layer_dims: decoder_dims,
                activation: config.activation,
                activate_output: false,
            },
            rng,
        )?;
        // The one decision on the kind of prior (validate() made the two settings exclusive).
        let learned_conditional =
            matches!(config.condition, Some(Condition { prior: PriorKind::LearnedConditional, .. }));
        let mut prior = match learned_conditional {
            true => PriorParams::Conditional {
                mean_head: Linear::new(c, z, rng)?,
                log_var_head: Linear::new(c, z, rng)?,
            },
            false => PriorParams::StandardNormal,
        };
        let obs_log_var = matches!(config.likelihood, Likelihood::GaussianLearned).then(|| Array1::zeros(d));
        if let LatentPrior::Mixture { components } = config.prior {
            prior = PriorParams::Mixture(MixturePrior::init(components, z, rng)?);
        }
        let params = VaeParams { trunk, mean_head, log_var_head, decoder, obs_log_var, prior };
        Ok(Vae { config, params })
    }

    /// The model in another float type (an f32 model checked in f64).
    pub fn cast<G: NdFloat>(&self) -> Vae<G> {
        Vae { config: self.config.clone(), params: self.params.cast() }
    }

    /// A zeroed gradient struct for this model.
    pub fn zero_grads(&self) -> VaeParams<F> {
        self.params.zeros_like()
    }

    /// Buffers for passes of up to `capacity` rows.
    pub fn workspace(&self, capacity: usize) -> VaeWorkspace<F> {
        let cfg = &self.config;
        let (d, z, c) = (cfg.data_dim, cfg.latent_dim, cfg.classes());
        let hidden = |mlp: &Mlp<F>| -> Vec<Array2<F>> {
            mlp.layers[..mlp.layers.len() - 1]
                .iter()
                .map(|l| Array2::zeros((capacity, l.fan_out())))
                .collect()
        };
        let prior_z = if self.params.prior.heads().is_some() { z } else { 0 };
        let fixed = match cfg.likelihood {
            Likelihood::GaussianFixed { log_var } => Array1::from_elem(d, cast(log_var)),
            _ => Array1::zeros(d),
        };
        VaeWorkspace {
            capacity,
            batch: 0,
            encoder_input: Array2::zeros((capacity, d + c)),
            one_hot: Array2::zeros((capacity, c)),
            trunk_acts: self.params.trunk.buffers(capacity),
            mean: Array2::zeros((capacity, z)),
            log_var: Array2::zeros((capacity, z)),
            eps: Array2::zeros((capacity, z)),
            decoder_input: Array2::zeros((capacity, z + c)),
            prior_mean: Array2::zeros((capacity, prior_z)),
            prior_log_var: Array2::zeros((capacity, prior_z)),
            decoder_acts: self.params.decoder.buffers(capacity),
            d_output: Array2::zeros((capacity, d)),
            d_decoder_hidden: hidden(&self.params.decoder),
            d_decoder_input: Array2::zeros((capacity, z + c)),
            d_mean: Array2::zeros((capacity, z)),
            d_log_var: Array2::zeros((capacity, z)),
            d_prior_mean: Array2::zeros((capacity, prior_z)),
            d_prior_log_var: Array2::zeros((capacity, prior_z)),
            d_trunk_out: Array2::zeros((capacity, *cfg.hidden_dims.last().expect("validated"))),
            d_trunk_hidden: hidden(&self.params.trunk),
            d_obs_log_var: Array1::zeros(d),
            fixed_obs_log_var: fixed,
            nll_rows: vec![0.0; capacity],
            kl_rows: vec![0.0; capacity],
            kl_units: vec![0.0; z],
            kl_weight: vec![F::zero(); z],
            input_path: InputPath::default(),
            // Allocated by the first scan (InputPath::Auto or Binary), never on the dense path.
            binary_input: BinaryInput::default(),
            binary_used: false,
        }
    }

    /// Checks labels against the model: `None` for a VAE; `Some`, one per row, each < C, for a CVAE.
    ///
    /// # Errors
    /// `InvalidParameter` naming the first bad label; `Shape` for a wrong count.
    pub fn check_labels(&self, rows: usize, labels: Option<&[usize]>) -> Result<()> {
        match (self.config.condition, labels) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(Error::invalid("labels", "Some", "a plain VAE takes no labels")),
            (Some(_), None) => Err(Error::invalid("labels", "None", "a CVAE needs a label per row")),
            (Some(c), Some(l)) => {
                if l.len() != rows {
                    return Err(Error::shape("labels", rows, l.len()));
                }
                match l.iter().position(|&v| v >= c.classes) {
                    Some(i) => Err(Error::invalid(
                        format!("labels[{i}]"),
                        l[i],
                        format!("must be < classes = {}", c.classes),
                    )),
                    None => Ok(()),
                }
            }
        }
    }

    /// Encoder pass: fills μ and log σ² (and the learned prior's μ_c, v_c) for the rows of `x`.
    /// When [x, one-hot c] is all 0/1 (and `ws.input_path` is `Auto` with few enough on-entries,
    /// or `Binary`) the first layer sums the
    /// rows of W at the on-entries ([`crate::engine::nn::binary_linear_forward_into`]): the dense
    /// product's sums in another order.
    ///
    /// # Shapes
    /// `x`: `B × D` with B ≤ capacity; `labels`: `B` for a CVAE.
    ///
    /// # Panics
    /// On a shape or label mismatch (check user data with [`Vae::check_labels`] first).
    #[track_caller]
    pub fn encode_into(&self, x: ArrayView2<F>, labels: Option<&[usize]>, ws: &mut VaeWorkspace<F>) {
        let b = x.nrows();
        let (d, c) = (self.config.data_dim, self.config.classes());
        assert!(
            x.ncols() == d && b <= ws.capacity && ws.encoder_input.ncols() == d + c,
            "vae encode: x {:?} into a workspace of {} rows × {} inputs (model D = {d}, C = {c})",
            x.dim(),
            ws.capacity,
            ws.encoder_input.ncols()
        );
        assert!(
            self.check_labels(b, labels).is_ok(),
            "vae encode: labels {:?} for {b} rows and condition {:?}",
            labels.map(|l| l.len()),
            self.config.condition
        );
        ws.batch = b;
        let p = &self.params;
        let input: ArrayView2<F> = if c == 0 {
            x
        } else {
            let labels = labels.expect("checked");
            ws.encoder_input.slice_mut(s![..b, ..d]).assign(&x);
            let mut hot = ws.encoder_input.slice_mut(s![..b, d..]);
            hot.fill(F::zero());
            ws.one_hot.slice_mut(s![..b, ..]).fill(F::zero());
            for (i, &l) in labels.iter().enumerate() {
                hot[(i, l)] = F::one();
                ws.one_hot[(i, l)] = F::one();
            }
            ws.encoder_input.slice(s![..b, ..])
        };
        // Binary [x, c] (binarised digits, one-hot labels): the first layer from the on-entries.
        // `Auto` only up to its density threshold (InputPath::max_on_entries), where it pays.
        ws.binary_used = match ws.input_path.max_on_entries(b, d + c) {
            Some(max) => ws.binary_input.scan_at_most(input, max),
            None => false,
        };
        let binary = ws.binary_used.then_some(&ws.binary_input);
        p.trunk.forward_into_with(input, binary, &mut ws.trunk_acts);
        let h = ws.trunk_acts.last().expect("trunk has a layer").slice(s![..b, ..]);
        linear_forward_into(
            h,
            p.mean_head.weight.view(),
            p.mean_head.bias.view(),
            ws.mean.slice_mut(s![..b, ..]),
        );
        linear_forward_into(
            h,
            p.log_var_head.weight.view(),
            p.log_var_head.bias.view(),
            ws.log_var.slice_mut(s![..b, ..]),
        );
        if let Some((pm, pv)) = p.prior.heads() {
            let hot = ws.one_hot.slice(s![..b, ..]);
            linear_forward_into(hot, pm.weight.view(), pm.bias.view(), ws.prior_mean.slice_mut(s![..b, ..]));
            linear_forward_into(
                hot,
                pv.weight.view(),
                pv.bias.view(),
                ws.prior_log_var.slice_mut(s![..b, ..]),
            );
        }
        // For a plain VAE the trunk read x in place; keep a copy for backward's first layer.
        if c == 0 {
            ws.encoder_input.slice_mut(s![..b, ..]).assign(&x);
        }
    }

    /// Decoder pass from the z already in `ws.decoder_input[..B, ..Z]` (and c after it).
    #[track_caller]
    fn decode_from_workspace(&self, ws: &mut VaeWorkspace<F>) {
        let b = ws.batch;
        self.params.decoder.forward_into(ws.decoder_input.slice(s![..b, ..]), &mut ws.decoder_acts);
    }

    /// Decoder pass for given latents: the output (logits or mean) lands in `ws.output()`.
    ///
    /// # Shapes
    /// `z`: `B × Z`; `labels`: `B` for a CVAE.
    #[track_caller]
    pub fn decode_into(&self, z: ArrayView2<F>, labels: Option<&[usize]>, ws: &mut VaeWorkspace<F>) {
        let b = z.nrows();
        let (zd, c) = (self.config.latent_dim, self.config.classes());
        assert!(
            z.ncols() == zd && b <= ws.capacity,
            "vae decode: z {:?} into a workspace of {} rows",
            z.dim(),
            ws.capacity
        );
        assert!(self.check_labels(b, labels).is_ok(), "vae decode: labels do not fit {b} rows");
        ws.batch = b;
        ws.decoder_input.slice_mut(s![..b, ..zd]).assign(&z);
        if let Some(labels) = labels {
            let mut hot = ws.decoder_input.slice_mut(s![..b, zd..]);
            hot.fill(F::zero());
            for (i, &l) in labels.iter().enumerate() {
                hot[(i, l)] = F::one();
            }
        }
        debug_assert!(c == 0 || labels.is_some());
        self.decode_from_workspace(ws);
    }

    /// Forward pass and loss of one mini-batch; fills `ws` for [`Vae::backward`].
    ///
    /// ```text
    /// z = μ + exp(½ log σ²) ⊙ ε
    /// L = D̄ + β R̄ (see Objective),  D̄ = (1/B) Σ_b −log p(x_b|z_b),  R̄ = (1/B) Σ_b KL_b
    /// ```
    /// Four steps, each a method below: encode ([`Vae::encode_into`]), reparameterise and decode
    /// (`Vae::sample_and_decode`), the reconstruction term fused with its gradient
    /// (`Vae::reconstruction_term`: ∂L/∂l = (σ(l) − x)/B for Bernoulli), and the KL term
    /// (`Vae::kl_term`).
    ///
    /// # Shapes
    /// `x`: `B × D`; `labels`: `B` (CVAE); `eps`: `B × Z`.
    #[track_caller]
    pub fn forward(
        &self,
        x: ArrayView2<F>,
        labels: Option<&[usize]>,
        eps: ArrayView2<F>,
        objective: &Objective,
        ws: &mut VaeWorkspace<F>,
    ) -> LossParts {
        let b = x.nrows();
        let zd = self.config.latent_dim;
        assert_eq!(eps.dim(), (b, zd), "vae forward: eps {:?} for x {:?} and Z = {zd}", eps.dim(), x.dim());
        self.encode_into(x, labels, ws);
        self.sample_and_decode(eps, ws);
        let distortion = self.reconstruction_term(x, ws) / b as f64;
        let (rate, rate_term) = self.kl_term(objective, ws);
        LossParts { loss: distortion + objective.beta * rate_term, rate, distortion }
    }

    /// z = μ + exp(½ log σ²) ⊙ ε into the decoder's input (after it, c one-hot for a CVAE), then
    /// the decoder pass. Keeps ε for backward.
    ///
    /// # Shapes
    /// `eps`: `B × Z`, B the rows of the last [`Vae::encode_into`].
    #[track_caller]
    fn sample_and_decode(&self, eps: ArrayView2<F>, ws: &mut VaeWorkspace<F>) {
        let b = ws.batch;
        let (zd, c) = (self.config.latent_dim, self.config.classes());
        ws.eps.slice_mut(s![..b, ..]).assign(&eps);
        let half: F = cast(0.5);
        {
            let (mean, log_var) = (ws.mean.slice(s![..b, ..]), ws.log_var.slice(s![..b, ..]));
            let mut z = ws.decoder_input.slice_mut(s![..b, ..zd]);
            ndarray::Zip::from(&mut z).and(&mean).and(&log_var).and(&eps).for_each(|z, &m, &v, &e| {
                *z = m + (half * v).exp() * e;
            });
        }
        if c > 0 {
            ws.decoder_input.slice_mut(s![..b, zd..]).assign(&ws.one_hot.slice(s![..b, ..]));
        }
        self.decode_from_workspace(ws);
    }

    /// Σ_b −log p(x_b|z_b) over the batch (per row in `ws.nll_rows`), fused with its gradient
    /// ∂L/∂(output) = (1/B) ∂(−log p)/∂(output) into `ws.d_output` (and ∂L/∂(log σ²_obs) for a
    /// learned-variance Gaussian decoder). The likelihoods' formulas are in
    /// [`crate::engine::nn`]'s loss module.
    ///
    /// # Shapes
    /// `x`: `B × D`.
    fn reconstruction_term(&self, x: ArrayView2<F>, ws: &mut VaeWorkspace<F>) -> f64 {
        let b = ws.batch;
        let scale: F = cast(1.0 / b as f64);
        let out_idx = ws.decoder_acts.len() - 1;
        ws.nll_rows[..b].fill(0.0);
        let output = ws.decoder_acts[out_idx].slice(s![..b, ..]);
        let d_output = ws.d_output.slice_mut(s![..b, ..]);
        match self.config.likelihood {
            Likelihood::Bernoulli => {
                bernoulli_nll_grad_into(output, x, scale, Some(d_output), &mut ws.nll_rows[..b])
            }
            Likelihood::GaussianFixed { .. } => gaussian_nll_grad_into(
                output,
                ws.fixed_obs_log_var.view(),
                x,
                scale,
                Some(d_output),
                None,
                &mut ws.nll_rows[..b],
            ),
            Likelihood::GaussianLearned => {
                ws.d_obs_log_var.fill(F::zero());
                gaussian_nll_grad_into(
                    output,
                    self.params.obs_log_var.as_ref().expect("learned variance").view(),
                    x,
                    scale,
                    Some(d_output),
                    Some(ws.d_obs_log_var.view_mut()),
                    &mut ws.nll_rows[..b],
                )
            }
        }
    }

    /// The KL term of the batch: KL_b per row into `ws.kl_rows`, per unit into `ws.kl_units`, and
    /// the weight w_u each unit's KL gets in the loss into `ws.kl_weight` (β, or 0 for a unit held
    /// at λ by free bits). Returns (R̄, the rate term of the loss):
    ///
    /// ```text
    /// R̄ = (1/B) Σ_b KL_b                               the reported rate
    /// rate term = R̄                                    no free bits
    ///           = Σ_u max(λ, R̄_u)                      free bits λ (Kingma et al. 2016, eq. 15)
    /// ```
    /// A mixture prior's KL is the one-sample row estimate of [`super::learned_prior`] (no
    /// per-unit split, so no free bits); the other two priors go unit by unit through
    /// [`PriorParams::unit_kl`].
    fn kl_term(&self, objective: &Objective, ws: &mut VaeWorkspace<F>) -> (f64, f64) {
        let b = ws.batch;
        let zd = self.config.latent_dim;
        ws.kl_rows[..b].fill(0.0);
        ws.kl_units.fill(0.0);
        if let PriorParams::Mixture(prior) = &self.params.prior {
            assert!(
                objective.free_bits.is_none(),
                "vae forward: free bits with a mixture prior (Vae::check_objective)"
            );
            let z = ws.decoder_input.slice(s![..b, ..zd]);
            mixture_kl_rows(prior, ws.log_var.slice(s![..b, ..]), z, &mut ws.kl_rows[..b]);
            ws.kl_weight.fill(cast(objective.beta));
            let rate = ws.kl_rows[..b].iter().sum::<f64>() / b as f64;
            return (rate, rate);
        }
        for i in 0..b {
            for u in 0..zd {
                let (m, v) = (ws.mean[(i, u)], ws.log_var[(i, u)]);
                let prior_row = || (ws.prior_mean[(i, u)], ws.prior_log_var[(i, u)]);
                let (kl, ..) = self.params.prior.unit_kl(m, v, prior_row);
                let kl = kl.to_f64().expect("float");
                ws.kl_rows[i] += kl;
                ws.kl_units[u] += kl;
            }
        }
        let rate = ws.kl_rows[..b].iter().sum::<f64>() / b as f64;
        let mut rate_term = 0.0;
        for u in 0..zd {
            let unit = ws.kl_units[u] / b as f64;
            let (term, weight) = match objective.free_bits {
                Some(lambda) if unit < lambda => (lambda, 0.0),
                _ => (unit, objective.beta),
            };
            rate_term += term;
            ws.kl_weight[u] = cast(weight);
        }
        (rate, rate_term)
    }

    /// Backward pass of the last [`Vae::forward`]: accumulates ∂L/∂θ for every parameter tensor
    /// into `grads` (+=).
    ///
    /// ```text
    /// ∂L/∂[z,c]  = decoder backward of ∂L/∂out
    /// ∂L/∂μ      = ∂L/∂z + (w_u/B) ∂KL/∂μ
    /// ∂L/∂log σ² = ∂L/∂z ⊙ ε ⊙ ½ exp(½ log σ²) + (w_u/B) ∂KL/∂log σ²
    /// ∂L/∂h      = (∂L/∂μ) W_μᵀ + (∂L/∂log σ²) W_σᵀ,   then the trunk backward (no ∂L/∂x)
    /// ```
    /// w_u = β, or 0 for a unit held by free bits; the KL partials are [`PriorParams::unit_kl`]'s.
    /// With a mixture prior the KL's z path is added to ∂L/∂z first and its entropy term gives
    /// −½ w per log σ² ([`mixture_kl_backward`]). The steps, in reverse order of forward:
    /// decoder, the latent layer (`Vae::latent_backward`), the conditional prior's heads, the
    /// encoder (`Vae::encoder_backward`).
    #[track_caller]
    pub fn backward(&self, ws: &mut VaeWorkspace<F>, grads: &mut VaeParams<F>) {
        let b = ws.batch;
        assert!(b > 0, "vae backward: no forward pass in this workspace");
        let p = &self.params;
        p.decoder.backward_into(
            ws.decoder_input.slice(s![..b, ..]),
            &ws.decoder_acts,
            ws.d_output.slice_mut(s![..b, ..]),
            &mut ws.d_decoder_hidden,
            Some(ws.d_decoder_input.slice_mut(s![..b, ..])),
            &mut grads.decoder,
        );
        if let Some(g) = grads.obs_log_var.as_mut() {
            *g += &ws.d_obs_log_var;
        }
        self.latent_backward(ws, &mut grads.prior);
        if let (Some((pm, pv)), PriorParams::Conditional { mean_head: gm, log_var_head: gv }) =
            (p.prior.heads(), &mut grads.prior)
        {
            let hot = ws.one_hot.slice(s![..b, ..]);
            let dm = ws.d_prior_mean.slice(s![..b, ..]);
            linear_backward_into(hot, pm.weight.view(), dm, gm.weight.view_mut(), gm.bias.view_mut(), None);
            let dv = ws.d_prior_log_var.slice(s![..b, ..]);
            linear_backward_into(hot, pv.weight.view(), dv, gv.weight.view_mut(), gv.bias.view_mut(), None);
        }
        self.encoder_backward(ws, grads);
    }

    /// From ∂L/∂z (in `ws.d_decoder_input`) to ∂L/∂μ and ∂L/∂log σ² (`ws.d_mean`, `ws.d_log_var`)
    /// through the reparameterisation and the KL term, and the KL's gradient for the prior's own
    /// parameters: a mixture's into `d_prior` (+=), a conditional prior's per-row ∂L/∂μ_c, ∂L/∂v_c
    /// into `ws.d_prior_mean`, `ws.d_prior_log_var` (for its heads' backward).
    fn latent_backward(&self, ws: &mut VaeWorkspace<F>, d_prior: &mut PriorParams<F>) {
        let b = ws.batch;
        let zd = self.config.latent_dim;
        let scale: F = cast(1.0 / b as f64);
        let half: F = cast(0.5);
        let prior = &self.params.prior;
        if let (PriorParams::Mixture(mixture), PriorParams::Mixture(d_mixture)) = (prior, d_prior) {
            let w = ws.kl_weight[0] * scale;
            let (z, d_z) =
                (ws.decoder_input.slice(s![..b, ..zd]), ws.d_decoder_input.slice_mut(s![..b, ..zd]));
            mixture_kl_backward(mixture, z, w, d_z, d_mixture); // ∂L/∂z += w ∂(−log p_θ)/∂z
        }
        let conditional = prior.heads().is_some();
        for i in 0..b {
            for u in 0..zd {
                let dz = ws.d_decoder_input[(i, u)];
                let (m, v, e) = (ws.mean[(i, u)], ws.log_var[(i, u)], ws.eps[(i, u)]);
                let w = ws.kl_weight[u] * scale;
                let reparam_v = dz * e * half * (half * v).exp();
                if prior.mixture().is_some() {
                    // KL̂ = −H(q) − log p_θ(z): the z path is in dz; ∂(−H)/∂log σ² = −½.
                    ws.d_mean[(i, u)] = dz;
                    ws.d_log_var[(i, u)] = reparam_v - w * half;
                    continue;
                }
                let prior_row = || (ws.prior_mean[(i, u)], ws.prior_log_var[(i, u)]);
                let (_, dmq, dvq, dmp, dvp) = prior.unit_kl(m, v, prior_row);
                ws.d_mean[(i, u)] = dz + w * dmq;
                ws.d_log_var[(i, u)] = reparam_v + w * dvq;
                if conditional {
                    ws.d_prior_mean[(i, u)] = w * dmp;
                    ws.d_prior_log_var[(i, u)] = w * dvp;
                }
            }
        }
    }

    /// From ∂L/∂μ and ∂L/∂log σ² to the heads' and the trunk's gradients (no ∂L/∂x).
    fn encoder_backward(&self, ws: &mut VaeWorkspace<F>, grads: &mut VaeParams<F>) {
        let b = ws.batch;
        let p = &self.params;
        let h = ws.trunk_acts.last().expect("trunk has a layer").slice(s![..b, ..]);
        let d_mean = ws.d_mean.slice(s![..b, ..]);
        let d_log_var = ws.d_log_var.slice(s![..b, ..]);
        let mut d_h = ws.d_trunk_out.slice_mut(s![..b, ..]);
        let (gm, gv) = (&mut grads.mean_head, &mut grads.log_var_head);
        linear_backward_into(
            h,
            p.mean_head.weight.view(),
            d_mean,
            gm.weight.view_mut(),
            gm.bias.view_mut(),
            Some(d_h.view_mut()),
        );
        linear_backward_into(
            h,
            p.log_var_head.weight.view(),
            d_log_var,
            gv.weight.view_mut(),
            gv.bias.view_mut(),
            None,
        );
        general_mat_mul(F::one(), &d_log_var, &p.log_var_head.weight.t(), F::one(), &mut d_h); // B × H += (B × Z)(Z × H)

        p.trunk.backward_into_with(
            ws.encoder_input.slice(s![..b, ..]),
            ws.binary_used.then_some(&ws.binary_input),
            &ws.trunk_acts,
            ws.d_trunk_out.slice_mut(s![..b, ..]),
            &mut ws.d_trunk_hidden,
            None,
            &mut grads.trunk,
        );
    }

    /// Loss of one mini-batch with freshly allocated buffers (for checks and notebooks).
    ///
    /// # Shapes
    /// `x`: `B × D`; `eps`: `B × Z`.
    #[track_caller]
    pub fn loss(
        &self,
        x: ArrayView2<F>,
        labels: Option<&[usize]>,
        eps: ArrayView2<F>,
        objective: &Objective,
    ) -> LossParts {
        let mut ws = self.workspace(x.nrows());
        self.forward(x, labels, eps, objective, &mut ws)
    }

    /// Loss and gradients of one mini-batch with freshly allocated buffers.
    #[track_caller]
    pub fn loss_and_grads(
        &self,
        x: ArrayView2<F>,
        labels: Option<&[usize]>,
        eps: ArrayView2<F>,
        objective: &Objective,
    ) -> (LossParts, VaeParams<F>) {
        let mut ws = self.workspace(x.nrows());
        let parts = self.forward(x, labels, eps, objective, &mut ws);
        let mut grads = self.zero_grads();
        self.backward(&mut ws, &mut grads);
        (parts, grads)
    }

    /// (μ, log σ²) of q(z|x) for each row (allocating).
    ///
    /// # Shapes
    /// `x`: `B × D` → (`B × Z`, `B × Z`).
    #[track_caller]
    pub fn encode(&self, x: ArrayView2<F>, labels: Option<&[usize]>) -> (Array2<F>, Array2<F>) {
        let mut ws = self.workspace(x.nrows());
        self.encode_into(x, labels, &mut ws);
        (ws.mean, ws.log_var)
    }

    /// The decoder's per-pixel mean E[x|z]: σ(logits) for Bernoulli, the mean for Gaussian.
    ///
    /// # Shapes
    /// `z`: `B × Z` → `B × D`.
    #[track_caller]
    pub fn decode_mean(&self, z: ArrayView2<F>, labels: Option<&[usize]>) -> Array2<F> {
        let mut ws = self.workspace(z.nrows());
        self.decode_into(z, labels, &mut ws);
        let out = ws.output().to_owned();
        match self.config.likelihood {
            Likelihood::Bernoulli => out.mapv(|l| Activation::Sigmoid.apply(l)),
            _ => out,
        }
    }

    /// Reconstructions E[x|z = μ(x)] (the decoder mean at the encoder mean).
    ///
    /// # Shapes
    /// `x`: `B × D` → `B × D`.
    #[track_caller]
    pub fn reconstruct(&self, x: ArrayView2<F>, labels: Option<&[usize]>) -> Array2<F> {
        let (mean, _) = self.encode(x, labels);
        self.decode_mean(mean.view(), labels)
    }

    /// Prior samples shown as decoder means: z ~ p(z|c) (or the learned mixture p_θ(z), drawn by
    /// [`MixturePrior::sample`]), then E[x|z, c].
    ///
    /// # Shapes
    /// → `n × D` (n = `labels.len()` for a CVAE).
    pub fn sample_prior_means<R: Rng + ?Sized>(
        &self,
        n: usize,
        labels: Option<&[usize]>,
        rng: &mut R,
    ) -> Result<Array2<F>>
    where
        StandardNormal: Distribution<F>,
    {
        self.check_labels(n, labels)?;
        if let Some(prior) = self.mixture_prior() {
            let z = prior.sample(n, rng).mapv(cast::<F>);
            return Ok(self.decode_mean(z.view(), labels));
        }
        let mut z = Array2::from_shape_simple_fn((n, self.config.latent_dim), || StandardNormal.sample(rng));
        if let Some(labels) = labels {
            let half: F = cast(0.5);
            for (i, &l) in labels.iter().enumerate() {
                let (m, v) = self.prior_params(l)?;
                for u in 0..self.config.latent_dim {
                    z[(i, u)] = m[u] + (half * v[u]).exp() * z[(i, u)];
                }
            }
        }
        Ok(self.decode_mean(z.view(), labels))
    }

    /// The prior p(z|c) = N(μ_c, diag exp(v_c)) of class `label`: (μ_c, v_c).
    ///
    /// ```text
    /// learned:        μ_c = W_μ[c, :] + b_μ,  v_c = W_v[c, :] + b_v   (the heads applied to one-hot c)
    /// standard normal or plain VAE:  μ_c = 0,  v_c = 0
    /// ```
    ///
    /// # Shapes
    /// → (`Z`, `Z`).
    ///
    /// # Errors
    /// `InvalidParameter` if the model is a CVAE and `label ≥ C`.
    pub fn prior_params(&self, label: usize) -> Result<(Array1<F>, Array1<F>)> {
        let zd = self.config.latent_dim;
        if let Some(c) = self.config.condition
            && label >= c.classes
        {
            return Err(Error::invalid("label", label, format!("must be < classes = {}", c.classes)));
        }
        match self.params.prior.heads() {
            Some((pm, pv)) => {
                Ok((&pm.weight.row(label) + &pm.bias, &pv.weight.row(label) + &pv.bias)) // Z + Z
            }
            None => Ok((Array1::zeros(zd), Array1::zeros(zd))),
        }
    }
}
