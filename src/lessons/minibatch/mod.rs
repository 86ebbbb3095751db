//! The text's section "mini-batch": the data-set objective, its mini-batch estimates, and the
//! per-batch weight of the KL term. Derived and measured in `notebooks/06-minibatch-kl-weight.ipynb`.
//!
//! The text's objective is a mean over the N data points,
//!
//! ```text
//! max  (1/N) Σ_x E_{z~Q(z|x)} log P(x|z)  −  (1/N) Σ_x KL(Q(z|x) ‖ P(z))
//!    = −( D + R ),    D = (1/N) Σ_n r_n,   R = (1/N) Σ_n k_n
//! ```
//!
//! with r_n = −E_q log p(x_n|z) (the reconstruction term, distortion) and k_n = KL(q(z|x_n) ‖ p(z))
//! (the KL term, rate) of data point n. SGD sees one mini-batch at a time; the text claims the two
//! terms are then estimated with different errors, so that small batches need an extra
//! coefficient π_i on the KL term of batch i, summing to 1 over the M batches of an epoch.
//!
//! This module holds (or, for the engine's pieces, re-exports) the three pieces that test the claim:
//!
//! - the coefficient schemes ([`KlBatchWeights`], [`uniform_coefficients`],
//!   [`blundell_coefficients`], defined with the objective in [`crate::engine::vae`]) and their use in training ([`crate::engine::train::TrainConfig`]'s
//!   `kl_batch_weights`);
//! - the noise of the two mini-batch estimates and of their gradients, measured against the
//!   closed form for sampling without replacement ([`measure_noise`], [`variance_of_batch_mean`]);
//! - a training comparison of the schemes at several batch sizes ([`train_with_weights`]).
//!
//! **Where the coefficient belongs.** For a VAE every data point has its own latent and its own
//! k_n, so the batch mean (1/B) Σ_{n∈batch} k_n is already an unbiased estimate of R, with the
//! same 1/B sampling variance as the batch mean of the r_n: each batch's loss D̄ + R̄ estimates the
//! per-example objective, and in the text's normalisation batch i carries weight B_i/N = 1/M on
//! both terms. The extra coefficient is the Bayesian neural network's (Blundell et al. 2015,
//! "Weight Uncertainty in Neural Networks", §3.4): there one KL(q(w) ‖ p(w)) belongs to the whole
//! data set and has to be split over the M batches of an epoch.

use ndarray::{Array2, ArrayView2, s};
use rand::seq::index::sample as sample_indices;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::seeds;
use crate::base::stats::Estimate;
use crate::engine::eval::{ElboSummary, elbo_stats};
use crate::engine::nn::Parameters;
use crate::engine::store::ModelStore;
use crate::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{Objective, Vae, VaeConfig, VaeParams};

pub use crate::engine::vae::{
    KlBatchWeights, batches_per_epoch, blundell_coefficients, uniform_coefficients,
};

/// The variance of the mean of B values drawn without replacement from N values whose population
/// variance is σ² (the finite-population correction; Cochran 1977, "Sampling Techniques",
/// Theorem 2.2).
///
/// ```text
/// Var(ȳ_B) = (σ²/B) (N − B)/(N − 1),     σ² = (1/N) Σ_n (y_n − ȳ)²
/// ```
/// (Cochran writes (S²/B)(1 − B/N) with S² = N σ²/(N − 1): the same number.) For vectors the same
/// holds coordinate by coordinate, so with σ² = (1/N) Σ_n ‖g_n − ḡ‖² it is E‖ḡ_B − ḡ‖². B = 1
/// gives σ², B = N gives 0.
///
/// # Errors
/// `n` of 0, B not in 1..=N, σ² negative or not finite.
///
/// ```
/// use vaelab::lessons::minibatch::variance_of_batch_mean;
/// // {0, 1}: σ² = 1/4. One value: 1/4; both: 0.
/// assert_eq!(variance_of_batch_mean(0.25, 2, 1).unwrap(), 0.25);
/// assert_eq!(variance_of_batch_mean(0.25, 2, 2).unwrap(), 0.0);
/// ```
pub fn variance_of_batch_mean(population_variance: f64, n: usize, batch_size: usize) -> Result<f64> {
    if n == 0 {
        return Err(Error::empty("population", "value"));
    }
    if !(1..=n).contains(&batch_size) {
        return Err(Error::invalid("batch_size", batch_size, format!("must be in 1..={n}")));
    }
    if !(population_variance.is_finite() && population_variance >= 0.0) {
        return Err(Error::invalid("population_variance", population_variance, "must be finite and >= 0"));
    }
    if n == 1 {
        return Ok(0.0);
    }
    let (n, b) = (n as f64, batch_size as f64);
    Ok(population_variance / b * (n - b) / (n - 1.0))
}

