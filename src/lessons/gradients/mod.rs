//! Gradients of an expectation: ∇_φ E_{z∼q_φ}[f(z)], the step between the ELBO of §2–§3 and the
//! training objective of §5, which the text writes but never differentiates.
//!
//! ```text
//! score function (REINFORCE)    ∇_φ E_q[f(z)] = E_q[(f(z) − b) ∇_φ log q_φ(z)]      any constant b
//! reparameterisation            z = μ + σ ε, ε ∼ N(0, 1):  ∇_φ E_q[f(z)] = E_ε[f'(z) ∂z/∂φ]
//! ```
//! The first needs only log q and values of f, so it works for discrete z; the second needs f' and
//! a z that moves smoothly with φ. Both are unbiased; their variances differ by orders of
//! magnitude, and the score function's grows with the dimension (Williams 1992; Glynn 1990;
//! Kingma & Welling 2014, §2.4; Mohamed, Rosca, Figurnov & Mnih 2020, "Monte Carlo Gradient
//! Estimation in Machine Learning", §4–5).
//!
//! | item | what |
//! |---|---|
//! | [`TestFunction`] | f(z) = z² or e^{az}: E and ∇E under N(μ, σ²) in closed form |
//! | [`score_function_draws`], [`reparameterisation_draws`] | one gradient estimate per draw, for F(z) = Σⱼ f(zⱼ) |
//! | [`score_mean_variance_square`] | the score function's variance for ∂/∂μ₁, f = z², in closed form |
//! | [`variance_by_dimension`], [`variance_by_sample_count`] | the measurements of the lesson and of `vaelab experiment gradients` |
//! | [`exact_elbo_grad_diag`], [`score_elbo_draws`], [`reparameterisation_elbo_draws`] | the ELBO of the linear-Gaussian toy |
//! | [`bernoulli_elbo_enumerated`], [`score_bernoulli_draws`] | the binary toy: exact gradient over every state, and the score function |
//!
//! Notebook: `03a-gradients-of-an-expectation.ipynb`.
//!
//! # Shapes
//! Z latent dimensions; N draws. `eps` is N × Z; a [`GradDraws`] holds N × Z per parameter, row n the
//! single-draw estimate from εₙ.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng;
use rand_distr::StandardNormal;
use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::base::prob::{LN_2PI, sigmoid};
use crate::base::stats::Estimate;
use crate::lessons::bounds::elbo_grad_diag;
use crate::lessons::toy::{BinaryLatent, ContinuousLatent, Encoding, LatentModel, LinearGaussian};

#[cfg(test)]
mod tests;

/// A function of one coordinate whose expectation under N(μ, σ²) and its gradient are known in
/// closed form. F(z) = Σⱼ f(zⱼ) over the Z coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum TestFunction {
    /// f(z) = z²: E = μ² + σ², ∂E/∂μ = 2μ, ∂E/∂σ = 2σ.
    Square,
    /// f(z) = e^{a z}: E = exp(aμ + a²σ²/2) (the log-normal mean), ∂E/∂μ = a E, ∂E/∂σ = a²σ E.
    Exp {
        /// The rate a.
        a: f64,
    },
}

impl TestFunction {
    /// f(z).
    pub fn value(&self, z: f64) -> f64 {
        match self {
            TestFunction::Square => z * z,
            TestFunction::Exp { a } => (a * z).exp(),
        }
    }

    /// f'(z): 2z, or a e^{az}.
    pub fn derivative(&self, z: f64) -> f64 {
        match self {
            TestFunction::Square => 2.0 * z,
            TestFunction::Exp { a } => a * (a * z).exp(),
        }
    }

    /// E_{z∼N(μ, σ²)}[f(z)] in closed form (see the variants).
    pub fn expectation(&self, mu: f64, sigma: f64) -> f64 {
        match self {
            TestFunction::Square => mu * mu + sigma * sigma,
            TestFunction::Exp { a } => (a * mu + 0.5 * a * a * sigma * sigma).exp(),
        }
    }

    /// (∂/∂μ, ∂/∂σ) of E_{N(μ, σ²)}[f(z)] in closed form (see the variants).
    pub fn expectation_grad(&self, mu: f64, sigma: f64) -> (f64, f64) {
        match self {
            TestFunction::Square => (2.0 * mu, 2.0 * sigma),
            TestFunction::Exp { a } => {
                let e = self.expectation(mu, sigma);
                (a * e, a * a * sigma * e)
            }
        }
    }

    /// E_{N(μ, σ²)}[f(z)] by adaptive Gauss–Kronrod quadrature of N(z; μ, σ²) f(z) over μ ± 14σ
    /// (relative tolerance 1e-13): the route the closed forms are checked against.
    ///
    /// # Errors
    /// σ not positive and finite, μ not finite; quadrature failures.
    pub fn expectation_by_quadrature(&self, mu: f64, sigma: f64) -> Result<f64> {
        check_gaussian(ArrayView1::from(&[mu]), ArrayView1::from(&[sigma]))?;
        let f = *self;
        let density = move |z: f64| (-0.5 * ((z - mu) / sigma).powi(2) - 0.5 * LN_2PI).exp() / sigma;
        let q = crate::base::quadrature::integrate(
            |t| t.mapv(|z| density(z) * f.value(z)),
            &[mu - 14.0 * sigma, mu, mu + 14.0 * sigma],
            1e-13,
            0.0,
        )?;
        Ok(q.value)
    }
}

