//! Reading 2 of the text (VAE解释2): the VAE looks for a *minimal* representation. Whatever the
//! number of latent units Z, the KL term makes the model use as few of them as the data need and
//! leaves the rest at the prior. Derived in `notebooks/08-minimal-representation.ipynb`.
//!
//! Why: the KL term is a sum over units,
//!
//! ```text
//! KL(q(z|x) ‖ N(0, I)) = Σ_u ½(μ_u² + σ_u² − 1 − log σ_u²)      (Kingma & Welling 2014, App. B)
//! ```
//!
//! and each term is 0 only at μ_u = 0, σ_u = 1, i.e. q(z_u|x) = p(z_u). A unit that carries
//! nothing the decoder needs lowers the loss by going exactly there: it becomes *inactive*, its
//! posterior mean no longer moves with x (Burda et al. 2016, §5.2: A_u = Var_x E_q\[z_u\] ≤ 0.01, see
//! [`crate::engine::eval::active_units`]), its KL is 0 and the decoder learns to ignore it. So a model with
//! Z units trained on data made from k factors should keep about k active units, whatever Z ≥ k.
//!
//! What is here: [`unit_report`] measures one trained model unit by unit (activity, KL, σ, and
//! [`traversal_change`], how much decoding moves when one unit is swept); [`traversal`] decodes
//! such a sweep for an image grid; [`latent_sweep`] / [`train_blob_model`] train one model per Z on
//! [`crate::engine::data::blobs`] images, whose number of factors is known.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis, s};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::seeds;
use crate::base::stats::Estimate;
use crate::engine::data::{BlobConfig, BlobImages, ThirdFactor, blobs};
use crate::engine::eval::{ActiveUnits, active_units, elbo_stats};
use crate::engine::nn::Activation;
use crate::engine::store::{ModelStore, Stage};
use crate::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{Vae, VaeConfig};

mod slider;
pub use slider::{TraversalFrame, TraversalFrames, traversal_frames, traversal_slider};

/// How [`unit_report`] measures a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitMeasureConfig {
    /// Draws of z per data point for the distortion (and so the ELBO).
    pub samples: usize,
    /// δ of the active-unit criterion A_u > δ (0.01 in Burda et al. 2016).
    pub threshold: f64,
    /// Traversals sweep one unit over [−span, span] (prior standard deviations).
    pub span: f64,
    /// Values in that range, evenly spaced, ends included.
    pub steps: usize,
    /// The first `bases` data points are the base codes of [`traversal_change`].
    pub bases: usize,
    /// Seeds the draws of z.
    pub seed: u64,
}

impl Default for UnitMeasureConfig {
    /// 10 draws of z, δ = 0.01, traversals over −3..3 in 7 steps from 20 base codes, seed 0.
    fn default() -> Self {
        UnitMeasureConfig { samples: 10, threshold: 0.01, span: 3.0, steps: 7, bases: 20, seed: 0 }
    }
}

impl UnitMeasureConfig {
    /// The traversal values t_j = −span + 2·span·j/(steps − 1), j = 0 … steps − 1 (one value, 0,
    /// if `steps` = 1).
    ///
    /// ```
    /// use vaelab::lessons::representation::UnitMeasureConfig;
    /// assert_eq!(UnitMeasureConfig::default().traversal_values(), vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]);
    /// ```
    pub fn traversal_values(&self) -> Vec<f64> {
        if self.steps == 1 {
            return vec![0.0];
        }
        let last = (self.steps - 1) as f64;
        (0..self.steps).map(|j| -self.span + 2.0 * self.span * j as f64 / last).collect()
    }

    /// Checks every field.
    ///
    /// # Errors
    /// `InvalidParameter` naming the field.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("samples", self.samples), ("steps", self.steps), ("bases", self.bases)] {
            if v == 0 {
                return Err(Error::invalid(name, v, "must be ≥ 1"));
            }
        }
        if !(self.threshold.is_finite() && self.threshold >= 0.0) {
            return Err(Error::invalid("threshold", self.threshold, "must be finite and ≥ 0"));
        }
        if !(self.span.is_finite() && self.span > 0.0) {
            return Err(Error::invalid("span", self.span, "must be finite and > 0"));
        }
        Ok(())
    }
}