/// Population mean and variance (1/N) of a set of scalars, two-pass.
fn population_moments(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    (mean, values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n)
}

/// The noise of one term's mini-batch mean at one batch size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNoise {
    /// B.
    pub batch_size: usize,
    /// The closed form (σ²/B)(N − B)/(N − 1) ([`variance_of_batch_mean`]).
    pub closed_form: f64,
    /// The variance of the batch means over `repeats` random batches (each drawn without
    /// replacement), the mean of the squared deviations (m_r − m̄)² with its standard error (their
    /// sd over √repeats); `None` when not sampled (`repeats` < 2).
    pub sampled: Option<Estimate>,
    /// √closed_form / |full-data mean|: the noise relative to the size of the term.
    pub relative_sd: f64,
}

impl BatchNoise {
    /// (sampled − closed form) / SE; `None` when not sampled.
    pub fn z_score(&self) -> Option<f64> {
        self.sampled.map(|s| (s.mean - self.closed_form) / s.stderr)
    }
}

/// The noise of a scalar's batch mean, for each batch size: the closed form, and `repeats`
/// random batches (without replacement) per batch size when `repeats ≥ 2`.
///
/// # Errors
/// Empty or non-finite `values`, a batch size not in 1..=N.
pub fn scalar_batch_noise<R: Rng + ?Sized>(
    values: &[f64],
    batch_sizes: &[usize],
    repeats: usize,
    rng: &mut R,
) -> Result<Vec<BatchNoise>> {
    if values.is_empty() {
        return Err(Error::empty("values", "value"));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { name: "values".into(), index: i, value: values[i] });
    }
    let n = values.len();
    let (mean, var) = population_moments(values);
    let mut out = Vec::with_capacity(batch_sizes.len());
    for &b in batch_sizes {
        let closed_form = variance_of_batch_mean(var, n, b)?;
        let sampled = if repeats >= 2 {
            let means: Vec<f64> = (0..repeats)
                .map(|_| sample_indices(rng, n, b).iter().map(|j| values[j]).sum::<f64>() / b as f64)
                .collect();
            // The batch mean is unbiased, so its variance is E(m − ȳ)² around the known centre ȳ.
            let sq: Vec<f64> = means.iter().map(|m| (m - mean) * (m - mean)).collect();
            Some(Estimate::from_values(&sq)?)
        } else {
            None
        };
        out.push(BatchNoise {
            batch_size: b,
            closed_form,
            sampled,
            relative_sd: closed_form.sqrt() / mean.abs(),
        });
    }
    Ok(out)
}

/// Running mean and Σ‖g − ḡ‖² of a stream of vectors (Welford 1962, applied to each coordinate).
#[derive(Clone, Debug)]
struct VectorMoments {
    count: usize,
    mean: Vec<f64>,
    sum_sq_dev: f64,
}

impl VectorMoments {
    fn new(len: usize) -> Self {
        VectorMoments { count: 0, mean: vec![0.0; len], sum_sq_dev: 0.0 }
    }

    /// ```text
    /// δ = g − ḡ_{n−1};  ḡ_n = ḡ_{n−1} + δ/n;  S_n = S_{n−1} + δ·(g − ḡ_n)
    /// ```
    fn push(&mut self, g: &[f64]) {
        self.count += 1;
        let n = self.count as f64;
        for (m, &v) in self.mean.iter_mut().zip(g) {
            let delta = v - *m;
            *m += delta / n;
            self.sum_sq_dev += delta * (v - *m);
        }
    }

    fn population_variance(&self) -> f64 {
        self.sum_sq_dev / self.count as f64
    }

    fn mean_norm(&self) -> f64 {
        self.mean.iter().map(|v| v * v).sum::<f64>().sqrt()
    }
}

/// Which part of the model a gradient is taken with respect to.
fn flatten_into(grads: &VaeParams<f64>, tensors: std::ops::Range<usize>, out: &mut Vec<f64>) {
    out.clear();
    for i in tensors {
        out.extend_from_slice(grads.tensor(i));
    }
}

/// Tensor ranges of the encoder (trunk, mean and log-variance heads) and the decoder in the
/// [`Parameters`] order of [`VaeParams`].
fn encoder_decoder_tensors(vae: &Vae<f64>) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let encoder = 2 * (vae.params.trunk.layers.len() + 2);
    let decoder = encoder + 2 * vae.params.decoder.layers.len();
    (0..encoder, encoder..decoder)
}

/// One gradient's population over the data: its full-data mean and the spread of the per-example
/// gradients.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradientSpread {
    /// Scalars in the gradient (the parameters it is taken with respect to).
    pub parameters: usize,
    /// ‖ḡ‖, the norm of the full-data gradient.
    pub mean_norm: f64,
    /// σ² = (1/N) Σ_n ‖g_n − ḡ‖², the summed per-coordinate population variance.
    pub population_variance: f64,
}

