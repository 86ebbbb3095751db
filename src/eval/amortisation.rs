//! The amortisation gap (Cremer, Li & Duvenaud 2018): how much ELBO the encoder leaves on the
//! table compared with a q fitted to each data point separately.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, NdFloat, s};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::{check_data, mean_se, nll_rows};
use crate::bounds::{FitConfig, Q, elbo_grad_diag, fit_gaussian};
use crate::error::{Error, Result};
use crate::nn::{Activation, LOG_2PI, bernoulli_nll_grad_into, gaussian_nll_grad_into};
use crate::toy::{ContinuousLatent, LatentModel, Posterior, Prior};
use crate::vae::{Likelihood, Vae};

/// A trained VAE's generative half, p(z) p(x|z) with p(z) = N(0, I) and p(x|z) its decoder, seen
/// as a [`LatentModel`] + [`ContinuousLatent`] in `f64`, so that the bounds machinery
/// ([`fit_gaussian`], [`crate::bounds::elbo_grad_diag`]) runs on it unchanged.
///
/// ```text
/// log p(x, z) = log N(z; 0, I) + log p(x|z)
///             = −½ Σᵤ (ln 2π + zᵤ²) − nll(x, decoder(z))
/// ```
/// with nll the decoder's negative log-likelihood (Bernoulli from logits or Gaussian), the same
/// kernels the training loss uses. log p(x) has no closed form here: [`LatentModel::log_marginal`]
/// is an error (use [`super::importance_sampled_log_likelihood`]).
///
/// # Shapes
/// `x`: D; `z`: N × Z.
#[derive(Clone, Debug)]
pub struct DecoderModel {
    vae: Vae<f64>,
}

impl DecoderModel {
    /// The generative half of `vae`, its parameters converted to `f64`.
    ///
    /// # Errors
    /// `InvalidParameter` for a CVAE (`condition`): its p(x|z, c) needs a label; and for a learned
    /// mixture prior: the bounds machinery's [`Prior`] is N(0, I) (its KL in closed form).
    pub fn new<F: NdFloat>(vae: &Vae<F>) -> Result<Self> {
        if let Some(p) = &vae.params.prior {
            return Err(Error::invalid(
                "prior",
                format!("mixture of {}", p.components()),
                "the amortisation gap is implemented for the prior N(0, I)",
            ));
        }
        if let Some(c) = vae.config.condition {
            return Err(Error::invalid(
                "condition",
                format!("{} classes", c.classes),
                "the amortisation gap is implemented for a plain VAE",
            ));
        }
        Ok(DecoderModel { vae: vae.cast() })
    }

    /// The model in `f64`.
    pub fn vae(&self) -> &Vae<f64> {
        &self.vae
    }

    /// log σ² per data dimension of a Gaussian decoder (unused for Bernoulli).
    fn obs_log_var(&self) -> Array1<f64> {
        match self.vae.config.likelihood {
            Likelihood::GaussianFixed { log_var } => Array1::from_elem(self.data_dim(), log_var),
            Likelihood::GaussianLearned => {
                self.vae.params.obs_log_var.clone().expect("a learned-variance decoder has obs_log_var")
            }
            Likelihood::Bernoulli => Array1::zeros(self.data_dim()),
        }
    }
}