/// Single-draw gradient estimates: row n is the estimate from draw n alone, so the mean over rows
/// is the N-draw estimate and the rows' spread is the estimator's variance.
///
/// # Shapes
/// `d_mean`, `d_scale`: N × Z. `d_scale` is ∂/∂σ for the [`TestFunction`]s and ∂/∂log σ² for the
/// ELBO (the parameter the crate's encoders use).
#[derive(Debug, Clone, PartialEq)]
pub struct GradDraws {
    /// Estimates of ∂/∂μⱼ.
    pub d_mean: Array2<f64>,
    /// Estimates of ∂/∂σⱼ or ∂/∂log σⱼ².
    pub d_scale: Array2<f64>,
}

impl GradDraws {
    /// The N-draw estimate of ∂/∂μⱼ: mean ± SE over the rows.
    ///
    /// # Errors
    /// j out of range; fewer than two draws.
    pub fn mean_grad(&self, j: usize) -> Result<Estimate> {
        Estimate::from_values(column(&self.d_mean, j)?)
    }

    /// The N-draw estimate of the scale gradient of coordinate j.
    ///
    /// # Errors
    /// j out of range; fewer than two draws.
    pub fn scale_grad(&self, j: usize) -> Result<Estimate> {
        Estimate::from_values(column(&self.d_scale, j)?)
    }
}

fn column(a: &Array2<f64>, j: usize) -> Result<ArrayView1<'_, f64>> {
    if j >= a.ncols() {
        return Err(Error::invalid("coordinate", j, format!("must be below Z = {}", a.ncols())));
    }
    Ok(a.column(j))
}

/// Checks a diagonal Gaussian's parameters: equal lengths ≥ 1, μ finite, σ positive and finite.
///
/// # Errors
/// `Shape`, `InvalidParameter` naming the entry.
pub fn check_gaussian(mean: ArrayView1<f64>, sigma: ArrayView1<f64>) -> Result<()> {
    if mean.is_empty() {
        return Err(Error::empty("mean", "coordinate"));
    }
    if sigma.len() != mean.len() {
        return Err(Error::shape("sigma", format!("length {} (as mean)", mean.len()), sigma.len()));
    }
    if let Some(j) = mean.iter().position(|m| !m.is_finite()) {
        return Err(Error::invalid(format!("mean[{j}]"), mean[j], "must be finite"));
    }
    if let Some(j) = sigma.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(Error::invalid(format!("sigma[{j}]"), sigma[j], "must be positive and finite"));
    }
    Ok(())
}

fn check_eps(eps: ArrayView2<f64>, z: usize) -> Result<()> {
    if eps.ncols() != z {
        return Err(Error::shape("eps", format!("N × {z}"), format!("{:?}", eps.shape())));
    }
    Ok(())
}

/// Score-function (REINFORCE) estimates of ∇ E_q[F(z)], F(z) = Σⱼ f(zⱼ), q = Πⱼ N(μⱼ, σⱼ²),
/// one per draw zₙ = μ + σ ⊙ εₙ:
///
/// ```text
/// ∇_φ E_q[F] = ∫ F ∇_φ q = E_q[F(z) ∇_φ log q(z)] = E_q[(F(z) − b) ∇_φ log q(z)]   (E_q[∇_φ log q] = 0)
/// ∂ log q/∂μⱼ = (zⱼ − μⱼ)/σⱼ² = εⱼ/σⱼ
/// ∂ log q/∂σⱼ = (zⱼ − μⱼ)²/σⱼ³ − 1/σⱼ = (εⱼ² − 1)/σⱼ
/// ```
/// (Williams 1992, eq. 9; Mohamed et al. 2020, eq. 13.) `baseline` is b; any b that does not
/// depend on the draw keeps the estimate unbiased.
///
/// # Shapes
/// `mean`, `sigma`: Z; `eps`: N × Z. Returns N × Z twice (∂/∂μ, ∂/∂σ).
///
/// # Errors
/// Bad Gaussian parameters ([`check_gaussian`]); `eps` without Z columns; a non-finite baseline.
pub fn score_function_draws(
    f: TestFunction,
    mean: ArrayView1<f64>,
    sigma: ArrayView1<f64>,
    eps: ArrayView2<f64>,
    baseline: f64,
) -> Result<GradDraws> {
    check_gaussian(mean, sigma)?;
    check_eps(eps, mean.len())?;
    crate::base::error::ensure_finite("baseline", [baseline].iter())?;
    let z = &eps * &sigma + mean; // N × Z
    let centred = z.map_axis(Axis(1), |row| row.iter().map(|&v| f.value(v)).sum::<f64>()) - baseline; // N
    let centred = centred.insert_axis(Axis(1)); // N × 1
    let d_mean = &(&eps / &sigma) * &centred;
    let d_scale = &(eps.mapv(|e| e * e - 1.0) / sigma) * &centred;
    Ok(GradDraws { d_mean, d_scale })
}