/// The per-example gradients of each term, accumulated over the data (nothing stored per
/// example): r_n's gradient with respect to the encoder and to the decoder, k_n's with respect to
/// the encoder (the KL term does not reach the decoder).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradientPopulation {
    /// N.
    pub n: usize,
    /// ∇_encoder r_n.
    pub recon_encoder: GradientSpread,
    /// ∇_decoder r_n.
    pub recon_decoder: GradientSpread,
    /// ∇_encoder k_n.
    pub kl_encoder: GradientSpread,
}

/// The gradient of each term for each data point, by the engine's backprop on one row at a time,
/// with that row's ε fixed.
///
/// ```text
/// g_n^r = ∇ r_n = ∇ [−log p(x_n | μ_n + σ_n ⊙ ε_n)]      (Objective β = 0)
/// g_n^k = ∇ k_n = ∇ L_n(β = 1) − ∇ L_n(β = 0)             (L is linear in β)
/// ```
/// With the ε_n fixed, the mini-batch gradient of the batch-mean loss is exactly the mean of the
/// g_n over the batch, so its noise obeys [`variance_of_batch_mean`] with σ² the spread computed
/// here (the test checks this against gradients of random batches).
///
/// # Shapes
/// `x`: N × D, `eps`: N × Z.
///
/// # Errors
/// Bad data (as [`crate::engine::eval::elbo_stats`]); a CVAE (not handled); `eps` not N × Z.
pub fn gradient_population(
    vae: &Vae<f64>,
    x: ArrayView2<f64>,
    eps: ArrayView2<f64>,
) -> Result<GradientPopulation> {
    crate::engine::eval::check_input(vae, "x", x, None)?;
    if vae.config.condition.is_some() {
        return Err(Error::invalid("model", "CVAE", "gradient_population handles a plain VAE"));
    }
    if eps.dim() != (x.nrows(), vae.config.latent_dim) {
        return Err(Error::shape(
            "eps",
            format!("{:?}", (x.nrows(), vae.config.latent_dim)),
            format!("{:?}", eps.dim()),
        ));
    }
    let (enc, dec) = encoder_decoder_tensors(vae);
    let size = |r: &std::ops::Range<usize>| r.clone().map(|i| vae.params.tensor(i).len()).sum::<usize>();
    let (mut re, mut rd, mut ke) =
        (VectorMoments::new(size(&enc)), VectorMoments::new(size(&dec)), VectorMoments::new(size(&enc)));
    let mut ws = vae.workspace(1);
    let (mut g_recon, mut g_total) = (vae.zero_grads(), vae.zero_grads());
    let (mut flat_r, mut flat_t) = (Vec::new(), Vec::new());
    let recon_only = Objective { beta: 0.0, free_bits: None };
    for n in 0..x.nrows() {
        let (xr, er) = (x.slice(s![n..n + 1, ..]), eps.slice(s![n..n + 1, ..]));
        g_recon.fill_zero();
        vae.forward(xr, None, er, &recon_only, &mut ws);
        vae.backward(&mut ws, &mut g_recon);
        g_total.fill_zero();
        vae.forward(xr, None, er, &Objective::ELBO, &mut ws);
        vae.backward(&mut ws, &mut g_total);
        flatten_into(&g_recon, enc.clone(), &mut flat_r);
        re.push(&flat_r);
        flatten_into(&g_total, enc.clone(), &mut flat_t);
        for (t, r) in flat_t.iter_mut().zip(&flat_r) {
            *t -= r;
        }
        ke.push(&flat_t);
        flatten_into(&g_recon, dec.clone(), &mut flat_r);
        rd.push(&flat_r);
    }
    let spread = |m: &VectorMoments| GradientSpread {
        parameters: m.mean.len(),
        mean_norm: m.mean_norm(),
        population_variance: m.population_variance(),
    };
    Ok(GradientPopulation {
        n: x.nrows(),
        recon_encoder: spread(&re),
        recon_decoder: spread(&rd),
        kl_encoder: spread(&ke),
    })
}

/// The noise of one gradient's mini-batch mean at one batch size: E‖ḡ_B − ḡ‖² in closed form and
/// relative to ‖ḡ‖.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradientNoise {
    /// B.
    pub batch_size: usize,
    /// E‖ḡ_B − ḡ‖² = (σ²/B)(N − B)/(N − 1).
    pub mean_sq_deviation: f64,
    /// √E‖ḡ_B − ḡ‖² / ‖ḡ‖.
    pub relative_sd: f64,
}

