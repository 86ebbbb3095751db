//! The β sweep on a slider (notebook 09): as β rises, the model's point moves along the
//! rate–distortion curve of the sweep — less rate R, more distortion D — and its reconstructions
//! and prior samples blur towards the mean image. Every model minimises
//!
//! ```text
//! L_β = D + β R                     (Higgins et al. 2017, eq. 4; β = 1: the negative ELBO)
//! ```
//! so it sits where the curve's slope −dD/dR is β: a larger β, a point further up the curve.

use ndarray::{Array2, Axis, s};

use crate::base::error::{Error, Result};
use crate::base::stats::{Estimate, paired_difference};
use crate::lessons::collapse::Collapses;
use crate::plot::{Figure, SliderFigure};

/// One step of the β slider: one trained model of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct BetaFrame {
    /// β at the end of training.
    pub beta: f64,
    /// R = mean KL(q(z|x) ‖ p(z)) over the test digits, the table's.
    pub rate: Estimate,
    /// D = mean −log p(x|z) over the test digits, the table's.
    pub distortion: Estimate,
    /// The first test digits, reconstructed by this model (`per_model × D`).
    pub reconstructions: Array2<f32>,
    /// Decoded prior samples of this model (`per_model × D`).
    pub samples: Array2<f32>,
}

/// From one step of the slider to the next (β rising): the change of R and of D, each paired over
/// the same test digits (next model minus this one).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BetaMove {
    /// β of this step.
    pub from: f64,
    /// β of the next step.
    pub to: f64,
    /// R(next) − R(this), paired over test digits.
    pub rate_change: Estimate,
    /// D(next) − D(this), paired over test digits.
    pub distortion_change: Estimate,
}

/// The models of the sweep ordered by rising β, each with its R and D and its first `per_model`
/// reconstructions and prior samples.
///
/// # Shapes
/// Each frame holds `per_model × D` reconstructions and samples.
///
/// # Errors
/// An empty sweep; `per_model` 0 or more than the images a model kept.
pub fn beta_frames(sweep: &Collapses, per_model: usize) -> Result<Vec<BetaFrame>> {
    if sweep.points.is_empty() {
        return Err(Error::empty("sweep points", "model"));
    }
    let kept = sweep.test_images.nrows().min(sweep.config.prior_samples);
    if per_model == 0 || per_model > kept {
        return Err(Error::invalid("per_model", per_model, format!("must be in 1..={kept}")));
    }
    let mut frames: Vec<BetaFrame> = sweep
        .points
        .iter()
        .map(|p| BetaFrame {
            beta: p.beta,
            rate: p.rate,
            distortion: p.distortion,
            reconstructions: p.reconstruction_images.slice(s![..per_model, ..]).to_owned(),
            samples: p.sample_images.slice(s![..per_model, ..]).to_owned(),
        })
        .collect();
    frames.sort_by(|a, b| a.beta.total_cmp(&b.beta));
    Ok(frames)
}

/// The moves between neighbouring models ordered by rising β, from the per-digit rates and
/// distortions of the sweep:
///
/// ```text
/// ΔR = (1/N) Σ_n [R_n(β') − R_n(β)],   ΔD = (1/N) Σ_n [D_n(β') − D_n(β)],   β < β' neighbours
/// ```
///
/// # Errors
/// Fewer than 2 test digits (from [`paired_difference`]).
pub fn beta_moves(sweep: &Collapses) -> Result<Vec<BetaMove>> {
    let mut points: Vec<_> = sweep.points.iter().collect();
    points.sort_by(|a, b| a.beta.total_cmp(&b.beta));
    points
        .windows(2)
        .map(|w| {
            Ok(BetaMove {
                from: w[0].beta,
                to: w[1].beta,
                rate_change: paired_difference(&w[1].rate_per_example, &w[0].rate_per_example)?,
                distortion_change: paired_difference(
                    &w[1].distortion_per_example,
                    &w[0].distortion_per_example,
                )?,
            })
        })
        .collect()
}

