//! The amortisation gap (Cremer, Li & Duvenaud 2018): how much ELBO the encoder leaves on the
//! table compared with a q fitted to each data point separately.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, NdFloat, s};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::prob::LN_2PI;
use crate::base::stats::{Estimate, paired_difference};
use crate::engine::eval::{check_data, nll_rows};
use crate::engine::nn::{Activation, bernoulli_nll_grad_into, gaussian_nll_grad_into};
use crate::engine::vae::{Likelihood, Vae};
use crate::lessons::bounds::{FitConfig, Q, elbo_grad_diag, fit_gaussian};
use crate::lessons::toy::{ContinuousLatent, LatentModel, Posterior, Prior};

/// A trained VAE's generative half, p(z) p(x|z) with p(z) = N(0, I) and p(x|z) its decoder, seen
/// as a [`LatentModel`] + [`ContinuousLatent`] in `f64`, so that the bounds machinery
/// ([`fit_gaussian`], [`crate::lessons::bounds::elbo_grad_diag`]) runs on it unchanged.
///
/// ```text
/// log p(x, z) = log N(z; 0, I) + log p(x|z)
///             = −½ Σᵤ (ln 2π + zᵤ²) − nll(x, decoder(z))
/// ```
/// with nll the decoder's negative log-likelihood (Bernoulli from logits or Gaussian), the same
/// kernels the training loss uses. log p(x) has no closed form here: [`LatentModel::log_marginal`]
/// is an error (use [`crate::engine::eval::importance_sampled_log_likelihood`]).
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
        vae.require_per_unit_kl("the amortisation gap (its bounds machinery takes p(z) = N(0, I))")?;
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
        z.rows().into_iter().map(|r| -0.5 * r.iter().map(|&v| LN_2PI + v * v).sum::<f64>()).collect()
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
        crate::lessons::toy::check_x_len_finite(x, self.data_dim())?;
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
    /// Mean encoder ELBO with its standard error across points.
    pub encoder_elbo: Estimate,
    /// Mean fitted ELBO with its standard error across points.
    pub fitted_elbo: Estimate,
    /// Mean gap, fitted − encoder, with the paired standard error across points
    /// ([`paired_difference`]; it includes the Monte-Carlo noise of each point's estimate).
    pub gap: Estimate,
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
/// Empty or mis-shaped data, fewer than 2 rows ([`Error::TooFewValues`]: the means' standard
/// errors need two), non-finite values, a CVAE, `elbo_samples` < 1, a bad `fit`, or a fit
/// that diverges ([`Error::Diverged`]).
///
/// ```
/// use vaelab::lessons::bounds::FitConfig;
/// use vaelab::lessons::amortisation::amortisation_gap;
/// use vaelab::ndarray::array;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::engine::vae::{Vae, VaeConfig};
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
/// let gap = amortisation_gap(&vae, array![[1.0, 0.0], [0.0, 1.0]].view(), &fit, 50, &mut rng).unwrap();
/// // The encoder's q is the posterior: its ELBO is log p(x) = 2 ln ½ = −1.3863 exactly, at both points.
/// assert!((gap.encoder_elbo.mean + 2.0 * 2f64.ln()).abs() < 1e-12 && gap.encoder_elbo.stderr < 1e-12);
/// // A fit can come no higher than log p(x) (the gap is ≤ 0 up to Monte-Carlo noise of 1e-3).
/// assert!(gap.gap.mean < 1e-3);
/// ```
pub fn amortisation_gap<F: NdFloat, R: Rng + ?Sized>(
    vae: &Vae<F>,
    x: ArrayView2<F>,
    fit: &FitConfig,
    elbo_samples: usize,
    rng: &mut R,
) -> Result<AmortisationGap> {
    amortisation_gap_with_fits(vae, x, fit, elbo_samples, rng).map(|(gap, _)| gap)
}