/// Everything [`measure_noise`] measures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoiseReport {
    /// N, data points in the population.
    pub n: usize,
    /// The batch sizes, 1 .. N.
    pub batch_sizes: Vec<usize>,
    /// D = (1/N) Σ r_n (one z per point).
    pub recon_mean: f64,
    /// Population sd of the r_n.
    pub recon_sd: f64,
    /// R = (1/N) Σ k_n.
    pub kl_mean: f64,
    /// Population sd of the k_n.
    pub kl_sd: f64,
    /// The noise of the batch mean of r_n, per batch size.
    pub recon: Vec<BatchNoise>,
    /// The noise of the batch mean of k_n, per batch size.
    pub kl: Vec<BatchNoise>,
    /// The per-example gradients' spread.
    pub gradients: GradientPopulation,
    /// ∇_encoder of the batch-mean r̄, per batch size.
    pub recon_encoder_grad: Vec<GradientNoise>,
    /// ∇_decoder of the batch-mean r̄, per batch size.
    pub recon_decoder_grad: Vec<GradientNoise>,
    /// ∇_encoder of the batch-mean k̄, per batch size.
    pub kl_encoder_grad: Vec<GradientNoise>,
}

/// The batch sizes 1, 2, 4, ... below N, and N.
///
/// ```
/// assert_eq!(vaelab::lessons::minibatch::powers_of_two_and_full(10), vec![1, 2, 4, 8, 10]);
/// ```
pub fn powers_of_two_and_full(n: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> =
        std::iter::successors(Some(1usize), |b| b.checked_mul(2)).take_while(|&b| b < n).collect();
    sizes.push(n);
    sizes
}

/// Measures the noise of the two terms' mini-batch estimates and of their gradients, for batch
/// sizes 1, 2, 4, ... up to N (all rows of `x`).
///
/// For each data point one ε_n is drawn (as one training step draws one z per row), giving the
/// finite population {r_n, k_n, g_n^r, g_n^k}: r_n = −log p(x_n|z_n), k_n = KL(q(z|x_n) ‖ N(0, I))
/// in closed form, and the gradients of [`gradient_population`]. Then, per batch size:
///
/// ```text
/// Var(r̄_B) = (σ_r²/B)(N − B)/(N − 1)   and the same for k̄_B          (closed form)
/// Var(r̄_B) ≈ (1/T) Σ_t (r̄_{B,t} − D)²,  T = repeats random batches   (sampling)
/// E‖∇r̄_B − ∇D‖² = (σ²_{∇r}/B)(N − B)/(N − 1)                            (gradients)
/// ```
///
/// Not generic (f32 model, seeded inside), so a notebook cell compiles nothing new; the model is
/// cast to f64 for the measurement.
///
/// # Shapes
/// `x`: N × D (binary or grey values in [0, 1]).
///
/// # Errors
/// Bad data; `repeats` of 1 (a variance needs two; 0 skips the sampling).
pub fn measure_noise(vae: &Vae<f32>, x: ArrayView2<f32>, repeats: usize, seed: u64) -> Result<NoiseReport> {
    crate::engine::eval::check_input(vae, "x", x, None)?;
    if repeats == 1 {
        return Err(Error::invalid("repeats", 1, "must be 0 (no sampling) or >= 2"));
    }
    let vae = vae.cast::<f64>();
    let x = x.mapv(f64::from);
    let n = x.nrows();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let eps = Array2::from_shape_simple_fn((n, vae.config.latent_dim), || StandardNormal.sample(&mut rng));
    let mut ws = vae.workspace(n);
    vae.forward(x.view(), None, eps.view(), &Objective::ELBO, &mut ws);
    let recon_values = ws.nll_rows[..n].to_vec();
    let kl_values = ws.kl_rows[..n].to_vec();
    let batch_sizes = powers_of_two_and_full(n);
    let recon = scalar_batch_noise(&recon_values, &batch_sizes, repeats, &mut rng)?;
    let kl = scalar_batch_noise(&kl_values, &batch_sizes, repeats, &mut rng)?;
    let gradients = gradient_population(&vae, x.view(), eps.view())?;
    let grad_noise = |g: &GradientSpread| -> Result<Vec<GradientNoise>> {
        batch_sizes
            .iter()
            .map(|&b| {
                let v = variance_of_batch_mean(g.population_variance, n, b)?;
                Ok(GradientNoise { batch_size: b, mean_sq_deviation: v, relative_sd: v.sqrt() / g.mean_norm })
            })
            .collect()
    };
    let (recon_mean, recon_var) = population_moments(&recon_values);
    let (kl_mean, kl_var) = population_moments(&kl_values);
    Ok(NoiseReport {
        n,
        recon_mean,
        recon_sd: recon_var.sqrt(),
        kl_mean,
        kl_sd: kl_var.sqrt(),
        recon,
        kl,
        recon_encoder_grad: grad_noise(&gradients.recon_encoder)?,
        recon_decoder_grad: grad_noise(&gradients.recon_decoder)?,
        kl_encoder_grad: grad_noise(&gradients.kl_encoder)?,
        gradients,
        batch_sizes,
    })
}

