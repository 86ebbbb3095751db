//! The bounds on sliders. Derivation 2: as Q moves, log P(x) stays, the ELBO moves, and the gap
//! between them is KL(Q ‖ P(z|x)) at every position (notebook 03). IWAE: as K grows, the
//! distribution of log (1/K) Σₖ wₖ climbs to log P(x) and narrows (notebook 02).

use ndarray::{Array2, ArrayView1};
use rand::Rng;

use crate::base::error::{Error, Result};
use crate::base::stats::{Estimate, density_histogram};
use crate::lessons::bounds::estimate::{draw, exact_elbo, iwae_per_point, kl_q_posterior};
use crate::lessons::bounds::q::Q;
use crate::lessons::toy::{LatentModel, Model};
use crate::plot::{Figure, SliderFigure};

/// The three numbers of derivation 2 for one Q, each by its own route:
///
/// ```text
/// log P(x) = ELBO(Q) + KL(Q(z|x) ‖ P(z|x))
/// ```
/// `log_px` from the model's marginal (closed form, log-sum-exp or quadrature), `elbo` exactly
/// ([`exact_elbo`]: closed form, enumeration or quadrature), `kl` by its definition from the exact
/// posterior ([`kl_q_posterior`], which never uses log P(x)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GapFrame {
    /// log P(x).
    pub log_px: f64,
    /// ELBO(Q), exact.
    pub elbo: f64,
    /// KL(Q ‖ P(z|x)), by its definition.
    pub kl: f64,
}

impl GapFrame {
    /// log P(x) − ELBO − KL: zero up to rounding and the quadratures' tolerance.
    pub fn residual(&self) -> f64 {
        self.log_px - self.elbo - self.kl
    }
}

/// [`GapFrame`] of each Q in `qs` for one data point `x`.
///
/// # Shapes
/// `x`: (D); one frame per Q.
///
/// # Errors
/// Those of the model and of Q (wrong sizes), and a model without an exact ELBO.
pub fn gap_frames(model: &Model, x: ArrayView1<f64>, qs: &[Q]) -> Result<Vec<GapFrame>> {
    let log_px = model.log_marginal(x)?;
    qs.iter()
        .map(|q| {
            let elbo = exact_elbo(model, x, q)?.ok_or_else(|| {
                Error::invalid("model", model.kind(), "has no exact ELBO to put on a slider")
            })?;
            Ok(GapFrame { log_px, elbo, kl: kl_q_posterior(model, x, q)?.value() })
        })
        .collect()
}

/// The slider figure of `frames`: `positions[k]` is where Q is at step k (the slider's variable,
/// named `label`), the x axis. Drawn at every step: log P(x) (dashed, flat) and the ELBO along
/// all positions; at step k: Q's ELBO as a point, and KL(Q ‖ P(z|x)) as a vertical bar standing on
/// it, which reaches log P(x) exactly when derivation 2 holds.
///
/// # Panics
/// If `positions` and `frames` differ in length (a programmer error).
pub fn gap_slider(title: &str, label: &str, positions: &[f64], frames: &[GapFrame]) -> SliderFigure {
    assert_eq!(
        positions.len(),
        frames.len(),
        "gap_slider: {} positions, {} frames",
        positions.len(),
        frames.len()
    );
    let elbo: Vec<f64> = frames.iter().map(|f| f.elbo).collect();
    let (lo, hi) = (positions.first().copied().unwrap_or(0.0), positions.last().copied().unwrap_or(1.0));
    let log_px = frames.first().map_or(0.0, |f| f.log_px);
    let mut fig = Figure::new(title)
        .axes(label, "nats")
        .dashed("log P(x)", &[lo, hi], &[log_px, log_px])
        .line("ELBO(Q)", positions, &elbo)
        .slider(label);
    for (&p, f) in positions.iter().zip(frames) {
        let step = Figure::new("").points("this Q's ELBO", &[p], &[f.elbo]).line(
            &format!("KL(Q ‖ P(z|x)) = {:.3}", f.kl),
            &[p, p],
            &[f.elbo, f.elbo + f.kl],
        );
        fig = fig.step(&format!("{p:+.2}"), step);
    }
    fig
}

/// One step of the IWAE slider: `n` independent values of log (1/K) Σₖ wₖ for one K, and their
/// mean with its standard error, the Monte-Carlo estimate of
///
/// ```text
/// L_K = E_{z₁..z_K ∼ Q} log (1/K) Σₖ P(x, zₖ) / Q(zₖ)        (Burda et al. 2016, eq. 8)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct IwaeFrame {
    /// K, the importance samples inside the log.
    pub k: usize,
    /// The n values, one per independent group of K draws.
    pub values: Vec<f64>,
    /// Their mean and standard error: L_K.
    pub bound: Estimate,
}

/// [`IwaeFrame`] for each K in `ks`, each from `n` fresh groups of K draws from `q`.
///
/// # Shapes
/// `x`: (D); each K draws an n × K array of log-weights (at most 2·10⁶ draws per K).
///
/// # Errors
/// K = 0, n < 2, n·K above 2·10⁶ (a slider is for seconds of work), invalid x or q.
pub fn iwae_frames<R: Rng + ?Sized>(
    model: &Model,
    x: ArrayView1<f64>,
    q: &Q,
    ks: &[usize],
    n: usize,
    rng: &mut R,
) -> Result<Vec<IwaeFrame>> {
    const MAX_DRAWS_PER_STEP: usize = 2_000_000;
    ks.iter()
        .map(|&k| {
            if k == 0 || n.checked_mul(k).is_none_or(|d| d > MAX_DRAWS_PER_STEP) {
                return Err(Error::invalid(
                    "K",
                    k,
                    format!("must be ≥ 1 with n·K ≤ {MAX_DRAWS_PER_STEP} (n = {n})"),
                ));
            }
            let log_w = draw(model, x, q, n * k, rng)?.log_w();
            let log_w = Array2::from_shape_vec((n, k), log_w.to_vec())
                .map_err(|e| Error::invalid("K", k, e.to_string()))?;
            let values = iwae_per_point(log_w.view());
            let bound = Estimate::from_values(values.view())?;
            Ok(IwaeFrame { k, values: values.to_vec(), bound })
        })
        .collect()
}