/// The β slider: left, the sweep's rate–distortion curve (R across, D up) with this β's model
/// marked; right, the first test digits (top row), this model's reconstructions of them (middle)
/// and its prior samples (bottom).
///
/// # Shapes
/// `sweep.test_images`: at least `per_model` rows of D pixels (D a perfect square for square
/// images), `per_model` the frames' image count.
pub fn beta_slider(title: &str, sweep: &Collapses, frames: &[BetaFrame]) -> SliderFigure {
    let r: Vec<f64> = frames.iter().map(|f| f.rate.mean).collect();
    let d: Vec<f64> = frames.iter().map(|f| f.distortion.mean).collect();
    let per = frames.first().map_or(1, |f| f.samples.nrows());
    let shape = crate::plot::report::image_shape(sweep.test_images.ncols());
    let digits = sweep.test_images.slice(s![..per.min(sweep.test_images.nrows()), ..]);
    let mut fig = Figure::new(title)
        .axes("rate R (nats per digit)", "distortion D (nats per digit)")
        .line("the sweep's models", &r, &d)
        .slider("β")
        .panel(Figure::new("test digits · their reconstructions · prior samples").image_axes());
    for f in frames {
        let point = Figure::new("").points_with_errors(
            &format!("β = {}: R = {:.2}, D = {:.1}", f.beta, f.rate.mean, f.distortion.mean),
            &[f.rate.mean],
            &[f.distortion.mean],
            &[f.distortion.stderr],
        );
        let rows = [digits.view(), f.reconstructions.view(), f.samples.view()];
        let images = ndarray::concatenate(Axis(0), &rows).unwrap_or_else(|_| f.samples.clone());
        let grid = Figure::new("").images(&format!("β = {}", f.beta), images.view(), shape, per);
        fig = fig.step_panels(&format!("{}", f.beta), vec![point, grid]);
    }
    fig
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::collapse::tests::{tiny_config, tiny_digits};
    use crate::lessons::collapse::{Variant, collapse_runs};

    fn tiny_sweep() -> Collapses {
        let (digits, config) = (tiny_digits(), tiny_config());
        let variants = [Variant::constant(4.0), Variant::constant(0.5), Variant::constant(1.0)];
        collapse_runs(&digits, &config, &variants, &mut |_, _| {}).unwrap()
    }

    #[test]
    fn frames_rise_in_beta_and_moves_are_the_differences_of_the_table() {
        let sweep = tiny_sweep();
        let frames = beta_frames(&sweep, 2).unwrap();
        let betas: Vec<f64> = frames.iter().map(|f| f.beta).collect();
        assert_eq!(betas, vec![0.5, 1.0, 4.0]);
        for f in &frames {
            let p = sweep.points.iter().find(|p| p.beta == f.beta).unwrap();
            assert_eq!((f.rate, f.distortion), (p.rate, p.distortion));
            assert_eq!(f.samples, p.sample_images.slice(s![..2, ..]));
            assert_eq!(f.reconstructions.nrows(), 2);
        }
        let moves = beta_moves(&sweep).unwrap();
        assert_eq!(moves.len(), 2);
        for (m, w) in moves.iter().zip(frames.windows(2)) {
            assert_eq!((m.from, m.to), (w[0].beta, w[1].beta));
            // Paired over the same digits, the mean difference is the difference of the means.
            assert!((m.rate_change.mean - (w[1].rate.mean - w[0].rate.mean)).abs() < 1e-9, "{m:?}");
            assert!((m.distortion_change.mean - (w[1].distortion.mean - w[0].distortion.mean)).abs() < 1e-9);
        }
        assert!(beta_frames(&sweep, 0).is_err() && beta_frames(&sweep, 3).is_err());
        let fig = beta_slider("t", &sweep, &frames);
        assert_eq!(fig.step_count(), 3);
        let spec = fig.spec();
        let on_images = spec["data"].as_array().unwrap().iter().filter(|t| t["type"] == "heatmap").count();
        assert_eq!(on_images, 3);
    }
}
