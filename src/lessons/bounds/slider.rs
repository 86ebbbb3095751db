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

/// One position of the Jensen slider: a Q over the latents of a model whose latents can be listed,
/// the importance weight of every latent, and the two sides of line 5 of derivation 1:
///
/// ```text
/// w(z) = P(x, z) / Q(z)
/// log E_Q[w] = log Σ_z Q(z) w(z)   ≥   E_Q[log w] = Σ_z Q(z) log w(z)          (Jensen, line 5)
/// ```
/// with equality exactly when w is the same at every z (log is strictly concave), i.e. when
/// Q(z) ∝ P(x, z), the posterior. The left side is log Σ_z P(x, z) = log P(x) whatever Q is.
#[derive(Debug, Clone, PartialEq)]
pub struct JensenFrame {
    /// Q(z), one per latent.
    pub q: Vec<f64>,
    /// w(z) = P(x, z)/Q(z), one per latent.
    pub w: Vec<f64>,
    /// log E_Q\[w\] (line 4).
    pub log_mean_w: f64,
    /// E_Q\[log w\] (line 5, the ELBO).
    pub mean_log_w: f64,
}

impl JensenFrame {
    /// log E_Q\[w\] − E_Q\[log w\], the Jensen gap: ≥ 0, and 0 only where w is constant.
    pub fn gap(&self) -> f64 {
        self.log_mean_w - self.mean_log_w
    }

    /// max_z log w − min_z log w: 0 exactly when w is the same at every latent.
    pub fn log_w_spread(&self) -> f64 {
        let logs = self.w.iter().map(|w| w.ln());
        let (lo, hi) = logs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        hi - lo
    }
}

/// [`JensenFrame`] of each Q in `qs`, by enumerating the latents (a mixture's components, or the
/// 2^k states of a binary model with k ≤ 16).
///
/// # Shapes
/// `x`: (D); each frame holds one Q(z) and one w(z) per latent state.
///
/// # Errors
/// A model whose latents cannot be listed (continuous, or more than 16 bits); a Q of another
/// family or size; a Q that gives some latent probability 0 (w is then undefined there); invalid x.
pub fn jensen_frames(model: &Model, x: ArrayView1<f64>, qs: &[Q]) -> Result<Vec<JensenFrame>> {
    use crate::lessons::toy::Encoding;
    model.check_x(x)?;
    let states = match model {
        Model::Mixture(m) => Encoding::Index.all_states(m.components()),
        Model::BinaryLatent(m) if m.latent_dim() <= 16 => {
            Encoding::Bits(m.latent_dim()).all_states(m.states())
        }
        _ => {
            return Err(Error::invalid(
                "model",
                model.kind(),
                "the Jensen slider lists every latent: a mixture or a binary model of at most 16 bits",
            ));
        }
    };
    let log_joint = model.log_joint(x, states.view()); // log P(x, z), one per state
    qs.iter()
        .enumerate()
        .map(|(k, q)| {
            q.check_for(model)?;
            let log_q = q.log_density(states.view());
            if let Some(i) = log_q.iter().position(|l| !l.is_finite()) {
                return Err(Error::invalid(
                    format!("qs[{k}]"),
                    q.to_string(),
                    format!("gives latent {i} probability 0: w is undefined there"),
                ));
            }
            let qv: Vec<f64> = log_q.iter().map(|l| l.exp()).collect();
            let log_w: Vec<f64> = log_joint.iter().zip(&log_q).map(|(lj, lq)| lj - lq).collect();
            let w: Vec<f64> = log_w.iter().map(|l| l.exp()).collect();
            let mean_w: f64 = qv.iter().zip(&w).map(|(q, w)| q * w).sum();
            let mean_log_w: f64 = qv.iter().zip(&log_w).map(|(q, l)| q * l).sum();
            Ok(JensenFrame { q: qv, w, log_mean_w: mean_w.ln(), mean_log_w })
        })
        .collect()
}