/// One trained model, unit by unit, on one data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnitReport {
    /// Z.
    pub latent_dim: usize,
    /// A_u = Var_x μ_u(x) per unit and the count above δ ([`active_units`]).
    pub active: ActiveUnits,
    /// Mean over the data of KL(q(z_u|x) ‖ N(0, 1)), per unit (`Z`; sums to the rate).
    pub kl_per_unit: Vec<f64>,
    /// Mean over the data of σ_u(x) = exp(½ log σ²_u(x)), per unit (`Z`).
    pub sigma_per_unit: Vec<f64>,
    /// [`traversal_change`] per unit (`Z`): mean |Δ pixel| when the unit alone is swept.
    pub traversal_change: Vec<f64>,
    /// Mean ELBO (nats per data point), with its standard error across data points.
    pub elbo: Estimate,
    /// Mean rate R = Σ_u KL_u, with its standard error.
    pub rate: Estimate,
    /// Mean distortion −E log p(x|z), with its standard error.
    pub distortion: Estimate,
    /// Per data point (N): the ELBO, rate and distortion whose means are the three fields above,
    /// for paired differences between two models measured on the same rows
    /// ([`crate::base::stats::paired_difference`]). Not serialised.
    #[serde(skip)]
    pub per_point: PerPoint,
}

/// A model's ELBO, rate and distortion on each data point (N values each), in row order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerPoint {
    /// ELBO of each data point (S draws of z averaged).
    pub elbo: Vec<f64>,
    /// KL(q(z|x_n) ‖ p(z)) of each data point.
    pub rate: Vec<f64>,
    /// −(1/S) Σ_s log p(x_n|z_s) of each data point.
    pub distortion: Vec<f64>,
}

impl UnitReport {
    /// The units ordered by their KL, largest first.
    pub fn units_by_kl(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.latent_dim).collect();
        order.sort_by(|&a, &b| self.kl_per_unit[b].total_cmp(&self.kl_per_unit[a]));
        order
    }

    /// The per-unit KLs, largest first.
    pub fn kl_sorted(&self) -> Vec<f64> {
        self.units_by_kl().into_iter().map(|u| self.kl_per_unit[u]).collect()
    }

    /// Active units (A_u > δ) and inactive ones, each in order of decreasing KL.
    pub fn split_active(&self) -> (Vec<usize>, Vec<usize>) {
        self.units_by_kl().into_iter().partition(|&u| self.active.variances[u] > self.active.threshold)
    }

    /// One line per unit, in order of decreasing KL: A_u, active or not, KL_u, mean σ_u and the
    /// traversal change.
    pub fn table(&self) -> String {
        let mut out = String::from("unit   A_u = Var μ_u   active   KL_u (nats)   mean σ_u   traversal Δ\n");
        for u in self.units_by_kl() {
            let a = self.active.variances[u];
            out += &format!(
                "z{u:<3}   {a:12.5}   {:>6}   {:11.4}   {:8.4}   {:11.5}\n",
                if a > self.active.threshold { "yes" } else { "no" },
                self.kl_per_unit[u],
                self.sigma_per_unit[u],
                self.traversal_change[u]
            );
        }
        out
    }

    /// Bars per unit (unit order): KL_u in nats and the mean σ_u (1 = the prior's noise).
    pub fn units_plot(&self, title: &str) -> plotly::Plot {
        let names: Vec<String> = (0..self.latent_dim).map(|u| format!("z{u}")).collect();
        crate::plot::Figure::new(title)
            .axes("latent unit", "KL_u (nats) / mean σ_u")
            .bars("KL_u (nats)", &names, &self.kl_per_unit)
            .bars("mean σ_u (prior: 1)", &names, &self.sigma_per_unit)
            .plot()
    }
}

