//! Inverse-transform sampling on a slider (notebook 01): as u moves, x = F⁻¹(u) moves along the
//! CDF, and the draws whose uniform number is at most u are exactly the draws at most x; they fill
//! the histogram from the left, and their share is u. That is the proof's middle step on numbers:
//!
//! ```text
//! P(X ≤ x) = P(F⁻¹(U) ≤ x) = P(U ≤ F(x)) = F(x)                              (1.2)
//! ```

use ndarray::ArrayView1;

use crate::base::error::{Error, Result, ensure_finite};
use crate::lessons::sampling::{InverseCdf, Probability};
use crate::plot::{Figure, SliderFigure};

/// One position of the u slider.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileFrame {
    /// u, the slider's value.
    pub u: f64,
    /// x = F⁻¹(u), from the inverse.
    pub x: f64,
    /// F(x), from the CDF itself (not from the inverse): u again, up to the inverse's tolerance.
    pub cdf_at_x: f64,
    /// #{i : uᵢ ≤ u}: the draws whose uniform number is at most u.
    pub draws_below_u: usize,
    /// #{i : xᵢ ≤ x}: the draws at most x, counted on the x side.
    pub draws_below_x: usize,
    /// Per histogram bin, the draws with xᵢ ≤ x (the filled part of the histogram); they sum to
    /// `draws_below_x`.
    pub counts: Vec<usize>,
}

/// Every frame of the u slider, and what the figure draws at every frame.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileFrames {
    /// N, the number of draws.
    pub n: usize,
    /// The histogram's bin edges (`bins + 1`), from the smallest draw to the largest, so every
    /// draw is in a bin.
    pub edges: Vec<f64>,
    /// Per bin, all N draws.
    pub total_counts: Vec<usize>,
    /// x on a grid over the edges' range, and F(x) there: the CDF curve.
    pub curve: (Vec<f64>, Vec<f64>),
    /// One frame per u of the slider.
    pub frames: Vec<QuantileFrame>,
}

impl QuantileFrames {
    /// The width of a bin.
    pub fn bin_width(&self) -> f64 {
        (self.edges[self.edges.len() - 1] - self.edges[0]) / (self.edges.len() - 1) as f64
    }
}