/// What [`NoiseReport::table`] prints for a batch size that was not sampled (NaN ± NaN, as
/// before the field became an `Option`).
const NOT_SAMPLED: Estimate = Estimate { mean: f64::NAN, stderr: f64::NAN, samples: 0 };

impl NoiseReport {
    /// One line per batch size: each term's closed-form and sampled variance of the batch mean
    /// (± SE, and the difference in SEs) and its relative sd.
    pub fn table(&self) -> String {
        let mut out = format!(
            "N = {}: D = {:.3} (sd {:.3} per example), R = {:.3} (sd {:.3} per example)\n",
            self.n, self.recon_mean, self.recon_sd, self.kl_mean, self.kl_sd
        );
        out += "    B   Var(r̄_B) closed   sampled ± SE            z   rel sd  |  Var(k̄_B) closed   sampled ± SE            z   rel sd\n";
        for (r, k) in self.recon.iter().zip(&self.kl) {
            // At B = N the closed form is 0 and the sampled variance is rounding (≈ 1e-26): no z.
            let z = |p: &BatchNoise| match (p.z_score(), p.sampled) {
                (Some(z), Some(s)) if p.closed_form > 0.0 && s.stderr > 0.0 => format!("{z:6.2}"),
                _ => "     –".into(),
            };
            let (r_sampled, k_sampled) = (r.sampled.unwrap_or(NOT_SAMPLED), k.sampled.unwrap_or(NOT_SAMPLED));
            out += &format!(
                "{:5}   {:13.5e}   {:10.4e} ± {:9.2e} {}  {:7.4}  |  {:13.5e}   {:10.4e} ± {:9.2e} {}  {:7.4}\n",
                r.batch_size,
                r.closed_form,
                r_sampled.mean,
                r_sampled.stderr,
                z(r),
                r.relative_sd,
                k.closed_form,
                k_sampled.mean,
                k_sampled.stderr,
                z(k),
                k.relative_sd
            );
        }
        out
    }

    /// One line per batch size: the relative sd of each gradient, √E‖ḡ_B − ḡ‖² / ‖ḡ‖.
    pub fn gradient_table(&self) -> String {
        let g = &self.gradients;
        let mut out = format!(
            "‖ḡ‖: ∇_enc r̄ {:.4}, ∇_dec r̄ {:.4}, ∇_enc k̄ {:.4};  per-example σ: {:.4}, {:.4}, {:.4}\n",
            g.recon_encoder.mean_norm,
            g.recon_decoder.mean_norm,
            g.kl_encoder.mean_norm,
            g.recon_encoder.population_variance.sqrt(),
            g.recon_decoder.population_variance.sqrt(),
            g.kl_encoder.population_variance.sqrt()
        );
        out += "    B   rel sd ∇_enc r̄   rel sd ∇_dec r̄   rel sd ∇_enc k̄\n";
        for ((re, rd), ke) in
            self.recon_encoder_grad.iter().zip(&self.recon_decoder_grad).zip(&self.kl_encoder_grad)
        {
            out += &format!(
                "{:5}   {:14.4}   {:14.4}   {:14.4}\n",
                re.batch_size, re.relative_sd, rd.relative_sd, ke.relative_sd
            );
        }
        out
    }

    /// Variance of each term's batch mean against B (log–log): sampled ± SE as points, the closed
    /// form as lines. The full batch (variance 0) is left off the log axis.
    pub fn variance_plot(&self) -> plotly::Plot {
        let mut fig = crate::plot::Figure::new("variance of the mini-batch mean of each term")
            .log_x("batch size B")
            .log_y("Var of the batch mean (nats²)");
        for (name, points) in [("reconstruction r̄_B", &self.recon), ("KL k̄_B", &self.kl)] {
            let kept: Vec<&BatchNoise> = points.iter().filter(|p| p.batch_size < self.n).collect();
            let b: Vec<f64> = kept.iter().map(|p| p.batch_size as f64).collect();
            let closed: Vec<f64> = kept.iter().map(|p| p.closed_form).collect();
            fig = fig.line(&format!("{name}: (σ²/B)(N−B)/(N−1)"), &b, &closed);
            if let Some(sampled) = kept.iter().map(|p| p.sampled).collect::<Option<Vec<Estimate>>>() {
                let (sampled, se): (Vec<f64>, Vec<f64>) = sampled.iter().map(|e| (e.mean, e.stderr)).unzip();
                fig = fig.markers_with_errors(&format!("{name}: random batches ± SE"), &b, &sampled, &se);
            }
        }
        fig.plot()
    }