impl LatentModel for DecoderModel {
    fn latent_dim(&self) -> usize {
        self.vae.config.latent_dim
    }
    fn data_dim(&self) -> usize {
        self.vae.config.data_dim
    }
    fn prior(&self) -> Prior {
        Prior::StdNormal { dim: self.latent_dim() }
    }
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> (Array2<f64>, Array2<f64>) {
        let z = Array2::from_shape_simple_fn((n, self.latent_dim()), || rng.sample(StandardNormal));
        let out = {
            let mut ws = self.vae.workspace(n.max(1));
            self.vae.decode_into(z.view(), None, &mut ws);
            ws.output().to_owned()
        };
        let x = match self.vae.config.likelihood {
            Likelihood::Bernoulli => {
                out.mapv(|l| (rng.random::<f64>() < Activation::Sigmoid.apply(l)) as u8 as f64)
            }
            _ => {
                let log_var = self.obs_log_var();
                Array2::from_shape_fn(out.dim(), |(i, d)| {
                    out[(i, d)] + (0.5 * log_var[d]).exp() * rng.sample::<f64, _>(StandardNormal)
                })
            }
        };
        (z, x)
    }
    fn log_prior(&self, z: ArrayView2<f64>) -> Array1<f64> {
        z.rows().into_iter().map(|r| -0.5 * r.iter().map(|&v| LOG_2PI + v * v).sum::<f64>()).collect()
    }
    fn log_likelihood(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64> {
        let n = z.nrows();
        let mut ws = self.vae.workspace(n.max(1));
        self.vae.decode_into(z, None, &mut ws);
        let mut rows = vec![0.0; n];
        let xb = x.broadcast((n, x.len())).expect("one row broadcasts"); // N × D
        nll_rows(&self.vae, &ws, xb, &mut rows);
        rows.iter().map(|r| -r).collect()
    }
    fn log_marginal(&self, _x: ArrayView1<f64>) -> Result<f64> {
        Err(Error::invalid(
            "log p(x)",
            "a VAE decoder",
            "has no exact form; estimate it with importance_sampled_log_likelihood",
        ))
    }
    fn posterior(&self, _x: ArrayView1<f64>) -> Result<Option<Posterior>> {
        Ok(None)
    }
    fn check_x(&self, x: ArrayView1<f64>) -> Result<()> {
        crate::toy::check_x_len_finite(x, self.data_dim())?;
        if self.vae.config.likelihood == Likelihood::Bernoulli
            && let Some(i) = x.iter().position(|v| !(0.0..=1.0).contains(v))
        {
            return Err(Error::invalid(format!("x[{i}]"), x[i], "a Bernoulli decoder needs x in [0, 1]"));
        }
        Ok(())
    }
}

impl ContinuousLatent for DecoderModel {
    /// The decoder's backward pass from the likelihood's gradient, plus the prior's:
    ///
    /// ```text
    /// ∂/∂z log p(x, z) = −z − ∂nll/∂z,   ∂nll/∂z = decoder backward of ∂nll/∂out
    /// ∂nll/∂out = σ(out) − x                      (Bernoulli, out = logits)
    ///           = −(x − out) e^(−log σ²)          (Gaussian, out = mean)
    /// ```
    /// The backward also accumulates the decoder's parameter gradients, which are discarded.
    fn d_log_joint_dz(&self, x: ArrayView1<f64>, z: ArrayView2<f64>) -> Array2<f64> {
        let (n, zd) = (z.nrows(), self.latent_dim());
        let mut ws = self.vae.workspace(n.max(1));
        self.vae.decode_into(z, None, &mut ws);
        let xb = x.broadcast((n, x.len())).expect("one row broadcasts"); // N × D
        let output = ws.decoder_acts.last().expect("decoder has a layer").slice(s![..n, ..]);
        let d_output = ws.d_output.slice_mut(s![..n, ..]);
        let mut rows = vec![0.0; n];
        match self.vae.config.likelihood {
            Likelihood::Bernoulli => {
                bernoulli_nll_grad_into(output, xb, 1.0, Some(d_output), &mut rows);
            }
            _ => {
                let log_var = self.obs_log_var();
                gaussian_nll_grad_into(output, log_var.view(), xb, 1.0, Some(d_output), None, &mut rows);
            }
        }
        let mut discarded = self.vae.params.decoder.zeros_like_mlp();
        self.vae.params.decoder.backward_into(
            ws.decoder_input.slice(s![..n, ..]),
            &ws.decoder_acts,
            ws.d_output.slice_mut(s![..n, ..]),
            &mut ws.d_decoder_hidden,
            Some(ws.d_decoder_input.slice_mut(s![..n, ..])),
            &mut discarded,
        );
        -(&ws.d_decoder_input.slice(s![..n, ..zd])) - z
    }
}

/// One data point's amortisation gap.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmortisationPoint {
    /// ELBO of the encoder's q(z|x), estimated with the draws ε shared with `fitted_elbo`.
    pub encoder_elbo: f64,
    /// ELBO of the diagonal Gaussian q fitted to this x alone (same ε).
    pub fitted_elbo: f64,
    /// fitted_elbo − encoder_elbo.
    pub gap: f64,
}

/// The amortisation gap over a sample of data points, in nats per point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AmortisationGap {
    /// Per point, in the order of the rows of x.
    pub points: Vec<AmortisationPoint>,
    /// Mean encoder ELBO.
    pub encoder_elbo: f64,
    /// Mean fitted ELBO.
    pub fitted_elbo: f64,
    /// Mean gap, fitted − encoder.
    pub gap: f64,
    /// Standard error of the mean gap across points (it includes the Monte-Carlo noise of each
    /// point's estimate).
    pub gap_se: f64,
    /// Draws of z per ELBO estimate (S).
    pub elbo_samples: usize,
    /// Steps of the per-point fit.
    pub fit_steps: usize,
}