/// Measures a trained model unit by unit on the rows of `x`: which units are active, what each
/// costs in KL, its mean σ, and how much the decoder's output moves when it alone is swept.
///
/// ```text
/// A_u   = Var_n μ_u(x_n)                              active iff A_u > δ  (Burda et al. 2016, §5.2)
/// KL_u  = (1/N) Σ_n ½(μ_u² + σ_u² − 1 − log σ_u²)     (Kingma & Welling 2014, App. B)
/// σ̄_u   = (1/N) Σ_n σ_u(x_n)
/// Δ_u   = traversal_change (on the first `bases` rows)
/// ELBO  = (1/N) Σ_n [ (1/S) Σ_s log p(x_n|z_s) − KL(q(z|x_n) ‖ p(z)) ]   ± its standard error
/// ```
/// All via [`elbo_stats`] (S = `samples` draws, seeded by `measure.seed`) and [`active_units`].
///
/// Not generic (f32, the trainer's precision), so a notebook cell calling it compiles nothing new.
///
/// # Shapes
/// `x`: N × D. Every per-unit field has Z values.
///
/// # Errors
/// A bad `measure` ([`UnitMeasureConfig::validate`]); `x` empty, not N × D, or not finite; fewer
/// than 2 rows ([`Error::TooFewValues`]: the standard errors need two); a conditional model (this
/// lesson's models have no labels).
pub fn unit_report(vae: &Vae<f32>, x: ArrayView2<f32>, measure: &UnitMeasureConfig) -> Result<UnitReport> {
    measure.validate()?;
    vae.require_per_unit_kl("the per-unit report")?;
    let mut rng = ChaCha8Rng::seed_from_u64(measure.seed);
    let stats = elbo_stats(vae, x, None, measure.samples, 1000, &mut rng)?;
    let summary = stats.summary()?;
    let sigma_per_unit = stats.sigma_per_unit();
    let bases = measure.bases.min(x.nrows());
    let traversal_change = traversal_change(vae, x.slice(s![..bases, ..]), &measure.traversal_values())?;
    Ok(UnitReport {
        latent_dim: vae.config.latent_dim,
        active: active_units(stats.mean.view(), measure.threshold),
        kl_per_unit: stats.kl_per_unit,
        sigma_per_unit,
        traversal_change,
        elbo: summary.elbo,
        rate: summary.rate,
        distortion: summary.distortion,
        per_point: PerPoint { elbo: stats.elbo, rate: stats.rate, distortion: stats.distortion },
    })
}

fn check_values(values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(Error::empty("traversal values", "value"));
    }
    crate::base::error::ensure_finite("traversal values", values)
}

/// Decodes a traversal of one latent unit: the base code is the encoder mean μ(x) of one data
/// point, and unit `unit` alone is set to each of `values` in turn.
///
/// ```text
/// z^(j) = μ(x) with z_unit ← t_j,     row j of the result = E[x | z^(j)]   (the decoder's mean)
/// ```
/// For an inactive unit the decoder has learned to ignore z_unit (it was pure prior noise in
/// training), so every row is nearly the same image; for an active one the image changes.
///
/// # Shapes
/// `x`: D (one data point). Returns T × D, T = `values.len()`.
///
/// # Errors
/// `unit` ≥ Z; `values` empty or not finite; `x` not of length D or not finite; a conditional
/// model.
///
/// ```
/// use vaelab::lessons::representation::traversal;
/// use vaelab::ndarray::Array1;
/// use vaelab::rand::{SeedableRng, rngs::StdRng};
/// use vaelab::engine::vae::{Vae, VaeConfig};
/// let vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(4, vec![3], 2), &mut StdRng::seed_from_u64(0)).unwrap();
/// let x = Array1::from_elem(4, 0.5f32);
/// let images = traversal(&vae, x.view(), 1, &[-3.0, 0.0, 3.0]).unwrap();
/// assert_eq!(images.dim(), (3, 4));
/// assert!(traversal(&vae, x.view(), 2, &[0.0]).is_err()); // Z = 2: units 0 and 1 only
/// ```
pub fn traversal(vae: &Vae<f32>, x: ArrayView1<f32>, unit: usize, values: &[f64]) -> Result<Array2<f32>> {
    let x = x.insert_axis(Axis(0));
    crate::engine::eval::check_input(vae, "x", x, None)?;
    check_unit(vae, unit)?;
    check_values(values)?;
    let (mean, _) = vae.encode(x, None);
    let mut z = Array2::<f32>::zeros((values.len(), vae.config.latent_dim));
    for (mut row, &t) in z.rows_mut().into_iter().zip(values) {
        row.assign(&mean.row(0));
        row[unit] = t as f32;
    }
    Ok(vae.decode_mean(z.view(), None))
}

fn check_unit(vae: &Vae<f32>, unit: usize) -> Result<()> {
    let zd = vae.config.latent_dim;
    if unit >= zd {
        return Err(Error::invalid("unit", unit, format!("must be < Z = {zd}")));
    }
    Ok(())
}