/// The frames of the u slider: the draws xᵢ = F⁻¹(uᵢ) of the uniform numbers `u`, and for each
/// slider value uₖ in `levels`
///
/// ```text
/// xₖ = F⁻¹(uₖ),   F(xₖ),   #{i : uᵢ ≤ uₖ},   #{i : xᵢ ≤ xₖ},   and the histogram of {xᵢ ≤ xₖ}     (1.2)
/// ```
/// `cdf` is F, evaluated independently of `inverse`. The histogram has `bins` equal bins from the
/// smallest to the largest draw.
///
/// # Shapes
/// `u`: (N,); one frame per level, each with `bins` counts.
///
/// # Errors
/// `u` empty or with fewer than 2 distinct values, a `u` or a level outside [0, 1], `bins` = 0, a
/// non-finite F⁻¹(u) or F(x) (from the inverse or `cdf`).
pub fn quantile_frames(
    inverse: &dyn InverseCdf,
    cdf: &dyn Fn(f64) -> f64,
    u: ArrayView1<f64>,
    levels: &[f64],
    bins: usize,
) -> Result<QuantileFrames> {
    if u.is_empty() {
        return Err(Error::empty("u", "uniform draw"));
    }
    if bins == 0 {
        return Err(Error::invalid("bins", bins, "at least one bin is needed"));
    }
    let x = u
        .iter()
        .enumerate()
        .map(|(i, &ui)| inverse.quantile(Probability::named(&format!("u[{i}]"), ui)?))
        .collect::<Result<Vec<f64>>>()?;
    ensure_finite("F⁻¹(u)", x.iter())?;
    let (lo, hi) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if hi <= lo {
        return Err(Error::invalid(
            "u",
            format!("{} draws", u.len()),
            "needs draws with at least 2 distinct x",
        ));
    }
    let h = (hi - lo) / bins as f64;
    let edges: Vec<f64> = (0..=bins).map(|k| lo + k as f64 * h).collect();
    let bin = |v: f64| (((v - lo) / h) as usize).min(bins - 1);
    let mut total_counts = vec![0; bins];
    for &v in &x {
        total_counts[bin(v)] += 1;
    }
    let grid: Vec<f64> = (0..200).map(|k| lo + (hi - lo) * k as f64 / 199.0).collect();
    let f_grid: Vec<f64> = grid.iter().map(|&g| cdf(g)).collect();
    ensure_finite("F(x)", f_grid.iter())?;
    let frames = levels
        .iter()
        .enumerate()
        .map(|(k, &level)| {
            let xk = inverse.quantile(Probability::named(&format!("levels[{k}]"), level)?)?;
            let cdf_at_x = cdf(xk);
            ensure_finite("F(F⁻¹(u))", [cdf_at_x].iter())?;
            let mut counts = vec![0; bins];
            for &v in x.iter().filter(|&&v| v <= xk) {
                counts[bin(v)] += 1;
            }
            Ok(QuantileFrame {
                u: level,
                x: xk,
                cdf_at_x,
                draws_below_u: u.iter().filter(|&&ui| ui <= level).count(),
                draws_below_x: x.iter().filter(|&&v| v <= xk).count(),
                counts,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(QuantileFrames { n: u.len(), edges, total_counts, curve: (grid, f_grid), frames })
}

/// The u slider: on top, the CDF with the point (x, u) and its guide lines (across from u on the
/// vertical axis to the curve, down to x); below, the density histogram of all N draws (faint)
/// and, filled, the draws at most x: their area is their share of the draws, u.
pub fn quantile_slider(title: &str, frames: &QuantileFrames) -> SliderFigure {
    let h = frames.bin_width();
    let scale = 1.0 / (frames.n as f64 * h);
    let centres: Vec<f64> = frames.edges.windows(2).map(|e| 0.5 * (e[0] + e[1])).collect();
    let density = |counts: &[usize]| -> Vec<f64> { counts.iter().map(|&c| c as f64 * scale).collect() };
    let (lo, hi) = (frames.edges[0], frames.edges[frames.edges.len() - 1]);
    let (grid, f_grid) = &frames.curve;
    let mut fig = Figure::new(title)
        .axes("x", "u = F(x)")
        .line("F(x)", grid, f_grid)
        .slider("u")
        .panel(
            Figure::new("the draws: all N (faint), and those with uᵢ ≤ u, which are those with xᵢ ≤ x")
                .axes("x", "density")
                .density_bars(&format!("all {} draws", frames.n), &centres, &density(&frames.total_counts))
                .line("", &[lo, hi], &[0.0, 0.0]),
        )
        .stacked();
    for f in &frames.frames {
        let top = Figure::new("").dashed("u → F⁻¹(u)", &[lo, f.x, f.x], &[f.u, f.u, 0.0]).points(
            &format!("(x, u) = ({:.3}, {:.2})", f.x, f.u),
            &[f.x],
            &[f.u],
        );
        let bottom = Figure::new("")
            .density_bars(
                &format!(
                    "{} draws with xᵢ ≤ x: a share {:.3}",
                    f.draws_below_x,
                    f.draws_below_x as f64 / frames.n as f64
                ),
                &centres,
                &density(&f.counts),
            )
            .line(
                "x",
                &[f.x, f.x],
                &[0.0, density(&frames.total_counts).iter().copied().fold(0.0, f64::max)],
            );
        fig = fig.step_panels(&format!("{:.2}", f.u), vec![top, bottom]);
    }
    fig
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lessons::sampling::StatrsInverse;
    use ndarray::Array1;
    use statrs::distribution::{ContinuousCDF, Exp};

    #[test]
    fn the_draws_below_u_are_the_draws_below_x_and_fill_the_histogram() {
        let exp = StatrsInverse::new(Exp::new(2.0).unwrap());
        let dist = Exp::new(2.0).unwrap();
        // 1000 evenly spread u: the share below each level is known to 1/1000.
        let u = Array1::from_shape_fn(1000, |i| (i as f64 + 0.5) / 1000.0);
        let levels = [0.05, 0.5, 0.95];
        let f = quantile_frames(&exp, &|x| dist.cdf(x), u.view(), &levels, 30).unwrap();
        assert_eq!(f.total_counts.iter().sum::<usize>(), 1000);
        for fr in &f.frames {
            // x = −ln(1 − u)/λ by hand, and F(x) = u.
            assert!((fr.x + (1.0 - fr.u).ln() / 2.0).abs() < 1e-12, "{fr:?}");
            assert!((fr.cdf_at_x - fr.u).abs() < 1e-12);
            assert_eq!(fr.draws_below_u, fr.draws_below_x);
            assert_eq!(fr.counts.iter().sum::<usize>(), fr.draws_below_x);
            assert_eq!(fr.draws_below_u, (fr.u * 1000.0).round() as usize);
        }
        let fig = quantile_slider("t", &f);
        assert_eq!(fig.step_count(), 3);
        let spec = fig.spec();
        // The bottom panel's traces are on the second axes, the panel below the first.
        assert!(spec["data"].as_array().unwrap().iter().any(|t| t["xaxis"] == "x2"));
        assert!(
            spec["layout"]["yaxis2"]["domain"][1].as_f64().unwrap()
                < spec["layout"]["yaxis"]["domain"][0].as_f64().unwrap()
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let exp = StatrsInverse::new(Exp::new(2.0).unwrap());
        let cdf = |x: f64| 1.0 - (-2.0 * x).exp();
        let u = ndarray::array![0.2, 0.7];
        assert!(quantile_frames(&exp, &cdf, u.view(), &[1.5], 10).is_err());
        assert!(quantile_frames(&exp, &cdf, ndarray::array![0.2, -0.1].view(), &[0.5], 10).is_err());
        assert!(quantile_frames(&exp, &cdf, u.view(), &[0.5], 0).is_err());
        assert!(quantile_frames(&exp, &cdf, ndarray::array![0.3, 0.3].view(), &[0.5], 10).is_err());
        assert!(quantile_frames(&exp, &|_| f64::NAN, u.view(), &[0.5], 10).is_err());
    }
}