/// The amortisation gap of a VAE on the rows of `x` (Cremer, Li & Duvenaud 2018, §3, eq. (3)):
///
/// ```text
/// gap_amort(x) = ELBO(q*_x) − ELBO(q_φ(·|x)) ≥ 0,    q*_x = argmax_{q ∈ diag Gaussians} ELBO(q)
/// ELBO(q) ≈ (1/S) Σₛ [log p(x, zₛ) − log q(zₛ)],  zₛ = μ_q + σ_q ⊙ εₛ,  εₛ ∼ N(0, I)
/// ```
/// q_φ(·|x) = N(μ(x), diag σ²(x)) is the encoder's output; q*_x is found by [`fit_gaussian`]
/// (diagonal family, `fit`'s steps) started at the encoder's q, on the [`DecoderModel`] of `vae`.
/// Both ELBOs of a point are then estimated with the same S fresh draws ε (common random numbers,
/// so the gap's Monte-Carlo noise is far below that of either ELBO). Everything runs in `f64`
/// (the parameters are converted). log p(x) − ELBO(q*) is the approximation gap, measured on the
/// toy models in lesson 03.
///
/// # Shapes
/// `x`: `N × D` (N points, each fitted separately).
///
/// # Errors
/// Empty or mis-shaped data, non-finite values, a CVAE, `elbo_samples` < 1, a bad `fit`, or a fit
/// that diverges ([`Error::Diverged`]).
///
/// ```
/// use vaelab::bounds::FitConfig;
/// use vaelab::eval::amortisation_gap;
/// use vaelab::ndarray::array;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::vae::{Vae, VaeConfig};
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut vae: Vae<f64> = Vae::new(VaeConfig::bernoulli(2, vec![3], 1), &mut rng).unwrap();
/// // Decoder logits 0 whatever z (p(x|z) = ½ per pixel), encoder output N(0, 1) = p(z|x).
/// let last = vae.params.decoder.layers.last_mut().unwrap();
/// last.weight.fill(0.0);
/// last.bias.fill(0.0);
/// for head in [&mut vae.params.mean_head, &mut vae.params.log_var_head] {
///     head.weight.fill(0.0);
///     head.bias.fill(0.0);
/// }
/// let fit = FitConfig { steps: 100, ..FitConfig::default() };
/// let gap = amortisation_gap(&vae, array![[1.0, 0.0]].view(), &fit, 50, &mut rng).unwrap();
/// // The encoder's q is the posterior: its ELBO is log p(x) = 2 ln ½ = −1.3863 exactly.
/// assert!((gap.encoder_elbo + 2.0 * 2f64.ln()).abs() < 1e-12);
/// // A fit can come no higher than log p(x) (the gap is ≤ 0 up to Monte-Carlo noise of 1e-3).
/// assert!(gap.gap < 1e-3);
/// ```
pub fn amortisation_gap<F: NdFloat, R: Rng + ?Sized>(
    vae: &Vae<F>,
    x: ArrayView2<F>,
    fit: &FitConfig,
    elbo_samples: usize,
    rng: &mut R,
) -> Result<AmortisationGap> {
    check_data(vae, x, None)?;
    if elbo_samples == 0 {
        return Err(Error::invalid("elbo_samples", 0, "must be >= 1"));
    }
    if fit.family != crate::bounds::Family::Diagonal {
        return Err(Error::invalid(
            "family",
            format!("{:?}", fit.family),
            "the encoder's family is diagonal",
        ));
    }
    let model = DecoderModel::new(vae)?;
    let x64 = x.mapv(|v| v.to_f64().expect("float"));
    let (mean, log_var) = model.vae().encode(x64.view(), None); // N × Z each
    let mut points = Vec::with_capacity(x.nrows());
    for (i, xi) in x64.rows().into_iter().enumerate() {
        let encoder_q = Q::diag_gaussian(mean.row(i).to_owned(), log_var.row(i).to_owned())?;
        let fitted = fit_gaussian(&model, xi, &encoder_q, fit, rng)?;
        let Q::DiagGaussian { mean: fitted_mean, log_var: fitted_log_var } = &fitted.q else {
            unreachable!("the diagonal family fits a diagonal Gaussian")
        };
        let eps = Array2::<f64>::from_shape_simple_fn((elbo_samples, model.latent_dim()), || {
            rng.sample::<f64, _>(StandardNormal)
        });
        let (encoder_elbo, _, _) = elbo_grad_diag(&model, xi, mean.row(i), log_var.row(i), eps.view());
        let (fitted_elbo, _, _) =
            elbo_grad_diag(&model, xi, fitted_mean.view(), fitted_log_var.view(), eps.view());
        if !(encoder_elbo.is_finite() && fitted_elbo.is_finite()) {
            return Err(Error::NonFinite {
                name: format!("the ELBOs of point {i} (encoder {encoder_elbo}, fitted {fitted_elbo})"),
                index: i,
                value: if encoder_elbo.is_finite() { fitted_elbo } else { encoder_elbo },
            });
        }
        points.push(AmortisationPoint { encoder_elbo, fitted_elbo, gap: fitted_elbo - encoder_elbo });
    }
    let mean_of = |f: fn(&AmortisationPoint) -> f64| mean_se(&points.iter().map(f).collect::<Vec<_>>());
    let (gap, gap_se) = mean_of(|p| p.gap);
    Ok(AmortisationGap {
        encoder_elbo: mean_of(|p| p.encoder_elbo).0,
        fitted_elbo: mean_of(|p| p.fitted_elbo).0,
        gap,
        gap_se,
        elbo_samples,
        fit_steps: fit.steps,
        points,
    })
}