/// Traversals of several units from one base point, stacked for
/// [`crate::plot::report::image_grid`] with `values.len()` columns: row block i is unit `units[i]`.
///
/// # Shapes
/// `x`: D. Returns (U·T) × D, U = `units.len()`, T = `values.len()`.
///
/// # Errors
/// As [`traversal`]; `units` empty.
pub fn traversal_grid(
    vae: &Vae<f32>,
    x: ArrayView1<f32>,
    units: &[usize],
    values: &[f64],
) -> Result<Array2<f32>> {
    if units.is_empty() {
        return Err(Error::empty("units", "unit"));
    }
    let mut out = Array2::<f32>::zeros((units.len() * values.len(), vae.config.data_dim));
    for (i, &u) in units.iter().enumerate() {
        let images = traversal(vae, x, u, values)?;
        out.slice_mut(s![i * values.len()..(i + 1) * values.len(), ..]).assign(&images);
    }
    Ok(out)
}

/// The traversal grid of a measured model: one row per unit, first every active unit (largest KL
/// first), then the first `inactive_shown` inactive ones; one column per value. Returns the plot
/// ([`crate::plot::report::image_grid`]) and the units in row order.
///
/// # Shapes
/// `x`: D (D a perfect square for square images).
///
/// # Errors
/// As [`traversal`]; a `report` of another latent size (`Shape`).
pub fn traversal_plot(
    vae: &Vae<f32>,
    x: ArrayView1<f32>,
    report: &UnitReport,
    values: &[f64],
    inactive_shown: usize,
    title: &str,
) -> Result<(plotly::Plot, Vec<usize>)> {
    if report.latent_dim != vae.config.latent_dim {
        return Err(Error::shape("report latent units", vae.config.latent_dim, report.latent_dim));
    }
    let (mut units, inactive) = report.split_active();
    units.extend(inactive.into_iter().take(inactive_shown));
    let images = traversal_grid(vae, x, &units, values)?;
    let shape = crate::plot::report::image_shape(vae.config.data_dim);
    Ok((crate::plot::report::image_grid(images.view(), shape, values.len(), title), units))
}

/// How much the decoded image moves when one unit alone is swept, per unit: the mean absolute
/// change of a pixel from the reconstruction at the base code.
///
/// ```text
/// Δ_u = (1/(N·T·D)) Σ_n Σ_j Σ_d | x̂_d(μ(x_n) with z_u ← t_j) − x̂_d(μ(x_n)) |
/// ```
/// x̂ is the decoder's mean; N base points (the rows of `x`), T values t_j. Δ_u = 0 exactly when
/// the decoder ignores z_u; an active unit moves the image. This makes "active units change the
/// image, inactive ones do not" a number rather than a picture.
///
/// # Shapes
/// `x`: N × D. Returns Z values.
///
/// # Errors
/// `values` empty or not finite; `x` empty, not N × D or not finite; a conditional model.
pub fn traversal_change(vae: &Vae<f32>, x: ArrayView2<f32>, values: &[f64]) -> Result<Vec<f64>> {
    crate::engine::eval::check_input(vae, "x", x, None)?;
    check_values(values)?;
    let (mean, _) = vae.encode(x, None); // N × Z
    let base = vae.decode_mean(mean.view(), None); // N × D
    let (n, t, zd) = (x.nrows(), values.len(), vae.config.latent_dim);
    let mut z = Array2::<f32>::zeros((n * t, zd));
    let mut change = vec![0.0; zd];
    for (u, c) in change.iter_mut().enumerate() {
        for i in 0..n {
            for (j, &v) in values.iter().enumerate() {
                let mut row = z.row_mut(i * t + j);
                row.assign(&mean.row(i));
                row[u] = v as f32;
            }
        }
        let out = vae.decode_mean(z.view(), None); // (N·T) × D
        let mut total = 0.0f64;
        for (r, row) in out.rows().into_iter().enumerate() {
            let b = base.row(r / t);
            total += row.iter().zip(b).map(|(&a, &b)| f64::from((a - b).abs())).sum::<f64>();
        }
        *c = total / (n * t * vae.config.data_dim) as f64;
    }
    Ok(change)
}