    /// Relative noise (sd / |mean|) of each term and of each gradient against B (log–log).
    pub fn relative_noise_plot(&self) -> plotly::Plot {
        let kept = |v: &[f64]| -> Vec<f64> { v[..v.len() - 1].to_vec() };
        let b: Vec<f64> = kept(&self.batch_sizes.iter().map(|&b| b as f64).collect::<Vec<_>>());
        let rel = |p: &[BatchNoise]| kept(&p.iter().map(|p| p.relative_sd).collect::<Vec<_>>());
        let rel_g = |p: &[GradientNoise]| kept(&p.iter().map(|p| p.relative_sd).collect::<Vec<_>>());
        crate::plot::Figure::new("relative noise of the mini-batch estimates: sd / |full-data value|")
            .log_x("batch size B")
            .log_y("relative sd")
            .line("reconstruction r̄_B", &b, &rel(&self.recon))
            .line("KL k̄_B", &b, &rel(&self.kl))
            .dashed("∇_encoder r̄_B", &b, &rel_g(&self.recon_encoder_grad))
            .dashed("∇_decoder r̄_B", &b, &rel_g(&self.recon_decoder_grad))
            .dashed("∇_encoder k̄_B", &b, &rel_g(&self.kl_encoder_grad))
            .plot()
    }
}

/// The coefficients π_i of the uniform and Blundell schemes for an epoch of M batches, against i
/// (log y: Blundell's halve at every batch).
///
/// # Errors
/// `m` of 0.
pub fn coefficients_plot(m: usize) -> Result<plotly::Plot> {
    let i: Vec<f64> = (1..=m).map(|i| i as f64).collect();
    let blundell = blundell_coefficients(m)?;
    // Past ~1074 batches the weights underflow to 0, which a log axis cannot show.
    let shown = blundell.iter().take_while(|&&p| p > 0.0).count();
    Ok(crate::plot::Figure::new(&format!("KL coefficient π_i of each batch in an epoch of M = {m}"))
        .axes("batch i", "π_i")
        .log_y("π_i (log scale: Blundell's halve at every batch, a straight line)")
        .line("uniform 1/M", &i, &uniform_coefficients(m)?)
        .line("Blundell 2^(M−i)/(2^M−1)", &i[..shown], &blundell[..shown])
        .plot())
}

/// The training comparison: data subset, model and optimiser shared by every run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KlWeightConfig {
    /// Training digits (a seeded random subset of the 8,000).
    pub n_train: usize,
    /// Test digits (the first `n_test` of the 2,000, binarised by x > 0.5).
    pub n_test: usize,
    /// H.
    pub hidden: usize,
    /// Z.
    pub latent_dim: usize,
    /// Epochs per run.
    pub epochs: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// Draws of z per test digit for the distortion.
    pub eval_samples: usize,
    /// Seeds the subset, every run's initialisation and training (the same for every run, so runs
    /// differ only in scheme and B) and the evaluation draws.
    pub seed: u64,
}

impl KlWeightConfig {
    /// Small enough for a notebook cell: 2,000 training and 1,000 test digits, 784-64-8, Adam 1e-3.
    pub fn small(epochs: usize, seed: u64) -> Self {
        KlWeightConfig {
            n_train: 2000,
            n_test: 1000,
            hidden: 64,
            latent_dim: 8,
            epochs,
            lr: 1e-3,
            eval_samples: 1,
            seed,
        }
    }

    /// The model: 784-H-Z Bernoulli VAE.
    pub fn vae_config(&self) -> VaeConfig {
        VaeConfig::bernoulli(784, vec![self.hidden], self.latent_dim)
    }

    /// The training configuration of one run.
    pub fn train_config(&self, weights: KlBatchWeights, batch_size: usize) -> TrainConfig {
        TrainConfig {
            kl_batch_weights: weights,
            ..TrainConfig::adam(self.epochs, batch_size, self.lr, self.seed)
        }
    }

