//! Traversals on a slider (notebook 08): one slider over the value t that every shown unit is set
//! to, one image per unit. The active units' images move as t moves; the inactive ones' stay
//! the reconstruction, because the decoder learnt to ignore a unit that stays at the prior.

use ndarray::{Array1, Array2, ArrayView1, Axis};

use crate::base::error::{Error, Result};
use crate::engine::vae::Vae;
use crate::lessons::representation::traversal;
use crate::plot::{Figure, SliderFigure};

/// One value of the traversal slider.
#[derive(Debug, Clone, PartialEq)]
pub struct TraversalFrame {
    /// t, the value the unit is set to.
    pub value: f64,
    /// Row i: the decoder's mean with unit `units[i]` alone set to t (`U × D`).
    pub images: Array2<f32>,
    /// Per unit, the mean absolute change of a pixel from the reconstruction at μ(x) (`U`).
    pub change: Vec<f64>,
}

/// Every frame of the traversal slider of one data point.
#[derive(Debug, Clone, PartialEq)]
pub struct TraversalFrames {
    /// The units shown, in order.
    pub units: Vec<usize>,
    /// The reconstruction E\[x | z = μ(x)\] every image is compared with (`D`).
    pub base: Array1<f32>,
    /// One frame per traversal value.
    pub frames: Vec<TraversalFrame>,
}

impl TraversalFrames {
    /// Per unit, its change averaged over the frames: [`crate::lessons::representation::traversal_change`]'s
    /// Δ_u for this one data point and these values,
    ///
    /// ```text
    /// Δ_u = (1/(T·D)) Σ_j Σ_d | x̂_d(μ(x) with z_u ← t_j) − x̂_d(μ(x)) |
    /// ```
    pub fn mean_change(&self) -> Vec<f64> {
        let t = self.frames.len().max(1) as f64;
        (0..self.units.len()).map(|i| self.frames.iter().map(|f| f.change[i]).sum::<f64>() / t).collect()
    }
}

/// The frames of the traversal slider: for each t in `values`, every unit of `units` set alone to
/// t in the code μ(x) of `x`, decoded ([`traversal`]), and its change from the reconstruction:
///
/// ```text
/// change_u(t) = (1/D) Σ_d | x̂_d(μ(x) with z_u ← t) − x̂_d(μ(x)) |
/// ```
///
/// # Shapes
/// `x`: D. Each frame: `U × D` images and U changes, U = `units.len()`.
///
/// # Errors
/// As [`traversal`] (a unit ≥ Z, values empty or not finite, `x` not of length D); `units` empty.
pub fn traversal_frames(
    vae: &Vae<f32>,
    x: ArrayView1<f32>,
    units: &[usize],
    values: &[f64],
) -> Result<TraversalFrames> {
    if units.is_empty() {
        return Err(Error::empty("units", "unit"));
    }
    let sweeps = units.iter().map(|&u| traversal(vae, x, u, values)).collect::<Result<Vec<_>>>()?; // U × (T × D)
    let (mean, _) = vae.encode(x.insert_axis(Axis(0)), None);
    let base = vae.decode_mean(mean.view(), None).row(0).to_owned();
    let frames = values
        .iter()
        .enumerate()
        .map(|(j, &value)| {
            let rows: Vec<ArrayView1<f32>> = sweeps.iter().map(|s| s.row(j)).collect();
            let images = ndarray::stack(Axis(0), &rows)
                .map_err(|e| Error::invalid("units", units.len(), e.to_string()))?;
            let change = rows
                .iter()
                .map(|r| {
                    r.iter().zip(&base).map(|(&a, &b)| f64::from((a - b).abs())).sum::<f64>()
                        / base.len() as f64
                })
                .collect();
            Ok(TraversalFrame { value, images, change })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(TraversalFrames { units: units.to_vec(), base, frames })
}

/// The traversal slider: on top, one image per unit at the slider's t (the units in the order of
/// `frames.units`; the first `active` of them named active); below, each unit's change from the
/// reconstruction at that t, as bars.
///
/// # Shapes
/// Images of D pixels, D a perfect square for square images.
pub fn traversal_slider(title: &str, frames: &TraversalFrames, active: usize) -> SliderFigure {
    let shape = crate::plot::report::image_shape(frames.base.len());
    let names: Vec<String> = frames
        .units
        .iter()
        .enumerate()
        .map(|(i, u)| format!("z{u} ({})", if i < active { "active" } else { "inactive" }))
        .collect();
    let mut fig = Figure::new(title)
        .image_axes()
        .slider("t")
        .panel(Figure::new("").axes("unit", "mean |change| of a pixel from the reconstruction"))
        .stacked();
    for f in &frames.frames {
        let images =
            Figure::new("").images(&format!("t = {}", f.value), f.images.view(), shape, frames.units.len());
        let bars = Figure::new("").bars(&format!("change at t = {}", f.value), &names, &f.change);
        fig = fig.step_panels(&format!("{:+.1}", f.value), vec![images, bars]);
    }
    fig
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::vae::VaeConfig;
    use crate::lessons::representation::traversal_change;
    use rand::SeedableRng;

    #[test]
    fn frames_hold_each_units_traversal_and_average_to_traversal_change() {
        let vae: Vae<f32> =
            Vae::new(VaeConfig::bernoulli(9, vec![5], 3), &mut rand::rngs::StdRng::seed_from_u64(1)).unwrap();
        let x = Array1::from_shape_fn(9, |d| (d % 2) as f32);
        let values = [-2.0, 0.0, 1.5];
        let f = traversal_frames(&vae, x.view(), &[2, 0], &values).unwrap();
        assert_eq!(f.frames.len(), 3);
        for (j, fr) in f.frames.iter().enumerate() {
            assert_eq!(fr.images.dim(), (2, 9));
            // Row 0 is unit 2's traversal at t_j, row 1 unit 0's.
            assert_eq!(fr.images.row(0), traversal(&vae, x.view(), 2, &values).unwrap().row(j));
            assert_eq!(fr.images.row(1), traversal(&vae, x.view(), 0, &values).unwrap().row(j));
        }
        // The frames' average change is traversal_change's Δ_u for this one point (another route).
        let delta = traversal_change(&vae, x.view().insert_axis(Axis(0)), &values).unwrap();
        let mean = f.mean_change();
        assert!((mean[0] - delta[2]).abs() < 1e-6 && (mean[1] - delta[0]).abs() < 1e-6, "{mean:?} {delta:?}");
        assert!(mean[0] > 0.0);
        assert!(traversal_frames(&vae, x.view(), &[], &values).is_err());
        assert!(traversal_frames(&vae, x.view(), &[3], &values).is_err());
        let fig = traversal_slider("t", &f, 1);
        assert_eq!(fig.step_count(), 3);
    }
}