/// Pearson correlation of each unit's posterior mean with each generative factor over the data.
///
/// ```text
/// ρ_uf = Cov_n(μ_u(x_n), f_n) / √(Var_n μ_u · Var_n f)
/// ```
/// Set to 0 where either variance is 0 (the correlation is undefined; such a unit carries
/// nothing linear about any factor). |ρ| near 1: the unit encodes that factor almost linearly;
/// a factor encoded non-linearly, or spread over two units, shows smaller |ρ| on each.
///
/// # Shapes
/// `mean`: N × Z; `factors`: N × F. Returns Z × F.
///
/// # Errors
/// Fewer than 2 rows; row counts that differ; non-finite values.
///
/// ```
/// use vaelab::lessons::representation::factor_correlation;
/// use vaelab::ndarray::array;
/// let mean = array![[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]];
/// let factors = array![[10.0], [8.0], [6.0]];
/// let rho = factor_correlation(mean.view(), factors.view()).unwrap();
/// assert!((rho[[0, 0]] + 1.0).abs() < 1e-12); // z0 = 5 − f/2: perfectly anti-correlated
/// assert_eq!(rho[[1, 0]], 0.0); // z1 is constant
/// ```
pub fn factor_correlation(mean: ArrayView2<f64>, factors: ArrayView2<f64>) -> Result<Array2<f64>> {
    if mean.nrows() < 2 {
        return Err(Error::invalid("mean rows", mean.nrows(), "a correlation needs ≥ 2 data points"));
    }
    if factors.nrows() != mean.nrows() {
        return Err(Error::shape("factor rows", mean.nrows(), factors.nrows()));
    }
    for (name, a) in [("mean", &mean), ("factors", &factors)] {
        if let Some(i) = a.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                name: name.into(),
                index: i,
                value: a.iter().nth(i).copied().unwrap_or(f64::NAN),
            });
        }
    }
    let n = mean.nrows() as f64;
    let cm = &mean - &mean.mean_axis(Axis(0)).expect("rows ≥ 2"); // N × Z − Z
    let cf = &factors - &factors.mean_axis(Axis(0)).expect("rows ≥ 2"); // N × F − F
    let cov = cm.t().dot(&cf) / n; // Z × F
    let sm = cm.mapv(|v| v * v).sum_axis(Axis(0)) / n;
    let sf = cf.mapv(|v| v * v).sum_axis(Axis(0)) / n;
    Ok(Array2::from_shape_fn(cov.dim(), |(u, f)| {
        let d = (sm[u] * sf[f]).sqrt();
        if d > 0.0 { cov[(u, f)] / d } else { 0.0 }
    }))
}

/// The latent-size sweep on blob images: data, model, training and measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentSweepConfig {
    /// The latent sizes Z, one model each.
    pub latent_dims: Vec<usize>,
    /// The images ([`blobs`]); their factors are known.
    pub blobs: BlobConfig,
    /// Training images (drawn once, shared by every Z).
    pub n_train: usize,
    /// Fresh test images on which every model is measured.
    pub n_test: usize,
    /// H, the width of the encoder trunk and of the decoder.
    pub hidden: usize,
    /// Epochs per model.
    pub epochs: usize,
    /// B.
    pub batch_size: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// How each model is measured on the test images.
    pub measure: UnitMeasureConfig,
    /// Seeds the data (training set from `seed`, test set from `seed + 1`: [`seeds::LESSON_DATA`], [`seeds::LESSON_TEST_DATA`]) and every model's
    /// initialisation and training (the same for every Z, so the models differ only in Z).
    pub seed: u64,
}

impl LatentSweepConfig {
    /// A sweep small enough for a notebook cell per model: 16×16 blobs whose centre (x, y) and
    /// width s ∈ [1, 2] vary (k = 3 factors), 2,000 training and 500 test images, a 256-64-Z
    /// encoder and Z-64-256 decoder with tanh, Bernoulli cross-entropy on the grey levels,
    /// `epochs` epochs of Adam 3e-3 at B = 50.
    pub fn small(latent_dims: Vec<usize>, epochs: usize, seed: u64) -> Self {
        LatentSweepConfig {
            latent_dims,
            blobs: BlobConfig { third: ThirdFactor::Width { min: 1.0, max: 2.0 }, ..BlobConfig::default() },
            n_train: 2000,
            n_test: 500,
            hidden: 64,
            epochs,
            batch_size: 50,
            lr: 3e-3,
            measure: UnitMeasureConfig::default(),
            seed,
        }
    }