/// Reparameterisation (pathwise) estimates of ∇ E_q[F(z)], one per draw:
///
/// ```text
/// E_q[F(z)] = E_ε[F(μ + σ ⊙ ε)]   ⇒   ∂/∂μⱼ = E_ε[f'(zⱼ)],   ∂/∂σⱼ = E_ε[f'(zⱼ) εⱼ]
/// ```
/// (Kingma & Welling 2014, §2.4; Mohamed et al. 2020, eq. 36.) Only coordinate j's term of F
/// depends on μⱼ and σⱼ, so the other Z − 1 terms add no noise.
///
/// # Shapes
/// `mean`, `sigma`: Z; `eps`: N × Z. Returns N × Z twice (∂/∂μ, ∂/∂σ).
///
/// # Errors
/// Bad Gaussian parameters; `eps` without Z columns.
pub fn reparameterisation_draws(
    f: TestFunction,
    mean: ArrayView1<f64>,
    sigma: ArrayView1<f64>,
    eps: ArrayView2<f64>,
) -> Result<GradDraws> {
    check_gaussian(mean, sigma)?;
    check_eps(eps, mean.len())?;
    let d_mean = (&eps * &sigma + mean).mapv(|z| f.derivative(z)); // N × Z: f'(zₙⱼ)
    let d_scale = &d_mean * &eps;
    Ok(GradDraws { d_mean, d_scale })
}

/// E_q[F(z)] = Σⱼ E f(zⱼ), in closed form: the best constant baseline's usual stand-in ("the mean
/// of f").
///
/// # Errors
/// Bad Gaussian parameters.
pub fn sum_expectation(f: TestFunction, mean: ArrayView1<f64>, sigma: ArrayView1<f64>) -> Result<f64> {
    check_gaussian(mean, sigma)?;
    Ok(mean.iter().zip(sigma).map(|(&m, &s)| f.expectation(m, s)).sum())
}

/// The variance of one score-function draw of ∂/∂μ₁ (coordinate 0) for F(z) = Σⱼ zⱼ², in closed
/// form. With A = Σ_{j≥1} zⱼ² (independent of ε₀), B = z₀², c = E F − b:
///
/// ```text
/// g = (F − b) ε₀/σ₀,    E g = 2μ₀
/// E[(F − b)² ε₀²] = Var A + E[(B − E B)² ε₀²] + c² + 2c E[(B − E B) ε₀²]
///   Var A = Σ_{j≥1} (2σⱼ⁴ + 4μⱼ²σⱼ²)                         (non-central χ²)
///   E[(B − E B) ε₀²] = 2σ₀²
///   E[(B − E B)² ε₀²] = μ₀⁴ + 18μ₀²σ₀² + 15σ₀⁴ − 2(μ₀² + σ₀²)(μ₀² + 3σ₀²) + (μ₀² + σ₀²)²
/// Var g = E[(F − b)² ε₀²]/σ₀² − 4μ₀²
/// ```
/// (Gaussian moments E ε² = 1, E ε⁴ = 3, E ε⁶ = 15.) With b = 0 the c² term holds (E F)², which
/// grows as Z²; with b = E F it vanishes and Var A, growing as Z, remains. The reparameterisation
/// draw 2z₀ has variance 4σ₀² whatever Z.
///
/// # Shapes
/// `mean`, `sigma`: Z.
///
/// # Errors
/// Bad Gaussian parameters; a non-finite baseline.
pub fn score_mean_variance_square(
    mean: ArrayView1<f64>,
    sigma: ArrayView1<f64>,
    baseline: f64,
) -> Result<f64> {
    check_gaussian(mean, sigma)?;
    crate::base::error::ensure_finite("baseline", [baseline].iter())?;
    let (m, s) = (mean[0], sigma[0]);
    let var_a: f64 =
        mean.iter().zip(sigma).skip(1).map(|(&mj, &sj)| 2.0 * sj.powi(4) + 4.0 * (mj * sj).powi(2)).sum();
    let e_b = m * m + s * s;
    let e_b_eps2 = m * m + 3.0 * s * s;
    let e_b2_eps2 = m.powi(4) + 18.0 * (m * s).powi(2) + 15.0 * s.powi(4);
    let centred_b2_eps2 = e_b2_eps2 - 2.0 * e_b * e_b_eps2 + e_b * e_b;
    let c = sum_expectation(TestFunction::Square, mean, sigma)? - baseline;
    let second = var_a + centred_b2_eps2 + c * c + 2.0 * c * 2.0 * s * s;
    Ok(second / (s * s) - 4.0 * m * m)
}

/// The sample variance of `values` with its standard error: s² = Σ (vᵢ − v̄)²/(n − 1), and
/// SE(s²) ≈ sd((vᵢ − v̄)²)·√n/(n − 1) (the delta method, ignoring the O(1/n) effect of v̄).
///
/// # Errors
/// Fewer than two values.
pub fn variance_estimate(values: ArrayView1<f64>) -> Result<Estimate> {
    let n = values.len();
    let mean = Estimate::from_values(values)?.mean;
    let squares = values.mapv(|v| (v - mean) * (v - mean));
    let e = Estimate::from_values(squares.view())?;
    let scale = n as f64 / (n - 1) as f64;
    Ok(Estimate { mean: e.mean * scale, stderr: e.stderr * scale, samples: n })
}