    /// Checks every field.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("n_test", self.n_test), ("n_train", self.n_train)] {
            if v < 2 {
                return Err(Error::invalid(name, v, "must be >= 2 (a standard error needs two points)"));
            }
        }
        if self.eval_samples == 0 {
            return Err(Error::invalid("eval_samples", 0, "must be >= 1"));
        }
        self.vae_config().validate()?;
        self.train_config(KlBatchWeights::PerExample, 1).validate()
    }

    /// The training subset (grey levels, `n_train` × 784, seeded) and the binarised test subset
    /// (`n_test` × 784) of the shipped digits.
    ///
    /// # Errors
    /// A subset larger than the split; the digits file unreadable.
    pub fn data(&self, digits: &crate::engine::data::DigitSplit) -> Result<(Array2<f32>, Array2<f32>)> {
        self.validate()?;
        if self.n_train > digits.train.len() {
            return Err(Error::invalid(
                "n_train",
                self.n_train,
                format!("the split has {} training digits", digits.train.len()),
            ));
        }
        if self.n_test > digits.test.len() {
            return Err(Error::invalid(
                "n_test",
                self.n_test,
                format!("the split has {} test digits", digits.test.len()),
            ));
        }
        let mut rng = seeds::LESSON_DATA.rng(self.seed);
        let rows = sample_indices(&mut rng, digits.train.len(), self.n_train).into_vec();
        let train = digits.train.images.select(ndarray::Axis(0), &rows);
        let test = crate::engine::data::binarize_fixed(digits.test.images.slice(s![..self.n_test, ..]));
        Ok((train, test))
    }
}

/// One training run of the comparison, measured on the test subset (nats per example).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KlWeightRun {
    /// The scheme.
    pub weights: KlBatchWeights,
    /// B.
    pub batch_size: usize,
    /// M = ⌈N/B⌉.
    pub batches_per_epoch: usize,
    /// β₁ = π₁ N/B₁, the KL weight of each epoch's first batch.
    pub first_beta: f64,
    /// Test ELBO, rate and distortion, each ± SE across digits.
    pub test: ElboSummary,
    /// Every epoch's training metrics.
    pub history: Vec<EpochMetrics>,
    /// The test ELBO of each test digit (nats), for paired comparisons between runs
    /// ([`paired_test_elbo`]). Every run of one configuration evaluates with the same draws of ε
    /// on the same digits. Not serialised (one number per test digit).
    #[serde(skip)]
    pub test_elbo: Vec<f64>,
    /// The trained-model store's line for this model ("loaded from the store: …" or "trained …,
    /// stored: …", [`crate::engine::store::Stage`]); not serialised.
    #[serde(skip)]
    pub store: String,
}

/// The per-digit differences of two runs' test ELBOs, `dₙ = ELBO_a(xₙ) − ELBO_b(xₙ)`.
///
/// # Shapes
/// `a.test_elbo`, `b.test_elbo`: `n_test` each → `n_test`.
///
/// # Errors
/// [`Error::Shape`] if the runs were measured on different numbers of digits (e.g. a run read
/// back from JSON, which does not keep them).
pub fn test_elbo_differences(a: &KlWeightRun, b: &KlWeightRun) -> Result<Vec<f64>> {
    if a.test_elbo.len() != b.test_elbo.len() {
        return Err(Error::shape("test ELBO per digit (b against a)", a.test_elbo.len(), b.test_elbo.len()));
    }
    Ok(a.test_elbo.iter().zip(&b.test_elbo).map(|(x, y)| x - y).collect())
}

/// Run `a`'s test ELBO minus run `b`'s, paired over the test digits:
///
/// ```text
/// d̄ = (1/n) Σₙ (ELBO_a(xₙ) − ELBO_b(xₙ)),     SE = s_d/√n
/// ```
/// Its mean is the difference of the two runs' mean test ELBOs; its SE is far below the unpaired
/// √(SE_a² + SE_b²), because the spread of easy and hard digits (and of the shared ε) cancels.
///
/// # Errors
/// As [`test_elbo_differences`]; [`Error::TooFewValues`] for fewer than two digits.
pub fn paired_test_elbo(a: &KlWeightRun, b: &KlWeightRun) -> Result<Estimate> {
    Estimate::from_values(&test_elbo_differences(a, b)?)
}

/// Trains the comparison's model with one scheme at one batch size and measures it on the test
/// digits.
///
/// ```text
/// step i of each epoch minimises  D̄_i + β_i R̄_i,   β_i = π_i N / B_i    (see KlBatchWeights)
/// ```
/// `train` holds grey levels (binarised dynamically each epoch), `test` binary digits.
/// `progress` is called after every epoch (a `dyn` closure: a notebook cell compiles nothing new).
///
/// # Errors
/// A bad configuration or batch size; bad data; `Diverged` from training.
pub fn train_with_weights(
    config: &KlWeightConfig,
    train: ArrayView2<f32>,
    test: ArrayView2<f32>,
    weights: KlBatchWeights,
    batch_size: usize,
    progress: &mut dyn FnMut(&EpochMetrics),
) -> Result<KlWeightRun> {
    config.validate()?;
    let mut trainer = Trainer::new(config.vae_config(), config.train_config(weights, batch_size))?;
    let set = TrainSet { x: train, labels: None, binarize: true };
    let epochs = trainer.config.epochs;
    let stage = ModelStore::from_env().train_epochs(&mut trainer, &set, epochs, progress)?;
    let history = stage.metrics.clone();
    let mut rng = seeds::KL_WEIGHT_EVALUATION.rng(config.seed);
    let stats = elbo_stats(&trainer.vae, test, None, config.eval_samples, 1000, &mut rng)?;
    let n = train.nrows();
    Ok(KlWeightRun {
        weights,
        batch_size,
        batches_per_epoch: batches_per_epoch(n, batch_size)?,
        first_beta: weights.beta_factor(1, n, batch_size),
        test: stats.summary()?,
        history,
        test_elbo: stats.elbo,
        store: stage.to_string(),
    })
}