/// [`amortisation_gap`], and the fitted q*ₓ of every row (what a further estimate at q*, such as
/// an importance-sampled log p(x) with q* as proposal, needs). The same draws in the same order:
/// for the same generator both return the same gap.
///
/// # Shapes
/// `x`: `N × D`; N fitted q's, each of Z.
///
/// # Errors
/// As [`amortisation_gap`].
pub fn amortisation_gap_with_fits<F: NdFloat, R: Rng + ?Sized>(
    vae: &Vae<F>,
    x: ArrayView2<F>,
    fit: &FitConfig,
    elbo_samples: usize,
    rng: &mut R,
) -> Result<(AmortisationGap, Vec<Q>)> {
    check_data(vae, x, None)?;
    if x.nrows() < 2 {
        return Err(Error::TooFewValues { count: x.nrows() });
    }
    if elbo_samples == 0 {
        return Err(Error::invalid("elbo_samples", 0, "must be >= 1"));
    }
    if fit.family != crate::lessons::bounds::Family::Diagonal {
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
    let mut fits = Vec::with_capacity(x.nrows());
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
        fits.push(fitted.q);
    }
    let encoder: Vec<f64> = points.iter().map(|p| p.encoder_elbo).collect();
    let fitted: Vec<f64> = points.iter().map(|p| p.fitted_elbo).collect();
    let gap = AmortisationGap {
        encoder_elbo: Estimate::from_values(&encoder)?,
        fitted_elbo: Estimate::from_values(&fitted)?,
        gap: paired_difference(&fitted, &encoder)?,
        elbo_samples,
        fit_steps: fit.steps,
        points,
    };
    Ok((gap, fits))
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops mirror the per-point formulas
mod tests {
    use super::*;
    use crate::base::prob;
    use crate::engine::eval::tests::{binary, decoupled, exact_log_px};
    use crate::engine::vae::{Vae, VaeConfig};
    use crate::lessons::bounds::FitConfig;
    use ndarray::{Array2, array};
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use rand_distr::{Distribution, Uniform};

    /// A small VAE with smooth activations (no ReLU kinks under the finite-difference step).
    fn smooth_vae(rng: &mut StdRng, likelihood: crate::engine::vae::Likelihood) -> Vae<f64> {
        let mut config = VaeConfig::bernoulli(5, vec![4], 3).with_likelihood(likelihood);
        config.activation = crate::engine::nn::Activation::Tanh;
        let mut vae: Vae<f64> = Vae::new(config, rng).unwrap();
        if let Some(s) = vae.params.obs_log_var.as_mut() {
            *s = array![0.3, -0.2, 0.1, 0.0, -0.4];
        }
        vae
    }

    #[test]
    fn decoder_model_log_joint_and_its_z_gradient_are_right() {
        use crate::engine::nn::gradcheck::{central_difference, compare};
        use crate::engine::vae::Likelihood;
        use crate::lessons::toy::{ContinuousLatent, LatentModel};
        let mut rng = StdRng::seed_from_u64(33);
        let normal = rand_distr::StandardNormal;
        for likelihood in
            [Likelihood::Bernoulli, Likelihood::GaussianFixed { log_var: -0.5 }, Likelihood::GaussianLearned]
        {
            let vae = smooth_vae(&mut rng, likelihood);
            let model = DecoderModel::new(&vae).unwrap();
            let x = binary(&mut rng, 1).row(0).to_owned();
            let z = Array2::from_shape_simple_fn((4, 3), || normal.sample(&mut rng));
            // Independent route for log p(x, z): the prob blocks on the decoder's plain forward.
            let (out, _) = vae.params.decoder.forward(z.view());
            let xk = x.broadcast((4, 5)).unwrap().to_owned();
            let log_px_z = match likelihood {
                Likelihood::Bernoulli => prob::bernoulli_log_likelihood(xk.view(), out.view()),
                _ => {
                    let s = match likelihood {
                        Likelihood::GaussianFixed { log_var } => Array2::from_elem((4, 5), log_var),
                        _ => vae.params.obs_log_var.clone().unwrap().broadcast((4, 5)).unwrap().to_owned(),
                    };
                    prob::diag_gaussian_log_density(xk.view(), out.view(), s.view())
                }
            };
            let zeros = Array2::zeros((1, 3));
            let log_pz = prob::diag_gaussian_log_density(z.view(), zeros.view(), zeros.view());
            let joint = model.log_joint(x.view(), z.view());
            for n in 0..4 {
                assert!((joint[n] - (log_px_z[n] + log_pz[n])).abs() < 1e-12, "{likelihood:?} row {n}");
            }
            // ∂/∂z log p(x, z) = −z − (decoder backward of ∂nll/∂out) against central differences of
            // the summed log-joint (rows are independent, so its gradient is the per-row gradient).
            // A correct gradient shows relative error 1e-9…1e-7 at h = 6e-6 (nn::gradcheck); allow 1e-6.
            let exact = model.d_log_joint_dz(x.view(), z.view());
            let approx = central_difference(&z, |zp| model.log_joint(x.view(), zp.view()).sum());
            let cmp = compare(exact.as_slice().unwrap(), approx.as_slice().unwrap());
            assert!(cmp.relative_error < 1e-6, "{likelihood:?}: {cmp}");
        }
    }

    #[test]
    fn amortisation_gap_vanishes_when_the_encoder_outputs_the_posterior() {
        let mut rng = StdRng::seed_from_u64(34);
        // Decoder ignores z, so p(z|x) = p(z) = N(0, I), and the encoder outputs exactly N(0, I).
        let vae = decoupled(&mut rng, 0.0, 0.0);
        let x = binary(&mut rng, 4);
        let exact = exact_log_px(&vae, &x);
        let fit = FitConfig { steps: 300, samples_per_step: 8, ..FitConfig::default() };
        let result = amortisation_gap(&vae, x.view(), &fit, 100, &mut rng).unwrap();
        // At q = p(z|x) every log-weight equals log p(x): the encoder's ELBO estimate is exact.
        for i in 0..4 {
            assert!((result.points[i].encoder_elbo - exact[i]).abs() < 1e-12);
        }
        // The fit can only lose (ELBO(q) = log p(x) − KL(q ‖ p(z|x))): the gap is ≈ 0, allowed
        // 4 SE across points plus the fitter's stated accuracy of 1e-3 nats (fit_gaussian's example).
        assert!(
            result.gap.mean.abs() <= 4.0 * result.gap.stderr + 1e-3,
            "gap {:?} (fitted {:?}, encoder {:?})",
            result.gap,
            result.fitted_elbo,
            result.encoder_elbo
        );
    }

    #[test]
    fn a_fitted_q_is_no_worse_than_the_encoder_of_a_small_trained_vae() {
        use crate::engine::train::{TrainConfig, TrainSet, Trainer};
        // 4 binary prototypes of 12 pixels with 10% of the pixels flipped; Z = 2, H = 8.
        let mut rng = StdRng::seed_from_u64(35);
        let u = Uniform::new(0.0, 1.0).unwrap();
        let protos = Array2::from_shape_simple_fn((4, 12), || (u.sample(&mut rng) < 0.5) as u8 as f32);
        let x = Array2::from_shape_fn((64, 12), |(i, d)| {
            let p = protos[(i % 4, d)];
            if u.sample(&mut rng) < 0.1 { 1.0 - p } else { p }
        });
        let mut train = TrainConfig::anchor(30, 5);
        train.batch_size = 16;
        train.optimizer = crate::engine::nn::OptimizerConfig::adam(1e-2);
        let mut trainer = Trainer::new(VaeConfig::bernoulli(12, vec![8], 2), train).unwrap();
        trainer.fit(&TrainSet { x: x.view(), labels: None, binarize: false }, None, |_| {}).unwrap();
        let fit = FitConfig { steps: 300, samples_per_step: 8, ..FitConfig::default() };
        let points = x.slice(ndarray::s![..6, ..]);
        let result = amortisation_gap(&trainer.vae, points, &fit, 200, &mut rng).unwrap();
        // Cremer et al.: ELBO(q*) ≥ ELBO(q_φ). The estimates are noisy: allow 4 SE of the mean gap.
        assert!(
            result.fitted_elbo.mean >= result.encoder_elbo.mean - 4.0 * result.gap.stderr,
            "fitted {:?} vs encoder {:?} (gap SE {})",
            result.fitted_elbo,
            result.encoder_elbo,
            result.gap.stderr
        );
        assert_eq!(result.points.len(), 6);
        // Bad arguments are named errors.
        let e = amortisation_gap(&trainer.vae, points, &fit, 0, &mut rng).unwrap_err();
        assert_eq!(e.to_string(), "invalid elbo_samples = 0: must be >= 1");
        let cvae: Vae<f64> = Vae::new(
            VaeConfig::bernoulli(5, vec![4], 2)
                .with_condition(3, crate::engine::vae::PriorKind::StandardNormal),
            &mut rng,
        )
        .unwrap();
        assert!(DecoderModel::new(&cvae).unwrap_err().to_string().contains("condition"));
        // p(z) = N(0, I) only: a learned mixture prior is refused.
        let mixture = VaeConfig::bernoulli(6, vec![5], 2)
            .with_prior(crate::engine::vae::LatentPrior::Mixture { components: 4 });
        let vae: Vae<f32> = Vae::new(mixture, &mut StdRng::seed_from_u64(0)).unwrap();
        assert!(DecoderModel::new(&vae).is_err());
    }
}