/// The setting of [`variance_by_dimension`] and [`variance_by_sample_count`]: F(z) = Σⱼ zⱼ² under
/// q = N(μ 1, σ² I).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradientConfig {
    /// The dimensions Z compared.
    pub dims: Vec<usize>,
    /// Draws per dimension for the single-draw variances.
    pub draws: usize,
    /// μ of every coordinate.
    pub mean: f64,
    /// σ of every coordinate.
    pub sigma: f64,
    /// Draws N averaged per gradient in [`variance_by_sample_count`].
    pub sample_counts: Vec<usize>,
    /// Independent N-draw averages per N.
    pub repeats: usize,
    /// Z for [`variance_by_sample_count`].
    pub count_dim: usize,
}

impl Default for GradientConfig {
    /// Z ∈ {1, 2, 4, 8, 16, 32}, 20 000 draws, μ = 0.5, σ = 0.8; N ∈ {1, 4, 16, 64, 256} with 2000
    /// repeats at Z = 4.
    fn default() -> Self {
        GradientConfig {
            dims: vec![1, 2, 4, 8, 16, 32],
            draws: 20_000,
            mean: 0.5,
            sigma: 0.8,
            sample_counts: vec![1, 4, 16, 64, 256],
            repeats: 2000,
            count_dim: 4,
        }
    }
}

/// The most random numbers one [`run_experiment`] may draw (seconds of work).
pub const MAX_NUMBERS: u128 = 100_000_000;

impl GradientConfig {
    /// Checks the sizes and parameters.
    ///
    /// # Errors
    /// An empty or zero dimension or sample count, fewer than two draws or repeats, σ ≤ 0, a
    /// non-finite μ, or more than 10⁸ numbers to draw: `InvalidParameter` naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.dims.is_empty() {
            return Err(Error::empty("dims", "dimension"));
        }
        if let Some(i) = self.dims.iter().position(|&d| d == 0 || d > 10_000) {
            return Err(Error::invalid(format!("dims[{i}]"), self.dims[i], "must be in 1..=10000"));
        }
        if self.sample_counts.is_empty() {
            return Err(Error::empty("sample_counts", "sample count"));
        }
        if let Some(i) = self.sample_counts.iter().position(|&n| n == 0) {
            return Err(Error::invalid(format!("sample_counts[{i}]"), 0, "must be at least 1"));
        }
        if self.draws < 2 {
            return Err(Error::invalid("draws", self.draws, "must be at least 2"));
        }
        if self.repeats < 2 {
            return Err(Error::invalid("repeats", self.repeats, "must be at least 2"));
        }
        if self.count_dim == 0 {
            return Err(Error::invalid("count_dim", 0, "must be at least 1"));
        }
        check_gaussian(ArrayView1::from(&[self.mean]), ArrayView1::from(&[self.sigma]))?;
        // In u128, saturating: no user-given size can overflow the count.
        let by_dim = self.dims.iter().fold(0u128, |a, &d| a.saturating_add(d as u128 * self.draws as u128));
        let by_count = self.sample_counts.iter().fold(0u128, |a, &n| {
            a.saturating_add((n as u128 * self.repeats as u128).saturating_mul(self.count_dim as u128))
        });
        let numbers = by_dim.saturating_add(by_count);
        if numbers > MAX_NUMBERS {
            return Err(Error::TooLarge {
                what: "Σ dims × draws + Σ sample_counts × repeats × count_dim".into(),
                needs: format!("{numbers} random numbers ({by_dim} + {by_count})"),
                limit: format!("the {MAX_NUMBERS} one run may draw"),
            });
        }
        Ok(())
    }

    fn gaussian(&self, z: usize) -> (Array1<f64>, Array1<f64>) {
        (Array1::from_elem(z, self.mean), Array1::from_elem(z, self.sigma))
    }
}

/// The three estimators of ∂/∂μ₁ E_q[Σⱼ zⱼ²] at one dimension Z: each one's gradient (N-draw
/// mean ± SE) and single-draw variance (± SE), and the closed forms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DimensionRow {
    /// Z.
    pub dim: usize,
    /// The exact gradient 2μ.
    pub exact_grad: f64,
    /// Score function, b = 0: the gradient.
    pub score_grad: Estimate,
    /// Score function with b = E F: the gradient.
    pub baseline_grad: Estimate,
    /// Reparameterisation: the gradient.
    pub reparam_grad: Estimate,
    /// Single-draw variance, score function, b = 0.
    pub score_var: Estimate,
    /// Single-draw variance, score function, b = E F.
    pub baseline_var: Estimate,
    /// Single-draw variance, reparameterisation.
    pub reparam_var: Estimate,
    /// [`score_mean_variance_square`] with b = 0.
    pub score_var_exact: f64,
    /// [`score_mean_variance_square`] with b = E F.
    pub baseline_var_exact: f64,
    /// 4σ².
    pub reparam_var_exact: f64,
}