    /// k, the number of factors that made the images (2, or 3 with a third factor).
    pub fn factors(&self) -> usize {
        match self.blobs.third {
            ThirdFactor::None => 2,
            _ => 3,
        }
    }

    /// The model for latent size `latent_dim`: D = side², one hidden layer of width H, tanh,
    /// Bernoulli decoder (cross-entropy on grey levels in [0, 1], no binarisation).
    pub fn vae_config(&self, latent_dim: usize) -> VaeConfig {
        let d = self.blobs.side * self.blobs.side;
        VaeConfig { activation: Activation::Tanh, ..VaeConfig::bernoulli(d, vec![self.hidden], latent_dim) }
    }

    /// The training configuration (β = 1: the plain ELBO, the text's objective).
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig::adam(self.epochs, self.batch_size, self.lr, self.seed)
    }

    /// The training images (seed `seed`).
    ///
    /// # Errors
    /// A bad blob configuration or `n_train` of 0.
    pub fn train_set(&self) -> Result<BlobImages> {
        blobs(self.n_train, &self.blobs, &mut seeds::LESSON_DATA.rng(self.seed))
    }

    /// The test images (stream [`seeds::LESSON_TEST_DATA`] of `seed`).
    ///
    /// # Errors
    /// A bad blob configuration or `n_test` of 0.
    pub fn test_set(&self) -> Result<BlobImages> {
        blobs(self.n_test, &self.blobs, &mut seeds::LESSON_TEST_DATA.rng(self.seed))
    }

    /// Checks every field.
    ///
    /// # Errors
    /// `InvalidParameter` or `Empty` naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.latent_dims.is_empty() {
            return Err(Error::empty("latent_dims", "latent size"));
        }
        for (i, &z) in self.latent_dims.iter().enumerate() {
            if z == 0 {
                return Err(Error::invalid(format!("latent_dims[{i}]"), z, "must be ≥ 1"));
            }
        }
        for (name, v) in [("n_train", self.n_train), ("n_test", self.n_test)] {
            if v < 2 {
                return Err(Error::invalid(name, v, "must be ≥ 2 (a standard error needs two points)"));
            }
        }
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", 0, "must be ≥ 1"));
        }
        // Draws one image to check the blob settings.
        blobs(1, &self.blobs, &mut ChaCha8Rng::seed_from_u64(0))?;
        self.measure.validate()?;
        self.vae_config(1).validate()?;
        self.train_config().validate()
    }
}

/// One latent size of the sweep, measured on the test images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentPoint {
    /// Z.
    pub latent_dim: usize,
    /// The model unit by unit ([`unit_report`]).
    pub report: UnitReport,
    /// ρ_uf, Z rows of F values ([`factor_correlation`] of μ(x) with the true factors).
    pub factor_correlation: Vec<Vec<f64>>,
    /// The last epoch's training metrics.
    pub last_epoch: EpochMetrics,
}

/// The sweep's result: one [`LatentPoint`] per Z.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatentSweep {
    /// The experiment.
    pub config: LatentSweepConfig,
    /// Names of the k factors (`x`, `y`, then `width` or `intensity`).
    pub factor_names: Vec<String>,
    /// One point per Z, in the order of `config.latent_dims`.
    pub points: Vec<LatentPoint>,
}

/// One blob model being trained, so that a notebook can spread its epochs over several cells:
/// [`BlobTraining::new`], [`BlobTraining::train_epochs`] as often as needed, then
/// [`BlobTraining::finish`]. [`train_blob_model`] is these three calls in a row.
#[derive(Debug)]
pub struct BlobTraining {
    /// The configuration of the sweep.
    pub config: LatentSweepConfig,
    /// The model, its optimiser and generator.
    pub trainer: Trainer,
    /// The training images.
    pub train: BlobImages,
    /// Metrics of every epoch so far.
    pub history: Vec<EpochMetrics>,
    /// The trained-model store's stages so far, one per [`BlobTraining::train_epochs`] call.
    pub stages: Vec<Stage>,
}