/// The IWAE slider: at step k, the density histogram of the n values of log (1/K) Σₖ wₖ and a
/// vertical line at their mean L_K; log P(x) is a dashed vertical line at every step. The
/// histograms share one range (the extent of every step's values), so the steps compare.
///
/// # Errors
/// A non-finite value (from [`density_histogram`]).
pub fn iwae_slider(title: &str, frames: &[IwaeFrame], log_px: f64, bins: usize) -> Result<SliderFigure> {
    let all = frames.iter().flat_map(|f| f.values.iter().copied());
    let (lo, hi) = all.fold((log_px, log_px), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let mut tallest = 0.0_f64;
    let mut hists = Vec::with_capacity(frames.len());
    for f in frames {
        let (centres, heights) = density_histogram(&ndarray::Array1::from(f.values.clone()), lo, hi, bins)?;
        tallest = tallest.max(heights.iter().copied().fold(0.0, f64::max));
        hists.push((centres, heights));
    }
    let mut fig = Figure::new(title)
        .axes("log (1/K) Σₖ wₖ (nats)", "density")
        .dashed("log P(x)", &[log_px, log_px], &[0.0, tallest])
        .slider("K");
    for (f, (centres, heights)) in frames.iter().zip(hists) {
        let step = Figure::new("")
            .density_bars(
                &format!("{} values at K = {}", f.values.len(), f.k),
                centres.as_slice().unwrap_or(&[]),
                heights.as_slice().unwrap_or(&[]),
            )
            .line(
                &format!("L_K = {:.3} ± {:.3}", f.bound.mean, f.bound.stderr),
                &[f.bound.mean, f.bound.mean],
                &[0.0, tallest],
            );
        fig = fig.step(&f.k.to_string(), step);
    }
    Ok(fig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::bounds::posterior_q;
    use crate::lessons::toy::LinearGaussian;
    use ndarray::array;

    #[test]
    fn the_bar_reaches_log_px_at_every_step_and_is_zero_at_the_posterior() {
        let model = Model::LinearGaussian(
            LinearGaussian::new(array![[1.0, 0.5], [-0.3, 0.8]], array![0.0, 0.0], 0.7).unwrap(),
        );
        let x = array![0.4, -0.2];
        let post = posterior_q(&model, x.view()).unwrap();
        let Q::FullGaussian { mean, .. } = &post else { panic!("a full Gaussian posterior") };
        let shifts = [-1.0, -0.5, 0.0, 0.5, 1.0];
        let qs: Vec<Q> = shifts
            .iter()
            .map(|t| Q::diag_gaussian(mean + &array![*t, 0.0], array![-1.0, -1.0]).unwrap())
            .collect();
        let frames = gap_frames(&model, x.view(), &qs).unwrap();
        for f in &frames {
            assert!(f.residual().abs() < 1e-10, "{f:?}");
            assert!(f.kl > 0.0);
        }
        // The KL grows as Q's mean leaves the posterior's, symmetrically for a Gaussian.
        assert!(frames[0].kl > frames[1].kl && frames[1].kl > frames[2].kl);
        assert!((frames[0].kl - frames[4].kl).abs() < 1e-12);
        // At the posterior itself the KL is 0 and the ELBO is log P(x).
        let at_post = gap_frames(&model, x.view(), &[post]).unwrap()[0];
        assert!(at_post.kl.abs() < 1e-12 && (at_post.elbo - at_post.log_px).abs() < 1e-10);
        let fig = gap_slider("t", "shift", &shifts, &frames);
        assert_eq!(fig.step_count(), 5);
    }

    #[test]
    fn iwae_frames_climb_towards_log_px() {
        use rand::SeedableRng;
        let model = Model::LinearGaussian(
            LinearGaussian::new(array![[1.0, 0.5], [-0.3, 0.8]], array![0.0, 0.0], 0.7).unwrap(),
        );
        let x = array![0.4, -0.2];
        let log_px = model.log_marginal(x.view()).unwrap();
        let q = crate::lessons::bounds::prior_q(&model);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let frames = iwae_frames(&model, x.view(), &q, &[1, 10, 100], 400, &mut rng).unwrap();
        // L_1 is the ELBO (exact here); each L_K is below log P(x) and above L_1, within 4 SE.
        let elbo = exact_elbo(&model, x.view(), &q).unwrap().unwrap();
        assert!((frames[0].bound.mean - elbo).abs() < 4.0 * frames[0].bound.stderr);
        for f in &frames[1..] {
            assert!(f.bound.mean < log_px + 4.0 * f.bound.stderr, "{f:?}");
            assert!(f.bound.mean > elbo + 4.0 * f.bound.stderr.hypot(frames[0].bound.stderr), "{f:?}");
        }
        assert!(iwae_frames(&model, x.view(), &q, &[0], 10, &mut rng).is_err());
        assert!(iwae_frames(&model, x.view(), &q, &[usize::MAX], 10, &mut rng).is_err());
        assert_eq!(iwae_slider("t", &frames, log_px, 30).unwrap().step_count(), 3);
    }
}