/// For each Z of the config: `draws` draws of ε (N × Z), the three estimators of ∂/∂μ₁ on the
/// same draws, their means and variances, and the closed forms.
///
/// # Errors
/// An invalid config ([`GradientConfig::validate`]).
pub fn variance_by_dimension<R: Rng + ?Sized>(
    config: &GradientConfig,
    rng: &mut R,
) -> Result<Vec<DimensionRow>> {
    config.validate()?;
    let f = TestFunction::Square;
    let mut rows = Vec::new();
    for &z in &config.dims {
        let (mean, sigma) = config.gaussian(z);
        let eps = Array2::<f64>::from_shape_simple_fn((config.draws, z), || rng.sample(StandardNormal));
        let b = sum_expectation(f, mean.view(), sigma.view())?;
        let score = score_function_draws(f, mean.view(), sigma.view(), eps.view(), 0.0)?;
        let based = score_function_draws(f, mean.view(), sigma.view(), eps.view(), b)?;
        let reparam = reparameterisation_draws(f, mean.view(), sigma.view(), eps.view())?;
        rows.push(DimensionRow {
            dim: z,
            exact_grad: f.expectation_grad(config.mean, config.sigma).0,
            score_grad: score.mean_grad(0)?,
            baseline_grad: based.mean_grad(0)?,
            reparam_grad: reparam.mean_grad(0)?,
            score_var: variance_estimate(score.d_mean.column(0))?,
            baseline_var: variance_estimate(based.d_mean.column(0))?,
            reparam_var: variance_estimate(reparam.d_mean.column(0))?,
            score_var_exact: score_mean_variance_square(mean.view(), sigma.view(), 0.0)?,
            baseline_var_exact: score_mean_variance_square(mean.view(), sigma.view(), b)?,
            reparam_var_exact: 4.0 * config.sigma * config.sigma,
        });
    }
    Ok(rows)
}

/// The variance of the N-draw average of ∂/∂μ₁ (over `repeats` independent averages) for one N,
/// and the single-draw closed form divided by N.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleCountRow {
    /// N, draws per average.
    pub draws: usize,
    /// Variance of the score-function average (b = 0), ± SE.
    pub score_var: Estimate,
    /// Variance of the reparameterisation average, ± SE.
    pub reparam_var: Estimate,
    /// [`score_mean_variance_square`] / N.
    pub score_var_exact: f64,
    /// 4σ² / N.
    pub reparam_var_exact: f64,
}

/// For each N of the config, `repeats` independent N-draw averages of both estimators at
/// Z = `count_dim`: their variance against the single-draw variance / N (draws are independent).
///
/// # Errors
/// An invalid config.
pub fn variance_by_sample_count<R: Rng + ?Sized>(
    config: &GradientConfig,
    rng: &mut R,
) -> Result<Vec<SampleCountRow>> {
    config.validate()?;
    let f = TestFunction::Square;
    let (mean, sigma) = config.gaussian(config.count_dim);
    let one_score = score_mean_variance_square(mean.view(), sigma.view(), 0.0)?;
    let one_reparam = 4.0 * config.sigma * config.sigma;
    let mut rows = Vec::new();
    for &n in &config.sample_counts {
        let (mut score, mut reparam) =
            (Vec::with_capacity(config.repeats), Vec::with_capacity(config.repeats));
        for _ in 0..config.repeats {
            let eps =
                Array2::<f64>::from_shape_simple_fn((n, config.count_dim), || rng.sample(StandardNormal));
            let s = score_function_draws(f, mean.view(), sigma.view(), eps.view(), 0.0)?;
            let r = reparameterisation_draws(f, mean.view(), sigma.view(), eps.view())?;
            score.push(s.d_mean.column(0).mean().unwrap_or(f64::NAN));
            reparam.push(r.d_mean.column(0).mean().unwrap_or(f64::NAN));
        }
        rows.push(SampleCountRow {
            draws: n,
            score_var: variance_estimate(ArrayView1::from(&score))?,
            reparam_var: variance_estimate(ArrayView1::from(&reparam))?,
            score_var_exact: one_score / n as f64,
            reparam_var_exact: one_reparam / n as f64,
        });
    }
    Ok(rows)
}

/// The table `vaelab experiment gradients` prints: one row per Z.
pub fn dimension_table(rows: &[DimensionRow]) -> String {
    let mut s = format!(
        "{:>4} {:>10} {:>18} {:>18} {:>18} {:>12} {:>12} {:>12}\n",
        "Z",
        "exact",
        "score (b = 0)",
        "score (b = E F)",
        "reparam",
        "Var score",
        "Var b = E F",
        "Var reparam"
    );
    for r in rows {
        s += &format!(
            "{:>4} {:>10.4} {:>9.4} ± {:<6.4} {:>9.4} ± {:<6.4} {:>9.4} ± {:<6.4} {:>12.3} {:>12.3} {:>12.4}\n",
            r.dim,
            r.exact_grad,
            r.score_grad.mean,
            r.score_grad.stderr,
            r.baseline_grad.mean,
            r.baseline_grad.stderr,
            r.reparam_grad.mean,
            r.reparam_grad.stderr,
            r.score_var.mean,
            r.baseline_var.mean,
            r.reparam_var.mean
        );
    }
    s
}