impl BlobTraining {
    /// A fresh model of latent size `latent_dim` and the sweep's training images.
    ///
    /// # Errors
    /// A bad configuration or `latent_dim` of 0.
    pub fn new(config: &LatentSweepConfig, latent_dim: usize) -> Result<Self> {
        config.validate()?;
        if latent_dim == 0 {
            return Err(Error::invalid("latent_dim", 0, "must be ≥ 1"));
        }
        Ok(BlobTraining {
            config: config.clone(),
            trainer: Trainer::new(config.vae_config(latent_dim), config.train_config())?,
            train: config.train_set()?,
            history: Vec::new(),
            stages: Vec::new(),
        })
    }

    /// Trains up to `epochs` more epochs, never beyond `config.epochs`, calling `progress` after
    /// each; returns the last epoch's metrics. Goes through the trained-model store
    /// ([`ModelStore::from_env`]): a stage trained before by the same engine is loaded, bit for bit
    /// what training would give, and its stored metrics replayed; [`BlobTraining::store_line`]
    /// says which.
    ///
    /// # Errors
    /// `Diverged` from training; `InvalidParameter` if no epoch is left to train.
    pub fn train_epochs(
        &mut self,
        epochs: usize,
        progress: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<EpochMetrics> {
        let left = self.config.epochs - self.trainer.epoch.min(self.config.epochs);
        if epochs == 0 || left == 0 {
            return Err(Error::invalid(
                "epochs",
                epochs,
                format!("must be ≥ 1, with {left} epochs left to train"),
            ));
        }
        let set = TrainSet { x: self.train.images.view(), labels: None, binarize: false };
        let stage =
            ModelStore::from_env().train_epochs(&mut self.trainer, &set, epochs.min(left), progress)?;
        self.history.extend(stage.metrics.iter().cloned());
        self.stages.push(stage);
        Ok(self.history.last().expect("trained ≥ 1 epoch").clone())
    }

    /// The last stage's one line ("loaded from the store: …" or "trained …, stored: …"); empty
    /// before the first [`BlobTraining::train_epochs`].
    pub fn store_line(&self) -> String {
        self.stages.last().map(|s| s.to_string()).unwrap_or_default()
    }

    /// Trains any epochs left, then measures the model on the sweep's test images: the
    /// [`unit_report`] and the [`factor_correlation`] of μ(x) with the true factors.
    ///
    /// # Errors
    /// As [`BlobTraining::train_epochs`]; the measurement's errors.
    pub fn finish(mut self) -> Result<(Vae<f32>, LatentPoint)> {
        if self.trainer.epoch < self.config.epochs {
            self.train_epochs(self.config.epochs, &mut |_| {})?;
        }
        let test = self.config.test_set()?;
        let last_epoch = self.history.last().expect("epochs ≥ 1").clone();
        let vae = self.trainer.vae;
        let report = unit_report(&vae, test.images.view(), &self.config.measure)?;
        let (mean, _) = vae.encode(test.images.view(), None);
        let rho = factor_correlation(mean.mapv(f64::from).view(), test.factors.view())?;
        let factor_correlation = rho.rows().into_iter().map(|r| r.to_vec()).collect();
        Ok((vae, LatentPoint { latent_dim: report.latent_dim, report, factor_correlation, last_epoch }))
    }
}

/// Trains one model of latent size `latent_dim` on the sweep's blob images and measures it on the
/// test images ([`BlobTraining`] start to finish). Returns the model too (for traversals).
///
/// ```text
/// maximise (1/N) Σ_n [ E_q log p(x_n|z) − KL(q(z|x_n) ‖ N(0, I)) ]     (the text's mini-batch objective, β = 1)
/// ```
///
/// `progress` is called after every epoch (a `dyn` closure, so a notebook cell compiles no copy of
/// the training loop).
///
/// # Errors
/// A bad configuration or `latent_dim` of 0; `Diverged` from training.
pub fn train_blob_model(
    config: &LatentSweepConfig,
    latent_dim: usize,
    progress: &mut dyn FnMut(&EpochMetrics),
) -> Result<(Vae<f32>, LatentPoint)> {
    let mut training = BlobTraining::new(config, latent_dim)?;
    training.train_epochs(config.epochs, progress)?;
    training.finish()
}

/// Trains one model per latent size of `config.latent_dims` on the same blob images, from the same
/// seed, and measures each on the same test images ([`train_blob_model`]).
///
/// `progress(Z, metrics)` is called after every epoch of every model.
///
/// # Errors
/// As [`train_blob_model`].
pub fn latent_sweep(
    config: &LatentSweepConfig,
    progress: &mut dyn FnMut(usize, &EpochMetrics),
) -> Result<LatentSweep> {
    config.validate()?;
    let mut points = Vec::with_capacity(config.latent_dims.len());
    for &z in &config.latent_dims {
        points.push(train_blob_model(config, z, &mut |m| progress(z, m))?.1);
    }
    Ok(LatentSweep::new(config.clone(), points))
}

impl LatentSweep {
    /// Assembles a sweep from points trained separately (e.g. one notebook cell per Z); the factor
    /// names come from `config.blobs`.
    pub fn new(config: LatentSweepConfig, points: Vec<LatentPoint>) -> Self {
        let mut factor_names = vec!["x".to_string(), "y".to_string()];
        match config.blobs.third {
            ThirdFactor::None => {}
            ThirdFactor::Width { .. } => factor_names.push("width".into()),
            ThirdFactor::Intensity { .. } => factor_names.push("intensity".into()),
        }
        LatentSweep { config, factor_names, points }
    }