/// The Jensen slider: the curve log w against w (drawn at every step), and at step k the weights
/// (w(z), log w(z)) of every latent on the curve, the chord between the smallest and largest,
/// E_Q\[log w\] (the ELBO, on or above the chord, below the curve), and log E_Q\[w\] on the curve
/// above it, with the gap between them as a vertical bar. E_Q\[w\] = P(x) for every Q, so that
/// point does not move; the chord turns around it as Q moves, and shrinks to it at the posterior.
/// `positions[k]` labels step k on the slider (e.g. Q(z = 1)).
///
/// # Panics
/// If `positions` and `frames` differ in length (a programmer error).
pub fn jensen_slider(title: &str, label: &str, positions: &[f64], frames: &[JensenFrame]) -> SliderFigure {
    assert_eq!(
        positions.len(),
        frames.len(),
        "jensen_slider: {} positions, {} frames",
        positions.len(),
        frames.len()
    );
    let all_w = frames.iter().flat_map(|f| f.w.iter().copied());
    let (lo, hi) = all_w.fold((f64::INFINITY, 0.0f64), |(lo, hi), w| (lo.min(w), hi.max(w)));
    let (lo, hi) = if lo < hi { (0.9 * lo, 1.05 * hi) } else { (0.5 * lo.max(1e-300), 2.0 * lo.max(1e-300)) };
    let grid: Vec<f64> = (0..200).map(|i| lo + (hi - lo) * i as f64 / 199.0).collect();
    let log_grid: Vec<f64> = grid.iter().map(|w| w.ln()).collect();
    let mean_w = frames.first().map_or(1.0, |f| f.log_mean_w.exp());
    let y_lo = log_grid[0];
    let mut fig = Figure::new(title)
        .axes("w = P(x, z) / Q(z)", "log w")
        .line("log w", &grid, &log_grid)
        .dashed("E_Q[w] = P(x), for every Q", &[mean_w, mean_w], &[y_lo, mean_w.ln()])
        .slider(label);
    for (&p, f) in positions.iter().zip(frames) {
        let log_w: Vec<f64> = f.w.iter().map(|w| w.ln()).collect();
        let (i_lo, i_hi) = (argmin(&f.w), argmax(&f.w));
        let ew = f.log_mean_w.exp();
        let step = Figure::new("")
            .points("w(z) of each z", &f.w, &log_w)
            .line("chord", &[f.w[i_lo], f.w[i_hi]], &[log_w[i_lo], log_w[i_hi]])
            .points(&format!("E_Q[log w] = ELBO = {:.4}", f.mean_log_w), &[ew], &[f.mean_log_w])
            .points(&format!("log E_Q[w] = log P(x) = {:.4}", f.log_mean_w), &[ew], &[f.log_mean_w])
            .line(&format!("Jensen gap = {:.4}", f.gap()), &[ew, ew], &[f.mean_log_w, f.log_mean_w]);
        fig = fig.step(&format!("{p:.3}"), step);
    }
    fig
}

fn argmin(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] < v[b] { i } else { b })
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, i| if v[i] > v[b] { i } else { b })
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

    #[test]
    fn jensen_frames_keep_log_px_and_close_the_gap_only_at_the_posterior() {
        use crate::lessons::toy::Encoding;
        let model = Model::from_json(
            r#"{"kind": "mixture", "weights": [0.3, 0.7], "means": [[0.0], [2.0]], "sigmas": [[1.0], [0.5]]}"#,
        )
        .unwrap();
        let x = array![0.8];
        let log_px = model.log_marginal(x.view()).unwrap();
        // The posterior by Bayes' rule, by hand: P(z|x) ∝ π_z N(x; μ_z, σ_z²).
        let n = |m: f64, s: f64| {
            (-0.5 * ((0.8 - m) / s).powi(2)).exp() / (s * (2.0 * std::f64::consts::PI).sqrt())
        };
        let (a, b) = (0.3 * n(0.0, 1.0), 0.7 * n(2.0, 0.5));
        let post = b / (a + b);
        let qs: Vec<Q> = [0.1, post, 0.9]
            .iter()
            .map(|&q1| Q::categorical(array![1.0 - q1, q1].view(), Encoding::Index).unwrap())
            .collect();
        let frames = jensen_frames(&model, x.view(), &qs).unwrap();
        for f in &frames {
            assert!((f.log_mean_w - log_px).abs() < 1e-12, "{f:?}");
            assert!((f.log_mean_w - (a + b).ln()).abs() < 1e-12);
        }
        assert!(frames[0].gap() > 1e-3 && frames[2].gap() > 1e-3);
        assert!(frames[1].gap().abs() < 1e-12 && frames[1].log_w_spread() < 1e-12, "{:?}", frames[1]);
        // E_Q[log w] is the exact ELBO of the bounds module.
        for (f, q) in frames.iter().zip(&qs) {
            assert!((f.mean_log_w - exact_elbo(&model, x.view(), q).unwrap().unwrap()).abs() < 1e-12);
        }
        assert_eq!(jensen_slider("t", "q", &[0.1, post, 0.9], &frames).step_count(), 3);
        // A Q that misses a latent, and a continuous model, are refused.
        let zero = Q::categorical(array![1.0, 0.0].view(), Encoding::Index).unwrap();
        assert!(jensen_frames(&model, x.view(), &[zero]).is_err());
        let lin = Model::LinearGaussian(LinearGaussian::new(array![[1.0]], array![0.0], 1.0).unwrap());
        assert!(jensen_frames(&lin, array![0.3].view(), &[]).is_err());
    }
}