/// The table of [`variance_by_sample_count`].
pub fn sample_count_table(rows: &[SampleCountRow]) -> String {
    let mut s = format!(
        "{:>5} {:>22} {:>12} {:>22} {:>12}\n",
        "N", "Var score mean", "exact / N", "Var reparam mean", "exact / N"
    );
    for r in rows {
        s += &format!(
            "{:>5} {:>12.5} ± {:<7.5} {:>12.5} {:>12.6} ± {:<7.6} {:>12.6}\n",
            r.draws,
            r.score_var.mean,
            r.score_var.stderr,
            r.score_var_exact,
            r.reparam_var.mean,
            r.reparam_var.stderr,
            r.reparam_var_exact
        );
    }
    s
}

/// Single-draw variance against Z (log–log), measured ± 2 SE and the closed forms (dashed).
pub fn dimension_plot(rows: &[DimensionRow]) -> plotly::Plot {
    let x: Vec<f64> = rows.iter().map(|r| r.dim as f64).collect();
    let pick = |g: fn(&DimensionRow) -> Estimate| -> (Vec<f64>, Vec<f64>) {
        rows.iter().map(|r| (g(r).mean, 2.0 * g(r).stderr)).unzip()
    };
    let (s, se) = pick(|r| r.score_var);
    let (b, be) = pick(|r| r.baseline_var);
    let (p, pe) = pick(|r| r.reparam_var);
    crate::plot::Figure::new("Variance of one draw of ∂/∂μ₁ E[Σ zⱼ²] against the dimension")
        .log_x("dimension Z")
        .log_y("variance")
        .markers_with_errors("score function, b = 0", &x, &s, &se)
        .dashed("closed form, b = 0", &x, &rows.iter().map(|r| r.score_var_exact).collect::<Vec<_>>())
        .markers_with_errors("score function, b = E F", &x, &b, &be)
        .dashed("closed form, b = E F", &x, &rows.iter().map(|r| r.baseline_var_exact).collect::<Vec<_>>())
        .markers_with_errors("reparameterisation", &x, &p, &pe)
        .dashed("closed form 4σ²", &x, &rows.iter().map(|r| r.reparam_var_exact).collect::<Vec<_>>())
        .plot()
}

/// Variance of the N-draw average against N (log–log), measured ± 2 SE and single-draw / N.
pub fn sample_count_plot(rows: &[SampleCountRow]) -> plotly::Plot {
    let x: Vec<f64> = rows.iter().map(|r| r.draws as f64).collect();
    let col = |g: fn(&SampleCountRow) -> f64| rows.iter().map(g).collect::<Vec<f64>>();
    crate::plot::Figure::new("Variance of the N-draw gradient estimate against N")
        .log_x("draws N")
        .log_y("variance of the average")
        .markers_with_errors(
            "score function",
            &x,
            &col(|r| r.score_var.mean),
            &col(|r| 2.0 * r.score_var.stderr),
        )
        .dashed("single-draw variance / N", &x, &col(|r| r.score_var_exact))
        .markers_with_errors(
            "reparameterisation",
            &x,
            &col(|r| r.reparam_var.mean),
            &col(|r| 2.0 * r.reparam_var.stderr),
        )
        .dashed("4σ² / N", &x, &col(|r| r.reparam_var_exact))
        .plot()
}

/// Everything `vaelab experiment gradients` writes to `gradients.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GradientsResult {
    /// The configuration.
    pub config: GradientConfig,
    /// [`variance_by_dimension`].
    pub by_dimension: Vec<DimensionRow>,
    /// [`variance_by_sample_count`].
    pub by_sample_count: Vec<SampleCountRow>,
}

/// The lesson's two measurements in one call (what `vaelab experiment gradients` runs): first by
/// dimension, then by sample count, from the same generator.
///
/// # Errors
/// An invalid config.
pub fn run_experiment<R: Rng + ?Sized>(config: &GradientConfig, rng: &mut R) -> Result<GradientsResult> {
    let by_dimension = variance_by_dimension(config, rng)?;
    let by_sample_count = variance_by_sample_count(config, rng)?;
    Ok(GradientsResult { config: config.clone(), by_dimension, by_sample_count })
}