    /// One line per Z: active units, test ELBO ± SE, rate, distortion, and the per-unit KLs
    /// largest first.
    pub fn table(&self) -> String {
        let mut out = format!(
            "k = {} factors ({})\n  Z   active   test ELBO (nats)    rate    distortion   KL per unit, largest first (nats)\n",
            self.config.factors(),
            self.factor_names.join(", ")
        );
        for p in &self.points {
            let r = &p.report;
            let kl: Vec<String> = r.kl_sorted().iter().map(|v| format!("{v:.3}")).collect();
            out += &format!(
                "{:3}   {:6}   {:8.3} ± {:.3}   {:6.3}   {:10.3}   [{}]\n",
                p.latent_dim,
                r.active.count,
                r.elbo.mean,
                r.elbo.stderr,
                r.rate.mean,
                r.distortion.mean,
                kl.join(", ")
            );
        }
        out
    }

    /// Per Z, each active unit's largest |ρ| with a factor and which factor, in order of decreasing
    /// KL.
    pub fn factor_table(&self) -> String {
        let mut out = String::from("  Z   active unit → factor of largest |ρ| (|ρ|)\n");
        for p in &self.points {
            let (active, _) = p.report.split_active();
            let cells: Vec<String> = active
                .iter()
                .map(|&u| {
                    let row = &p.factor_correlation[u];
                    let (f, r) = row
                        .iter()
                        .enumerate()
                        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                        .map(|(f, r)| (f, r.abs()))
                        .unwrap_or((0, 0.0));
                    format!("z{u} → {} ({r:.2})", self.factor_names.get(f).map_or("?", |s| s.as_str()))
                })
                .collect();
            out += &format!("{:3}   {}\n", p.latent_dim, cells.join(",  "));
        }
        out
    }

    /// Per-unit KL bars for every Z, units ranked by KL (rank 1 = largest), one colour per Z.
    pub fn kl_bars_plot(&self) -> plotly::Plot {
        let mut fig =
            crate::plot::Figure::new("KL per latent unit, largest first, one model per Z (test images)")
                .axes("unit rank by KL", "KL_u (nats)");
        for p in &self.points {
            let labels: Vec<String> = (1..=p.latent_dim).map(|r| format!("#{r}")).collect();
            fig = fig.bars(&format!("Z = {}", p.latent_dim), &labels, &p.report.kl_sorted());
        }
        fig.plot()
    }

    /// Active units against Z, with the known number of factors k and the line "every unit".
    pub fn active_units_plot(&self) -> plotly::Plot {
        let z: Vec<f64> = self.points.iter().map(|p| p.latent_dim as f64).collect();
        let active: Vec<f64> = self.points.iter().map(|p| p.report.active.count as f64).collect();
        let (lo, hi) = (
            z.iter().copied().fold(f64::INFINITY, f64::min),
            z.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        let k = self.config.factors() as f64;
        crate::plot::Figure::new(&format!(
            "active units (A_u > {}) against the latent size Z",
            self.config.measure.threshold
        ))
        .axes("Z, latent units", "active units")
        .points("trained models", &z, &active)
        .dashed(&format!("k = {k} known factors"), &[lo, hi], &[k, k])
        .dashed("every unit active", &[lo, hi], &[lo, hi])
        .plot()
    }
}

#[cfg(test)]
mod tests;