/// One line per run: scheme, B, M, β₁, test ELBO ± SE, rate ± SE, distortion ± SE.
pub fn runs_table(runs: &[KlWeightRun]) -> String {
    let mut out = String::from(
        "scheme                       B     M      β₁      test ELBO          rate              distortion\n",
    );
    for r in runs {
        out += &format!(
            "{:26} {:4} {:5} {:8.2}   {:8.3} ± {:.3}   {:6.3} ± {:.3}   {:8.3} ± {:.3}\n",
            r.weights.label(),
            r.batch_size,
            r.batches_per_epoch,
            r.first_beta,
            r.test.elbo.mean,
            r.test.elbo.stderr,
            r.test.rate.mean,
            r.test.rate.stderr,
            r.test.distortion.mean,
            r.test.distortion.stderr
        );
    }
    out
}

/// The lesson's whole experiment, as `vaelab experiment minibatch` runs it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinibatchConfig {
    /// The training comparison (also gives the data and the model of the noise measurement).
    pub training: KlWeightConfig,
    /// The batch sizes of the comparison (each with every scheme).
    pub batch_sizes: Vec<usize>,
    /// Training digits (the first of the comparison's subset) on which the noise is measured.
    pub noise_n: usize,
    /// Random batches per batch size for the sampled variances.
    pub noise_repeats: usize,
    /// Epochs of the model whose noise is measured (trained per-example at B = 128).
    pub noise_epochs: usize,
}

/// What [`minibatch_experiment`] measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinibatchResult {
    /// The experiment.
    pub config: MinibatchConfig,
    /// The noise of the two terms and their gradients.
    pub noise: NoiseReport,
    /// One run per (batch size, scheme).
    pub runs: Vec<KlWeightRun>,
}

/// Measures the noise of both terms on a model trained `noise_epochs` epochs, then trains every
/// scheme at every batch size ([`measure_noise`], [`train_with_weights`]).
///
/// # Errors
/// A bad configuration; the digits unreadable; `Diverged`.
pub fn minibatch_experiment(
    config: &MinibatchConfig,
    digits: &crate::engine::data::DigitSplit,
    progress: &mut dyn FnMut(&str, &EpochMetrics),
) -> Result<MinibatchResult> {
    let (train, test) = config.training.data(digits)?;
    if !(2..=train.nrows()).contains(&config.noise_n) {
        return Err(Error::invalid("noise_n", config.noise_n, format!("must be in 2..={}", train.nrows())));
    }
    if config.batch_sizes.is_empty() {
        return Err(Error::empty("batch_sizes", "batch size"));
    }
    let mut noise_config = config.training.clone();
    noise_config.epochs = config.noise_epochs;
    let mut trainer =
        Trainer::new(noise_config.vae_config(), noise_config.train_config(KlBatchWeights::PerExample, 128))?;
    let set = TrainSet { x: train.view(), labels: None, binarize: true };
    let epochs = trainer.config.epochs;
    ModelStore::from_env().train_epochs(&mut trainer, &set, epochs, &mut |m| progress("noise model", m))?;
    let mut rng = seeds::NOISE_BINARISATION.rng(config.training.seed);
    let mut population = Array2::zeros((config.noise_n, 784));
    let rows: Vec<usize> = (0..config.noise_n).collect();
    crate::engine::data::binarize_bernoulli_rows(train.view(), &rows, &mut population.view_mut(), &mut rng);
    let noise = measure_noise(
        &trainer.vae,
        population.view(),
        config.noise_repeats,
        seeds::NOISE_DRAWS.seed(config.training.seed),
    )?;
    let mut runs = Vec::new();
    for &b in &config.batch_sizes {
        for w in KlBatchWeights::ALL {
            let label = format!("{} B={b}", w.label());
            runs.push(train_with_weights(&config.training, train.view(), test.view(), w, b, &mut |m| {
                progress(&label, m)
            })?);
        }
    }
    Ok(MinibatchResult { config: config.clone(), noise, runs })
}

#[cfg(test)]
mod tests;