/// The exact ELBO of the linear-Gaussian toy under q = N(μ, diag σ²) and its gradient with
/// respect to (μ, log σ²), in closed form:
///
/// ```text
/// ELBO = −½ D ln 2πs² − (‖r‖² + Σⱼ Cⱼⱼ σⱼ²)/(2s²) − ½ Z ln 2π − ½(‖μ‖² + Σⱼ σⱼ²) + ½ Σⱼ (1 + ln 2π + log σⱼ²)
///   r = x − b − W μ,   C = WᵀW,   s the noise σ of the model
/// ∂ELBO/∂μ      = Wᵀ r / s² − μ
/// ∂ELBO/∂log σⱼ² = −½ σⱼ² (Cⱼⱼ/s² + 1) + ½
/// ```
/// (the closed form of [`LinearGaussian::elbo_gaussian`] with a diagonal covariance,
/// differentiated; at the optimum σⱼ² = 1/(1 + Cⱼⱼ/s²), the diagonal of the posterior precision
/// inverted, Bishop 2006 §10.1.2).
///
/// # Shapes
/// `x`: D; `mean`, `log_var`: Z. Returns (ELBO, d_mean: Z, d_log_var: Z).
///
/// # Errors
/// Wrong lengths; non-finite parameters; a log-variance beyond ±700.
pub fn exact_elbo_grad_diag(
    model: &LinearGaussian,
    x: ArrayView1<f64>,
    mean: ArrayView1<f64>,
    log_var: ArrayView1<f64>,
) -> Result<(f64, Array1<f64>, Array1<f64>)> {
    model.check_x(x)?;
    let q = crate::lessons::bounds::Q::diag_gaussian(mean.to_owned(), log_var.to_owned())?;
    q.check_for(model)?;
    let (w, s2) = (model.w(), model.sigma() * model.sigma());
    let var = log_var.mapv(f64::exp);
    let c_diag = w.map_axis(Axis(0), |col| col.dot(&col)); // Z: Cⱼⱼ = Σ_d W_dj²
    let r = &x - model.b() - w.dot(&mean); // D
    let (d, z) = (x.len() as f64, mean.len() as f64);
    let value = -0.5 * d * (LN_2PI + s2.ln())
        - (r.dot(&r) + c_diag.dot(&var)) / (2.0 * s2)
        - 0.5 * z * LN_2PI
        - 0.5 * (mean.dot(&mean) + var.sum())
        + 0.5 * (z * (1.0 + LN_2PI) + log_var.sum());
    let d_mean = w.t().dot(&r) / s2 - mean;
    let d_log_var = -0.5 * &var * &(c_diag / s2 + 1.0) + 0.5;
    Ok((value, d_mean, d_log_var))
}

/// Score-function estimates of ∇ ELBO = ∇_φ E_q[log p(x, z) − log q_φ(z)], one per draw, for
/// q = N(μ, diag exp(log σ²)):
///
/// ```text
/// ∇_φ E_q[h_φ(z)] = E_q[h_φ(z) ∇_φ log q(z)] + E_q[∇_φ h_φ(z)],   h = log p(x, z) − log q_φ(z)
///                 = E_q[(h(z) − b) ∇_φ log q(z)]          (E_q[∇_φ h] = −E_q[∇_φ log q] = 0)
/// ∂ log q/∂μⱼ = εⱼ/σⱼ,    ∂ log q/∂log σⱼ² = ½(εⱼ² − 1)
/// ```
///
/// # Shapes
/// `x`: D; `mean`, `log_var`: Z; `eps`: N × Z. Returns N × Z twice (∂/∂μ, ∂/∂log σ²).
///
/// # Errors
/// Wrong shapes; non-finite parameters or baseline.
pub fn score_elbo_draws<M: LatentModel + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    mean: ArrayView1<f64>,
    log_var: ArrayView1<f64>,
    eps: ArrayView2<f64>,
    baseline: f64,
) -> Result<GradDraws> {
    model.check_x(x)?;
    let q = crate::lessons::bounds::Q::diag_gaussian(mean.to_owned(), log_var.to_owned())?;
    q.check_for(model)?;
    check_eps(eps, mean.len())?;
    crate::base::error::ensure_finite("baseline", [baseline].iter())?;
    let sigma = log_var.mapv(|v| (0.5 * v).exp());
    let z = q.reparameterize(eps);
    let h = model.log_joint(x, z.view()) - q.log_density(z.view()) - baseline; // N
    let h = h.insert_axis(Axis(1)); // N × 1
    let d_mean = &(&eps / &sigma) * &h;
    let d_scale = &eps.mapv(|e| 0.5 * (e * e - 1.0)) * &h;
    Ok(GradDraws { d_mean, d_scale })
}

/// Reparameterisation estimates of ∇ ELBO, one per draw: [`elbo_grad_diag`] on each row of `eps`
/// alone (Kingma & Welling 2014, eq. 7 with L = 1).
///
/// # Shapes
/// `x`: D; `mean`, `log_var`: Z; `eps`: N × Z. Returns N × Z twice (∂/∂μ, ∂/∂log σ²).
///
/// # Errors
/// Wrong shapes; non-finite parameters.
pub fn reparameterisation_elbo_draws<M: ContinuousLatent + ?Sized>(
    model: &M,
    x: ArrayView1<f64>,
    mean: ArrayView1<f64>,
    log_var: ArrayView1<f64>,
    eps: ArrayView2<f64>,
) -> Result<GradDraws> {
    model.check_x(x)?;
    crate::lessons::bounds::Q::diag_gaussian(mean.to_owned(), log_var.to_owned())?.check_for(model)?;
    check_eps(eps, mean.len())?;
    let (mut d_mean, mut d_scale) = (Array2::zeros(eps.dim()), Array2::zeros(eps.dim()));
    for (n, row) in eps.rows().into_iter().enumerate() {
        let (_, dm, dlv) = elbo_grad_diag(model, x, mean, log_var, row.insert_axis(Axis(0)));
        d_mean.row_mut(n).assign(&dm);
        d_scale.row_mut(n).assign(&dlv);
    }
    Ok(GradDraws { d_mean, d_scale })
}

fn check_logits(model: &BinaryLatent, logits: ArrayView1<f64>) -> Result<()> {
    let k = model.latent_dim();
    if logits.len() != k {
        return Err(Error::shape("logits", format!("length {k} (the model's latents)"), logits.len()));
    }
    if k > 16 {
        return Err(Error::invalid("latents", k, "enumeration here visits 2ᵏ states; at most 16"));
    }
    crate::base::error::ensure_finite("logits", logits.iter())
}

/// log q(z) for q = Πⱼ Bernoulli(σ(θⱼ)): Σⱼ [zⱼ ln σ(θⱼ) + (1 − zⱼ) ln σ(−θⱼ)] per row.
fn bernoulli_log_q(logits: ArrayView1<f64>, z: ArrayView2<f64>) -> Array1<f64> {
    // ln σ(t) = −ln(1 + e^{−t}), written so that neither branch overflows
    let log_sig = |t: f64| if t >= 0.0 { -(-t).exp().ln_1p() } else { t - t.exp().ln_1p() };
    z.rows()
        .into_iter()
        .map(|row| row.iter().zip(logits).map(|(&zj, &t)| zj * log_sig(t) + (1.0 - zj) * log_sig(-t)).sum())
        .collect()
}

/// The ELBO of the binary toy under q = Πⱼ Bernoulli(σ(θⱼ)) and its exact gradient with respect to
/// the logits θ, by a sum over all 2ᵏ states:
///
/// ```text
/// ELBO(θ) = Σ_z q(z) h(z),   h(z) = log p(x, z) − log q(z)
/// ∂ELBO/∂θⱼ = Σ_z q(z) h(z) (zⱼ − σ(θⱼ))      (∂ log q/∂θⱼ = zⱼ − σ(θⱼ); Σ_z q ∂_θ log q = 0 drops
///                                               the −∂ log q/∂θ term of ∂h/∂θ)
/// ```
/// The score-function identity summed exactly, no sampling. (Checked in the tests and the lesson
/// against finite differences of [`crate::lessons::bounds::exact_elbo`].)
///
/// # Shapes
/// `x`: D; `logits`: k. Returns (ELBO, d_logits: k).
///
/// # Errors
/// x not binary or of the wrong length; `logits` not of length k; k > 16; non-finite logits.
pub fn bernoulli_elbo_enumerated(
    model: &BinaryLatent,
    x: ArrayView1<f64>,
    logits: ArrayView1<f64>,
) -> Result<(f64, Array1<f64>)> {
    model.check_x(x)?;
    check_logits(model, logits)?;
    let k = model.latent_dim();
    let states = Encoding::Bits(k).all_states(model.states()); // 2ᵏ × k
    let log_q = bernoulli_log_q(logits, states.view());
    let h = model.log_joint(x, states.view()) - &log_q;
    let p = logits.mapv(sigmoid);
    let q = log_q.mapv(f64::exp);
    let value = q.dot(&h);
    let weights = &q * &h; // 2ᵏ
    let d_logits = (&states - &p).t().dot(&weights); // k
    Ok((value, d_logits))
}

/// Bernoulli draws from uniforms: zⱼ = 1 if uⱼ < σ(θⱼ), else 0. A step function of θ: at fixed u,
/// ∂z/∂θ = 0 wherever it exists, which is why the reparameterisation does not apply.
///
/// # Shapes
/// `logits`: k; `u`: N × k. Returns N × k.
pub fn bernoulli_from_uniform(logits: ArrayView1<f64>, u: ArrayView2<f64>) -> Array2<f64> {
    let p = logits.mapv(sigmoid);
    Array2::from_shape_fn(u.dim(), |(n, j)| f64::from(u8::from(u[[n, j]] < p[j])))
}

/// Score-function estimates of ∂ELBO/∂θ for the binary toy, one per draw z ∼ q:
///
/// ```text
/// gₙ = (h(zₙ) − b)(zₙ − σ(θ)),   h = log p(x, z) − log q(z)
/// ```
/// (see [`bernoulli_elbo_enumerated`] for why it is unbiased for any constant b).
///
/// # Shapes
/// `x`: D; `logits`: k. Returns N × k.
///
/// # Errors
/// As [`bernoulli_elbo_enumerated`]; a non-finite baseline.
pub fn score_bernoulli_draws<R: Rng + ?Sized>(
    model: &BinaryLatent,
    x: ArrayView1<f64>,
    logits: ArrayView1<f64>,
    n: usize,
    baseline: f64,
    rng: &mut R,
) -> Result<Array2<f64>> {
    model.check_x(x)?;
    check_logits(model, logits)?;
    crate::base::error::ensure_finite("baseline", [baseline].iter())?;
    let u = Array2::from_shape_simple_fn((n, logits.len()), || rng.random::<f64>());
    let z = bernoulli_from_uniform(logits, u.view());
    let h = model.log_joint(x, z.view()) - bernoulli_log_q(logits, z.view()) - baseline; // N
    let p = logits.mapv(sigmoid);
    Ok((&z - &p) * &h.insert_axis(Axis(1)))
}
